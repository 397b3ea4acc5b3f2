"""Request and response models of the HTTP API (validation gives 422 with field-level errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callcast.schema import BANK_CATEGORIES

MAX_BATCH = 1000
Job = Literal[BANK_CATEGORIES["job"]]  # type: ignore[valid-type]
Marital = Literal[BANK_CATEGORIES["marital"]]  # type: ignore[valid-type]
Education = Literal[BANK_CATEGORIES["education"]]  # type: ignore[valid-type]
YesNo = Literal["yes", "no"]
Contact = Literal[BANK_CATEGORIES["contact"]]  # type: ignore[valid-type]
Poutcome = Literal[BANK_CATEGORIES["poutcome"]]  # type: ignore[valid-type]


class CustomerIn(BaseModel):
    """One customer's attributes and latest known contact history (the columns the call list is scored on).

    Strict types: ``true`` is not the number 1 and ``"35"`` is not the age 35.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: int | None = Field(default=None, ge=1, description="Echoed back; not used for scoring.")
    age: int = Field(ge=18, le=120)
    job: Job
    marital: Marital
    education: Education
    default: YesNo
    balance: int = Field(ge=-1_000_000, le=100_000_000, description="Average yearly balance (euros).")
    housing: YesNo
    loan: YesNo
    contact: Contact = Field(default="unknown", description="Channel of the latest contact.")
    campaign: int = Field(default=1, ge=1, le=100, description="Contacts in the latest campaign.")
    previous: int = Field(default=0, ge=0, le=1000, description="Contacts before the latest campaign.")
    poutcome: Poutcome = Field(default="unknown", description="Outcome of the previous campaign.")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_BATCH)


class ScoreOut(BaseModel):
    customer_id: int | None
    probability: float
    decile: int | None = Field(description="1 = top 10% of the latest scored eligible customers.")
    model_version: str


class BatchOut(BaseModel):
    model_version: str
    results: list[ScoreOut]
