"""A third-party starlabel plugin, installed by starlabel's test set-up to prove the plugin mechanism."""
