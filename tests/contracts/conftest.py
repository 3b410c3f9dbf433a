"""Session bookkeeping of the reader fuzz tests: one :class:`ReaderStats` per reader, printed at the end."""

from __future__ import annotations

import pytest
from fuzz_helpers import ReaderStats, format_table

FUZZ_STATS = pytest.StashKey[dict[str, ReaderStats]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FUZZ_STATS] = {}


@pytest.fixture(scope="session")
def fuzz_stats(request: pytest.FixtureRequest) -> dict[str, ReaderStats]:
    """Reader name → what the fuzz tests of this session tried and found."""
    return request.config.stash[FUZZ_STATS]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """The table of inputs tried per reader (only when a fuzz test ran)."""
    stats = config.stash.get(FUZZ_STATS, {})
    if any(s.tried for s in stats.values()):
        terminalreporter.write_sep("=", "reader fuzzing: inputs tried per reader")
        terminalreporter.write_line(format_table(stats))
