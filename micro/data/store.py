"""The DuckDB market store `data/market.duckdb`: candles and metadata.

One writer: only `micro data …` opens it read-write. Services open it read-only, load the arrays
they need and close it at once (DuckDB lets no other process write while a reader holds it).
Candles are mid OHLC of 1-minute bars keyed by (instrument, ts); ts is the bar's open time in UTC
(a naive TIMESTAMP that always means UTC). Missing minutes stay missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from micro.errors import DataError

CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")

SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    instrument VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,
    PRIMARY KEY (instrument, ts)
);
CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
"""


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the store; read-only for services. A clear error when it is missing or locked."""
    path = Path(path)
    if read_only and not path.exists():
        raise DataError(
            f"{path}: no market store; run `micro data synth` (or `micro data import FILE`) "
            "and then `micro data prepare`"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DataError(
                f"{path}: the store is in use by another process; wait for the other "
                "`micro data` command (or stop the service holding it) and try again"
            ) from None
        raise DataError(f"{path}: cannot open the market store ({exc})") from None
    except duckdb.Error as exc:
        raise DataError(
            f"{path}: not a readable DuckDB store ({exc}); move it away and re-import"
        ) from None
    if not read_only:
        con.execute(SCHEMA)
    return con


@dataclass(frozen=True)
class CandleWrite:
    """What an import did: rows added, rows already stored with identical values."""

    inserted: int
    unchanged: int
    replaced: int = 0


def one_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...]:
    """The first row of a query that always has one (an aggregate, or a LIMIT 1 of a match)."""
    row = con.execute(sql, params or []).fetchone()
    if row is None:
        raise DataError(f"the store answered no row to {sql.split()[0]} …; is it corrupt?")
    return row


def write_candles(
    con: duckdb.DuckDBPyConnection,
    instrument: str,
    frame: pd.DataFrame,
    replace: bool = False,
) -> CandleWrite:
    """Insert `frame` (columns CANDLE_COLUMNS, ts naive UTC, unique, sorted) in one transaction.

    Bars already stored with identical values are skipped (re-importing changes nothing). A bar
    stored with different values is a conflict: refused unless `replace`. With `replace` every
    stored bar in the frame's time range is removed first, widened by the whole-hour shift at
    which the stored bars repeat the frame's (the same file imported before in another zone), so
    no bar of the earlier reading is left beside the new one.
    """
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"candle frame lacks columns {missing}")
    incoming = frame.loc[:, list(CANDLE_COLUMNS)]
    return _merge_incoming(
        con,
        instrument,
        replace,
        lambda: con.register("incoming", incoming),
        lambda: con.unregister("incoming"),
    )


def write_staged_candles(
    con: duckdb.DuckDBPyConnection, instrument: str, staged: Path, replace: bool = False
) -> CandleWrite:
    """`write_candles` of the `candles` table of the DuckDB file `staged`, never in memory whole.

    `staged` holds CANDLE_COLUMNS, ts naive UTC and unique (an import stages a file there a
    chunk at a time); it is attached read-only for the one transaction.
    """
    con.execute("ATTACH ? AS staged (READ_ONLY)", [str(staged)])
    try:
        columns = ", ".join(CANDLE_COLUMNS)
        return _merge_incoming(
            con,
            instrument,
            replace,
            lambda: con.execute(
                f"CREATE TEMP VIEW incoming AS SELECT {columns} FROM staged.candles"
            ),
            lambda: con.execute("DROP VIEW IF EXISTS incoming"),
        )
    finally:
        con.execute("DETACH staged")


def _merge_incoming(
    con: duckdb.DuckDBPyConnection,
    instrument: str,
    replace: bool,
    open_incoming: Callable[[], object],
    close_incoming: Callable[[], object],
) -> CandleWrite:
    """`write_candles`' transaction over `incoming` (CANDLE_COLUMNS), made by `open_incoming`.

    `open_incoming` runs inside the transaction (a pending result of the caller's is closed by
    then), `close_incoming` at its end whatever happened.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        open_incoming()
        count, lo, hi = one_row(con, "SELECT count(*), min(ts), max(ts) FROM incoming")
        count = int(count)
        step = max(1, count // SHIFT_PROBES)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE probe AS SELECT * FROM incoming "
            "QUALIFY (row_number() OVER (ORDER BY ts) - 1) % ? = 0",
            [step],
        )
        # Bars already stored with other values, computed once (imports can be millions of rows).
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE conflicts AS
            SELECT i.ts, c.close AS stored_close, i.close AS new_close
            FROM incoming i JOIN candles c ON c.instrument = ? AND c.ts = i.ts
            WHERE abs(c.open - i.open) > 1e-9 OR abs(c.high - i.high) > 1e-9
               OR abs(c.low - i.low) > 1e-9 OR abs(c.close - i.close) > 1e-9
            """,
            [instrument],
        )
        n_conflicts = int(one_row(con, "SELECT count(*) FROM conflicts")[0])
        shift = _zone_shift_hours(con, instrument) if n_conflicts or replace else 0
        if n_conflicts and not replace:
            first = one_row(
                con, "SELECT ts, stored_close, new_close FROM conflicts ORDER BY ts LIMIT 1"
            )
            ts = pd.Timestamp(first[0]).strftime("%Y-%m-%d %H:%M")
            cause = (
                f"the stored bars repeat the new ones {shift:+d} h away: this file was likely "
                f"imported before in another zone; check --tz, then pass --replace to replace "
                f"its whole range (the earlier reading's bars included)"
                if shift
                else "pass --replace to overwrite them with the new file's values"
            )
            raise DataError(
                f"{n_conflicts} bar(s) conflict with bars already stored for {instrument}, "
                f"first at {ts} UTC (stored close {first[1]}, new close {first[2]}); {cause}"
            )
        already = int(
            one_row(
                con,
                "SELECT count(*) FROM incoming i "
                "JOIN candles c ON c.instrument = ? AND c.ts = i.ts",
                [instrument],
            )[0]
        )
        identical = already - n_conflicts
        removed = 0
        if replace and count:
            low = pd.Timestamp(lo) + pd.Timedelta(hours=min(0, shift))
            high = pd.Timestamp(hi) + pd.Timedelta(hours=max(0, shift))
            window = [instrument, low.to_pydatetime(), high.to_pydatetime()]
            where = "WHERE instrument = ? AND ts BETWEEN ? AND ?"
            removed = int(one_row(con, f"SELECT count(*) FROM candles {where}", window)[0])
            con.execute(f"DELETE FROM candles {where}", window)
        con.execute(
            """
            INSERT INTO candles
            SELECT ?, i.ts, i.open, i.high, i.low, i.close, i.volume FROM incoming i
            ANTI JOIN (SELECT ts FROM candles WHERE instrument = ?) c ON c.ts = i.ts
            ORDER BY i.ts
            """,
            [instrument, instrument],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        close_incoming()
        con.execute("DROP TABLE IF EXISTS conflicts")
        con.execute("DROP TABLE IF EXISTS probe")
    return CandleWrite(
        inserted=count - already,
        unchanged=identical,
        replaced=removed - identical if replace else 0,
    )


# Bars of an import probed for a whole-hour shift against the stored ones, and the shifts tried.
SHIFT_PROBES = 2000
MAX_SHIFT_HOURS = 14


def _zone_shift_hours(con: duckdb.DuckDBPyConnection, instrument: str) -> int:
    """The whole-hour shift h (0: none) at which stored bars repeat most probed new bars' OHLC.

    A file imported before in another zone is stored h hours away from the new reading; h counts
    only when it explains at least half of the probed bars.
    """
    row = con.execute(
        """
        SELECT h, count(*) AS n
        FROM probe p CROSS JOIN range(-?, ? + 1) r(h)
        JOIN candles c ON c.instrument = ? AND c.ts = p.ts + to_hours(r.h)
        WHERE r.h <> 0 AND abs(c.open - p.open) <= 1e-9 AND abs(c.high - p.high) <= 1e-9
          AND abs(c.low - p.low) <= 1e-9 AND abs(c.close - p.close) <= 1e-9
        GROUP BY h ORDER BY n DESC, abs(h) LIMIT 1
        """,
        [MAX_SHIFT_HOURS, MAX_SHIFT_HOURS, instrument],
    ).fetchone()
    probes = int(one_row(con, "SELECT count(*) FROM probe")[0])
    if row is None or 2 * int(row[1]) < probes:
        return 0
    return int(row[0])


def _count(con: duckdb.DuckDBPyConnection, instrument: str) -> int:
    return int(one_row(con, "SELECT count(*) FROM candles WHERE instrument = ?", [instrument])[0])


def read_candles(
    con: duckdb.DuckDBPyConnection,
    instrument: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Candles of `instrument` in time order (ts naive UTC), optionally within [start, end)."""
    query = "SELECT ts, open, high, low, close, volume FROM candles WHERE instrument = ?"
    params: list[Any] = [instrument]
    if start is not None:
        query += " AND ts >= ?"
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        query += " AND ts < ?"
        params.append(pd.Timestamp(end).to_pydatetime())
    return con.execute(query + " ORDER BY ts", params).df()


def last_candle_time(con: duckdb.DuckDBPyConnection, instrument: str) -> pd.Timestamp | None:
    """Open time (UTC) of the newest stored bar of `instrument`, or None."""
    row = con.execute("SELECT max(ts) FROM candles WHERE instrument = ?", [instrument]).fetchone()
    return None if row is None or row[0] is None else pd.Timestamp(row[0])


def instruments(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0] for r in con.execute("SELECT DISTINCT instrument FROM candles ORDER BY 1").fetchall()
    ]


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: Any) -> None:
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, json.dumps(value, default=str)])


def get_meta(con: duckdb.DuckDBPyConnection, key: str, default: Any = None) -> Any:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    except duckdb.CatalogException:
        return default
    return default if row is None else json.loads(row[0])
