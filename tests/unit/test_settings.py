"""Configuration that never lies: documented as it is, every section honoured by the code that reads it."""

from __future__ import annotations

import gzip
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcast.settings import Settings, get_settings
from callcast.settings_doc import README_BEGIN, README_END, settings_markdown, settings_reference

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
# Environment variables that are deliberately not settings (documented in the README for what they are).
NOT_SETTINGS = {"CALLCAST_FAULT_POINT"}  # the crash-test hook: never part of the configuration


def test_readme_configuration_table_is_the_settings_classes():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(README_BEGIN) : readme.index(README_END) + len(README_END)]
    assert block == settings_markdown(), "README's configuration table is stale: run `make settings-doc`"


def test_every_setting_says_what_it_does():
    undocumented = [row.variable for row in settings_reference() if not row.description.strip()]
    assert not undocumented, f"settings without a description: {undocumented}"


def test_every_readme_variable_exists():
    """No README recipe or table names a CALLCAST_ variable the settings do not read."""
    known = {row.variable for row in settings_reference()}
    sections = {v.split("__")[0] + "__" for v in known if "__" in v}
    mentioned = set(re.findall(r"CALLCAST_[A-Z0-9_]+", (ROOT / "README.md").read_text()))
    unknown = sorted(
        m for m in mentioned if m not in known | NOT_SETTINGS and m not in sections and m != "CALLCAST_"
    )
    assert not unknown, f"README mentions variables that do not exist: {unknown}"


def test_every_settings_section_is_exercised_through_its_environment_variable():
    """Each section has at least one test that sets one of its CALLCAST_<SECTION>__* variables."""
    text = "\n".join(p.read_text() for p in TESTS.rglob("*.py"))
    used = set(re.findall(r"CALLCAST_([A-Z]+)__[A-Z_]+", text))
    sections = {name.upper() for name, info in Settings.model_fields.items() if "__" not in name} & {
        v.removeprefix("CALLCAST_").split("__")[0]
        for v in (r.variable for r in settings_reference())
        if "__" in v
    }
    missing = sorted(sections - used)
    assert not missing, f"no test sets a CALLCAST_<SECTION>__ variable for: {missing}"


# -- behaviour of the sections and top-level settings this file owns --------------------------------------


def test_timezone_defines_today(monkeypatch):
    from callcast.errors import ConfigurationError
    from callcast.runtime import company_today

    for zone in ("Pacific/Kiritimati", "Pacific/Niue"):  # UTC+14 and UTC-11: always different dates
        monkeypatch.setenv("CALLCAST_TIMEZONE", zone)
        assert company_today() == datetime.now(ZoneInfo(zone)).date()
    monkeypatch.setenv("CALLCAST_TIMEZONE", "Pacific/Kiritimati")
    east = company_today()
    monkeypatch.setenv("CALLCAST_TIMEZONE", "Pacific/Niue")
    assert (east - company_today()).days in (1, 2)  # 25 hours apart: one or two calendar days
    monkeypatch.setenv("CALLCAST_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigurationError, match="CALLCAST_TIMEZONE"):
        company_today()


def test_home_and_lake_url_place_the_state(monkeypatch, tmp_path):
    monkeypatch.setenv("CALLCAST_HOME", str(tmp_path / "h"))
    settings = get_settings()
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path / 'h' / 'callcast.db'}"
    assert settings.resolved_lake_url() == str(tmp_path / "h" / "lake")
    monkeypatch.setenv("CALLCAST_LAKE_URL", str(tmp_path / "elsewhere"))
    assert get_settings().resolved_lake_url() == str(tmp_path / "elsewhere")


def test_export_gzip_level_reaches_the_written_file(monkeypatch, tmp_path):
    """CALLCAST_EXPORT__GZIP_LEVEL=9 writes a smaller file than level 1 for the same rows."""
    from callcast.database import make_engine
    from tasks import export as export_module

    engine = make_engine(f"sqlite:///{tmp_path / 'src.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 20000) "
            "INSERT INTO t SELECT i, 'value ' || (i % 97) FROM s"
        )
    engine.dispose()
    monkeypatch.setenv("CALLCAST_DATABASE_URL", f"sqlite:///{tmp_path / 'src.db'}")
    sizes = {}
    for level in (1, 9):
        monkeypatch.setenv("CALLCAST_EXPORT__GZIP_LEVEL", str(level))
        lake = tmp_path / f"lake{level}"
        manifest = export_module.export_table_task.fn("t", date(2010, 12, 1), lake_url=str(lake))
        (entry,) = manifest["files"]
        sizes[level] = entry["bytes"]
        data = next(p for p in lake.rglob("*") if p.is_file() and p.name != "_manifest.json")
        assert gzip.decompress(data.read_bytes()).count(b"\n") == 20001
    assert sizes[9] < sizes[1]


def test_api_settings_from_the_environment(monkeypatch, tmp_path):
    """CALLCAST_API__MAX_BODY_BYTES and __API_KEY reach the app built by the uvicorn factory."""
    from fastapi.testclient import TestClient

    from app.api import app_from_environment

    monkeypatch.setenv("CALLCAST_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("CALLCAST_API__MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("CALLCAST_API__API_KEY", "k3y")
    with TestClient(app_from_environment(), base_url="http://127.0.0.1") as client:
        assert client.get("/health").status_code == 401
        headers = {"X-API-Key": "k3y"}
        assert client.get("/health", headers=headers).status_code == 200
        big = client.post("/score", content=b"{" + b" " * 4000 + b"}", headers=headers)
        assert big.status_code == 413


def test_checks_sample_rows_setting_reaches_the_result(monkeypatch, tmp_path):
    """CALLCAST_CHECKS__SAMPLE_ROWS bounds the offending rows a check result keeps (masked)."""
    import sys

    sys.path.insert(0, str(TESTS / "data"))
    import raw_factory as rf

    from callcast import catalog
    from callcast.lake import Lake
    from callcast.storage import LocalStorage
    from tasks.checks import validate_partition_task

    columns, rows = rf.clean_rows("customers", 60)
    age = list(columns).index("age")
    for row in rows[:10]:
        row[age] = 7  # ten impossible ages
    path, manifest = rf.write_partition(tmp_path / "raw", "customers", rf.encode(columns, rows), columns, 60)
    lake = Lake(LocalStorage(tmp_path / "lake"))
    lake.commit_partition(catalog.raw("customers"), rf.PARTITION, {path.name: path}, manifest)
    kept = {}
    for n in (1, 4):
        monkeypatch.setenv("CALLCAST_CHECKS__SAMPLE_ROWS", str(n))
        result = validate_partition_task.fn("customers", rf.PARTITION, str(tmp_path / "lake"))
        failed = [f for f in result["failed_expectations"] if f["column"] == "age"]
        assert failed and result["status"] == "failed"
        age_rows = [r for r in result["sample_rows"] if r.get("age") == 7]
        kept[n] = len(age_rows)
        assert all(r.get("name") != rows[0][list(columns).index("name")] for r in age_rows)  # masked
    assert kept == {1: 1, 4: 4}
