"""Every test starts from a clean STARLABEL_* environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_starlabel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit STARLABEL_* switches from the shell (except the test-data folder)."""
    for key in list(os.environ):
        if key.startswith("STARLABEL_") and key != "STARLABEL_TEST_DATA":
            monkeypatch.delenv(key)
