"""Chronological holdout and rolling-origin windows over a table sorted oldest first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Window:
    """Row positions of one train/test window (train strictly before test in time)."""

    train: np.ndarray
    test: np.ndarray


def _check_sorted(dates: pd.Series) -> np.ndarray:
    values = pd.to_datetime(dates).to_numpy()
    if len(values) and (np.diff(values.astype("datetime64[ns]").astype(np.int64)) < 0).any():
        raise ValueError("the table must be sorted by contact_date (oldest first) before splitting")
    return values


def _cut(values: np.ndarray, at: int) -> int:
    """Move a cut position back so that no date straddles train and test."""
    at = int(np.clip(at, 1, len(values) - 1))
    while at > 1 and values[at - 1] == values[at]:
        at -= 1
    return at


def chronological_holdout(dates: pd.Series, fraction: float = 0.2) -> Window:
    """The most recent ``fraction`` of contacts as test; every training row is dated before every test row."""
    values = _check_sorted(dates)
    at = _cut(values, round(len(values) * (1 - fraction)))
    return Window(np.arange(at), np.arange(at, len(values)))


def rolling_origin(dates: pd.Series, origins: list[float], horizon: float) -> list[Window]:
    """Windows training on everything before each origin (share of rows) and testing the next ``horizon``."""
    values = _check_sorted(dates)
    n = len(values)
    windows = []
    for origin in origins:
        start = _cut(values, round(n * origin))
        end = n if origin + horizon >= 1 - 1e-9 else _cut(values, round(n * (origin + horizon)))
        if end > start:
            windows.append(Window(np.arange(start), np.arange(start, end)))
    return windows


def time_series_folds(n_rows: int, n_splits: int) -> list[Window]:
    """Expanding-window folds inside the training part (each validation block follows its training rows)."""
    block = n_rows // (n_splits + 1)
    return [
        Window(
            np.arange(block * (k + 1)),
            np.arange(block * (k + 1), block * (k + 2) if k < n_splits - 1 else n_rows),
        )
        for k in range(n_splits)
    ]
