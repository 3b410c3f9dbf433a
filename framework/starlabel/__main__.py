"""``python -m starlabel`` (and ``torchrun -m starlabel``) runs the command line."""

from __future__ import annotations

from starlabel.cli import main

if __name__ == "__main__":
    main()
