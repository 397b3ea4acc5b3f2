"""Lake model registry: immutable versions, atomic aliases, SHA-256 verified before unpickling."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier

from callcast.lake import Lake
from callcast.storage import LocalStorage
from tasks import registry


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(LocalStorage(tmp_path / "lake"))


def _model(constant: float) -> DummyClassifier:
    return DummyClassifier(strategy="prior").fit(
        [[0]] * 10, [1] * int(constant * 10) + [0] * (10 - int(constant * 10))
    )


def test_register_load_and_aliases(lake: Lake):
    first = registry.register_model(
        lake, "propensity", _model(0.3), {"metrics": {"roc_auc": 0.7}}, card="# card\n"
    )
    second = registry.register_model(lake, "propensity", _model(0.6), {"metrics": {"roc_auc": 0.8}})
    assert (first["version"], second["version"]) == ("v0001", "v0002")
    assert registry.list_versions(lake, "propensity") == ["v0001", "v0002"]
    registry.set_alias(lake, "propensity", "champion", "v0001")
    registry.set_alias(lake, "propensity", "challenger", "v0002")
    model, info = registry.load_model(lake, "propensity", "champion")
    assert info["version"] == "v0001" and model.predict_proba([[0]])[0, 1] == pytest.approx(0.3)
    registry.set_alias(lake, "propensity", "champion", "v0002")
    assert registry.read_aliases(lake, "propensity") == {"champion": "v0002"}  # promoted challenger
    assert registry.load_model(lake, "propensity", "v0001")[1]["version"] == "v0001"
    assert lake.storage.get_bytes("registry/propensity/v0001/card.md") == b"# card\n"


def test_versions_are_immutable(lake: Lake):
    registry.register_model(lake, "propensity", _model(0.3), {}, version="v0001")
    with pytest.raises(registry.RegistryError, match="immutable"):
        registry.register_model(lake, "propensity", _model(0.5), {}, version="v0001")


def test_tampered_pickle_is_refused_before_unpickling(lake: Lake, monkeypatch):
    registry.register_model(lake, "propensity", _model(0.3), {})
    registry.set_alias(lake, "propensity", "champion", "v0001")
    key = "registry/propensity/v0001/model.pkl"
    payload = bytearray(lake.storage.get_bytes(key))
    payload[-2] ^= 0xFF
    lake.storage.put_bytes(key, bytes(payload))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("pickle.loads must not run on a tampered file")

    monkeypatch.setattr(registry.pickle, "loads", no_unpickling)
    with pytest.raises(registry.ModelIntegrityError, match="does not match"):
        registry.load_model(lake, "propensity", "champion")


def test_unknown_alias_and_missing_version_say_what_to_do(lake: Lake):
    with pytest.raises(registry.UnknownAliasError, match="Train and promote"):
        registry.load_model(lake, "propensity", "champion")
    registry.register_model(lake, "propensity", _model(0.3), {})
    with pytest.raises(registry.ModelNotFoundError, match="v0009"):
        registry.load_model(lake, "propensity", "v0009")
    with pytest.raises(registry.ModelNotFoundError):
        registry.set_alias(lake, "propensity", "champion", "v0002")
    # a version folder without model.json (crashed registration) does not exist for readers
    lake.storage.put_bytes("registry/propensity/v0002/model.pkl", b"partial")
    assert registry.list_versions(lake, "propensity") == ["v0001"]
    assert registry.next_version(lake, "propensity") == "v0002"


@pytest.mark.slow  # MLflow on a local SQLite file: no service
def test_mlflow_mirror_sets_aliases_to_match_the_lake(lake: Lake, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    versions = {}
    for i, p in enumerate((0.3, 0.6), 1):
        info = registry.register_model(
            lake, "propensity", _model(p), {"metrics": {"roc_auc": 0.7 + i / 100}, "params": {"C": i}}
        )
        pkl = tmp_path / f"model{i}.pkl"
        pkl.write_bytes(lake.storage.get_bytes(f"registry/propensity/{info['version']}/model.pkl"))
        versions[info["version"]] = registry.mlflow_mirror(
            uri, "test-exp", "propensity", info, {"model.pkl": pkl}, (tmp_path / "artifacts").as_uri()
        )
    registry.set_alias(lake, "propensity", "champion", "v0002")
    aliases = registry.set_alias(lake, "propensity", "challenger", "v0001")
    registry.mlflow_sync_aliases(uri, "propensity", aliases)
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("propensity", "champion")
    assert champion.tags["lake_version"] == "v0002"
    assert client.get_model_version_by_alias("propensity", "challenger").tags["lake_version"] == "v0001"
    run = client.get_run(versions["v0002"]["run_id"])
    assert run.data.metrics["roc_auc"] == pytest.approx(0.72)
    assert (
        run.data.tags["pickle_sha256"]
        == registry.read_model_info(lake, "propensity", "v0002")["pickle_sha256"]
    )
