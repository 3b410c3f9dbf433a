"""Fixtures of the core tests: toy components only, no survey plugin."""

from __future__ import annotations

import pytest
from toys import ToyPlugin

from starlabel.plugins import Plugins, load_plugins


@pytest.fixture
def toy_plugins() -> Plugins:
    """The core's defaults plus the toy plugin; no survey plugin, no entry points."""
    return load_plugins(builtins=("starlabel.defaults",), entry_points=False, extra=[("toy", ToyPlugin())], environ={})


GOOD = """\
schema_version: 1
name: toy_survey
instrument:
  reader: toy_reader
  resolution: 11500
  options: {setup: HR10}
grid: {start: 846.0, stop: 870.0, step: 0.01, unit: nm, medium: vacuum}
mask:
  - {start: 846.0, stop: 846.5, why: edge noise}
auxiliary:
  - provider: toy_photometry
  - provider: toy_parallax
    options: {zero_point: lindegren2021}
labels:
  source: toy_labels
  columns: [teff, logg, m_h, alpha_m]
  cuts: {snr_min: 70}
network: {architecture: toy_net, options: {width: 32}}
data: {spectra: "rvs/*.csv.gz", labels: "allStar.fits"}
"""


@pytest.fixture
def good_descriptor_text() -> str:
    """A valid descriptor over the toy components (line numbers matter to the tests)."""
    return GOOD
