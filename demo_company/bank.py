"""Customers and campaign contacts of the demo company, built from the real UCI Bank Marketing file.

Each bank-full row is one customer and one campaign contact (``customer_id = contact_id = row number``,
from 1). Contact dates are reconstructed: the rows are chronological from May 2008 to November 2010 and
carry day and month but no year, so the year starts at 2008 and increases whenever the month goes back.
Names and phone numbers are synthetic (seeded). Every original column is kept, ``duration`` and ``pdays``
included: keeping them out of the model is the model's job.

Data: S. Moro, R. Laureano and P. Cortez. Using Data Mining for Bank Direct Marketing: An Application of
the CRISP-DM Methodology. ESM'2011, pp. 117-121. Licence CC BY 4.0 (see ``demo_company/data/README.md``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from callcast.schema import BANK_CATEGORIES

BANK_FULL_PATH = Path(__file__).resolve().parent / "data" / "bank-full.csv.gz"
FIRST_YEAR = 2008
# The seeded database's "today": the last contact (2010-11-17) plus the longest wait for an outcome.
SEEDED_UNTIL = date(2010, 11, 30)
_MONTHS = {name: index + 1 for index, name in enumerate(BANK_CATEGORIES["month"])}

_FIRST_NAMES = (
    "Ana", "João", "Maria", "José", "Inês", "Rui", "Sofia", "Tiago", "Beatriz", "Pedro", "Marta", "Luís",
    "Catarina", "Miguel", "Joana", "André", "Rita", "Nuno", "Carla", "Paulo", "Helena", "Ricardo", "Sara",
    "Diogo", "Leonor", "Bruno", "Mariana", "Hugo", "Filipa", "Gonçalo", "Teresa", "Vítor", "Cláudia", "Fábio",
)  # fmt: skip
_LAST_NAMES = (
    "Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins", "Jesus", "Sousa",
    "Fernandes", "Gonçalves", "Gomes", "Lopes", "Marques", "Alves", "Almeida", "Ribeiro", "Pinto", "Carvalho",
    "Teixeira", "Moreira", "Correia", "Mendes", "Nunes", "Soares", "Vieira", "Monteiro", "Cardoso", "Rocha",
    "O'Neill", "Brandão", "Simões", "Conceição",
)  # fmt: skip


def load_bank_full(path: Path = BANK_FULL_PATH) -> pd.DataFrame:
    """The UCI bank-full file as published (45,211 rows, ``;``-separated), with ``contact_date`` added."""
    frame = pd.read_csv(path, sep=";")
    frame["contact_date"] = reconstruct_contact_dates(frame["month"], frame["day"])
    return frame


def reconstruct_contact_dates(months: pd.Series, days: pd.Series, first_year: int = FIRST_YEAR) -> pd.Series:
    """Dates of chronological rows that carry only month and day: the year rolls when the month goes back."""
    month_numbers = months.map(_MONTHS)
    if month_numbers.isna().any():
        bad = sorted(set(months[month_numbers.isna()]))
        raise ValueError(f"unknown month names in the bank file: {bad}")
    rolled = (month_numbers.diff().fillna(0) < 0).cumsum()
    years = first_year + rolled
    return pd.Series(
        [date(int(y), int(m), int(d)) for y, m, d in zip(years, month_numbers, days, strict=True)],
        index=months.index,
        name="contact_date",
    )


def synthetic_names(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, 1])
    first = rng.integers(0, len(_FIRST_NAMES), n)
    last = rng.integers(0, len(_LAST_NAMES), (2, n))
    return [
        f"{_FIRST_NAMES[f]} {_LAST_NAMES[a]} {_LAST_NAMES[b]}"
        if a != b
        else f"{_FIRST_NAMES[f]} {_LAST_NAMES[a]}"
        for f, a, b in zip(first, last[0], last[1], strict=True)
    ]


def synthetic_phones(n: int, seed: int) -> list[str]:
    """Unique mobile-style numbers in a fictional ``+351 9xx`` range."""
    rng = np.random.default_rng([seed, 2])
    numbers = rng.choice(np.arange(10_000_000, 99_999_999), size=n, replace=False)
    return [f"+351 9{str(x)[:2]} {str(x)[2:5]} {str(x)[5:]}" for x in numbers]


def bank_tables(seed: int, bank: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``customers`` and ``campaign_contacts`` frames in the columns of :mod:`callcast.schema`."""
    bank = load_bank_full() if bank is None else bank
    n = len(bank)
    rng = np.random.default_rng([seed, 3])
    ids = np.arange(1, n + 1)
    contact_dates = pd.to_datetime(bank["contact_date"])
    created = (
        contact_dates
        - pd.to_timedelta(rng.integers(30, 3650, n), unit="D")
        + pd.to_timedelta(rng.integers(8 * 3600, 20 * 3600, n), unit="s")
    )
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "name": synthetic_names(n, seed),
            "phone": synthetic_phones(n, seed),
            "age": bank["age"].to_numpy(),
            "job": bank["job"].to_numpy(),
            "marital": bank["marital"].to_numpy(),
            "education": bank["education"].to_numpy(),
            "default": bank["default"].to_numpy(),
            "balance": bank["balance"].to_numpy(),
            "housing": bank["housing"].to_numpy(),
            "loan": bank["loan"].to_numpy(),
            "opted_out": rng.random(n) < 0.03,
            "created_at": created.dt.floor("s").dt.to_pydatetime(),
        }
    )
    known = (contact_dates + pd.to_timedelta(rng.integers(1, 15, n), unit="D")).clip(
        upper=pd.Timestamp(SEEDED_UNTIL)
    )
    contacts = pd.DataFrame(
        {
            "contact_id": ids,
            "customer_id": ids,
            "contact_date": bank["contact_date"].to_numpy(),
            "contact": bank["contact"].to_numpy(),
            "day": bank["day"].to_numpy(),
            "month": bank["month"].to_numpy(),
            "duration": bank["duration"].to_numpy(),
            "campaign": bank["campaign"].to_numpy(),
            "pdays": bank["pdays"].to_numpy(),
            "previous": bank["previous"].to_numpy(),
            "poutcome": bank["poutcome"].to_numpy(),
            "y": bank["y"].to_numpy(),
            "outcome_known_on": known.dt.date.to_numpy(),
            "updated_at": (known + pd.Timedelta(hours=17)).dt.to_pydatetime(),
        }
    )
    return customers, contacts
