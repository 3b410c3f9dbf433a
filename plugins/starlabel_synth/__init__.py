"""starlabel_synth: the built-in ``linelist`` synthesizer, a simple, fast line-list model (not an atmosphere).

:class:`starlabel_synth.model.LineListSynthesizer` turns labels (``teff``, ``logg``, ``m_h``, ``alpha_m``,
``<x>_fe``) into continuum-normalised spectra on any vacuum wavelength grid between 360 and 1720 nm at
any resolving power, from the shipped line list ``linelist.csv`` (format in
:mod:`starlabel_synth.linelist`). The hook implementation lives in :mod:`starlabel_synth.plugin`; the model
in :mod:`~starlabel_synth.atmosphere` (one representative layer per star), :mod:`~starlabel_synth.strengths`
(line strengths and widths), :mod:`~starlabel_synth.profiles` (optical depth on a fine ln λ grid) and
:mod:`~starlabel_synth.resampling` (broadening and pixel averages).
"""

from __future__ import annotations

from starlabel._version import __version__

__all__ = ["__version__"]
