"""The daily pipeline stops at the data checks when a partition is bad: nothing downstream reads it."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from callcast.database import make_engine
from demo_company.database import build_demo_database

pytestmark = pytest.mark.integration


def test_bad_export_stops_the_pipeline_before_training_and_scoring(prefect_harness, callcast_home):
    from flows.pipeline import QuarantineStop, daily_pipeline

    engine = make_engine(f"sqlite:///{callcast_home / 'callcast.db'}")
    build_demo_database(engine, size="tiny", seed=3)
    with engine.begin() as conn:  # an impossible age slips into the operational database
        conn.execute(sa.text("UPDATE customers SET age = 430 WHERE customer_id = 17"))
    engine.dispose()

    with pytest.raises(QuarantineStop) as stopped:
        daily_pipeline(partition_date=date(2026, 11, 24))

    message = str(stopped.value)
    assert "customers" in message and "2026-11-24" in message and "quarantined" in message
    lake = callcast_home / "lake"
    assert (lake / "raw/customers/dt=2026-11-24/_manifest.json").exists()  # the export itself succeeded
    assert '"failed"' in (lake / "checks/customers/dt=2026-11-24/result.json").read_text()
    assert not (lake / "registry").exists() and not (lake / "call_lists").exists()
