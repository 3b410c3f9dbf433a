"""starlabel_nets: built-in network architectures (``hybrid_cnn``, ``starnet``, ``bcnn``).

Each architecture is a :class:`starlabel.components.Architecture` whose ``build(spec)`` returns a torch module
following the core's module contract: ``forward(flux, aux) -> (mean, log_var)`` with one convolutional branch
per spectral arm (the ``trunk``), an optional auxiliary-input branch, and a dense head. Hook implementations
live in :mod:`starlabel_nets.plugin`; the torch building blocks in :mod:`starlabel_nets.modules` (imported only
when a network is built, so listing plugins never imports torch).
"""

from __future__ import annotations

from starlabel._version import __version__

__all__ = ["__version__"]
