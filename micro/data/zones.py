"""Time zones of imported files: `--tz` names, and local wall-clock times to naive UTC.

`--tz` takes an IANA zone (Europe/London, Etc/GMT-2), a fixed offset (+02:00, UTC+2) or an IANA
zone shifted by whole hours (America/New_York+7: MT4 broker server time, UTC+2 in winter and UTC+3
in summer). Local times become naive UTC chunk by chunk; a daylight-saving hour that repeats is
resolved from both its passes, and a time the clock skipped is refused with its line.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from micro.errors import DataError

OFFSET_ZONE = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
SHIFTED_ZONE = re.compile(r"^([A-Za-z_]+/[A-Za-z_/]+)([+-]\d{1,2})$")
CLOCK_CHANGE_ROWS = 400  # a chunk's last rows searched for a daylight-saving hour it cuts


def parse_zone(name: str) -> dt.tzinfo:
    """An IANA zone (Etc/GMT-2, Europe/London), a fixed offset (+02:00, UTC+2) as a tzinfo.

    A shifted zone (America/New_York+7) returns its IANA part; `_to_utc` applies the shift.
    """
    match = OFFSET_ZONE.match(name.strip())
    if match:
        sign, hours, minutes = match.groups()
        offset = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
        return dt.timezone(-offset if sign == "-" else offset)
    base, _ = zone_shift(name)
    try:
        return zoneinfo.ZoneInfo(base)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DataError(
            f"--tz {name}: unknown time zone; give an IANA name (UTC, Europe/London, "
            "Etc/GMT-2 for UTC+2, note the inverted sign), an offset such as +02:00, or "
            "America/New_York+7 for MT4 broker server time (UTC+2 winter, UTC+3 summer)"
        ) from None


def zone_shift(name: str) -> tuple[str, int]:
    """('America/New_York', 7) for 'America/New_York+7'; (name, 0) for any other name."""
    match = SHIFTED_ZONE.match(name.strip())
    if match and not name.strip().startswith("Etc/"):
        return match.group(1), int(match.group(2))
    return name.strip(), 0


def zone_offset_hours(zone_name: str, at_utc: pd.Timestamp) -> float:
    """The UTC offset in hours of `zone_name`'s wall clock at the naive UTC time `at_utc`."""
    zone = parse_zone(zone_name)
    _, shift = zone_shift(zone_name)
    offset = at_utc.to_pydatetime().replace(tzinfo=dt.UTC).astimezone(zone).utcoffset()
    return (offset.total_seconds() / 3600 if offset is not None else 0.0) + shift


def in_utc(
    tables: Iterator[pd.DataFrame],
    times: Callable[[pd.DataFrame], pd.Series],
    zone: dt.tzinfo,
    zone_name: str,
    path: Path,
) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
    """Each chunk with its times in naive UTC (`times` reads them, naive local or with offsets).

    Rows at a chunk's end inside a daylight-saving hour that repeats (autumn) wait for the next
    chunk, so that the repeated hour is resolved ('infer') from both its passes at once.
    """
    pending: pd.DataFrame | None = None
    for table in tables:
        if pending is not None:
            table = pd.concat([pending, table], ignore_index=True)
            pending = None
        parsed = times(table)
        keep = before_repeated_hour(parsed, zone, zone_name)
        if keep < len(table):
            pending = table.iloc[keep:].reset_index(drop=True)
            if keep == 0:
                continue
            table, parsed = table.iloc[:keep].reset_index(drop=True), parsed.iloc[:keep]
        yield table, to_utc(parsed, zone, zone_name, table["line"], path)
    if pending is not None:
        yield pending, to_utc(times(pending), zone, zone_name, pending["line"], path)


def before_repeated_hour(parsed: pd.Series, zone: dt.tzinfo, zone_name: str) -> int:
    """How many leading rows of a chunk do not end in a repeated (ambiguous) local hour."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype) or isinstance(zone, dt.timezone):
        return len(parsed)
    tail = parsed.iloc[-CLOCK_CHANGE_ROWS:].dt.floor("s")
    if not len(tail):
        return 0
    base = tail - pd.Timedelta(hours=zone_shift(zone_name)[1])
    local = base.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    ambiguous = (local.isna() & base.notna()).to_numpy()
    if not ambiguous[-1]:
        return len(parsed)
    clear = np.flatnonzero(~ambiguous)
    return len(parsed) - len(tail) + (int(clear[-1]) + 1 if len(clear) else 0)


def to_utc(
    naive: pd.Series, zone: dt.tzinfo, zone_name: str, lines: pd.Series, path: Path
) -> pd.Series:
    """Naive local times in `zone` -> naive UTC; a clear error for times a DST shift skips.

    Times that carry their own offset are only converted to naive UTC.
    """
    if isinstance(naive.dtype, pd.DatetimeTZDtype):
        return naive.dt.tz_convert("UTC").dt.tz_localize(None)
    naive = naive.dt.floor("s")  # sub-second noise is dropped; seconds are checked later
    _, shift = zone_shift(zone_name)
    naive = naive - pd.Timedelta(hours=shift)  # a shifted zone's clock, back to its base zone
    if zone_name.upper() in ("UTC", "ETC/UTC", "GMT") or zone == dt.UTC:
        return naive
    try:
        local = naive.dt.tz_localize(zone, ambiguous="infer", nonexistent="NaT")
    except Exception as exc:  # pytz/pandas raise several types for an ambiguous hour
        raise DataError(
            f"{path}: times in {zone_name} fall in a daylight-saving change that cannot be "
            f"resolved ({exc}); pass a fixed-offset zone instead, e.g. --tz Etc/GMT-2"
        ) from None
    skipped = local.isna().to_numpy() & naive.notna().to_numpy()
    if skipped.any():
        first = int(np.argmax(skipped))
        raise DataError(
            f"{path}, line {int(lines.iloc[first])}: {naive.iloc[first]} does not exist in "
            f"{zone_name} (the clock skipped it for daylight saving); the file is probably in "
            "a fixed-offset zone: pass e.g. --tz Etc/GMT-2"
        )
    return local.dt.tz_convert("UTC").dt.tz_localize(None)


def to_naive_utc(parsed: pd.Series, zone: dt.tzinfo) -> pd.Series:
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    if zone == dt.UTC:
        return parsed
    return parsed.dt.tz_localize(zone).dt.tz_convert("UTC").dt.tz_localize(None)
