"""Alerts, declared in code: one notification block and the automations that use it.

``callcast serve`` calls :func:`apply_automations` after deploying; it is idempotent (every ``callcast: ``
notification automation is replaced by the current declaration, so a changed setting takes effect).

People hear about:
- any flow run that ends Failed or Crashed (with its state message and a link to the run in the UI);
- ``callcast.checks.failed`` (a quarantined export partition: table, date, failed expectations);
- ``callcast.drift.detected`` (a model's inputs or predictions shifted);
- a missing daily export: a proactive trigger per table — after each ``callcast.export.completed``, the next
  one is expected within ``CALLCAST_ALERTS__EXPORT_DEADLINE_SECONDS`` (26 h by default: a 05:00 export that has
  not completed by 07:00 the next day);
- ``callcast.call_list.published`` (a new list: where it is and its headline).

The channel is a Prefect notification block (Apprise behind most of them): a generic JSON webhook, Microsoft
Teams or Slack from ``CALLCAST_ALERTS__WEBHOOK_URL`` + ``CALLCAST_ALERTS__CHANNEL``, or any block saved in the
UI (e-mail, PagerDuty, ...) named by ``CALLCAST_ALERTS__BLOCK_NAME=<block-type-slug>/<name>``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from callcast.settings import Settings

PREFIX = "callcast: "
BLOCK_NAME = "callcast-alerts"

FLOW_RUN_BODY = (
    "Flow run {{ flow.name }}/{{ flow_run.name }} ended {{ flow_run.state.name }}"
    "{% if deployment %} (deployment {{ deployment.name }}){% endif %}.\n"
    "{{ flow_run.state.message }}\n"
    "Run: {{ flow_run|ui_url }}"
)
CHECKS_BODY = (
    "Data checks failed for {{ event.payload.table }} on {{ event.payload.partition_date }}: "
    "{{ event.payload.failed_expectations|join(', ') }}.\n"
    "The partition is quarantined: training, scoring and forecasting refuse it. "
    "Result: {{ event.payload.result }}. Fix the source, rerun the export, then validate-exports."
)
DRIFT_BODY = (
    "Drift detected for {{ event.resource['prefect.resource.id'] }} "
    "({{ event.payload.partition_date }}): {{ event.payload }}.\n"
    "Retraining is triggered automatically (gated); look at the monitoring report before trusting the list."
)
MISSING_EXPORT_BODY = (
    "No export of {{ event.payload.table }} has completed since {{ event.occurred }} "
    "(partition {{ event.payload.partition_date }}); the daily export is overdue.\n"
    "Look at the daily-export runs in the UI and at the worker (`callcast status`); "
    "scoring will refuse a stale day."
)
CALL_LIST_BODY = (
    "New call list for {{ event.payload.call_date }} (data of {{ event.payload.partition_date }}"
    "{% if event.payload.stale_days %}, STALE by {{ event.payload.stale_days }} day(s){% endif %}): "
    "{{ event.payload.rows }} customers, model {{ event.payload.model_version }}.\n"
    "{{ event.payload.headline }}\n"
    "Workbook: {{ event.payload.delivered_to or event.payload.workbook or event.payload.path }}"
)


def _minutes(seconds: int) -> str:
    return f"{seconds / 3600:.0f} h" if seconds >= 3600 else f"{seconds} s"


def declared(block_id: UUID, settings: Settings) -> list[Any]:
    """The notification automations, as Prefect objects (not yet saved)."""
    from prefect.automations import Automation
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    def notify(subject: str, body: str) -> list[SendNotification]:
        return [SendNotification(block_document_id=block_id, subject=subject, body=body)]

    deadline = settings.alerts.export_deadline_seconds
    return [
        Automation(
            name=PREFIX + "flow run failed or crashed",
            description="Any flow run that ends Failed or Crashed.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "prefect.flow-run.*"},
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=notify("callcast: {{ flow.name }} {{ flow_run.state.name }}", FLOW_RUN_BODY),
        ),
        Automation(
            name=PREFIX + "data checks failed",
            description="A raw export partition failed its data checks (quarantined).",
            trigger=EventTrigger(
                match={"prefect.resource.id": "callcast.table.*"},
                expect={"callcast.checks.failed"},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=notify("callcast: checks failed for {{ event.payload.table }}", CHECKS_BODY),
        ),
        Automation(
            name=PREFIX + "drift detected",
            description="Monitoring found drift in a model's inputs or predictions.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "callcast.model.*"},
                expect={"callcast.drift.detected"},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=notify("callcast: drift detected", DRIFT_BODY),
        ),
        Automation(
            name=PREFIX + "daily export missing",
            description=f"A table's next export has not completed within {_minutes(deadline)} of its last one.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "callcast.table.*"},
                after={"callcast.export.completed"},
                expect={"callcast.export.completed"},
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(seconds=deadline),
            ),
            actions=notify("callcast: export of {{ event.payload.table }} is overdue", MISSING_EXPORT_BODY),
        ),
        Automation(
            name=PREFIX + "new call list",
            description="A call list was published: where it is and its headline.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "callcast.*"},
                expect={"callcast.call_list.published"},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=notify("callcast: call list {{ event.payload.partition_date }}", CALL_LIST_BODY),
        ),
    ]


def notification_block_id(settings: Settings) -> UUID | None:
    """Save the notification block the settings describe (or find the named one); None when none is set."""
    alerts = settings.alerts
    if alerts.block_name:
        from prefect.blocks.core import Block

        return Block.load(alerts.block_name)._block_document_id
    block = notification_block(settings)
    return None if block is None else block.save(BLOCK_NAME, overwrite=True)


def notification_block(settings: Settings) -> Any:
    """The Prefect notification block for ``CALLCAST_ALERTS__WEBHOOK_URL`` and ``__CHANNEL`` (None: no URL)."""
    alerts = settings.alerts
    if alerts.webhook_url is None:
        return None
    url = alerts.webhook_url.get_secret_value()
    if alerts.channel == "teams":
        from prefect.blocks.notifications import MicrosoftTeamsWebhook

        block: Any = MicrosoftTeamsWebhook(url=url)
    elif alerts.channel == "slack":
        from prefect.blocks.notifications import SlackWebhook

        block = SlackWebhook(url=url)
    else:
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        # The receiver is configured by the operator, not by a request: a company-internal (private) address
        # is legitimate, so Prefect's private-address guard stays off here, as is its default.
        block = CustomWebhookNotificationBlock(
            name="callcast",
            url=url,
            json_data={"subject": "{{subject}}", "body": "{{body}}", "source": "{{name}}"},
            allow_private_urls=True,
        )
    return block


def apply_automations(settings: Settings) -> dict[str, Any]:
    """Replace every ``callcast: `` notification automation with the declared ones; returns their names."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for existing in client.read_automations():
            if existing.name.startswith(PREFIX):
                client.delete_automation(existing.id)
    block_id = notification_block_id(settings)
    if block_id is None:
        return {
            "created": [],
            "warning": "alerts are off: set CALLCAST_ALERTS__WEBHOOK_URL (and CALLCAST_ALERTS__CHANNEL) or "
            "CALLCAST_ALERTS__BLOCK_NAME, then run `callcast serve` again.",
        }
    created = []
    for automation in declared(block_id, settings):
        automation.create()
        created.append(automation.name.removeprefix(PREFIX))
    return {"created": created, "block_id": str(block_id)}
