"""Request and response models of the HTTP API (validation gives 422 with field-level errors)."""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from callcast.schema import BANK_CATEGORIES, CustomerSchema

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


HISTORY_FIELDS = ("contact", "campaign", "previous", "poutcome")


@functools.cache
def _request_models(schema_json: str) -> tuple[type[BaseModel], type[BaseModel]]:
    schema = CustomerSchema.model_validate_json(schema_json)
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in CustomerIn.model_fields.items()
        if name not in schema.dropped_columns
    }
    for column in schema.extra_columns:
        kind = str if column.kind == "categorical" else float
        annotation = kind | None if column.nullable else kind
        constraints = {"max_length": 64} if column.kind == "categorical" else {"allow_inf_nan": False}
        default = None if column.nullable else ...
        fields[column.name] = (
            annotation,
            Field(default, description="Company column (known before a call).", **constraints),
        )
    config = ConfigDict(extra="forbid", strict=True)
    customer = create_model("CustomerIn", __config__=config, __doc__=CustomerIn.__doc__, **fields)
    customer.model_config["strict"] = True
    batch = create_model(
        "BatchIn", __config__=config, customers=(list[customer], Field(min_length=1, max_length=MAX_BATCH))
    )
    return customer, batch


def request_models(schema: CustomerSchema | None = None) -> tuple[type[BaseModel], type[BaseModel]]:
    """(one customer, batch) request models for the company's customer schema (``CALLCAST_CUSTOMERS__*``).

    The UCI schema gives :class:`CustomerIn` / :class:`BatchIn`; a company that dropped a column is never
    asked for it, and one with extra pre-call columns must send them (numbers finite, categories as text).
    """
    if schema is None or schema == CustomerSchema():
        return CustomerIn, BatchIn
    return _request_models(schema.model_dump_json())


class ScoreOut(BaseModel):
    customer_id: int | None
    probability: float
    decile: int | None = Field(description="1 = top 10% of the latest scored eligible customers.")
    model_version: str


class BatchOut(BaseModel):
    model_version: str
    results: list[ScoreOut]
