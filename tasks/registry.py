"""Model registry in the lake, mirrored into MLflow.

Layout: ``registry/<model>/<version>/`` holds ``model.pkl``, plots, ``card.md`` and ``model.json`` (written
last: a version without it does not exist). ``model.json`` records the pickle's SHA-256, metrics, features,
data window, the input manifests' hashes (lineage) and the code version. ``registry/<model>/aliases.json``
maps ``champion``/``challenger`` to versions and is rewritten atomically. Versions are immutable.

The lake registry is what scoring loads (:func:`load_model` verifies the SHA-256 before unpickling). MLflow is
the tracking/UI side only: each version is mirrored as a run (params, metrics, plots, manifests, the pickle)
and a registered-model version whose aliases follow the lake's.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path
from typing import Any

from callcast.errors import CallcastError
from callcast.lake import Lake, utc_now_iso

ALIASES = ("champion", "challenger")
_VERSION_RE = re.compile(r"^v\d{4,}$")


class RegistryError(CallcastError):
    """The model registry cannot serve the request."""


class ModelNotFoundError(RegistryError):
    """No such model version (or no model at all)."""


class UnknownAliasError(RegistryError):
    """The alias is not set for this model."""


class ModelIntegrityError(RegistryError):
    """The stored pickle does not match the SHA-256 recorded at registration: refused, not unpickled."""


def _root(model: str) -> str:
    return f"registry/{model}"


def list_versions(lake: Lake, model: str) -> list[str]:
    """Registered (complete) versions, oldest first."""
    found = set()
    for key in lake.storage.list(_root(model) + "/"):
        parts = key.split("/")
        if len(parts) == 4 and parts[3] == "model.json" and _VERSION_RE.match(parts[2]):
            found.add(parts[2])
    return sorted(found, key=lambda v: int(v[1:]))


def next_version(lake: Lake, model: str) -> str:
    versions = list_versions(lake, model)
    return f"v{(int(versions[-1][1:]) + 1 if versions else 1):04d}"


def read_aliases(lake: Lake, model: str) -> dict[str, str]:
    key = f"{_root(model)}/aliases.json"
    return lake.read_json(key) if lake.storage.exists(key) else {}


def set_alias(lake: Lake, model: str, alias: str, version: str) -> dict[str, str]:
    """Point ``alias`` at ``version`` (one atomic write of aliases.json); returns the new mapping."""
    if version not in list_versions(lake, model):
        raise ModelNotFoundError(
            f"Cannot set {alias!r}: {model} {version} is not registered in {lake.describe()}."
        )
    aliases = read_aliases(lake, model)
    aliases[alias] = version
    if alias == "champion" and aliases.get("challenger") == version:
        aliases.pop("challenger")
    lake.write_json(f"{_root(model)}/aliases.json", aliases)
    return aliases


def resolve(lake: Lake, model: str, alias_or_version: str) -> str:
    """The version an alias points to (or the version itself, checked to exist)."""
    if _VERSION_RE.match(alias_or_version):
        if alias_or_version not in list_versions(lake, model):
            raise ModelNotFoundError(
                f"{model} {alias_or_version} is not registered in {lake.describe()}; "
                f"known versions: {', '.join(list_versions(lake, model)) or 'none'}."
            )
        return alias_or_version
    aliases = read_aliases(lake, model)
    if alias_or_version not in aliases:
        raise UnknownAliasError(
            f"{model} has no {alias_or_version!r} alias (set: {', '.join(sorted(aliases)) or 'none'}). "
            "Train and promote a model first: python -m flows.train_propensity"
        )
    return aliases[alias_or_version]


def read_model_info(lake: Lake, model: str, alias_or_version: str) -> dict[str, Any]:
    version = resolve(lake, model, alias_or_version)
    return lake.read_json(f"{_root(model)}/{version}/model.json")


def register_model(
    lake: Lake,
    model: str,
    estimator: Any,
    info: dict[str, Any],
    card: str | None = None,
    files: dict[str, Path] | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Store a new immutable version: pickle, extra files, card, then ``model.json`` last; returns model.json."""
    version = version or next_version(lake, model)
    prefix = f"{_root(model)}/{version}"
    if lake.storage.exists(f"{prefix}/model.json"):
        raise RegistryError(f"{model} {version} already exists; versions are immutable.")
    payload = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    lake.storage.put_bytes(f"{prefix}/model.pkl", payload)
    for name, path in (files or {}).items():
        lake.storage.put_file(Path(path), f"{prefix}/{name}")
    if card is not None:
        lake.storage.put_bytes(f"{prefix}/card.md", card.encode())
    document = {
        **info,
        "model": model,
        "version": version,
        "pickle_sha256": hashlib.sha256(payload).hexdigest(),
        "pickle_bytes": len(payload),
        "registered_at": utc_now_iso(),
        "files": sorted(["model.pkl", *(files or {}), *(["card.md"] if card is not None else [])]),
    }
    lake.write_json(f"{prefix}/model.json", document)
    return document


def write_card(lake: Lake, model: str, version: str, card: str) -> None:
    """(Re)write a version's card (documentation only; model.pkl and model.json stay immutable)."""
    lake.storage.put_bytes(f"{_root(model)}/{version}/card.md", card.encode())


def load_model(lake: Lake, model: str, alias_or_version: str = "champion") -> tuple[Any, dict[str, Any]]:
    """Unpickle a registered model after verifying its SHA-256; returns ``(estimator, model.json)``."""
    info = read_model_info(lake, model, alias_or_version)
    key = f"{_root(model)}/{info['version']}/model.pkl"
    if not lake.storage.exists(key):
        raise ModelNotFoundError(f"{lake.describe(key)} is missing; the registry entry is incomplete.")
    payload = lake.storage.get_bytes(key)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != info["pickle_sha256"]:
        raise ModelIntegrityError(
            f"Refusing to unpickle {lake.describe(key)}: SHA-256 {digest[:12]}… does not match the recorded "
            f"{info['pickle_sha256'][:12]}…. The file was altered; re-register the model or restore the file."
        )
    return pickle.loads(payload), info  # noqa: S301 - verified against the registry's own hash


# -- MLflow mirror -----------------------------------------------------------------------------------


def mlflow_mirror(
    tracking_uri: str,
    experiment: str,
    model: str,
    info: dict[str, Any],
    files: dict[str, Path],
    artifact_location: str | None = None,
) -> dict[str, str]:
    """Log one lake version as an MLflow run + registered-model version; returns run id and MLflow version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    exp_id = (
        found.experiment_id
        if found
        else client.create_experiment(experiment, artifact_location=artifact_location)
    )
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{model}-{info['version']}") as run:
        mlflow.log_params({k: str(v)[:250] for k, v in info.get("params", {}).items()})
        mlflow.log_params(
            {
                "candidate": info.get("candidate"),
                "lake_version": info["version"],
                "profile": info.get("profile"),
            }
        )
        mlflow.log_metrics({k: float(v) for k, v in info.get("metrics", {}).items() if v == v})
        mlflow.set_tags(
            {"pickle_sha256": info["pickle_sha256"], "code_version": info.get("code_version", "")}
        )
        mlflow.log_dict({"inputs": info.get("inputs", [])}, "lineage/manifests.json")
        for name, path in files.items():
            mlflow.log_artifact(str(path), artifact_path="model" if name.endswith(".pkl") else "report")
        source = f"{run.info.artifact_uri}/model"
    try:
        client.get_registered_model(model)
    except Exception:  # noqa: BLE001 - MLflow raises its own RestException when missing
        client.create_registered_model(model)
    mv = client.create_model_version(
        model, source=source, run_id=run.info.run_id, tags={"lake_version": info["version"]}
    )
    return {"run_id": run.info.run_id, "mlflow_version": str(mv.version)}


def mlflow_sync_aliases(tracking_uri: str, model: str, aliases: dict[str, str]) -> dict[str, str]:
    """Point MLflow's aliases at the MLflow versions mirroring the lake versions in ``aliases``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    by_lake = {
        mv.tags.get("lake_version"): mv.version for mv in client.search_model_versions(f"name='{model}'")
    }
    done = {}
    for alias, lake_version in aliases.items():
        if lake_version in by_lake:
            client.set_registered_model_alias(model, alias, by_lake[lake_version])
            done[alias] = str(by_lake[lake_version])
    for alias in ALIASES:
        if alias not in aliases:
            try:
                client.delete_registered_model_alias(model, alias)
            except Exception:  # noqa: BLE001 - absent alias
                pass
    return done
