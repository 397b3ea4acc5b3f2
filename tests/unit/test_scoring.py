"""Scoring I/O on a real local lake (no service): chunked = one chunk end to end, what gets published and
delivered, refusals that publish nothing, the freshness guard, a ``latest`` that only moves forward and stays
consistent under SIGKILL, scratch files removed on every exit path, champion integrity."""

from __future__ import annotations

import csv
import io
import os
import pickle
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from callcast import catalog
from callcast.lake import Lake
from callcast.storage import LocalStorage
from models import call_list as rules
from models.propensity.config import PropensityConfig
from tasks import scoring

DAY = date(2010, 11, 30)


@pytest.fixture(scope="module")
def bank_tables_small():
    from demo_company.bank import bank_tables, load_bank_full

    return bank_tables(seed=3, bank=load_bank_full().iloc[::20].reset_index(drop=True))


@pytest.fixture(scope="module")
def model(bank_tables_small):
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table

    customers, contacts = bank_tables_small
    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == "logreg/base")
    table = build_training_table(customers, contacts)
    return build_pipeline(candidate, config).fit(table, table["y"].to_numpy())


@pytest.fixture
def lake(tmp_path, bank_tables_small, model, commit_validated_partition) -> Lake:
    from tasks import registry

    customers, contacts = bank_tables_small
    lake = Lake(LocalStorage(tmp_path / "lake"))
    commit_validated_partition(lake, "customers", customers, DAY)
    commit_validated_partition(lake, "campaign_contacts", contacts, DAY)
    registry.register_model(lake, "propensity", model, {"candidate": "logreg/base"})
    registry.set_alias(lake, "propensity", "champion", "v0001")
    scoring._MODEL_CACHE.clear()
    return lake


def run(lake: Lake, tmp_path: Path, requested: date = DAY, capacity: int | None = 100, **options) -> dict:
    """The flow's steps as plain calls: prepare -> score chunks -> build, publish, deliver."""
    with scoring.scoring_workdir(tmp_path) as workdir:
        prepared = scoring.prepare_chunks(
            lake, Path(workdir), requested, options.pop("call_date", None), options.pop("cooloff_days", 30),
            options.pop("chunk_rows", 1_000), options.pop("allow_stale", False),
            options.pop("config", PropensityConfig()),
        )  # fmt: skip
        model, _ = scoring.load_champion(lake, "v0001")
        scored = [scoring.score_chunk_file(model, c, capacity) for c in prepared["chunks"]]
        return scoring.build_call_list(
            lake, Path(workdir), scored, prepared, "v0001", capacity, 30, **options
        )


def snapshot(lake: Lake) -> dict[str, bytes]:
    """Every published byte of the call lists (partitions, latest copies, pointer, serving contexts)."""
    root = lake.storage.local_path(catalog.call_lists())
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_several_chunks_give_the_same_call_list_as_one_chunk(lake, tmp_path):
    small = run(lake, tmp_path, chunk_rows=150)
    small_bytes = Path(small["path"]).read_bytes()
    one = run(lake, tmp_path, chunk_rows=1_000_000)
    assert Path(one["path"]).read_bytes() == small_bytes
    assert (small["eligible"], small["expected_sales"]) == (one["eligible"], one["expected_sales"])
    assert small["rows"] == 100


def test_published_list_workbook_pointer_serving_context_and_delivery(lake, tmp_path):
    from openpyxl import load_workbook

    delivery = tmp_path / "shared drive" / "calls"
    summary = run(lake, tmp_path, capacity=700, delivery_dir=delivery)
    data = Path(summary["path"]).read_bytes()
    assert data.startswith(b"rank,customer_id,name,phone,probability,decile,reasons,model_version\n")
    listed = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    assert len(listed) == summary["rows"] == 700 < summary["eligible"]
    assert listed["decile"].nunique() >= 3  # 700 of ~1,900 eligible: the list spans several deciles
    assert listed["reasons"].nunique() > 20 and not listed["reasons"].str.contains("cellular").any()
    phrases = [set(r.split("; ")) for r in listed["reasons"] if r]
    assert not set.intersection(*phrases)

    # the workbook: in the partition and delivered, same rows as the CSV, names byte-identical
    delivered = Path(summary["delivered_to"])
    assert delivered == delivery / f"call_list_{summary['call_date']}.xlsx"
    assert delivered.read_bytes() == Path(summary["workbook"]).read_bytes()
    assert not [p for p in delivery.iterdir() if p.name.startswith(".")]  # no partial file left
    book = load_workbook(delivered)
    cells = list(book["calls"].iter_rows(values_only=True))
    text = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert len(cells) == len(text) and list(cells[0][:8]) == text[0]
    for row, line in zip(cells[1:], text[1:], strict=True):
        assert (row[0], row[1], row[5]) == (int(line[0]), int(line[1]), int(line[5]))
        assert row[2].encode("utf-8") == line[2].encode("utf-8") and row[3] == line[3]
        assert f"{row[4]:.6f}" == line[4] and (row[6] or "") == line[6]
    assert cells[1][8] == "top 1%" and cells[-1][8] != "top 1%"
    facts = {r[0]: r[1] for r in book["summary"].iter_rows(values_only=True)}
    assert facts["Expected buyers from this list"] == round(summary["expected_sales"], 1)
    assert facts["Model version"] == "v0001" and facts["Calls on this list"] == 700
    assert summary["headline"].startswith(f"700 calls for {summary['call_date']}: expect ")

    # latest.json names immutable copies that match byte for byte
    pointer = lake.read_json(catalog.call_list_latest_pointer())
    assert pointer["partition_date"] == DAY.isoformat() and pointer["rows"] == 700
    assert scoring.read_latest_call_list(lake) == data
    assert scoring.read_latest_call_list(lake, rules.CALL_LIST_XLSX) == delivered.read_bytes()
    serving = lake.read_json(catalog.serving_context("propensity", "v0001"))
    assert len(serving["decile_cuts"]) == 9 and serving["call_date"] == summary["call_date"]
    manifest = lake.read_manifest(catalog.call_lists(), DAY)
    assert (
        manifest["rows"] == 700
        and manifest["stale_days"] == 0
        and manifest["call_date"] == summary["call_date"]
    )
    assert {i["table"] for i in manifest["inputs"]} == {"customers", "campaign_contacts"}


def test_refusals_publish_nothing_and_leave_latest_and_serving_untouched(
    lake, tmp_path, bank_tables_small, commit_validated_partition
):
    run(lake, tmp_path)
    before = snapshot(lake)
    with pytest.raises(rules.CallListRefused, match=r"Call date 1900-01-01 is outside the data"):
        run(lake, tmp_path, call_date=date(1900, 1, 1))
    with pytest.raises(rules.CallListRefused, match=r"Call date 2099-01-01 is outside the data"):
        run(lake, tmp_path, call_date=date(2099, 1, 1))
    with pytest.raises(scoring.StaleInputError, match=r"export of 2010-12-01 is missing.*--allow-stale"):
        run(lake, tmp_path, requested=DAY + timedelta(days=1))
    customers, contacts = bank_tables_small
    later = DAY + timedelta(days=2)
    commit_validated_partition(lake, "customers", customers.assign(opted_out=True), later)
    commit_validated_partition(lake, "campaign_contacts", contacts.iloc[:0], later)
    with pytest.raises(rules.CallListRefused, match=r"Nobody to call on .*: 0 eligible of"):
        run(lake, tmp_path, requested=later)
    assert snapshot(lake) == before
    assert not list(tmp_path.glob(f"{scoring.WORKDIR_PREFIX}*"))  # scratch (names, phones) removed each time


def test_freshness_guard_refuses_unvalidated_or_failed_exports_unless_stale_is_allowed(
    lake, tmp_path, bank_tables_small, commit_validated_partition
):
    customers, contacts = bank_tables_small
    today = DAY + timedelta(days=1)
    commit_validated_partition(lake, "customers", customers, today, status="failed")
    commit_validated_partition(lake, "campaign_contacts", contacts.iloc[:0], today)
    with pytest.raises(scoring.StaleInputError) as caught:
        run(lake, tmp_path, requested=today)
    message = str(caught.value)
    assert "customers export of 2010-12-01 failed its checks" in message and "from 2010-11-30" in message
    assert "\n" not in message and not lake.partitions(catalog.call_lists())
    stale = run(lake, tmp_path, requested=today, allow_stale=True)
    assert stale["stale_days"] == 1 and stale["partition_date"] == DAY.isoformat()
    assert lake.read_manifest(catalog.call_lists(), DAY)["requested_partition"] == today.isoformat()


def _csv(tmp_path: Path, name: str, rows: int) -> Path:
    header = ",".join(rules.CALL_LIST_HEADER) + "\n"
    path = tmp_path / name
    path.write_text(header + "".join(f"{i},{i},N{i},+1,0.5,1,,v1\n" for i in range(1, rows + 1)))
    return path


def _publish(lake: Lake, tmp_path: Path, day: date, rows: int, force: bool = False):
    path = _csv(tmp_path, f"{day}-{rows}.csv", rows)
    return scoring.publish_call_list(lake, day, {rules.CALL_LIST_CSV: path}, {"rows": rows}, force=force)


def test_latest_only_moves_forward_unless_forced(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    _publish(lake, tmp_path, date(2024, 6, 2), 3)
    _, pointer = _publish(lake, tmp_path, date(2024, 6, 1), 5)  # a rerun of an earlier day
    assert pointer is None and lake.partitions(catalog.call_lists()) == [date(2024, 6, 1), date(2024, 6, 2)]
    latest = lake.read_json(catalog.call_list_latest_pointer())
    assert latest["partition_date"] == "2024-06-02" and scoring.read_latest_call_list(lake).count(b"\n") == 4
    _, pointer = _publish(lake, tmp_path, date(2024, 6, 1), 5, force=True)
    assert pointer["partition_date"] == "2024-06-01" and scoring.read_latest_call_list(lake).count(b"\n") == 6
    _publish(lake, tmp_path, date(2024, 6, 1), 7)  # same day again: moves (a rebuild)
    assert scoring.read_latest_call_list(lake).count(b"\n") == 8
    copies = [k for k in lake.storage.list(catalog.call_list_latest_dir() + "/")]
    assert copies == [lake.read_json(catalog.call_list_latest_pointer())["files"][rules.CALL_LIST_CSV]["key"]]


def test_an_older_rerun_keeps_the_serving_context_of_the_latest_list(lake, tmp_path, commit_validated_partition,
                                                                     bank_tables_small):  # fmt: skip
    customers, contacts = bank_tables_small
    newer = DAY + timedelta(days=3)
    commit_validated_partition(lake, "customers", customers, newer)
    commit_validated_partition(lake, "campaign_contacts", contacts.iloc[:0], newer)
    first = run(lake, tmp_path, requested=newer, call_date=DAY - timedelta(days=40))
    serving = lake.storage.get_bytes(catalog.serving_context("propensity", "v0001"))
    again = run(lake, tmp_path, requested=DAY)
    assert first["latest_moved"] and not again["latest_moved"]
    assert lake.storage.get_bytes(catalog.serving_context("propensity", "v0001")) == serving
    assert lake.read_json(catalog.call_list_latest_pointer())["partition_date"] == newer.isoformat()


def test_a_failed_pointer_write_keeps_the_previous_latest(tmp_path, monkeypatch):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    _publish(lake, tmp_path, date(2024, 6, 1), 2)
    before = scoring.read_latest_call_list(lake)
    real = lake.write_json

    def crash(key, document):
        if key == catalog.call_list_latest_pointer():
            raise OSError("disk gone")
        real(key, document)

    monkeypatch.setattr(lake, "write_json", crash)
    with pytest.raises(OSError):
        _publish(lake, tmp_path, date(2024, 6, 2), 9)
    assert scoring.read_latest_call_list(lake) == before  # pointer and the file it names still agree
    monkeypatch.setattr(lake, "write_json", real)
    _publish(lake, tmp_path, date(2024, 6, 2), 9)  # a rerun repairs
    assert scoring.read_latest_call_list(lake).count(b"\n") == 10


def _publish_forever(lake_dir: str, work: str, ready) -> None:
    """Child process: publish list after list (different sizes, one day later each time) until killed."""
    lake, work_dir = Lake(LocalStorage(lake_dir)), Path(work)
    header = ",".join(rules.CALL_LIST_HEADER) + "\n"
    ready.set()
    for i in range(100_000):
        path = work_dir / f"{i % 2}.csv"
        path.write_text(header + "".join(f"{j},{j},N{i},+1,0.5,1,,v{i}\n" for j in range(1, 2 + i % 50)))
        scoring.publish_call_list(
            lake, date(2024, 1, 1) + timedelta(days=i), {"call_list.csv": path}, {"rows": i}
        )


def test_sigkill_during_publishing_never_leaves_latest_describing_another_file(tmp_path):
    """A real process publishing list after list is killed (SIGKILL) at random instants: the pointer always
    names a present file with the recorded SHA-256, and its partition is committed."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # the child starts with the modules already imported
    lake_dir, work = tmp_path / "lake", tmp_path / "work"
    work.mkdir()
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(8):
        ready = context.Event()
        child = context.Process(target=_publish_forever, args=(str(lake_dir), str(work), ready))
        child.start()
        assert ready.wait(30)
        time.sleep(float(rng.uniform(0.02, 0.4)))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
        lake = Lake(LocalStorage(lake_dir))
        if lake.storage.exists(catalog.call_list_latest_pointer()):
            data = scoring.read_latest_call_list(lake)  # raises on a mismatch or a missing file
            pointer = lake.read_json(catalog.call_list_latest_pointer())
            assert data.count(b"\n") - 1 == pd.read_csv(io.BytesIO(data)).shape[0]
            assert lake.read_manifest(catalog.call_lists(), date.fromisoformat(pointer["partition_date"]))
            checked += 1
    assert checked >= 6


def test_scratch_folders_are_private_removed_on_failure_and_orphans_of_killed_runs_cleared(tmp_path):
    with pytest.raises(RuntimeError):
        with scoring.scoring_workdir(tmp_path) as workdir:
            assert oct(os.stat(workdir).st_mode & 0o777) == "0o700"
            Path(workdir, "chunk-00000.parquet").write_bytes(b"names and phones")
            raise RuntimeError("boom")
    assert not Path(workdir).exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f"{scoring.WORKDIR_PREFIX}{dead.pid}-abc"
    orphan.mkdir()
    (orphan / "chunk-00000.parquet").write_bytes(b"names and phones")
    alive = tmp_path / f"{scoring.WORKDIR_PREFIX}{os.getpid()}-xyz"
    alive.mkdir()
    assert scoring.remove_orphaned_workdirs(tmp_path) == 1
    assert not orphan.exists() and alive.exists()


def test_champion_loading_refuses_missing_and_tampered_models(tmp_path):
    from tasks import registry

    lake = Lake(LocalStorage(tmp_path / "lake"))
    with pytest.raises(registry.UnknownAliasError, match="Train and promote"):
        scoring.load_champion(lake)
    registry.register_model(lake, "propensity", {"weights": [1, 2, 3]}, {"candidate": "test"})
    registry.set_alias(lake, "propensity", "champion", "v0001")
    lake.storage.put_bytes("registry/propensity/v0001/model.pkl", pickle.dumps({"weights": [6, 6, 6]}))
    scoring._MODEL_CACHE.clear()
    with pytest.raises(registry.ModelIntegrityError):
        scoring.load_champion(lake)
    lake.storage.delete("registry/propensity/v0001/model.pkl")
    with pytest.raises(registry.ModelNotFoundError, match="missing"):
        scoring.load_champion(lake)


def test_the_published_event_carries_the_paths_and_the_headline(lake, tmp_path, monkeypatch):
    import prefect.events

    summary = run(lake, tmp_path, delivery_dir=tmp_path / "out")
    sent: list[dict] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kwargs: sent.append(kwargs))
    scoring.announce_call_list_task.fn(summary)
    (event,) = sent
    assert event["event"] == "callcast.call_list.published"
    assert event["resource"] == {"prefect.resource.id": "callcast.model.propensity"}
    payload = event["payload"]
    assert payload["headline"] == summary["headline"] and "calling at random" in payload["headline"]
    assert Path(payload["delivered_to"]).is_file() and Path(payload["path"]).is_file()
    assert Path(payload["workbook"]).is_file() and payload["latest_moved"] is True


def _run_until_killed(lake: Lake, tmp_path: Path, fault: str) -> None:
    os.environ["CALLCAST_FAULT_POINT"] = fault
    run(lake, tmp_path, capacity=150)
    os._exit(0)  # the fault point was not reached


@pytest.mark.parametrize("fault", ["scoring.files_written", "scoring.latest_copied", "scoring.pointer_moved"])
def test_kill_9_at_each_publishing_step_leaves_a_consistent_latest_and_a_rerun_repairs(lake, tmp_path, fault):
    import multiprocessing

    first = run(lake, tmp_path, capacity=100)
    previous = Path(first["path"]).read_bytes()
    child = multiprocessing.get_context("fork").Process(
        target=_run_until_killed, args=(lake, tmp_path, fault)
    )
    child.start()
    child.join()
    assert child.exitcode == -signal.SIGKILL  # killed at the fault point, no cleanup handler ran
    latest = scoring.read_latest_call_list(lake)  # the pointer names a present file with its SHA-256
    moved = fault == "scoring.pointer_moved"
    assert (latest.count(b"\n") - 1) == (150 if moved else 100)
    if not moved:
        assert latest == previous
    orphans = list(tmp_path.glob(f"{scoring.WORKDIR_PREFIX}{child.pid}-*"))
    assert len(orphans) == 1  # names and phones left by the killed run ...
    again = run(lake, tmp_path, capacity=150)
    assert not orphans[0].exists()  # ... are removed by the next run
    assert scoring.read_latest_call_list(lake) == Path(again["path"]).read_bytes()
    copies = lake.storage.list(catalog.call_list_latest_dir() + "/")
    pointer = lake.read_json(catalog.call_list_latest_pointer())
    assert sorted(copies) == sorted(f["key"] for f in pointer["files"].values())


def _publish_days(lake_dir: str, work: str, days: list[int], start) -> None:
    lake, work_dir = Lake(LocalStorage(lake_dir)), Path(work)
    header = ",".join(rules.CALL_LIST_HEADER) + "\n"
    start.wait(30)
    for i in days:
        path = work_dir / f"{os.getpid()}.csv"
        path.write_text(header + "".join(f"{j},{j},N{i},+1,0.5,1,,v{i}\n" for j in range(1, 2 + i % 7)))
        scoring.publish_call_list(
            lake, date(2024, 1, 1) + timedelta(days=i), {"call_list.csv": path}, {"rows": i}
        )
    os._exit(0)


def test_two_concurrent_publishers_never_move_latest_backwards_or_break_it(tmp_path):
    """One writer publishes even days, another odd days, at the same time: latest ends on the newest day, its
    file matches, and only that day's copies are left."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    lake_dir, work = tmp_path / "lake", tmp_path / "work"
    work.mkdir()
    start = context.Event()
    writers = [
        context.Process(target=_publish_days, args=(str(lake_dir), str(work), list(range(k, 40, 2)), start))
        for k in (0, 1)
    ]
    for w in writers:
        w.start()
    start.set()
    for w in writers:
        w.join(120)
        assert w.exitcode == 0
    lake = Lake(LocalStorage(lake_dir))
    pointer = lake.read_json(catalog.call_list_latest_pointer())
    assert pointer["partition_date"] == (date(2024, 1, 1) + timedelta(days=39)).isoformat()
    assert b"N39" in scoring.read_latest_call_list(lake)
    assert len(lake.partitions(catalog.call_lists())) == 40
    assert sorted(lake.storage.list(catalog.call_list_latest_dir() + "/")) == [
        pointer["files"]["call_list.csv"]["key"]
    ]


def test_refusals_are_not_retried_but_transient_failures_are():
    from data_checks.errors import PartitionNotValidatedError

    class Failed:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def result(self, raise_on_failure: bool = True):
            raise self.exc

    assert not scoring.retry_unless_refused(None, None, Failed(rules.CallListRefused("nobody to call")))
    assert not scoring.retry_unless_refused(None, None, Failed(scoring.StaleInputError("export missing")))
    assert not scoring.retry_unless_refused(None, None, Failed(PartitionNotValidatedError("customers", DAY)))
    assert scoring.retry_unless_refused(None, None, Failed(OSError("connection reset")))
