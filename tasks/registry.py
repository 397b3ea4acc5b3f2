"""Model registry in the lake (signed pickles), with an MLflow sklearn flavour of every version.

Layout (keys from :mod:`callcast.catalog`): ``registry/<model>/<version>/`` holds ``model.pkl``, plots,
``card.md`` and ``model.json`` (written last: a version without it does not exist). ``model.json`` records the
pickle's SHA-256 and its **HMAC-SHA-256 signature**, metrics, features, data windows, the input manifests'
hashes (lineage), the run's fingerprint and the code version. ``registry/<model>/aliases.json`` maps
``champion``/``challenger`` to versions and is rewritten atomically. Versions are immutable.

Integrity: the signature is keyed by a secret held *outside the lake* (:func:`signing_key`:
``CALLCAST_MODEL_SIGNING_KEY``, a Prefect Secret block, or the embedded key file ``<home>/keys/`` created with
0600 permissions). Someone who can write the lake can replace ``model.pkl`` and its recorded SHA-256, but not
sign it: :func:`load_model` checks the signature before unpickling and refuses unsigned or wrongly signed files.

MLflow: each version is also logged as an MLflow **sklearn model** (pickle serialization, signature, input
example, ``predict_proba`` for pyfunc) and registered; MLflow's aliases follow the lake's, so
``mlflow.sklearn.load_model("models:/propensity@champion")`` and ``mlflow models serve`` work. The lake
registry stays what scoring loads; :func:`load_mlflow_model` verifies MLflow's copy against the lake's
signature record before loading it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import re
import secrets
import stat
from pathlib import Path
from typing import Any

from callcast import catalog
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
    """The stored pickle is unsigned, wrongly signed or altered: refused, never unpickled."""


def _root(model: str) -> str:
    return catalog.registry(model)


# -- the signing key (outside the lake) ---------------------------------------------------------------

_MIN_KEY_BYTES = 16


def signing_key(settings: Any = None) -> bytes:
    """The HMAC key of model pickles: env/``.env`` secret, else a Prefect Secret block, else the key file.

    The key file (``<home>/keys/model-signing.key``) is created on first use with 0600 permissions; a key
    file readable by others, or placed inside a local lake, is refused.
    """
    from callcast.errors import ConfigurationError
    from callcast.settings import get_settings

    settings = settings or get_settings()
    if settings.model_signing_key is not None:
        key = settings.model_signing_key.get_secret_value().encode()
    elif settings.model_signing_key_block:
        from prefect.blocks.system import Secret

        key = str(Secret.load(settings.model_signing_key_block).get()).encode()
    else:
        path = settings.signing_key_file()
        lake_url = settings.resolved_lake_url()
        if "://" not in lake_url:
            lake_dir = Path(lake_url).expanduser().resolve()
            if path.resolve().is_relative_to(lake_dir):
                raise ConfigurationError(
                    f"The model signing key file {path} lies inside the lake {lake_dir}: anyone who can write "
                    "the lake could sign a model. Move CALLCAST_HOME/keys or the lake, or set CALLCAST_MODEL_SIGNING_KEY."
                )
        key = _key_file(path)
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigurationError(
            f"The model signing key is {len(key)} bytes; use at least {_MIN_KEY_BYTES} random bytes "
            "(e.g. python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    return key


def _key_file(path: Path) -> bytes:
    from callcast.errors import ConfigurationError

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"The model signing key file {path} is readable by others (mode {mode:o}); run chmod 600 {path}."
        )
    return path.read_text().strip().encode()


def sign(key: bytes, model: str, version: str, payload: bytes) -> str:
    """HMAC-SHA-256 of the pickle bound to its model name and version (a signed file cannot change place)."""
    return hmac.new(key, f"{model}/{version}\n".encode() + payload, hashlib.sha256).hexdigest()


def verify(key: bytes, model: str, version: str, payload: bytes, signature: str | None, where: str) -> None:
    """Raise :class:`ModelIntegrityError` unless ``signature`` is the valid one for ``payload``."""
    if not signature:
        raise ModelIntegrityError(
            f"Refusing to unpickle {where}: it carries no signature (registered before signing, or forged). "
            "Retrain and register the model: callcast train"
        )
    if not hmac.compare_digest(sign(key, model, version, payload), str(signature)):
        raise ModelIntegrityError(
            f"Refusing to unpickle {where}: its HMAC-SHA-256 signature does not match (the file was replaced or "
            "signed with another key). Restore the file, or retrain with the current key."
        )


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
    key = catalog.registry_aliases(model)
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
    lake.write_json(catalog.registry_aliases(model), aliases)
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
            "Train and promote a model first: callcast train"
        )
    return aliases[alias_or_version]


def read_model_info(lake: Lake, model: str, alias_or_version: str) -> dict[str, Any]:
    version = resolve(lake, model, alias_or_version)
    return lake.read_json(f"{catalog.registry_version(model, version)}/model.json")


def find_by_fingerprint(lake: Lake, model: str, fingerprint: str) -> dict[str, Any] | None:
    """The newest version trained from exactly these inputs and settings (``model.json`` ``fingerprint``)."""
    for version in reversed(list_versions(lake, model)):
        info = lake.read_json(f"{catalog.registry_version(model, version)}/model.json")
        if info.get("fingerprint") == fingerprint:
            return info
    return None


def fingerprint(inputs: list[dict[str, Any]], **settings: Any) -> str:
    """SHA-256 of the input manifests' hashes and the run's settings: equal inputs, equal fingerprint."""
    lineage = sorted(
        json.dumps(
            {k: i.get(k) for k in ("table", "partition_date", "sha256", "rows")}, sort_keys=True, default=str
        )
        for i in inputs
    )
    document = json.dumps({"inputs": lineage, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(document.encode()).hexdigest()


def register_model(
    lake: Lake,
    model: str,
    estimator: Any,
    info: dict[str, Any],
    card: str | None = None,
    files: dict[str, Path] | None = None,
    version: str | None = None,
    key: bytes | None = None,
) -> dict[str, Any]:
    """Store a new immutable version: signed pickle, extra files, card, then ``model.json`` last.

    ``key`` defaults to :func:`signing_key`. Returns the ``model.json`` document.
    """
    key = key or signing_key()
    version = version or next_version(lake, model)
    prefix = catalog.registry_version(model, version)
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
        "pickle_hmac_sha256": sign(key, model, version, payload),
        "pickle_bytes": len(payload),
        "registered_at": utc_now_iso(),
        "files": sorted(["model.pkl", *(files or {}), *(["card.md"] if card is not None else [])]),
    }
    lake.write_json(f"{prefix}/model.json", document)
    return document


def write_card(lake: Lake, model: str, version: str, card: str) -> None:
    """(Re)write a version's card (documentation only; model.pkl and model.json stay immutable)."""
    lake.storage.put_bytes(f"{catalog.registry_version(model, version)}/card.md", card.encode())


def load_model(
    lake: Lake, model: str, alias_or_version: str = "champion", key: bytes | None = None
) -> tuple[Any, dict[str, Any]]:
    """Unpickle a registered model after verifying its HMAC-SHA-256 signature; ``(estimator, model.json)``.

    Unsigned, wrongly signed or altered pickles raise :class:`ModelIntegrityError` before any unpickling.
    """
    info = read_model_info(lake, model, alias_or_version)
    obj_key = f"{catalog.registry_version(model, info['version'])}/model.pkl"
    if not lake.storage.exists(obj_key):
        raise ModelNotFoundError(f"{lake.describe(obj_key)} is missing; the registry entry is incomplete.")
    payload = lake.storage.get_bytes(obj_key)
    verify(
        key or signing_key(),
        model,
        info["version"],
        payload,
        info.get("pickle_hmac_sha256"),
        lake.describe(obj_key),
    )
    return pickle.loads(payload), info  # noqa: S301 - signature verified with a key held outside the lake


# -- MLflow flavour --------------------------------------------------------------------------------


def mlflow_mirror(
    tracking_uri: str,
    experiment: str,
    model: str,
    info: dict[str, Any],
    files: dict[str, Path],
    artifact_location: str | None = None,
    estimator: Any = None,
    input_example: Any = None,
    key: bytes | None = None,
) -> dict[str, str]:
    """Log one lake version as an MLflow run with an sklearn model, and register it; returns ids.

    With ``estimator`` the run holds an MLflow sklearn model (pickle serialization, signature inferred from
    ``input_example`` and its probabilities, pyfunc predicting probabilities); the registered version points
    at it and carries the lake version and the HMAC of MLflow's own pickle (see :func:`load_mlflow_model`).
    """
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
    tags = {"lake_version": info["version"]}
    model_id = None
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{model}-{info['version']}") as run:
        mlflow.log_params({k: str(v)[:250] for k, v in info.get("params", {}).items()})
        mlflow.log_params(
            {
                "candidate": info.get("candidate"),
                "lake_version": info["version"],
                "profile": info.get("profile"),
            }
        )
        mlflow.log_metrics(
            {k: float(v) for k, v in info.get("metrics", {}).items() if isinstance(v, int | float) and v == v}
        )
        mlflow.set_tags(
            {"pickle_sha256": info["pickle_sha256"], "code_version": info.get("code_version", "")}
        )
        mlflow.log_dict({"inputs": info.get("inputs", [])}, "lineage/manifests.json")
        for name, path in files.items():
            if not name.endswith(".pkl"):
                mlflow.log_artifact(str(path), artifact_path="report")
        source = f"{run.info.artifact_uri}/model"
        if estimator is not None:
            import warnings

            from mlflow.models import infer_signature

            example = input_example.head(5) if hasattr(input_example, "head") else input_example
            signature = infer_signature(example, estimator.predict_proba(example)[:, 1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLflow warns on pickle: required, and signed below
                logged = mlflow.sklearn.log_model(
                    estimator,
                    name="model",
                    serialization_format="pickle",
                    signature=signature,
                    input_example=example,
                    pyfunc_predict_fn="predict_proba",
                    # explicit requirements: MLflow's inference imports the model in a subprocess (~60 s)
                    pip_requirements=_requirements(),
                )
            source, model_id = logged.model_uri, logged.model_id
            location = mlflow.get_logged_model(model_id).artifact_location
            payload = Path(mlflow.artifacts.download_artifacts(f"{location}/model.pkl")).read_bytes()
            tags["mlflow_pickle_hmac_sha256"] = sign(key or signing_key(), model, info["version"], payload)
        else:
            for name, path in files.items():
                if name.endswith(".pkl"):
                    mlflow.log_artifact(str(path), artifact_path="model")
    try:
        client.get_registered_model(model)
    except Exception:  # noqa: BLE001 - MLflow raises its own RestException when missing
        client.create_registered_model(model)
    mv = client.create_model_version(
        model, source=source, run_id=run.info.run_id, tags=tags, model_id=model_id
    )
    return {"run_id": run.info.run_id, "mlflow_version": str(mv.version), "model_uri": source}


def _requirements() -> list[str]:
    """Pinned runtime requirements of the pickled pipeline (the project itself must be installed too)."""
    from importlib import metadata

    out = []
    for dist in ("scikit-learn", "pandas", "numpy", "scipy", "callcast"):
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def load_mlflow_model(
    tracking_uri: str, model: str, alias: str = "champion", key: bytes | None = None
) -> Any:
    """``mlflow.sklearn.load_model("models:/<model>@<alias>")`` after checking MLflow's pickle signature."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mv = MlflowClient(tracking_uri).get_model_version_by_alias(model, alias)
    uri = f"models:/{model}@{alias}"
    location = MlflowClient(tracking_uri).get_model_version_download_uri(model, mv.version)
    payload = Path(mlflow.artifacts.download_artifacts(f"{location}/model.pkl")).read_bytes()
    verify(
        key or signing_key(),
        model,
        mv.tags.get("lake_version", ""),
        payload,
        mv.tags.get("mlflow_pickle_hmac_sha256"),
        f"MLflow {uri} (version {mv.version})",
    )
    return mlflow.sklearn.load_model(uri)


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
