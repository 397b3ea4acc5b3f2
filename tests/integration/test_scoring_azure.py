"""Scoring on an Azure Blob lake (Azurite): the same call list as on local disk, the pointer and its immutable
copies on blobs, forward-only ``latest``, and refusals that write nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from callcast import catalog
from callcast.lake import Lake
from callcast.storage import LocalStorage
from models import call_list as rules
from tasks import scoring
from tests.unit.test_scoring import DAY, bank_tables_small, model, run  # noqa: F401 - fixtures


@pytest.mark.integration
def test_call_list_on_azure_blob_matches_local_disk(  # noqa: F811 - fixtures imported above
    azurite, azure_container, tmp_path, monkeypatch, callcast_home, bank_tables_small, model,  # noqa: F811
    commit_validated_partition,
):  # fmt: skip
    from callcast.settings import get_settings
    from callcast.storage import open_storage
    from tasks import registry

    monkeypatch.setenv("CALLCAST_AZURE_CONNECTION_STRING", azurite)
    customers, contacts = bank_tables_small
    lakes = {
        "azure": Lake(open_storage(get_settings(lake_url=f"az://{azure_container}/lake"))),
        "local": Lake(LocalStorage(tmp_path / "lake")),
    }
    published = {}
    for name, lake in lakes.items():
        (tmp_path / name).mkdir()
        commit_validated_partition(lake, "customers", customers, DAY)
        commit_validated_partition(lake, "campaign_contacts", contacts, DAY)
        registry.register_model(lake, "propensity", model, {"candidate": "logreg/base"})
        registry.set_alias(lake, "propensity", "champion", "v0001")
        scoring._MODEL_CACHE.clear()
        summary = run(lake, tmp_path / name, capacity=120)
        published[name] = scoring.read_latest_call_list(lake)
        assert summary["rows"] == 120 and summary["latest_moved"]
    assert published["azure"] == published["local"]  # storage-agnostic: the same bytes

    lake = lakes["azure"]
    assert lake.describe().startswith(f"az://{azure_container}/lake")
    pointer = lake.read_json(catalog.call_list_latest_pointer())
    assert pointer["path"].startswith("az://") and pointer["rows"] == 120
    folder = catalog.call_list_latest_dir() + "/"
    keys = [k for k in lake.storage.list(folder) if k.startswith(folder)]
    assert sorted(keys) == sorted(f["key"] for f in pointer["files"].values())
    xlsx = scoring.read_latest_call_list(lake, rules.CALL_LIST_XLSX)
    assert xlsx[:2] == b"PK"  # a zip container: the workbook

    before = {k: lake.storage.get_bytes(k) for k in lake.storage.list(catalog.call_lists() + "/")}
    with pytest.raises(scoring.StaleInputError, match="export of 2010-12-01 is missing"):
        run(lake, tmp_path / "azure", requested=DAY + timedelta(days=1))
    with pytest.raises(rules.CallListRefused, match="outside the data"):
        run(lake, tmp_path / "azure", call_date=DAY.replace(year=1900))
    after = {k: lake.storage.get_bytes(k) for k in lake.storage.list(catalog.call_lists() + "/")}
    assert after == before
    assert not list(Path(tmp_path / "azure").glob(f"{scoring.WORKDIR_PREFIX}*"))
