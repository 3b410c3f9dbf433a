"""starlabel_gaiaeso: built-in plugin for Gaia-ESO Survey spectra (ESO Phase 3 1D products) and recommended parameters."""
