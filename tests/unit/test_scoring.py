"""Call-list logic on tiny frames: eligibility, ordering, capacity, deciles, reasons, CSV contract, atomic publish."""

from __future__ import annotations

import csv
import pickle
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from callcast.lake import Lake
from callcast.storage import LocalStorage
from tasks import scoring


class RuleModel:
    """A transparent scorer: 0.1, +0.5 if the previous campaign succeeded, +0.2 without a housing loan."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = (
            0.1
            + 0.5 * (frame["poutcome"].astype(str) == "success").to_numpy()
            + 0.2 * (frame["housing"].astype(str) == "no").to_numpy()
        )
        return np.column_stack([1 - p, p])


def _customers(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "name": [f"Person {i}" for i in range(1, n + 1)],
            "phone": [f"+351 900 000 00{i}" for i in range(1, n + 1)],
            "age": [30 + i for i in range(n)],
            "job": ["management"] * n,
            "marital": ["married"] * n,
            "education": ["tertiary"] * n,
            "default": ["no"] * n,
            "balance": [100 * i for i in range(n)],
            "housing": ["yes", "no"] * (n // 2),
            "loan": ["no"] * n,
            "opted_out": [False] * n,
        }
    )


def _contact(
    cid: int, customer: int, day: str, y: str | None, updated: str, poutcome: str = "failure"
) -> dict:
    return {
        "contact_id": cid, "customer_id": customer, "contact_date": day, "contact": "cellular",
        "campaign": 2, "previous": 1, "poutcome": poutcome, "y": y, "outcome_known_on": day, "updated_at": updated,
    }  # fmt: skip


def test_eligibility_excludes_opted_out_buyers_and_cooloff_at_the_boundary():
    customers = _customers()
    customers.loc[customers["customer_id"] == 1, "opted_out"] = True
    contacts = pd.DataFrame(
        [
            _contact(10, 2, "2024-01-05", None, "2024-01-05 10:00"),
            _contact(10, 2, "2024-01-05", "yes", "2024-01-20 10:00"),  # later version: bought
            _contact(11, 3, "2024-05-02", "no", "2024-05-03 10:00"),  # 30 days before the call: cool-off
            _contact(12, 4, "2024-05-01", "no", "2024-05-02 10:00"),  # 31 days before: callable
            _contact(13, 5, "2024-01-01", "no", "2024-01-02 10:00"),
        ]
    )
    summary = scoring.contact_summary(contacts)
    assert bool(summary.loc[2, "bought"]) and not bool(summary.loc[5, "bought"])
    mask, counts = scoring.eligibility(customers, summary, date(2024, 6, 1), cooloff_days=30)
    eligible = set(customers.loc[mask, "customer_id"])
    assert eligible == {4, 5, 6}  # 6 was never contacted
    assert counts == {"customers": 6, "opted_out": 1, "already_bought": 1, "in_cooloff": 1, "eligible": 3}
    mask, _ = scoring.eligibility(customers, summary, date(2024, 6, 1), cooloff_days=0)
    assert set(customers.loc[mask, "customer_id"]) == {3, 4, 5, 6}
    assert scoring.default_call_date(summary) == date(2024, 5, 3)


def test_scoring_rows_use_latest_contact_history_and_call_date_context():
    contacts = pd.DataFrame(
        [
            _contact(1, 1, "2024-01-05", "no", "2024-01-06 10:00", poutcome="failure"),
            _contact(2, 1, "2024-03-05", "no", "2024-03-06 10:00", poutcome="success"),
        ]
    )
    summary = scoring.contact_summary(contacts)
    customers = _customers(2)
    records = pd.concat(
        [
            customers,
            summary[scoring.HISTORY_COLUMNS].reindex(customers["customer_id"]).reset_index(drop=True),
        ],
        axis=1,
    )
    context = scoring.scoring_context(scoring.latest_contacts(contacts), date(2024, 7, 10))
    rows = scoring.scoring_rows(records, context)
    assert rows.loc[0, "poutcome"] == "success"  # the latest contact, not the first
    assert (rows.loc[1, "poutcome"], rows.loc[1, "campaign"], rows.loc[1, "contact"]) == (
        "unknown",
        1,
        "unknown",
    )
    assert (rows["month"] == "jul").all() and (rows["day"] == 10).all()
    assert "duration" not in rows and "pdays" not in rows


def test_call_list_is_ranked_cut_to_capacity_with_deciles_and_truthful_reasons():
    rows = scoring.scoring_rows(_customers(), {"call_date": "2024-06-01", "day": 1, "month": "jun",
                                               "ctx_volume_7d": 0.0, "ctx_rate_90d": 0.1})  # fmt: skip
    rows["poutcome"] = ["success", "success", "failure", "failure", "failure", "failure"]
    for column in scoring.CONTACT_DETAILS:
        rows[column] = _customers()[column]
    model = RuleModel()
    rows["probability"] = scoring.predict(model, rows)  # 0.6, 0.8, 0.1, 0.3, 0.1, 0.3
    cuts = scoring.decile_cuts(rows["probability"].to_numpy())
    frame = scoring.finish_call_list(model, rows, cuts, capacity=4, model_version="v0042")
    assert frame["customer_id"].tolist() == [2, 1, 4, 6]  # probability desc, ties by customer id
    assert frame["rank"].tolist() == [1, 2, 3, 4]
    assert frame["decile"].tolist()[0] == 1 and frame["decile"].is_monotonic_increasing
    assert frame.loc[0, "reasons"] == "previous campaign succeeded; no housing loan"
    assert frame.loc[1, "reasons"] == "previous campaign succeeded"  # has a housing loan: not claimed
    assert frame.loc[2, "reasons"] == "no housing loan"
    assert (frame["model_version"] == "v0042").all()
    sales = scoring.expected_sales(frame["probability"].to_numpy(), rows["probability"].to_numpy())
    assert sales["expected_sales"] == pytest.approx(0.8 + 0.6 + 0.3 + 0.3)
    assert sales["random_expected"] == pytest.approx(4 * np.mean([0.6, 0.8, 0.1, 0.3, 0.1, 0.3]))
    assert sales["lift"] > 1


def test_deciles_split_the_population_into_tenths():
    p = np.linspace(0, 1, 1000, endpoint=False)
    deciles = scoring.assign_deciles(p, scoring.decile_cuts(p))
    assert np.bincount(deciles)[1:].tolist() == [100] * 10
    assert deciles[np.argmax(p)] == 1 and deciles[np.argmin(p)] == 10


def test_csv_has_exactly_the_contract_columns_and_no_other_personal_data(tmp_path: Path):
    rows = scoring.scoring_rows(_customers(2), {"call_date": "2024-06-01", "day": 1, "month": "jun",
                                                "ctx_volume_7d": 0.0, "ctx_rate_90d": 0.1})  # fmt: skip
    rows["name"], rows["phone"] = ['Ana "Zé" Silva, Jr', "Rui O'Neill"], ["+351 911", "+351 922"]
    rows["probability"] = [0.25, 0.5]
    frame = scoring.finish_call_list(RuleModel(), rows, [0.4], None, "v0001")
    path = scoring.write_call_list_csv(frame, tmp_path / "call_list.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    assert ",".join(records[0]) == "rank,customer_id,name,phone,probability,decile,reasons,model_version"
    assert records[1][:5] == ["1", "2", "Rui O'Neill", "+351 922", "0.500000"]
    assert records[2][2] == 'Ana "Zé" Silva, Jr'  # quoting round-trips
    body = path.read_text()
    for private in ("tertiary", "married", "management", "balance", "opted_out"):
        assert private not in body


def _lake(tmp_path: Path) -> Lake:
    return Lake(LocalStorage(tmp_path / "lake"))


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_publish_commits_then_moves_latest_and_a_crash_keeps_the_previous_latest(tmp_path: Path, monkeypatch):
    lake = _lake(tmp_path)
    header = ",".join(scoring.CALL_LIST_HEADER) + "\n"
    first = _csv(tmp_path, "a.csv", header + "1,7,A,+1,0.900000,1,,v0001\n")
    scoring.publish_call_list(lake, date(2024, 6, 1), first, {"rows": 1, "model_version": "v0001"})
    assert lake.storage.get_bytes(scoring.LATEST_CSV_KEY) == first.read_bytes()
    assert lake.read_json(scoring.LATEST_JSON_KEY)["partition_date"] == "2024-06-01"

    second = _csv(tmp_path, "b.csv", header + "1,8,B,+2,0.800000,1,,v0002\n")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(lake.storage, "move", crash)
    with pytest.raises(OSError):
        scoring.publish_call_list(lake, date(2024, 6, 2), second, {"rows": 1, "model_version": "v0002"})
    assert lake.storage.get_bytes(scoring.LATEST_CSV_KEY) == first.read_bytes()
    assert lake.read_json(scoring.LATEST_JSON_KEY)["partition_date"] == "2024-06-01"
    assert lake.partitions("call_lists") == [date(2024, 6, 1)]  # the half-written day is invisible


def test_champion_loading_refuses_missing_and_tampered_models(tmp_path: Path):
    from tasks import registry

    lake = _lake(tmp_path)
    with pytest.raises(registry.UnknownAliasError, match="Train and promote"):
        scoring.load_champion(lake)
    registry.register_model(lake, "propensity", {"weights": [1, 2, 3]}, {"candidate": "test"})
    registry.set_alias(lake, "propensity", "champion", "v0001")
    lake.storage.put_bytes("registry/propensity/v0001/model.pkl", pickle.dumps({"weights": [6, 6, 6]}))
    scoring._MODEL_CACHE.clear()
    with pytest.raises(registry.ModelIntegrityError, match="Refusing to unpickle"):
        scoring.load_champion(lake)
    lake.storage.delete("registry/propensity/v0001/model.pkl")
    with pytest.raises(registry.ModelNotFoundError, match="missing"):
        scoring.load_champion(lake)
