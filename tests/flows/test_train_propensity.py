"""The training flow on a small lake: validated partitions in, champion registered, gate, no rerun on equal inputs."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from callcast.lake import open_lake
from demo_company.bank import bank_tables, load_bank_full


@pytest.mark.integration
def test_train_flow_promotes_a_fresh_champion_and_skips_unchanged_inputs(
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

    first = train_propensity(profile="quick")
    assert first["version"] == "v0001" and first["promoted"] is True
    assert first["fit_window"][1] <= "2010-06-30"

    commit_validated_partition(lake, "customers", customers, second_day)
    commit_validated_partition(lake, "campaign_contacts", late, second_day)
    second = train_propensity(profile="quick")  # new data: a new version, gated on the within-date AUC
    assert second["version"] == "v0002"
    assert 0.5 < second["headline"]["within_date_auc"] < 1
    assert any("within_date_auc" in r for r in second["reasons"])
    info = registry.read_model_info(lake, "propensity", "v0002")
    assert info["rows"] == len(contacts)  # deduplicated across both slices
    # the served model is refitted on every labelled contact; the figures come from the selection fit
    assert info["data_window"]["fit"] == [
        str(min(contacts["contact_date"])),
        str(max(contacts["contact_date"])),
    ]
    assert info["data_window"]["train"][1] < info["data_window"]["holdout"][0]
    assert [i["partition_date"] for i in info["inputs"]] == ["2010-11-30", "2010-06-30", "2010-11-30"]
    assert "duration" not in info["features"]["numeric"] and "pdays" not in info["features"]["numeric"]
    assert len(info["rolling"]) >= 5
    card = lake.storage.get_bytes("registry/propensity/v0002/card.md").decode()
    assert "## Known limits" in card and "`duration`" in card and "day-block bootstrap" in card
    for plot in (
        "per_date_capture.png",
        "roc.png",
        "gains_lift.png",
        "calibration.png",
        "calibration_over_time.png",
    ):
        assert lake.storage.exists(f"registry/propensity/v0002/{plot}")

    third = train_propensity(profile="quick")  # same manifests, same settings: nothing new registered
    assert third["unchanged"] is True and third["version"] == "v0002"
    assert registry.list_versions(lake, "propensity") == ["v0001", "v0002"]

    from mlflow.tracking import MlflowClient

    aliases = registry.read_aliases(lake, "propensity")
    client = MlflowClient(f"sqlite:///{callcast_home / 'mlflow.db'}")
    assert (
        client.get_model_version_by_alias("propensity", "champion").tags["lake_version"]
        == aliases["champion"]
    )

    # the champion's card is the artifact people see, its plots embedded (data URIs render in the UI)
    from prefect.client.orchestration import get_client

    async def latest(key):
        async with get_client() as c:
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

            found = await c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return found[-1] if found else None

    import asyncio

    champion_card = asyncio.run(latest("propensity-model-card"))
    assert champion_card is not None and "data:image/png;base64," in champion_card.data
    assert f"Propensity model {aliases['champion']} " in champion_card.data
