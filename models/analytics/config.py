"""Settings of the business analyses (``CALLCAST_ANALYTICS__*``): money, segment search, windows, seed."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class AnalyticsSettings(BaseModel):
    """What the analyses assume; nested under ``CALLCAST_ANALYTICS__*`` in :class:`callcast.settings.Settings`."""

    cost_per_call: float = Field(
        default=3.0, gt=0, description="Cost of one call (agent time and phone), in the sales currency."
    )
    value_per_sale: float = Field(
        default=120.0, gt=0, description="Value of one sale won by a call, in the same currency."
    )
    segment_k_min: int = Field(default=2, ge=2, description="Fewest customer segments tried.")
    segment_k_max: int = Field(default=8, ge=2, description="Most customer segments tried.")
    segment_min_share: float = Field(
        default=0.03,
        ge=0,
        lt=0.5,
        description="Smallest segment share a k must give to be chosen (no tiny splinters).",
    )
    silhouette_sample: int = Field(
        default=4000, ge=200, description="Customers sampled (seeded) to compute the silhouette of each k."
    )
    seed: int = Field(default=20260101, description="Seed of clustering and sampling (reproducible reports).")
    max_call_number: int = Field(
        default=15, ge=2, description="Calls per campaign shown in the diminishing-returns curve."
    )
    lift_window_days: int = Field(
        default=14,
        ge=1,
        description="Days after a call list's call date in which a listed customer's contact counts.",
    )
    kpi_period_days: int = Field(
        default=28,
        ge=7,
        description="Sales KPI period ending on the as-of date (compared with 364 days earlier).",
    )
    top_movers: int = Field(default=5, ge=1, description="Products listed as top movers up and down.")

    @model_validator(mode="after")
    def _k_range(self) -> AnalyticsSettings:
        if self.segment_k_max < self.segment_k_min:
            raise ValueError(
                f"segment_k_max ({self.segment_k_max}) is below segment_k_min ({self.segment_k_min})."
            )
        return self

    @property
    def break_even_rate(self) -> float:
        """Conversion a call needs to pay for itself: cost per call / value per sale."""
        return self.cost_per_call / self.value_per_sale
