"""The market as every service reads it: candles, features, outcome labels and sessions in arrays.

`load_market` opens data/market.duckdb read-only, refuses a store whose prepared tables do not
match this code, config and candles, loads everything and closes the connection before returning
(DuckDB lets no other process write the file while a reader holds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from micro.config import Config
from micro.data.sessions import SPLITS
from micro.data.stamp import staleness
from micro.data.store import connect, one_row
from micro.errors import DataError
from micro.features import FEATURE_NAMES
from micro.instruments import instrument as instrument_facts


@dataclass(frozen=True)
class Market:
    """One instrument's prepared bars; row t of every array is the bar opening at ts[t]."""

    instrument: str
    pip: float  # price of one pip
    ts: np.ndarray  # [T] int64, bar open time, seconds since the epoch, UTC
    open: np.ndarray  # [T] float64 mid
    high: np.ndarray  # [T] float64 mid
    low: np.ndarray  # [T] float64 mid
    close: np.ndarray  # [T] float64 mid
    features: np.ndarray  # [T, 9] float32 (NaN where undefined)
    outcome: np.ndarray  # [T] int8, chance outcome of bar t -> t+1 (0 DOWN, 1 NEUTRAL, 2 UP, -1)
    session_starts: dict[str, np.ndarray]  # split -> [S] int64 first row of each session
    session_bars: int
    window: int
    feature_names: tuple[str, ...] = FEATURE_NAMES
    _offsets: np.ndarray = field(init=False, repr=False, compare=False)  # [window] int64

    def __post_init__(self) -> None:
        object.__setattr__(self, "_offsets", np.arange(1 - self.window, 1, dtype=np.int64))

    def sessions(self, split: str) -> np.ndarray:
        """[S] int64 first rows of the sessions of `split` (train, validation or test)."""
        try:
            return self.session_starts[split]
        except KeyError:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}") from None

    def windows(self, rows: np.ndarray) -> np.ndarray:
        """[B] rows → [B, window, 9] float32: feature rows t−window+1..t of each row t.

        Every row must be at least window − 1 (all session rows are); this is a plain gather.
        """
        rows = np.asarray(rows, dtype=np.int64)
        gathered: np.ndarray = self.features[rows[..., None] + self._offsets]
        return gathered


def load_market(store_path: Path, config: Config) -> Market:
    """Load the prepared market of `config.data.instrument`; the connection is closed on return."""
    name = config.data.instrument
    columns = ", ".join(f"f.{c}" for c in FEATURE_NAMES)
    con = connect(store_path, read_only=True)
    try:
        reason = staleness(con, config)
        if reason is not None:
            raise DataError(
                f"{store_path}: {reason}; run `micro data prepare` to bring the store up to date"
            )
        arrays = con.execute(
            f"""
            SELECT epoch_us(c.ts) // 1000000 AS ts, c.open, c.high, c.low, c.close,
                   {columns}, f.outcome
            FROM candles c JOIN features f ON f.instrument = c.instrument AND f.ts = c.ts
            WHERE c.instrument = ? ORDER BY c.ts
            """,
            [name],
        ).fetchnumpy()
        sessions = con.execute(
            "SELECT split, start_row FROM sessions WHERE instrument = ? ORDER BY start_row",
            [name],
        ).fetchnumpy()
        stored_bars = one_row(con, "SELECT count(*) FROM candles WHERE instrument = ?", [name])[0]
    finally:
        con.close()
    if len(arrays["ts"]) != stored_bars:
        raise DataError(
            f"{store_path}: the features table does not cover every candle of {name}; run "
            "`micro data prepare --force`"
        )
    features = np.empty((len(arrays["ts"]), len(FEATURE_NAMES)), dtype=np.float32)
    for j, column in enumerate(FEATURE_NAMES):
        features[:, j] = _filled(arrays[column], np.nan)
    split_of = np.asarray(sessions["split"], dtype=object)
    start_rows = np.asarray(sessions["start_row"], dtype=np.int64)
    return Market(
        instrument=name,
        pip=instrument_facts(name).pip,
        ts=np.asarray(arrays["ts"], dtype=np.int64),
        open=np.asarray(arrays["open"], dtype=np.float64),
        high=np.asarray(arrays["high"], dtype=np.float64),
        low=np.asarray(arrays["low"], dtype=np.float64),
        close=np.asarray(arrays["close"], dtype=np.float64),
        features=features,
        outcome=np.asarray(arrays["outcome"], dtype=np.int8),
        session_starts={s: start_rows[split_of == s] for s in SPLITS},
        session_bars=config.data.session_bars,
        window=config.features.window,
    )


def _filled(values: np.ndarray, fill: float) -> np.ndarray:
    """A column as a plain array: SQL NULLs (a masked array) become `fill`."""
    if isinstance(values, np.ma.MaskedArray):
        return values.filled(fill)
    return np.asarray(values)
