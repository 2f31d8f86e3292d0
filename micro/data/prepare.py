"""`micro data prepare`: features, outcome labels, sessions and splits into data/market.duckdb.

The store is prepared for one instrument at a time (`data.instrument`). A prepare is stamped in
the meta table (`micro.data.stamp`: `feature_version`, `features_config_hash`,
`candles_fingerprint`) with `feature_scaling`, `prepared_at` and the full redacted `config`.
When the stamp matches the code, config and candles, prepare changes nothing; otherwise it
rebuilds the `features` and `sessions` tables in one transaction.

The split boundaries (`micro.data.sessions.SplitBoundaries`, UTC instants) are placed by
`data.train_fraction`/`validation_fraction` at the first prepare and then kept in the meta
(`split_boundaries`, with the fractions they came from): appending or prepending candles never
moves a stored bar into another split. `--resplit` places them again from the fractions on the
candles stored now, which changes the data fingerprint (`micro.data.fingerprint`) of every
checkpoint and report made before. Each split's candles are hashed into `split_candles`.
Undefined features (the first rows, before a full lookback) are stored as NULL.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from micro.config import Config
from micro.data.sessions import (
    SPLITS,
    SplitBoundaries,
    boundaries_from_fractions,
    cut_sessions,
    split_zones,
)
from micro.data.stamp import SPLIT_FRACTIONS, candles_fingerprint, features_config_hash, staleness
from micro.data.store import connect, get_meta, set_meta, write_candles
from micro.errors import DataError
from micro.features import FEATURE_NAMES, FEATURE_VERSION
from micro.features.outcomes import outcome_labels
from micro.features.scaling import FeatureScaling, fit_scaling
from micro.features.temporal import raw_features, scale_features
from micro.home import Home
from micro.instruments import instrument as instrument_facts
from micro.runtime import Context

log = logging.getLogger("micro.data")

FEATURE_COLUMNS_DDL = ",\n    ".join(f"{name} FLOAT" for name in FEATURE_NAMES)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS features (
    instrument VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    {FEATURE_COLUMNS_DDL},
    outcome TINYINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    instrument VARCHAR NOT NULL,
    session_id INTEGER NOT NULL,
    split VARCHAR NOT NULL,
    start_ts TIMESTAMP NOT NULL,
    end_ts TIMESTAMP NOT NULL,
    start_row BIGINT NOT NULL,
    bars INTEGER NOT NULL
);
"""


def _no_candles(store_path: Path, instrument: str) -> DataError:
    return DataError(
        f"{store_path}: no candles for {instrument}; run `micro data synth` or "
        "`micro data import FILE` first"
    )


def prepare_store(
    store_path: Path, config: Config, force: bool = False, resplit: bool = False
) -> dict[str, Any]:
    """Bring the features, labels and sessions of `store_path` up to date; a summary of it.

    `resplit`: place the split boundaries again from the configured fractions (and rebuild).
    """
    started = time.perf_counter()
    name = config.data.instrument
    pip = instrument_facts(name).pip
    store_path = Path(store_path)
    if not store_path.exists():
        raise _no_candles(store_path, name)
    con = connect(store_path)
    try:
        fingerprint = candles_fingerprint(con, name)
        if fingerprint["bars"] == 0:
            raise _no_candles(store_path, name)
        reason = None if force or resplit else staleness(con, config, fingerprint)
        if not (force or resplit) and reason is None:
            summary = _summary(con, name, "up to date", None, fingerprint)
            summary["seconds"] = round(time.perf_counter() - started, 3)
            return summary
        reason = reason or ("--resplit" if resplit else "--force")
        log.info("preparing %s (%d bars): %s", name, fingerprint["bars"], reason)
        with _steps(5) as step:
            step("reading candles")
            candles = con.execute(
                """
                SELECT epoch_us(ts) // 1000000 AS ts, high, low, close
                FROM candles WHERE instrument = ? ORDER BY ts
                """,
                [name],
            ).fetchnumpy()
            ts = np.asarray(candles["ts"], dtype=np.int64)  # [T] seconds, UTC
            high = np.asarray(candles["high"], dtype=np.float64)  # [T]
            low = np.asarray(candles["low"], dtype=np.float64)  # [T]
            close = np.asarray(candles["close"], dtype=np.float64)  # [T]
            del candles
            step("computing features")
            raw = raw_features(ts, high, low, close, pip, config.features)  # [T, F] float64
            boundaries = _boundaries(con, ts, config, resplit)
            train_end = split_zones(ts, config.data, boundaries)["train"][1]
            scaling = fit_scaling(raw[:train_end, 1], raw[:train_end, 2])
            features = scale_features(raw, scaling)  # [T, 9] float32
            del raw
            step("labelling outcomes")
            outcome = outcome_labels(close, config.features)  # [T] int8
            step("cutting sessions")
            sessions = cut_sessions(
                ts, high, low, outcome, pip, config.data, config.features, boundaries
            )
            step("writing tables")
            _write(con, config, ts, features, outcome, sessions, scaling, fingerprint, boundaries)
        summary = _summary(con, name, "rebuilt", reason, fingerprint)
    finally:
        con.close()
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def _write(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    ts: np.ndarray,
    features: np.ndarray,
    outcome: np.ndarray,
    sessions: dict[str, np.ndarray],
    scaling: FeatureScaling,
    fingerprint: dict[str, Any],
    boundaries: SplitBoundaries,
) -> None:
    """Replace the features and sessions tables and stamp the meta, in one transaction."""
    name = config.data.instrument
    bars = config.data.session_bars
    stamps = ts.astype("datetime64[s]")  # [T] naive UTC
    frame = pd.DataFrame({"ts": stamps})
    for j, column in enumerate(FEATURE_NAMES):
        frame[column] = features[:, j]
    frame["outcome"] = outcome
    rows = []
    for split in SPLITS:
        for start in sessions[split]:
            rows.append((split, int(start)))
    rows.sort(key=lambda r: r[1])
    starts = np.array([r[1] for r in rows], dtype=np.int64)
    session_frame = pd.DataFrame(
        {
            "session_id": np.arange(len(rows), dtype=np.int32),
            "split": [r[0] for r in rows],
            "start_ts": stamps[starts],
            "end_ts": stamps[starts + bars - 1],
            "start_row": starts,
            "bars": np.full(len(rows), bars, dtype=np.int32),
        }
    )
    zones = split_zones(ts, config.data, boundaries)
    splits_meta = {
        split: {
            "start_row": start,
            "end_row": end,
            "first": str(stamps[start]) if end > start else None,
            "last": str(stamps[end - 1]) if end > start else None,
        }
        for split, (start, end) in zones.items()
    }
    columns = ", ".join(FEATURE_NAMES)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(SCHEMA)
        con.execute("DELETE FROM features")
        con.execute("DELETE FROM sessions")
        con.register("prepared_features", frame)
        con.execute(
            f"INSERT INTO features SELECT ?, ts, {columns}, outcome FROM prepared_features",
            [name],
        )
        con.register("prepared_sessions", session_frame)
        con.execute(
            """
            INSERT INTO sessions SELECT ?, session_id, split, start_ts, end_ts, start_row, bars
            FROM prepared_sessions
            """,
            [name],
        )
        set_meta(con, "feature_version", FEATURE_VERSION)
        set_meta(con, "features_config_hash", features_config_hash(config))
        set_meta(con, "candles_fingerprint", fingerprint)
        set_meta(con, "feature_scaling", scaling.to_dict())
        set_meta(con, "prepared_instrument", name)
        set_meta(con, "splits", splits_meta)
        set_meta(con, "split_boundaries", _boundaries_meta(con, config, boundaries))
        set_meta(con, "split_candles", split_candles(con, name, boundaries))
        set_meta(con, "prepared_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        set_meta(con, "config", config.to_dict(redact=True))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for view in ("prepared_features", "prepared_sessions"):
            try:
                con.unregister(view)
            except duckdb.Error:
                pass


def _boundaries(
    con: duckdb.DuckDBPyConnection, ts: np.ndarray, config: Config, resplit: bool
) -> SplitBoundaries:
    """The boundaries kept in the store, or new ones from the fractions (first prepare, resplit)."""
    stored = get_meta(con, "split_boundaries")
    placed = boundaries_from_fractions(ts, config.data)
    if stored is None or resplit:
        if stored is not None:
            old = SplitBoundaries.from_dict(stored)
            log.warning(
                "--resplit: validation starts %s (was %s), test starts %s (was %s); checkpoints "
                "and reports made on the old split will be refused (their data fingerprint "
                "differs)",
                placed.to_dict()["validation_start"],
                old.to_dict()["validation_start"],
                placed.to_dict()["test_start"],
                old.to_dict()["test_start"],
            )
        return placed
    kept = SplitBoundaries.from_dict(stored)
    fractions = {k: getattr(config.data, k) for k in SPLIT_FRACTIONS}
    if stored.get("fractions") != fractions:
        log.warning(
            "data.train_fraction/validation_fraction %s differ from the fractions the stored "
            "split was placed with (%s); the boundaries stay where they are (validation from "
            "%s, test from %s UTC); run `micro data prepare --resplit` to move them",
            fractions,
            stored.get("fractions"),
            stored.get("validation_start"),
            stored.get("test_start"),
        )
    return kept


def _boundaries_meta(
    con: duckdb.DuckDBPyConnection, config: Config, boundaries: SplitBoundaries
) -> dict[str, Any]:
    """What the meta keeps of the boundaries: the instants, and when and from what they came."""
    stored = get_meta(con, "split_boundaries")
    if stored is not None and SplitBoundaries.from_dict(stored) == boundaries:
        return dict(stored)  # kept: when and from what they were placed stays as it was
    return {
        **boundaries.to_dict(),
        "fractions": {k: getattr(config.data, k) for k in SPLIT_FRACTIONS},
        "placed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def split_candles(
    con: duckdb.DuckDBPyConnection, instrument: str, boundaries: SplitBoundaries
) -> dict[str, dict[str, Any]]:
    """Each split's candles (embargo included): count, first/last bar and an xor of row hashes."""
    ranges = {
        "train": (None, boundaries.validation_start),
        "validation": (boundaries.validation_start, boundaries.test_start),
        "test": (boundaries.test_start, None),
    }
    out = {}
    for split, (start, end) in ranges.items():
        row = con.execute(
            """
            SELECT count(*), min(ts), max(ts), bit_xor(hash(ts, open, high, low, close, volume))
            FROM candles WHERE instrument = ?
              AND (? IS NULL OR epoch_us(ts) >= ?::BIGINT * 1000000)
              AND (? IS NULL OR epoch_us(ts) < ?::BIGINT * 1000000)
            """,
            [instrument, start, start, end, end],
        ).fetchone()
        bars, first, last, checksum = row if row is not None else (0, None, None, None)
        out[split] = {
            "bars": int(bars),
            "first": None if first is None else pd.Timestamp(first).isoformat(),
            "last": None if last is None else pd.Timestamp(last).isoformat(),
            "checksum": None if checksum is None else int(checksum),
        }
    return out


def _summary(
    con: duckdb.DuckDBPyConnection,
    name: str,
    status: str,
    reason: str | None,
    fingerprint: dict[str, Any],
) -> dict[str, Any]:
    counts = dict.fromkeys(SPLITS, 0)
    for split, n in con.execute(
        "SELECT split, count(*) FROM sessions WHERE instrument = ? GROUP BY split", [name]
    ).fetchall():
        counts[split] = int(n)
    return {
        "status": status,
        "reason": reason,
        "instrument": name,
        "bars": fingerprint["bars"],
        "first": fingerprint["first"],
        "last": fingerprint["last"],
        "sessions": counts,
        "feature_scaling": get_meta(con, "feature_scaling"),
        "split_boundaries": get_meta(con, "split_boundaries"),
        "prepared_at": get_meta(con, "prepared_at"),
    }


@contextmanager
def _steps(total: int) -> Iterator[Any]:
    """Progress through prepare: a transient rich bar on a terminal, log lines otherwise."""
    if not sys.stderr.isatty():

        def log_step(description: str) -> None:
            log.info("prepare: %s", description)

        yield log_step
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("prepare", total=total)
        done = [0]

        def bar_step(description: str) -> None:
            if done[0]:
                progress.advance(task)
            done[0] += 1
            progress.update(task, description=f"prepare: {description}")

        yield bar_step
        progress.update(task, completed=total)


def run_prepare(ctx: Context) -> int:
    """`micro data prepare [--force] [--resplit]`."""
    ctx.start_logging("data")
    if getattr(ctx.args, "default_if_empty", False):
        ensure_default_data(ctx.home, ctx.config)
        return 0
    summary = prepare_store(
        ctx.home.store,
        ctx.config,
        force=getattr(ctx.args, "force", False),
        resplit=getattr(ctx.args, "resplit", False),
    )
    _log_summary(summary)
    return 0


def _log_summary(summary: dict[str, Any]) -> list[str]:
    """Log what prepare did; returns its warnings (a split without sessions), as logged."""
    sessions = summary["sessions"]
    log.info(
        "%s %s: %d bars %s .. %s UTC; sessions train %d, validation %d, test %d (%.1f s)",
        summary["instrument"],
        summary["status"],
        summary["bars"],
        summary["first"],
        summary["last"],
        sessions["train"],
        sessions["validation"],
        sessions["test"],
        summary["seconds"],
    )
    boundaries = summary.get("split_boundaries") or {}
    if boundaries:
        log.info(
            "splits fixed in UTC: validation from %s, test from %s (`micro data prepare "
            "--resplit` moves them)",
            boundaries.get("validation_start"),
            boundaries.get("test_start"),
        )
    if sum(sessions.values()) == 0:
        warnings = [
            "no sessions: the candles are too short or too gappy for data.session_bars; add "
            "data or lower data.session_bars / data.min_session_range_pips"
        ]
    else:
        warnings = [
            f"the {split} split has 0 sessions: its span (less data.embargo_minutes) is too "
            "short or too gappy for one session; add candles (appended bars fall into test), "
            "lower data.session_bars / data.embargo_minutes, or change data.train_fraction/"
            "validation_fraction and run `micro data prepare --resplit`"
            for split in SPLITS
            if sessions[split] == 0
        ]
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def ensure_default_data(home: Home, config: Config) -> list[str]:
    """For `micro up`: synthesise default candles when the store has none, then prepare.

    Returns prepare's warnings (a split without sessions), logged already, for a caller whose
    log does not reach the console (`micro up` behind its dashboard) to show.
    """
    from micro.data.synth import synthesize

    name = config.data.instrument
    con = connect(home.store)
    try:
        bars = candles_fingerprint(con, name)["bars"]
        if bars == 0:
            cfg = config.data
            log.warning(
                "no candles for %s in %s: generating %d days of SYNTHETIC %s-regime data "
                "(seed %d). Everything that follows trains and trades on made-up prices. For "
                "real data run `micro data import FILE` or `micro data download`.",
                name,
                home.store,
                cfg.synth_days,
                cfg.synth_regime,
                cfg.synth_seed,
            )
            frame = synthesize(name, cfg.synth_days, cfg.synth_seed, cfg.synth_regime, "2022-01-03")
            write_candles(con, name, frame)
    finally:
        con.close()
    return _log_summary(prepare_store(home.store, config))
