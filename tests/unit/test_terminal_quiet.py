"""The terminal stays readable: Prefect's engine lines go to the UI only; ours and warnings stay."""

from __future__ import annotations

import logging
import os

from app.cli import EngineChatter

PREFECT_FILE = os.path.join(os.sep, "venv", "lib", "python3.11", "site-packages", "prefect", "task_engine.py")


def _record(name: str, level: int, pathname: str, func: str = "run") -> logging.LogRecord:
    return logging.LogRecord(name, level, pathname, 1, "Finished in state Completed()", None, None, func)


def test_engine_chatter_is_dropped_but_our_lines_and_warnings_pass():
    quiet = EngineChatter()
    assert not quiet.filter(_record("prefect.task_runs", logging.INFO, PREFECT_FILE))
    assert not quiet.filter(_record("prefect.flow_runs", logging.INFO, PREFECT_FILE))
    assert quiet.filter(
        _record("prefect.task_runs", logging.INFO, "/work/main/tasks/export.py")
    )  # our progress
    assert quiet.filter(
        _record("prefect.flow_runs", logging.INFO, PREFECT_FILE, func="print_as_log")
    )  # prints
    assert quiet.filter(_record("prefect.flow_runs", logging.WARNING, PREFECT_FILE))  # problems always show
    assert quiet.filter(_record("callcast", logging.INFO, "/work/main/app/cli.py"))
