"""Great Expectations plumbing: context, suite and validation definition (GX imported lazily here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from data_checks.specs import ExpectationPlan


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


class SuiteRunner:
    """Runs one table's suite on DataFrame chunks; with ``project_dir`` results are kept for Data Docs."""

    def __init__(
        self, suite_name: str, plans: list[ExpectationPlan], project_dir: Path | None = None
    ) -> None:
        gx = _gx()
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.project_dir = project_dir
        if project_dir is None:
            self.context = gx.get_context(mode="ephemeral")
        else:
            self.context = gx.get_context(mode="file", project_root_dir=str(project_dir))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_or_update_pandas("callcast_raw")
        asset = source.add_dataframe_asset(suite_name)
        batch = asset.add_batch_definition_whole_dataframe("chunk")
        expectations = []
        for plan in plans:
            cls = getattr(gxe, "".join(part.title() for part in plan.type.split("_")))
            kwargs = {k: v for k, v in plan.kwargs.items() if v is not None}
            expectations.append(
                cls(
                    **kwargs,
                    severity=plan.severity,
                    meta={"callcast": plan.description},
                    description=plan.description,
                )
            )
        suite = self.context.suites.add_or_update(
            gx.ExpectationSuite(name=suite_name, expectations=expectations)
        )
        self.by_id: dict[str, ExpectationPlan] = {
            str(e.id): plan for e, plan in zip(suite.expectations, plans, strict=True)
        }
        self.definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
        )

    def run(self, frame: Any, run_name: str, partial_count: int) -> list[tuple[ExpectationPlan, Any]]:
        """Validate one chunk; (plan, GX expectation result) pairs."""
        import datetime as dt

        from great_expectations.core.run_identifier import RunIdentifier

        result = self.definition.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": partial_count},
            run_id=RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC)),
        )
        return [(self.by_id[str(r.expectation_config.id)], r) for r in result.results]

    def build_docs(self, dest: Path) -> Path:
        """Build the GX Data Docs site and copy it to ``dest``; returns its index page."""
        if self.project_dir is None:
            raise ValueError("Data Docs need a file context: pass project_dir")
        self.context.build_data_docs()
        site = self.project_dir / "gx" / "uncommitted" / "data_docs" / "local_site"
        shutil.copytree(site, dest, dirs_exist_ok=True)
        return dest / "index.html"
