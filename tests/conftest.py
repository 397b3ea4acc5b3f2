"""Shared test fixtures: quiet, isolated environment and one Prefect test harness per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Telemetry off and an isolated Prefect home before anything imports Prefect or GX.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

BANK_FULL = Path(__file__).resolve().parents[1] / "callcast" / "data" / "bank-full.csv.gz"


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Prefect test server for the whole session (it takes ~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def callcast_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CALLCAST_HOME (embedded database and lake) for one test."""
    home = tmp_path / "callcast-home"
    home.mkdir()
    monkeypatch.setenv("CALLCAST_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("CALLCAST_") and name != "CALLCAST_HOME":
            monkeypatch.delenv(name, raising=False)
    return home
