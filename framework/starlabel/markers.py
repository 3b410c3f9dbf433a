"""The pluggy markers of the ``starlabel`` project.

Plugins write ``from starlabel import hookimpl`` and decorate their hook functions with it.
"""

from __future__ import annotations

import pluggy

PROJECT = "starlabel"
"""Pluggy project name; also the entry-point group third-party plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
