"""starlabel: survey-agnostic, plugin-based stellar labels from spectra with convolutional networks.

Plugins write::

    from starlabel import hookimpl

and implement the hooks declared in :mod:`starlabel.hookspecs`. Importing this package is cheap: it
pulls in neither torch nor zarr.
"""

from __future__ import annotations

from starlabel._version import __version__
from starlabel.markers import hookimpl, hookspec

__all__ = ["__version__", "hookimpl", "hookspec"]
