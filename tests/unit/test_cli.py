"""The one `callcast` command: options reach the flows' parameters, bad input is a one-line refusal."""

from __future__ import annotations

from datetime import date

import pytest

import app.cli as cli


@pytest.fixture
def captured(monkeypatch):
    """Replace the flows by recorders (the flows have tests of their own); no Prefect API needed."""
    calls: dict[str, dict] = {}
    monkeypatch.setattr(cli, "with_prefect_api", lambda: None)

    def forecast_sales(**kwargs):
        calls["forecast"] = kwargs
        return {
            "n_series": 3, "horizon": kwargs["horizon"], "location": "lake/forecasts/byo/x/dt=2024-01-01",
            "wmae": 1.0, "wmae_ratio": 0.8, "naive_wmae": 1.25, "share_beating_naive": 0.66,
            "median_mase": 0.7, "naive_median_mase": 0.9, "coverage80": 0.81, "coverage95": 0.95,
            "share_modelled": 0.5, "models": {"pooled": 3},
            "baseline_warning": "2 of 3 series fell back to seasonal naive (short history: 2)",
        }  # fmt: skip

    import flows.forecast

    monkeypatch.setattr(flows.forecast, "forecast_sales", forecast_sales)
    return calls


def test_forecast_options_reach_the_flow_and_a_fallback_warning_is_loud(captured, capsys):
    code = cli.main(
        ["forecast", "--csv", "s.csv", "--id-cols", "Store,Dept", "--freq", "W", "--horizon", "39",
         "--folds", "2", "--candidates", "pooled_svd,croston", "--namespace", "walmart"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    kwargs = captured["forecast"]
    assert kwargs["id_cols"] == ["Store", "Dept"] and kwargs["horizon"] == 39 and kwargs["folds"] == 2
    assert kwargs["candidates"] == ["pooled_svd", "croston"] and kwargs["namespace"] == "walmart"
    assert "0.800x seasonal naive" in out and "80%: 81.0%" in out
    assert err.startswith("warning: 2 of 3 series fell back")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "--date", "2026-02-30"], "'2026-02-30' is not a date"),
        (["score", "--capacity", "0"], "0 must be at least 1"),
        (["forecast", "--horizon", "x"], "'x' is not a whole number"),
    ],
)
def test_mistyped_arguments_are_refused_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


def test_csv_without_series_columns_is_refused(captured, capsys):
    assert cli.main(["forecast", "--csv", "s.csv"]) == 2
    err = capsys.readouterr().err
    assert "--id-cols is required" in err and len(err.strip().splitlines()) == 2  # message + log path
    assert "forecast" not in captured


def test_an_unexpected_failure_is_two_lines_and_the_traceback_goes_to_the_log(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CALLCAST_HOME", str(tmp_path))

    def boom(args):
        raise ZeroDivisionError("deep inside")

    parser = cli.build_parser()
    args = parser.parse_args(["settings"])
    args.handler = boom
    assert cli.run_reporting_errors(lambda: args.handler(args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: unexpected failure (ZeroDivisionError: deep inside)." and len(err) == 2
    assert "Traceback" in (tmp_path / "logs" / "callcast.log").read_text()


def test_iso_date_accepts_real_dates():
    assert cli.iso_date("2024-02-29") == date(2024, 2, 29)


@pytest.mark.parametrize("command", ["export", "validate", "pipeline"])
def test_a_future_date_is_refused_before_anything_starts(command, monkeypatch, capsys):
    started = []
    monkeypatch.setattr(cli, "with_prefect_api", lambda: started.append(1))
    assert cli.main([command, "--date", "2099-01-01"]) == 2
    err = capsys.readouterr().err
    assert "2099-01-01" in err and "after today" in err and not started


@pytest.mark.parametrize("flag, expected", [([], None), (["--dask"], True), (["--no-dask"], False)])
def test_train_dask_choice_reaches_the_flow(flag, expected, monkeypatch):
    import flows.train_propensity

    seen = {}
    monkeypatch.setattr(cli, "with_prefect_api", lambda: None)
    monkeypatch.setattr(flows.train_propensity, "train_propensity", lambda **kwargs: seen.update(kwargs))
    assert cli.main(["train", "--profile", "large", *flag]) == 0
    assert seen["use_dask"] is expected and seen["profile"] == "large"
