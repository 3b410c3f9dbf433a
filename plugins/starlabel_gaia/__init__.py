"""starlabel_gaia built-in plugin."""
