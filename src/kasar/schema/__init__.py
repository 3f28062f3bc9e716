"""schema domain."""
