"""Per-customer reasons in plain words, from feature-perturbation deltas of the scoring model.

A reason is shown only if it describes the customer (e.g. their previous campaign did succeed) and
switching that attribute to a neutral reference value lowers their score by more than ``min_delta``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

# phrase, condition on the customer, reference change
REASONS: list[tuple[str, Callable[[pd.DataFrame], np.ndarray], dict[str, object]]] = [
    (
        "previous campaign succeeded",
        lambda f: (f["poutcome"] == "success").to_numpy(),
        {"poutcome": "failure"},
    ),
    ("no housing loan", lambda f: (f["housing"] == "no").to_numpy(), {"housing": "yes"}),
    ("no personal loan", lambda f: (f["loan"] == "no").to_numpy(), {"loan": "yes"}),
    ("contacted by cellular", lambda f: (f["contact"] == "cellular").to_numpy(), {"contact": "unknown"}),
    ("student", lambda f: (f["job"] == "student").to_numpy(), {"job": "blue-collar"}),
    ("retired", lambda f: (f["job"] == "retired").to_numpy(), {"job": "blue-collar"}),
    ("high account balance", lambda f: (pd.to_numeric(f["balance"]) >= 3000).to_numpy(), {"balance": 450}),
    (
        "few calls so far this campaign",
        lambda f: (pd.to_numeric(f["campaign"]) <= 1).to_numpy(),
        {"campaign": 4},
    ),
    ("tertiary education", lambda f: (f["education"] == "tertiary").to_numpy(), {"education": "secondary"}),
]


def explain(model, frame: pd.DataFrame, top: int = 3, min_delta: float = 0.005) -> list[str]:
    """For each row, up to ``top`` reasons joined by ``"; "`` (empty string if none applies)."""
    frame = frame.reset_index(drop=True)
    base = model.predict_proba(frame)[:, 1]
    deltas = np.zeros((len(frame), len(REASONS)))
    for j, (_, condition, change) in enumerate(REASONS):
        mask = condition(frame)
        if not mask.any():
            continue
        changed = frame.loc[mask].assign(**change)
        deltas[mask, j] = base[mask] - model.predict_proba(changed)[:, 1]
    out = []
    for row in deltas:
        order = [j for j in np.argsort(-row, kind="stable")[:top] if row[j] > min_delta]
        out.append("; ".join(REASONS[j][0] for j in order))
    return out
