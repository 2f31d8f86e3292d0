"""`micro data info [--json]`: what the store holds and whether its prepared tables are current."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from micro.config import Config
from micro.data import weeks
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
        "weeks": week_report(ts),
        "prepared": prepared,
        "current": reason is None,
        "stale_reason": reason,
        "prepared_at": prepared_at,
        "session_bars": config.data.session_bars,
        "sessions": sessions,
        "splits": splits,
        "feature_scaling": scaling,
    }


def week_report(ts: np.ndarray) -> dict[str, Any]:
    """The weekly opens and closes as found in bar times `ts` [T] (s UTC), against the FX week.

    Every open and close (one per week the span holds whole), their commonest weekday times,
    those more than `weeks.DEVIATION_HOURS` from the FX week's (Sunday/Friday 17:00 New York),
    and the whole-hour shift of the store's times (0: they sit on the FX week).
    """
    fit = weeks.week_fit(pd.Series(pd.to_datetime(ts, unit="s")))

    def edge(e: weeks.Edge) -> dict[str, Any]:
        return {
            "kind": e.kind,
            "at": f"{e.at:%Y-%m-%d %H:%M}",
            "weekday_time": f"{e.at:%a %H:%M}",
            "off_hours": round(e.error_hours, 3),
        }

    return {
        "opens": [edge(e) for e in fit.opens],
        "closes": [edge(e) for e in fit.closes],
        "typical_opens": [[when, n] for when, n in fit.typical("open")],
        "typical_closes": [[when, n] for when, n in fit.typical("close")],
        "deviating": [edge(e) for e in fit.deviating()],
        "tolerance_hours": weeks.DEVIATION_HOURS,
        "shift_hours": fit.shift_hours,
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
        *_week_lines(report["weeks"]),
        f"features     {state}",
        f"sessions     train {sessions['train']}, validation {sessions['validation']}, "
        f"test {sessions['test']} ({report['session_bars']} bars each)",
    ]
    return "\n".join(lines)


def _week_lines(found: dict[str, Any]) -> list[str]:
    """'weeks  opens Sun 21:03 (4), closes Fri 20:59 (5) UTC; ...' and the weeks that deviate."""
    if not found["opens"] and not found["closes"]:
        return ["weeks        no weekly open or close in the span (no whole weekend stored)"]
    parts = []
    for key, label in (("typical_opens", "opens"), ("typical_closes", "closes")):
        if found[key]:
            parts.append(f"{label} " + ", ".join(f"{when} ({n})" for when, n in found[key]))
    shift = found["shift_hours"]
    if shift:
        verdict = (
            f"they sit {abs(shift)} h {'late' if shift > 0 else 'early'} of the FX week "
            "(Sun/Fri 17:00 New York): a file imported in the wrong zone? re-import it with "
            "the right --tz and --replace"
        )
    else:
        verdict = "on the FX week (Sun/Fri 17:00 New York)"
    lines = [f"weeks        {'; '.join(parts)} UTC: {verdict}"]
    deviating = found["deviating"]
    for e in deviating[:_SHOWN_DEVIATIONS]:
        lines.append(
            f"             {e['kind']} {e['at']} ({e['weekday_time'][:3]}) UTC is "
            f"{abs(e['off_hours']):.1f} h {'late' if e['off_hours'] > 0 else 'early'}"
        )
    if len(deviating) > _SHOWN_DEVIATIONS:
        tally = Counter(
            f"{abs(e['off_hours']):.1f} h {'late' if e['off_hours'] > 0 else 'early'}"
            for e in deviating
        )
        common = ", ".join(f"{n} {off}" for off, n in tally.most_common(3))
        lines.append(
            f"             and {len(deviating) - _SHOWN_DEVIATIONS} more open(s)/close(s) "
            f"over {found['tolerance_hours']:g} h off (of all {len(deviating)}: {common}; "
            "`micro data info --json` lists them)"
        )
    return lines


_SHOWN_DEVIATIONS = 5
