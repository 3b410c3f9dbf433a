"""starlabel_tables built-in plugin."""
