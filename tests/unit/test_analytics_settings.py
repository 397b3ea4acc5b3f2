"""Every CALLCAST_ANALYTICS__* setting is read from the environment and changes what the analyses produce."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import test_analytics  # tests/unit is on sys.path under pytest: the generators of test_analytics.py

from models.analytics import campaign as cp
from models.analytics import sales as sk
from models.analytics import segmentation as sg
from models.analytics.config import AnalyticsSettings


@pytest.fixture(scope="module")
def people():
    customers, contacts, _ = test_analytics.planted_segments(per=100, seed=2)
    return customers, contacts


@pytest.fixture(scope="module")
def calls():
    labelled = cp.labelled_contacts(test_analytics.planted_calls(3000, first=0.12, decay=0.25, seed=4))
    return labelled, cp.fit_decay(labelled)


@pytest.fixture(scope="module")
def sales():
    sales, stores, products = test_analytics.planted_sales(days=800)
    return sk.prepare_sales(sales, test_analytics.AS_OF)[0], stores, products


def _segments(cfg: AnalyticsSettings, people) -> pd.DataFrame:
    customers, contacts = people
    features = sg.customer_features(customers, contacts)
    result = sg.segment_customers(
        features, cfg.segment_k_min, cfg.segment_k_max, cfg.seed, cfg.silhouette_sample, cfg.segment_min_share
    )
    return result.curve


def _break_even(cfg: AnalyticsSettings, calls) -> dict:
    labelled, fit = calls
    return cp.break_even(fit, cp.call_hazard(labelled, cfg.max_call_number), cfg.break_even_rate)


def _lift(cfg: AnalyticsSettings) -> int:
    lists = pd.DataFrame({"list_date": "2024-06-02", "call_date": "2024-06-03", "customer_id": [1, 2]})
    contacts = test_analytics.make_contacts([1, 2], contact_date=[date(2024, 6, 4), date(2024, 6, 12)])
    return int(cp.call_list_lift(lists, contacts, cfg.lift_window_days)["listed_contacts"].iloc[0])


def _kpis(cfg: AnalyticsSettings, sales) -> sk.SalesKpis:
    return sk.sales_kpis(*sales, test_analytics.AS_OF, cfg.kpi_period_days, cfg.top_movers)


CASES = {
    "COST_PER_CALL": ("9", lambda cfg, d: _break_even(cfg, d["calls"])),
    "VALUE_PER_SALE": ("50", lambda cfg, d: _break_even(cfg, d["calls"])),
    "MAX_CALL_NUMBER": ("6", lambda cfg, d: len(cp.call_hazard(d["calls"][0], cfg.max_call_number))),
    "SEGMENT_K_MIN": ("3", lambda cfg, d: _segments(cfg, d["people"])["k"].min()),
    "SEGMENT_K_MAX": ("4", lambda cfg, d: _segments(cfg, d["people"])["k"].max()),
    "SEGMENT_MIN_SHARE": ("0.34", lambda cfg, d: _segments(cfg, d["people"])["eligible"].tolist()),
    "SILHOUETTE_SAMPLE": ("200", lambda cfg, d: _segments(cfg.model_copy(update={"segment_k_max": 4}), d["people"])["silhouette"].round(6).tolist()),
    "SEED": ("7", lambda cfg, d: _segments(cfg.model_copy(update={"silhouette_sample": 200, "segment_k_max": 4}), d["people"])["silhouette"].round(6).tolist()),
    "LIFT_WINDOW_DAYS": ("5", lambda cfg, d: _lift(cfg)),
    "KPI_PERIOD_DAYS": ("14", lambda cfg, d: _kpis(cfg, d["sales"]).facts["period"]),
    "TOP_MOVERS": ("1", lambda cfg, d: len(_kpis(cfg, d["sales"]).tables["top_movers_up"])),
}  # fmt: skip


def test_every_setting_has_a_case():
    assert {f.upper() for f in AnalyticsSettings.model_fields} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_environment_variable_changes_the_output(name, monkeypatch, people, calls, sales, callcast_home):
    from callcast.settings import get_settings

    value, probe = CASES[name]
    data = {"people": people, "calls": calls, "sales": sales}
    default = get_settings().analytics
    before = probe(default, data)
    monkeypatch.setenv(f"CALLCAST_ANALYTICS__{name}", value)
    changed = get_settings().analytics
    assert getattr(changed, name.lower()) != getattr(default, name.lower())
    after = probe(changed, data)
    assert (
        not np.array_equal(np.asarray(before, dtype=object), np.asarray(after, dtype=object))
        if isinstance(before, list)
        else before != after
    )


def test_an_impossible_segment_range_is_refused(monkeypatch, callcast_home):
    from pydantic import ValidationError

    from callcast.settings import get_settings

    monkeypatch.setenv("CALLCAST_ANALYTICS__SEGMENT_K_MIN", "6")
    monkeypatch.setenv("CALLCAST_ANALYTICS__SEGMENT_K_MAX", "3")
    with pytest.raises(ValidationError, match="segment_k_max"):
        get_settings()
