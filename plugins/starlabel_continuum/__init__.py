"""starlabel_continuum: pseudo-continuum normalisers (built-in plugin)."""
