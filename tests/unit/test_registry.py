"""Lake model registry: immutable versions, atomic aliases, HMAC-signed pickles verified before unpickling,
the MLflow sklearn flavour, and no new version on unchanged inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier

from callcast.lake import Lake
from callcast.storage import LocalStorage
from tasks import registry


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    monkeypatch.setenv("CALLCAST_HOME", str(tmp_path / "home"))  # the key file lives here, outside the lake
    monkeypatch.delenv("CALLCAST_MODEL_SIGNING_KEY", raising=False)
    monkeypatch.delenv("CALLCAST_LAKE_URL", raising=False)
    return Lake(LocalStorage(tmp_path / "lake"))


class _Payload:
    """What an attacker would pickle: unpickling it writes a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


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


def test_a_forged_pickle_with_a_forged_hash_in_the_lake_is_refused_and_never_runs(lake: Lake, tmp_path: Path):
    import hashlib
    import pickle

    registry.register_model(lake, "propensity", _model(0.3), {})
    registry.set_alias(lake, "propensity", "champion", "v0001")
    marker = tmp_path / "payload-ran"
    evil = pickle.dumps(_Payload(marker))
    # the attacker can write the lake: replace the pickle and every hash recorded beside it
    lake.storage.put_bytes("registry/propensity/v0001/model.pkl", evil)
    info = lake.read_json("registry/propensity/v0001/model.json")
    info["pickle_sha256"] = hashlib.sha256(evil).hexdigest()
    info["pickle_bytes"] = len(evil)
    info["pickle_hmac_sha256"] = registry.sign(
        b"attacker-guessed-key-0123456789", "propensity", "v0001", evil
    )
    lake.write_json("registry/propensity/v0001/model.json", info)
    with pytest.raises(registry.ModelIntegrityError, match="signature does not match"):
        registry.load_model(lake, "propensity", "champion")
    info.pop("pickle_hmac_sha256")  # or strip the signature altogether
    lake.write_json("registry/propensity/v0001/model.json", info)
    with pytest.raises(registry.ModelIntegrityError, match="no signature"):
        registry.load_model(lake, "propensity", "champion")
    assert not marker.exists()


def test_the_signing_key_lives_outside_the_lake_and_its_setting_is_honoured(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import stat

    from callcast.errors import ConfigurationError
    from callcast.settings import get_settings

    registry.register_model(lake, "propensity", _model(0.3), {})
    key_file = get_settings().signing_key_file()
    assert key_file.is_relative_to(tmp_path / "home" / "keys")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert registry.load_model(lake, "propensity", "v0001")[1]["version"] == "v0001"
    # CALLCAST_MODEL_SIGNING_KEY replaces the key file: a model signed with the other key is refused
    monkeypatch.setenv("CALLCAST_MODEL_SIGNING_KEY", "another-secret-key-0123456789abcdef")
    with pytest.raises(registry.ModelIntegrityError):
        registry.load_model(lake, "propensity", "v0001")
    registry.register_model(lake, "propensity", _model(0.6), {})
    assert registry.load_model(lake, "propensity", "v0002")[1]["version"] == "v0002"
    monkeypatch.setenv("CALLCAST_MODEL_SIGNING_KEY", "short")
    with pytest.raises(ConfigurationError, match="at least"):
        registry.signing_key()
    monkeypatch.delenv("CALLCAST_MODEL_SIGNING_KEY")
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        registry.signing_key()
    key_file.chmod(0o600)
    monkeypatch.setenv("CALLCAST_LAKE_URL", str(tmp_path / "home"))  # a lake that would contain the key
    with pytest.raises(ConfigurationError, match="inside the lake"):
        registry.signing_key()


def test_unchanged_inputs_have_the_same_fingerprint_and_find_their_version(lake: Lake):
    inputs = [
        {"table": "customers", "partition_date": "2010-11-30", "rows": 10, "sha256": ["a" * 64]},
        {"table": "campaign_contacts", "partition_date": "2010-11-30", "rows": 12, "sha256": ["b" * 64]},
    ]
    same = registry.fingerprint(list(reversed(inputs)), profile="quick")
    assert registry.fingerprint(inputs, profile="quick") == same
    changed = [inputs[0], {**inputs[1], "sha256": ["c" * 64]}]
    assert registry.fingerprint(changed, profile="quick") != same
    assert registry.fingerprint(inputs, profile="full") != same
    assert registry.find_by_fingerprint(lake, "propensity", same) is None
    registry.register_model(lake, "propensity", _model(0.3), {"fingerprint": same})
    assert registry.find_by_fingerprint(lake, "propensity", same)["version"] == "v0001"


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
def test_mlflow_loads_the_champion_through_its_model_uri(lake: Lake, tmp_path: Path):
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": np.linspace(-2, 2, 50), "z": np.tile([0.0, 1.0], 25)})
    y = (frame["x"] > 0).astype(int)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for c in (0.1, 10.0):
        model = LogisticRegression(C=c).fit(frame, y)
        info = registry.register_model(lake, "propensity", model, {"params": {"C": c}})
        registry.mlflow_mirror(
            uri,
            "exp",
            "propensity",
            info,
            {},
            (tmp_path / "art").as_uri(),
            estimator=model,
            input_example=frame,
        )
    aliases = registry.set_alias(lake, "propensity", "champion", "v0002")
    registry.mlflow_sync_aliases(uri, "propensity", aliases)
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.sklearn.load_model("models:/propensity@champion")
    lake_model, _ = registry.load_model(lake, "propensity", "champion")
    np.testing.assert_allclose(loaded.predict_proba(frame), lake_model.predict_proba(frame))
    pyfunc = mlflow.pyfunc.load_model("models:/propensity@champion")  # what `mlflow models serve` runs
    assert pyfunc.metadata.signature is not None
    np.testing.assert_allclose(np.asarray(pyfunc.predict(frame))[:, 1], lake_model.predict_proba(frame)[:, 1])
    verified = registry.load_mlflow_model(uri, "propensity", "champion")
    np.testing.assert_allclose(verified.predict_proba(frame), lake_model.predict_proba(frame))


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


def test_the_signing_key_can_come_from_a_prefect_secret_block(lake: Lake, monkeypatch: pytest.MonkeyPatch):
    from prefect.blocks import system

    class _Secret:
        def __init__(self, value: str) -> None:
            self.value = value

        def get(self) -> str:
            return self.value

    loaded = []
    monkeypatch.setattr(
        system.Secret,
        "load",
        classmethod(lambda cls, name: loaded.append(name) or _Secret("block-key-0123456789abcdef")),
    )
    monkeypatch.setenv("CALLCAST_MODEL_SIGNING_KEY_BLOCK", "callcast-model-key")
    assert registry.signing_key() == b"block-key-0123456789abcdef" and loaded == ["callcast-model-key"]
    info = registry.register_model(lake, "propensity", _model(0.3), {})
    assert info["pickle_hmac_sha256"] == registry.sign(
        b"block-key-0123456789abcdef",
        "propensity",
        "v0001",
        lake.storage.get_bytes("registry/propensity/v0001/model.pkl"),
    )
