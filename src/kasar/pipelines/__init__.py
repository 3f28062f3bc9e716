"""pipelines domain."""
