"""Reference distributions of a model's inputs and score, and today's drift against them.

The reference is a small JSON-ready document built once per model version from the population the model
scored when it was trained: numeric features keep their reference quantile cuts, bin counts and a seeded
sorted sample (for KS); categorical features keep category counts; the score keeps the same. Today's
population is compared bin by bin (PSI) and by a test suited to the type (KS for numeric, chi-square for
categorical, with the Jensen–Shannon distance reported beside it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.monitoring.config import MonitoringConfig
from models.monitoring.statistics import (
    bin_counts,
    category_counts,
    chi_square_test,
    jensen_shannon,
    ks_test,
    psi,
    quantile_edges,
)

SCORE = "__score__"


def feature_frame(
    rows: pd.DataFrame, categorical: Sequence[str], numeric: Sequence[str]
) -> dict[str, np.ndarray]:
    """The model's input features of ``rows``, as the pipeline derives them (strings / float64 arrays)."""
    from models.propensity.features import feature_values

    out: dict[str, np.ndarray] = {}
    for name in categorical:
        values = pd.Series(np.asarray(feature_values(rows, name), dtype=object))
        out[name] = values.where(values.notna(), None).astype(object).to_numpy()
    for name in numeric:
        values = feature_values(rows, name)
        out[name] = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    return out


def _sample_sorted(values: np.ndarray, size: int, seed: int) -> list[float]:
    x = values[~np.isnan(values)]
    if x.size > size:
        x = np.random.default_rng(seed).choice(x, size, replace=False)
    return np.sort(x).tolist()


def describe_numeric(values: np.ndarray, config: MonitoringConfig) -> dict[str, Any]:
    x = np.asarray(values, dtype=float)
    edges = quantile_edges(x, config.bins)
    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "counts": bin_counts(x, edges).tolist(),
        "sample": _sample_sorted(x, config.reference_sample, config.seed),
        "rows": int(x.size),
        "distinct": int(np.unique(x[~np.isnan(x)]).size),
    }


def describe_categorical(values: np.ndarray) -> dict[str, Any]:
    series = pd.Series(values, dtype=object)
    categories = sorted(series.dropna().astype(str).unique())
    return {
        "kind": "categorical",
        "categories": categories,
        "counts": category_counts(values, categories).tolist(),
        "rows": int(len(series)),
        "distinct": len(categories),
    }


def build_reference(
    features: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    scores: np.ndarray,
    config: MonitoringConfig,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The reference document of a population: per-feature distributions and the score's distribution."""
    described = {
        name: describe_numeric(values, config) if kinds[name] == "numeric" else describe_categorical(values)
        for name, values in features.items()
    }
    return {
        **dict(meta or {}),
        "rows": int(len(scores)),
        "features": described,
        "score": describe_numeric(np.asarray(scores, dtype=float), config),
    }


@dataclass
class FeatureDrift:
    """One feature's drift (the drift.json ``features`` entry, plus its kind, level and test name)."""

    name: str
    kind: str
    psi: float
    statistic: float
    p_value: float
    test: str
    js_distance: float
    level: str  # "stable" | "warning" | "drifted"
    drifted: bool
    reference_shares: list[float]
    current_shares: list[float]
    bins: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _labels_numeric(edges: Sequence[float]) -> list[str]:
    if not len(edges):
        return ["all", "missing"]
    cuts = [f"{e:.4g}" for e in edges]
    return [
        f"< {cuts[0]}",
        *[f"{a} – {b}" for a, b in zip(cuts[:-1], cuts[1:], strict=True)],
        f">= {cuts[-1]}",
        "missing",
    ]


def _level(psi_value: float, p_value: float, config: MonitoringConfig) -> str:
    if psi_value >= config.psi_act:
        return "drifted"
    if psi_value >= config.psi_warn:
        return "warning"
    return "stable"


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).round(6).tolist() if total else [0.0] * len(counts)


def compare_feature(
    name: str, reference: Mapping[str, Any], current: np.ndarray, config: MonitoringConfig
) -> FeatureDrift:
    """PSI and the type's test of one feature against its reference description."""
    ref_counts = np.asarray(reference["counts"], dtype=np.int64)
    if reference["kind"] == "numeric":
        edges = np.asarray(reference["edges"], dtype=float)
        cur_counts = bin_counts(current, edges)
        test = ks_test(np.asarray(reference["sample"], dtype=float), current)
        test_name, labels = "ks", _labels_numeric(reference["edges"])
    else:
        cur_counts = category_counts(current, reference["categories"])
        test = chi_square_test(ref_counts, cur_counts)
        test_name, labels = "chi2", [*reference["categories"], "unseen/missing"]
    value = psi(ref_counts, cur_counts, config.psi_floor)
    level = _level(value, test.p_value, config)
    return FeatureDrift(
        name=name,
        kind=reference["kind"],
        psi=round(value, 6),
        statistic=round(test.statistic, 6),
        p_value=float(test.p_value),
        test=test_name,
        js_distance=round(jensen_shannon(ref_counts, cur_counts), 6),
        level=level,
        drifted=level == "drifted",
        reference_shares=_shares(ref_counts),
        current_shares=_shares(cur_counts),
        bins=labels,
    )


def compare_to_reference(
    reference: Mapping[str, Any],
    features: Mapping[str, np.ndarray],
    scores: np.ndarray,
    config: MonitoringConfig,
) -> tuple[list[FeatureDrift], FeatureDrift, list[dict[str, str]]]:
    """Drift of every comparable feature and of the score; features with nothing to compare are listed apart.

    A feature constant in the reference (e.g. the call month or the campaign context, the same for every
    customer scored on one date) has no distribution to compare: it is skipped, with the reason.
    """
    drifts, skipped = [], []
    for name, ref in reference["features"].items():
        if name not in features:
            skipped.append({"name": name, "reason": "missing from today's scoring rows"})
            continue
        if ref.get("distinct", 2) <= 1:
            skipped.append(
                {"name": name, "reason": "constant in the reference population (call-date context)"}
            )
            continue
        drifts.append(compare_feature(name, ref, features[name], config))
    score = compare_feature(SCORE, reference["score"], np.asarray(scores, dtype=float), config)
    return drifts, score, skipped
