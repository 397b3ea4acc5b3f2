"""Data preparation: a long sales frame (any columns) → regular series, batches, demo store totals."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from models.forecasting.calendar import (
    ALIGN_EVENTS,
    match_events,
    period_events,
    period_start,
    stamps_week_end,
)
from models.forecasting.candidates import SeriesInput
from models.forecasting.config import SEASON, ForecastConfig

TOTAL = "ALL"
SERIES_COLUMNS = ("series_id", "date", "y", "group")
ALL_GROUP = "*"


@dataclass
class SeriesFrameSpec:
    """How to read a user's sales history: id columns, date, value, regressors and frequency."""

    id_cols: list[str]
    date_col: str
    value_col: str
    regressors: list[str] = field(default_factory=list)
    freq: str = "D"

    def __post_init__(self) -> None:
        if self.freq not in SEASON:
            raise ValueError(f"freq must be 'D' (daily) or 'W' (weekly), got {self.freq!r}")
        if not self.id_cols:
            raise ValueError("name at least one series-id column")


def read_sales_csv(path: str | Path, spec: SeriesFrameSpec) -> pd.DataFrame:
    """Read the named columns of a sales CSV; says which columns are missing if any."""
    wanted = [*spec.id_cols, spec.date_col, spec.value_col, *spec.regressors]
    header = pd.read_csv(path, nrows=0).columns
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(
            f"{path}: columns {missing} not found; the file has {list(header)}. "
            "Pass the right names (--id-cols, --date-col, --value-col, --regressors)."
        )
    return pd.read_csv(path, usecols=wanted, dtype={c: str for c in spec.id_cols})


def _to_bool_float(col: pd.Series) -> pd.Series:
    if col.dtype == object or str(col.dtype).startswith(("string", "str")):
        lowered = col.astype(str).str.strip().str.lower()
        mapped = lowered.map({"true": 1.0, "false": 0.0, "t": 1.0, "f": 0.0, "yes": 1.0, "no": 0.0})
        return mapped.fillna(pd.to_numeric(col, errors="coerce")).fillna(0.0).astype(float)
    return pd.to_numeric(col, errors="coerce").fillna(0.0).astype(float)


def prepare_series(
    df: pd.DataFrame,
    spec: SeriesFrameSpec,
    cfg: ForecastConfig | None = None,
    spans: pd.DataFrame | None = None,
    fill_value: float = 0.0,
) -> pd.DataFrame:
    """Turn long sales rows into regular series: columns ``series_id, date, y, <regressors>``.

    ``series_id`` joins the id columns with ``/``. Daily data asked for weekly is summed into weeks
    starting Monday; weekly data keeps its own weekday. Each series runs on a regular grid from its
    first date (or ``spans.start``) to the last date of the whole data (or ``spans.end``); missing
    periods get ``fill_value`` (0 = no sales recorded). Missing regressor values come from the same
    date's other series for calendar regressors, else 0. Duplicate rows per series and date are summed.
    """
    cfg = cfg or ForecastConfig()
    cols = [*spec.id_cols, spec.date_col, spec.value_col, *spec.regressors]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the sales data (has {list(df.columns)})")
    sid = df[spec.id_cols[0]].astype(str)
    for col in spec.id_cols[1:]:
        sid = sid + "/" + df[col].astype(str)
    work = pd.DataFrame({"series_id": sid.to_numpy(dtype=object)})
    try:
        work["date"] = pd.to_datetime(df[spec.date_col]).dt.normalize().to_numpy()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {spec.date_col!r} does not hold dates: {exc}") from exc
    work["y"] = pd.to_numeric(df[spec.value_col], errors="coerce").to_numpy()
    if work["y"].isna().all():
        raise ValueError(f"column {spec.value_col!r} holds no numbers")
    for r in spec.regressors:
        work[r] = _to_bool_float(df[r]).to_numpy()
    step = pd.Timedelta(days=1 if spec.freq == "D" else 7)
    if spec.freq == "W" and work["date"].dt.day_of_week.nunique() > 1:
        # Daily rows asked for weekly: sum into Monday-starting weeks, dropping an unfinished last week.
        last_day = work["date"].max()
        work["date"] = work["date"] - pd.to_timedelta(work["date"].dt.day_of_week, unit="D")
        work = work[work["date"] + pd.Timedelta(days=6) <= last_day]
    agg = {"y": "sum", **{r: "max" for r in spec.regressors}}
    work = work.groupby(["series_id", "date"], sort=True).agg(agg).reset_index()
    last = work["date"].max()
    bounds = work.groupby("series_id")["date"].agg(start="min", end="max")
    bounds["end"] = last
    if spans is not None:
        sp = spans.set_index("series_id")[["start", "end"]].reindex(bounds.index)
        bounds["start"] = pd.to_datetime(sp["start"]).fillna(bounds["start"]).clip(lower=work["date"].min())
        bounds["end"] = pd.to_datetime(sp["end"]).fillna(bounds["end"]).clip(upper=last)
    # Align each start to the data's grid (weekly data keep their weekday).
    offset = ((bounds["start"] - last) % step) if spec.freq == "W" else pd.Timedelta(0)
    bounds["start"] = bounds["start"] - offset
    bounds = bounds[bounds["start"] <= bounds["end"]]
    n_per = ((bounds["end"] - bounds["start"]) // step + 1).astype(int)
    sid = np.repeat(bounds.index.to_numpy(), n_per.to_numpy())
    starts = np.repeat(bounds["start"].to_numpy(), n_per.to_numpy())
    within = np.concatenate([np.arange(k) for k in n_per.to_numpy()]) if len(n_per) else np.array([], int)
    grid = pd.DataFrame({"series_id": sid, "date": starts + within * step.to_timedelta64()})
    out = grid.merge(work, on=["series_id", "date"], how="left")
    out["y"] = out["y"].fillna(fill_value)
    out["group"] = out["series_id"].map(series_groups(df, spec, cfg)).fillna(ALL_GROUP).astype(str)
    for r in spec.regressors:
        if r in cfg.calendar_regressors:
            by_date = work.groupby("date")[r].max()
            out[r] = out[r].fillna(out["date"].map(by_date))
        out[r] = out[r].fillna(0.0)
    return out.sort_values(["series_id", "date"], kind="stable").reset_index(drop=True)


def series_groups(df: pd.DataFrame, spec: SeriesFrameSpec, cfg: ForecastConfig) -> pd.Series:
    """Pool of each series (``series_id`` -> value of the pool column; one pool if there is no such column).

    The pool column is ``cfg.pool_column`` or, with two or more id columns, the last one (Store, Dept ->
    each department across stores). Pools share seasonality (low-rank smoothing) and, for series with
    little backtest evidence, the model choice.
    """
    col = cfg.pool_column or (spec.id_cols[-1] if len(spec.id_cols) > 1 else None)
    sid = df[spec.id_cols[0]].astype(str)
    for c in spec.id_cols[1:]:
        sid = sid + "/" + df[c].astype(str)
    if col is None or col not in df.columns:
        return pd.Series(ALL_GROUP, index=pd.Index(sid.unique()))
    return pd.Series(df[col].astype(str).to_numpy(), index=sid.to_numpy()).groupby(level=0).first()


def demo_sales_frame(sales: pd.DataFrame, products: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Demo sales rows → long frame of store × product and store totals (``product_id = ALL``), with spans.

    Days without a row between a product's launch and its discontinuation are zero sales; a product's
    promotion flag on such days comes from its rows in other stores that day. Returns (long frame, spans);
    series of discontinued products end the day before ``discontinued_on``.
    """
    s = sales[["store_id", "product_id", "sale_date", "quantity", "on_promotion", "is_holiday"]].copy()
    s["sale_date"] = pd.to_datetime(s["sale_date"])
    for c in ("on_promotion", "is_holiday"):
        s[c] = _to_bool_float(s[c])
    s["store_id"] = s["store_id"].astype(str)
    s["product_id"] = s["product_id"].astype(str)
    per = s.groupby(["store_id", "product_id", "sale_date"], as_index=False).agg(
        quantity=("quantity", "sum"), on_promotion=("on_promotion", "max"), is_holiday=("is_holiday", "max")
    )
    totals = per.groupby(["store_id", "sale_date"], as_index=False).agg(
        quantity=("quantity", "sum"), on_promotion=("on_promotion", "mean"), is_holiday=("is_holiday", "max")
    )
    totals["product_id"] = TOTAL
    long = pd.concat([per, totals[per.columns]], ignore_index=True)
    p = products[["product_id", "launched_on", "discontinued_on"]].copy()
    p["product_id"] = p["product_id"].astype(str)
    stores = per["store_id"].unique()
    spans = p.merge(pd.DataFrame({"store_id": stores}), how="cross")
    spans["series_id"] = spans["store_id"] + "/" + spans["product_id"]
    spans["start"] = pd.to_datetime(spans["launched_on"])
    spans["end"] = pd.to_datetime(spans["discontinued_on"]) - pd.Timedelta(days=1)
    return long, spans[["series_id", "start", "end"]]


def fill_product_promotions(frame: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """Set each store × product day's promotion flag from the product's promotion that day in any store."""
    promo = long[long["product_id"] != TOTAL].groupby(["product_id", "sale_date"])["on_promotion"].max()
    is_item = ~frame["series_id"].str.endswith("/" + TOTAL)
    product = frame.loc[is_item, "series_id"].str.split("/").str[1]
    key = pd.MultiIndex.from_arrays([product, frame.loc[is_item, "date"]])
    frame.loc[is_item, "on_promotion"] = promo.reindex(key).fillna(0.0).to_numpy()
    return frame


DEMO_SPEC = SeriesFrameSpec(
    id_cols=["store_id", "product_id"],
    date_col="sale_date",
    value_col="quantity",
    regressors=["is_holiday", "on_promotion"],
    freq="D",
)


def prepare_demo_series(
    sales: pd.DataFrame, products: pd.DataFrame, freq: str = "D", cfg: ForecastConfig | None = None
) -> pd.DataFrame:
    """Demo database sales → regular store × product and store-total series (discontinued ones dropped)."""
    long, spans = demo_sales_frame(sales, products)
    spec = SeriesFrameSpec(**{**DEMO_SPEC.__dict__, "freq": freq})
    if freq == "D":
        frame = prepare_series(long, spec, cfg, spans=spans)
        frame = fill_product_promotions(frame, long)
    else:
        frame = prepare_series(long, spec, cfg, spans=spans)
    last = frame["date"].max()
    alive = frame.groupby("series_id")["date"].transform("max") == last
    return frame[alive].reset_index(drop=True)


def write_batches(frame: pd.DataFrame, out_dir: Path, batch_size: int) -> list[Path]:
    """Split a series frame into parquet files of about ``batch_size`` whole series, pools kept together.

    Pools are packed whole into batches; a pool larger than ``batch_size`` is split into near-equal parts.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = frame.groupby("series_id", sort=True)["group"].first() if "group" in frame else None
    if groups is None:
        groups = pd.Series(ALL_GROUP, index=frame["series_id"].drop_duplicates().sort_values().to_numpy())
    chunks: list[list[str]] = []
    current: list[str] = []
    for _, ids in groups.groupby(groups, sort=True):
        members = list(ids.index)
        if len(members) > batch_size:
            parts = -(-len(members) // batch_size)
            for part in np.array_split(np.array(members, dtype=object), parts):
                chunks.append(list(part))
            continue
        if current and len(current) + len(members) > batch_size:
            chunks.append(current)
            current = []
        current = current + members
    if current:
        chunks.append(current)
    paths = []
    for i, ids in enumerate(chunks):
        chunk = frame[frame["series_id"].isin(ids)]
        path = out_dir / f"batch-{i:05d}.parquet"
        chunk.to_parquet(path, index=False)
        paths.append(path)
    return paths


def future_dates(last: pd.Timestamp, freq: str, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` dates after ``last`` (daily or every 7 days)."""
    step = 1 if freq == "D" else 7
    return pd.DatetimeIndex([last + pd.Timedelta(days=step * (i + 1)) for i in range(horizon)])


_CAL_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray, float]] = {}


def calendar(
    dates: pd.DatetimeIndex, flags: np.ndarray | None, fut: pd.DatetimeIndex, freq: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """Seasonal keys of history + future, future holiday flags, and the share of flags known events explain.

    Keys: position in the season, or ``season + j`` for a period holding event ``j`` (on weekly data Easter,
    Thanksgiving, Christmas and the week before it; then the calendar events the holiday flags follow; then
    "other holiday" for flags no known event explains, repeated from one season earlier).
    """
    flags = None if flags is None else np.asarray(flags, bool)
    key = (dates[0], len(dates), len(fut), freq, None if flags is None else flags.tobytes())
    hit = _CAL_CACHE.get(key)
    if hit is not None:
        return hit
    m, step = SEASON[freq], 1 if freq == "D" else 7
    names: list[str] = list(ALIGN_EVENTS) if freq == "W" else []
    week_ends, explained = freq == "W" and stamps_week_end(dates), 1.0
    if flags is not None and flags.any():
        matched, week_ends, explained = match_events(dates, flags, freq)
        names += [n for n in matched if n not in names]
    all_dates = dates.append(fut)
    ev = period_events(period_start(all_dates, freq, week_ends), step, names)
    n = len(dates)
    fut_flags = np.zeros(len(fut), bool)
    other = np.zeros(len(all_dates), bool)
    if flags is not None and flags.any():
        cols = [names.index(x) for x in matched]
        covered = ev[:, cols].any(axis=1) if cols else np.zeros(len(all_dates), bool)
        fut_flags = covered[n:].copy()
        rest = pd.Series(flags & ~covered[:n], index=dates)
        if rest.any():
            lag = [d - (pd.Timedelta(weeks=52) if freq == "W" else pd.DateOffset(years=1)) for d in fut]
            repeat = rest.reindex(lag).fillna(False).to_numpy(dtype=bool)
            other[:n] = rest.to_numpy()
            other[n:] = repeat
            fut_flags = fut_flags | repeat
    ev = np.column_stack([ev, other]) if other.any() else ev
    keys = np.arange(len(all_dates)) % m
    if ev.shape[1]:
        any_ev = ev.any(axis=1)
        keys = np.where(any_ev, m + np.argmax(ev, axis=1), keys)
    out = (keys.astype(np.int64), fut_flags, explained)
    if len(_CAL_CACHE) > 4096:
        _CAL_CACHE.clear()
    _CAL_CACHE[key] = out
    return out


def future_regressors(
    dates: pd.DatetimeIndex,
    X: np.ndarray,
    names: Sequence[str],
    fut: pd.DatetimeIndex,
    freq: str,
    cfg: ForecastConfig,
) -> np.ndarray:
    """Assumed future regressors: holiday ones from the calendar, others at their historical mean."""
    out = np.zeros((len(fut), len(names)))
    for j, name in enumerate(names):
        if name in cfg.calendar_regressors:
            out[:, j] = calendar(dates, X[:, j] > 0, fut, freq)[1]
        else:
            out[:, j] = float(np.mean(X[:, j])) if len(X) else 0.0
    return out


@dataclass
class Series:
    """One prepared series."""

    series_id: str
    dates: pd.DatetimeIndex
    y: np.ndarray
    X: np.ndarray
    regressors: list[str]
    group: str = ALL_GROUP

    def holiday_flags(self, cfg: ForecastConfig) -> np.ndarray | None:
        """The holiday regressor's flags (None without one)."""
        for name in [cfg.holiday_column, *cfg.calendar_regressors]:
            if name and name in self.regressors:
                return self.X[:, self.regressors.index(name)] > 0
        return None

    def input(
        self,
        end: int,
        horizon: int,
        freq: str,
        cfg: ForecastConfig,
        y_shared: np.ndarray | None = None,
    ) -> SeriesInput:
        """Model input using the first ``end`` periods as history and the next ``horizon`` as future."""
        dates = self.dates[:end]
        fut = future_dates(dates[-1], freq, horizon)
        X = self.X[:end]
        flags = self.holiday_flags(cfg)
        keys = calendar(dates, None if flags is None else flags[:end], fut, freq)[0]
        return SeriesInput(
            y=self.y[:end],
            dates=dates,
            X=X,
            X_future=future_regressors(dates, X, self.regressors, fut, freq, cfg),
            future_dates=fut,
            freq=freq,
            season=SEASON[freq],
            keys=keys,
            y_shared=y_shared,
            smooth=cfg.season_smooth,
        )


def iter_series(frame: pd.DataFrame) -> Iterator[Series]:
    """Series of a prepared frame, in ``series_id`` order."""
    regs = [c for c in frame.columns if c not in SERIES_COLUMNS]
    has_group = "group" in frame.columns
    for sid, g in frame.groupby("series_id", sort=True):
        yield Series(
            series_id=str(sid),
            dates=pd.DatetimeIndex(g["date"]),
            y=g["y"].to_numpy(dtype=float),
            X=g[regs].to_numpy(dtype=float) if regs else np.empty((len(g), 0)),
            regressors=regs,
            group=str(g["group"].iloc[0]) if has_group else ALL_GROUP,
        )
