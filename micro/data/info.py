"""`micro data info [--json]`: what the store holds and whether its prepared tables are current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from micro.config import Config
from micro.data.sessions import SPLITS, gap_summary
from micro.data.stamp import candles_fingerprint, staleness
from micro.data.store import connect, get_meta, instruments
from micro.errors import DataError
from micro.runtime import Context


def store_report(store_path: Path, config: Config) -> dict[str, Any]:
    """Instrument, span, bars, gaps, sessions per split and freshness of the store, as data."""
    store_path = Path(store_path)
    if not store_path.exists():
        raise DataError(
            f"{store_path}: no market store; run `micro data synth` or `micro data import FILE` "
            "(then `micro data prepare`)"
        )
    name = config.data.instrument
    con = connect(store_path, read_only=True)
    try:
        try:
            held = instruments(con)
        except duckdb.CatalogException:
            held = []
        fingerprint = candles_fingerprint(con, name)
        ts = np.empty(0, dtype=np.int64)
        if fingerprint["bars"]:
            column = con.execute(
                "SELECT epoch_us(ts) // 1000000 FROM candles WHERE instrument = ? ORDER BY ts",
                [name],
            ).fetchnumpy()
            ts = np.asarray(next(iter(column.values())), dtype=np.int64)
        prepared = get_meta(con, "feature_version") is not None
        reason = staleness(con, config, fingerprint) if fingerprint["bars"] else "no candles"
        sessions = dict.fromkeys(SPLITS, 0)
        if prepared:
            try:
                rows = con.execute(
                    "SELECT split, count(*) FROM sessions WHERE instrument = ? GROUP BY split",
                    [name],
                ).fetchall()
            except duckdb.CatalogException:
                rows = []
            for split, n in rows:
                sessions[split] = int(n)
        prepared_at = get_meta(con, "prepared_at")
        scaling = get_meta(con, "feature_scaling")
        splits = get_meta(con, "splits")
    finally:
        con.close()
    gaps = gap_summary(ts, config.data.max_gap_minutes)
    return {
        "store": str(store_path),
        "instrument": name,
        "instruments": held,
        "bars": fingerprint["bars"],
        "first": fingerprint["first"],
        "last": fingerprint["last"],
        "gaps": {
            "over_minutes": config.data.max_gap_minutes,
            "count": gaps.gaps,
            "largest_minutes": gaps.largest_gap_minutes,
            "weekly_closes": gaps.weekly_closes,
        },
        "prepared": prepared,
        "current": reason is None,
        "stale_reason": reason,
        "prepared_at": prepared_at,
        "session_bars": config.data.session_bars,
        "sessions": sessions,
        "splits": splits,
        "feature_scaling": scaling,
    }


def run_info(ctx: Context) -> int:
    """`micro data info`: a short human summary, or one JSON object with --json."""
    report = store_report(ctx.home.store, ctx.config)
    if getattr(ctx.args, "json", False):
        print(json.dumps(report))
        return 0
    print(_human(report))
    return 0


def _human(report: dict[str, Any]) -> str:
    others = [i for i in report["instruments"] if i != report["instrument"]]
    lines = [f"store        {report['store']}", f"instrument   {report['instrument']}"]
    if others:
        lines.append(f"also stored  {', '.join(others)}")
    if not report["bars"]:
        lines.append("bars         0 (run `micro data synth` or `micro data import FILE` for it)")
        return "\n".join(lines)
    gaps = report["gaps"]
    sessions = report["sessions"]
    if report["current"]:
        state = f"current (prepared {report['prepared_at']})"
    elif report["prepared"]:
        state = f"STALE: {report['stale_reason']}; run `micro data prepare`"
    else:
        state = "not prepared; run `micro data prepare`"
    lines += [
        f"span         {report['first']} .. {report['last']} UTC",
        f"bars         {report['bars']:,}",
        f"gaps         {gaps['count']} over {gaps['over_minutes']} min inside trading weeks "
        f"(largest {gaps['largest_minutes']:g} min); {gaps['weekly_closes']} weekly closes",
        f"features     {state}",
        f"sessions     train {sessions['train']}, validation {sessions['validation']}, "
        f"test {sessions['test']} ({report['session_bars']} bars each)",
    ]
    return "\n".join(lines)
