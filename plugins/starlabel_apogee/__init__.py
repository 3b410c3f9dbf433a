"""starlabel_apogee: built-in plugin for SDSS-IV APOGEE DR17 spectra and labels."""
