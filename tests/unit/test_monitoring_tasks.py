"""Monitoring helpers: which list a call came from, strict JSON, the reference context swap."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from tasks.monitoring import clean_json, holdout_auc, list_for_contact_dates, with_context


def test_a_call_belongs_to_the_latest_list_published_before_its_date():
    lists = [pd.Timestamp("2010-12-01").date(), pd.Timestamp("2010-12-03").date()]
    calls = pd.Series(pd.to_datetime(["2010-12-01", "2010-12-02", "2010-12-03", "2010-12-06"]))
    got = list_for_contact_dates(lists, calls)
    assert got.isna().tolist() == [True, False, False, False]  # a list is used from the day after
    assert [d.date().isoformat() for d in got.iloc[1:]] == ["2010-12-01", "2010-12-01", "2010-12-03"]
    assert list_for_contact_dates([], calls).isna().all()


def test_drift_json_is_strict_json():
    doc = clean_json({"a": float("nan"), "b": [np.float64(1.5), math.inf], "c": {"d": np.int64(3)}})
    assert doc == {"a": None, "b": [1.5, None], "c": {"d": 3}}
    json.loads(json.dumps(doc, allow_nan=False))


def test_holdout_figure_prefers_the_within_date_auc():
    assert holdout_auc({"metrics": {"roc_auc": 0.8, "within_date_auc": 0.7}}) == ("within_date_auc", 0.7)
    assert holdout_auc({"metrics": {"roc_auc": 0.8, "within_date_auc": float("nan")}}) == ("roc_auc", 0.8)
    assert holdout_auc({}) == (None, None)


def test_reference_context_replaces_only_the_call_date_columns():
    rows = pd.DataFrame(
        {"age": [30, 40], "contact_date": pd.to_datetime(["2011-01-05"] * 2), "month": ["jan", "jan"],
         "day": [5, 5], "ctx_rate_90d": [0.1, 0.1], "ctx_volume_7d": [300.0, 300.0]}
    )  # fmt: skip
    ctx = {"call_date": "2010-12-01", "day": 1, "month": "dec", "ctx_rate_90d": 0.4, "ctx_volume_7d": 50.0}
    out = with_context(rows, ctx)
    assert out["age"].tolist() == [30, 40] and out["month"].tolist() == ["dec", "dec"]
    assert (
        out["ctx_rate_90d"].tolist() == [0.4, 0.4]
        and (out["contact_date"] == pd.Timestamp("2010-12-01")).all()
    )
    assert rows["month"].tolist() == ["jan", "jan"]  # the input is left alone
