"""dedup domain."""
