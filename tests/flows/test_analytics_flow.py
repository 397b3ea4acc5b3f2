"""The analytics flows on a small lake: validated inputs only (a quarantined snapshot is skipped and said),
outputs committed under analytics/<name>/dt=…, reports standalone, artifacts in Prefect, money to the cent."""

from __future__ import annotations

import base64
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from callcast import catalog
from callcast.lake import open_lake

pytestmark = pytest.mark.integration

LIST_DATE = date(2010, 11, 30)
CALL_DATE = date(2010, 12, 1)
AS_OF = date(2010, 12, 11)
PNG = b"\x89PNG\r\n\x1a\n"


def _people(commit, lake):
    """Bank customers/contacts; a call list of 120 customers, then their contacts (30% buy) and 120 others (10%)."""
    from demo_company.bank import bank_tables, load_bank_full

    customers, contacts = bank_tables(seed=3, bank=load_bank_full().iloc[::25].reset_index(drop=True))
    commit(lake, "customers", customers, LIST_DATE)
    commit(lake, "campaign_contacts", contacts, LIST_DATE)
    rng = np.random.default_rng(0)
    never_bought = contacts.loc[contacts["y"] == "no", "customer_id"].to_numpy()
    listed, others = never_bought[:120], never_bought[120:240]
    with lake.scratch_dir() as tmp:
        path = Path(tmp) / "call_list.csv"
        pd.DataFrame({"rank": range(1, 121), "customer_id": listed}).to_csv(path, index=False)
        lake.commit_partition(
            catalog.call_lists(), LIST_DATE, {"call_list.csv": path},
            {"table": "call_lists", "rows": 120, "call_date": CALL_DATE.isoformat(), "eligible_base_rate": 0.1},
        )  # fmt: skip
    ids = np.concatenate([listed, others])
    sale = rng.random(240) < np.where(np.isin(ids, listed), 0.3, 0.1)
    new = contacts.set_index("customer_id").loc[ids].reset_index()
    new["contact_id"] = np.arange(100_000, 100_240)
    new["contact_date"] = CALL_DATE + timedelta(days=1)
    new["y"] = np.where(sale, "yes", "no")
    new["outcome_known_on"] = CALL_DATE + timedelta(days=4)
    new["updated_at"] = pd.Timestamp(AS_OF - timedelta(days=1))
    commit(lake, "campaign_contacts", new, AS_OF - timedelta(days=1))
    commit(lake, "customers", customers, AS_OF - timedelta(days=1))
    commit(lake, "customers", customers, AS_OF, status="failed")  # quarantined: must not be read
    return customers, contacts, listed, sale[:120]


def _sales(commit, lake):
    from demo_company.sales import SalesSimConfig, iter_sales, make_products, make_stores

    cfg = SalesSimConfig(n_stores=2, n_products=3, n_days=400, start=AS_OF - timedelta(days=399), seed=5)
    sales = pd.concat(list(iter_sales(cfg)), ignore_index=True)
    commit(lake, "sales", sales, AS_OF)
    commit(lake, "stores", make_stores(cfg), AS_OF)
    commit(lake, "products", make_products(cfg), AS_OF)
    days = pd.date_range(AS_OF - timedelta(days=9), periods=14, freq="D").strftime("%Y-%m-%d")
    with lake.scratch_dir() as tmp:
        path = Path(tmp) / "forecasts.csv"
        rows = [
            {"series_id": f"{s}/ALL", "date": d, "forecast": 50.0, "lo80": 30.0, "hi80": 70.0, "lo95": 20.0, "hi95": 80.0, "model": "ets"}
            for s in (1, 2) for d in days
        ]  # fmt: skip
        pd.DataFrame(rows).to_csv(path, index=False)
        lake.commit_partition(
            catalog.forecasts(), AS_OF - timedelta(days=10), {"forecasts.csv": path}, {"table": "forecasts"}
        )
        # A newer forecast whose periods are all still ahead: nothing to compare yet, so the older one is used.
        ahead = pd.DataFrame(rows)
        ahead["date"] = (pd.to_datetime(ahead["date"]) + pd.Timedelta(days=30)).dt.strftime("%Y-%m-%d")
        ahead.to_csv(path, index=False)
        lake.commit_partition(catalog.forecasts(), AS_OF, {"forecasts.csv": path}, {"table": "forecasts"})
    return sales


def _standalone(html_text: str) -> int:
    assert "<script" not in html_text and "<link" not in html_text
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', html_text)
    assert sources
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:80]
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    return len(sources)


def _champion(lake, customers, contacts):
    from models.propensity.config import PropensityConfig
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table
    from tasks import registry

    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == "hist_gb/context")
    table = build_training_table(customers, contacts)
    model = build_pipeline(candidate, config).fit(table, table["y"].to_numpy())
    registry.register_model(lake, "propensity", model, {"candidate": candidate.name})
    registry.set_alias(lake, "propensity", "champion", "v0001")


def test_analytics_flows_publish_reports_from_validated_exports(
    prefect_harness, callcast_home, commit_validated_partition, monkeypatch
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.analytics import AnalysesFailed, analytics, customer_segmentation

    monkeypatch.setenv("CALLCAST_ANALYTICS__SEGMENT_K_MAX", "5")  # the flow reads its settings section
    # A quarantined snapshot blocks readers by default; this company lets analyses use the last good one.
    monkeypatch.setenv("CALLCAST_CHECKS__FALLBACK_TO_LAST_GOOD", "true")
    lake = open_lake()
    customers, contacts, listed, listed_sales = _people(commit_validated_partition, lake)

    # No sales exported yet: the sales analysis fails, the other two are still published, the run fails.
    with pytest.raises(AnalysesFailed, match="1 of 3 analyses failed \\(sales: .*No exported sales"):
        analytics(as_of=AS_OF)
    assert lake.has_partition(catalog.analytics("segmentation"), AS_OF)
    assert lake.has_partition(catalog.analytics("campaign"), AS_OF)
    assert not lake.has_partition(catalog.analytics("sales"), AS_OF)
    first = lake.read_manifest(catalog.analytics("segmentation"), AS_OF)
    assert any("no champion" in w for w in first["warnings"])

    sales = _sales(commit_validated_partition, lake)
    _champion(lake, customers, contacts)
    results = analytics(as_of=AS_OF)
    assert set(results) == {"segmentation", "campaign", "sales"}

    for name, result in results.items():
        manifest = lake.read_manifest(catalog.analytics(name), AS_OF)
        assert manifest["analysis"] == name and manifest["code_version"]
        names = {f["logical_name"] for f in manifest["files"]}
        assert {"report.html", "summary.json"} <= names and any(n.endswith(".png") for n in names)
        assert all(len(f["sha256"]) == 64 for f in manifest["files"])
        report = lake.read_bytes(catalog.analytics(name), AS_OF, "report.html")
        assert _standalone(report.decode("utf-8")) >= 2
        assert Path(result["report"]).read_bytes() == report  # the path printed for people opens the report
        # The quarantined customers snapshot was skipped, and the report says so.
        if name != "sales":
            assert {
                "table": "customers",
                "partition_date": (AS_OF - timedelta(days=1)).isoformat(),
            }.items() <= manifest["inputs"][0].items()
            assert any("customers: partition 2010-12-11" in w for w in result["warnings"])

    def read(name, file, **kw):
        return lake.read_csv(catalog.analytics(name), AS_OF, file, **kw)

    # Segmentation: the champion's mean score per segment is there (no "no champion" warning any more).
    seg = lake.read_manifest(catalog.analytics("segmentation"), AS_OF)
    assert not any("no champion" in w for w in seg["warnings"])
    profiles = read("segmentation", "segment_profiles.csv")
    assert profiles["champion_mean_score"].between(0, 1).all()
    assert profiles["customers"].sum() == len(customers)
    assert read("segmentation", "segment_k_search.csv")["k"].tolist() == [2, 3, 4, 5]

    # Campaign: the lift joins the call list to the later outcomes of listed customers.
    lift = read("campaign", "call_list_lift.csv").iloc[0]
    assert lift["listed_contacts"] == 120 and lift["listed_sales"] == int(listed_sales.sum())
    assert lift["other_contacts"] == 120
    stop = read("campaign", "stop_calling.csv")
    assert (
        list(stop.columns) == ["customer_id", "name", "phone", "reason"]
        and stop["reason"].str.len().gt(0).all()
    )

    # Sales: KPI tables reconcile with the raw exported revenue to the cent; forecast vs actual per store.
    raw = sum(Decimal(str(v)) for v in sales["revenue"])
    monthly = read("sales", "sales_by_month.csv", dtype={"revenue": str})
    assert sum(Decimal(v) for v in monthly["revenue"]) == raw
    used = lake.read_manifest(catalog.analytics("sales"), AS_OF)["inputs"]
    assert [i["partition_date"] for i in used if i["table"] == "forecasts"] == [
        (AS_OF - timedelta(days=10)).isoformat()
    ]
    fva = read("sales", "forecast_vs_actual.csv")
    assert sorted(fva["store_id"].astype(str)) == ["1", "2"] and (fva["periods"] == 10).all()

    # Prefect artifacts carry the key figures and the charts embedded.
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(
                    any_=["analytics-segmentation", "analytics-campaign", "analytics-sales"]
                )
            )
        )
    assert {a.key for a in artifacts} == {"analytics-segmentation", "analytics-campaign", "analytics-sales"}
    assert all("data:image/png;base64," in a.data for a in artifacts)

    # Reproducible: a rerun of one analysis gives the same segments.
    before = read("segmentation", "customer_segments.csv")
    customer_segmentation(as_of=AS_OF)
    assert read("segmentation", "customer_segments.csv").equals(before)
