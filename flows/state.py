"""Flow: refresh the ``callcast-state`` artifact (serving champion, last list, checks, monitoring).

Deployed as ``publish-state``: the daily chain's events (a day passed or failed its checks, a new call list,
a promotion, drift) start it, so the UI's front page follows the day without anyone running it.
"""

from __future__ import annotations

from datetime import date

from prefect import flow

from tasks.state import publish_state_task


@flow(name="publish-state")
def publish_state(partition_date: date | None = None, lake_url: str | None = None) -> str:
    """Rebuild the state artifact for ``partition_date`` (default: today in the company's time zone)."""
    return publish_state_task(partition_date, None, lake_url)
