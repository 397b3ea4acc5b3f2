"""The training flow on a small lake: validated partitions in, champion registered, gate both ways."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from callcast.lake import open_lake
from demo_company.bank import bank_tables, load_bank_full


@pytest.mark.integration
def test_train_flow_promotes_first_model_then_keeps_an_equal_one_as_challenger(
    prefect_harness, callcast_home, tmp_path, commit_validated_partition
):
    from flows.train_propensity import train_propensity
    from tasks import registry

    bank = load_bank_full().iloc[::8].reset_index(drop=True)
    customers, contacts = bank_tables(seed=3, bank=bank)
    lake = open_lake()
    first_day, second_day = date(2010, 6, 30), date(2010, 11, 30)
    early = contacts[pd.to_datetime(contacts["contact_date"]) <= pd.Timestamp(first_day)].copy()
    unknown = pd.to_datetime(early["outcome_known_on"]) > pd.Timestamp(first_day)
    early.loc[unknown, ["y", "outcome_known_on"]] = None
    early["updated_at"] = early["updated_at"].where(
        ~unknown, pd.to_datetime(early["contact_date"]) + pd.Timedelta(hours=18)
    )
    late = contacts[~contacts["contact_id"].isin(early.loc[~unknown, "contact_id"])]
    commit_validated_partition(lake, "customers", customers, first_day)
    commit_validated_partition(lake, "campaign_contacts", early, first_day)
    commit_validated_partition(lake, "customers", customers, second_day)
    commit_validated_partition(lake, "campaign_contacts", late, second_day)

    first = train_propensity(profile="quick")
    assert first["version"] == "v0001" and first["promoted"] is True
    assert 0.5 < first["headline"]["roc_auc"] <= 1
    info = registry.read_model_info(lake, "propensity", "champion")
    assert info["rows"] == len(contacts)  # deduplicated across both slices
    assert [i["partition_date"] for i in info["inputs"]] == ["2010-11-30", "2010-06-30", "2010-11-30"]
    assert all(i["sha256"] for i in info["inputs"])
    assert "duration" not in info["features"]["numeric"] and "pdays" not in info["features"]["numeric"]
    card = lake.storage.get_bytes("registry/propensity/v0001/card.md").decode()
    assert "## Known limits" in card and "`duration`" in card
    for plot in ("roc.png", "gains_lift.png", "calibration.png", "rate_over_time.png"):
        assert lake.storage.exists(f"registry/propensity/v0001/{plot}")

    second = train_propensity(profile="quick")  # same data, same seed: not better by the margin
    assert second["version"] == "v0002" and second["promoted"] is False
    assert second["headline"] == first["headline"]  # deterministic
    assert registry.read_aliases(lake, "propensity") == {"champion": "v0001", "challenger": "v0002"}
    assert any("below the margin" in r for r in second["reasons"])

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{callcast_home / 'mlflow.db'}")
    assert client.get_model_version_by_alias("propensity", "champion").tags["lake_version"] == "v0001"
