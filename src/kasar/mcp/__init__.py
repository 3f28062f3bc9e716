"""mcp domain."""
