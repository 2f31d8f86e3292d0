"""The FX week as a check of a file's time zone: where its weekly opens and closes fall in UTC.

The spot FX market opens Sunday 17:00 New York and closes Friday 17:00 New York: Sunday ~21:00
(summer) or ~22:00 (winter) UTC to Friday ~21:00/22:00 UTC. A file read in the wrong zone shows
it: an MT4 export in broker server time (New York + 7 h: UTC+3 in summer, UTC+2 in winter) read
as UTC runs Monday 00:00 -> Friday 23:59, and bars fall where the market is closed. The check
looks at every weekend gap (and a first or last bar inside the closed weekend), measures how far
the open and close sit from the FX week's, and names the zone that would put them right.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
BROKER_ZONE = "America/New_York+7"
"""MT4 brokers' server time: New York wall clock + 7 h (UTC+2 winter, UTC+3 summer)."""

DEVIATION_HOURS = 0.5
"""An open or close further than this from the FX week's is a week that deviates (a holiday,
a data hole, a shifted zone); a few minutes late is the thin first minute of a week."""
_WEEKEND_GAP = pd.Timedelta(hours=24)
_REACH = pd.Timedelta(hours=14)  # an edge this far from the FX week's is not a weekly edge
_HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class Edge:
    """One weekly open or close as found: its UTC time and its distance from the FX week's."""

    kind: str  # "open" or "close"
    at: pd.Timestamp  # naive UTC: the open bar's time, or the end of the last bar
    error_hours: float  # found minus expected (Sunday/Friday 17:00 New York), in hours


@dataclass(frozen=True)
class WeekFit:
    """How a file's weeks sit against the FX week in UTC."""

    edges: tuple[Edge, ...]

    @property
    def opens(self) -> list[Edge]:
        return [e for e in self.edges if e.kind == "open"]

    @property
    def closes(self) -> list[Edge]:
        return [e for e in self.edges if e.kind == "close"]

    @property
    def shift_hours(self) -> int:
        """The whole hours the file's times sit late (+) or early (-) of UTC; 0 when right.

        A late open or an early close is common (a thin first minute, a holiday), so only an
        open found early, a close found late, or (with opens or closes only) a median error of
        1.5 h or more counts. With both, a file shifted early shows early opens and one shifted
        late late closes: a holiday's early close beside on-time opens is no shift.
        """
        if not self.edges:
            return 0
        errors = [e.error_hours for e in self.edges]
        median = float(np.median(errors))
        opens = [e.error_hours for e in self.opens]
        closes = [e.error_hours for e in self.closes]
        early_open = bool(opens) and float(np.median(opens)) < -0.5
        late_close = bool(closes) and float(np.median(closes)) > 0.5
        if opens and closes:
            if not (early_open or late_close):
                return 0
            median = float(np.median(opens if early_open else closes))
        if early_open or late_close or abs(median) >= 1.5:
            return int(np.round(median)) or (1 if median > 0 else -1)
        return 0

    def typical(self, kind: str, most: int = 2) -> list[tuple[str, int]]:
        """The `most` commonest weekday times of the opens or closes ('Sun 21:03', count).

        Two, because the FX week's UTC times move by an hour with daylight saving.
        """
        edges = self.opens if kind == "open" else self.closes
        return Counter(f"{e.at:%a %H:%M}" for e in edges).most_common(most)

    def deviating(self, tolerance_hours: float = DEVIATION_HOURS) -> list[Edge]:
        """The opens and closes further than `tolerance_hours` from the FX week's, in time order."""
        return sorted(
            (e for e in self.edges if abs(e.error_hours) > tolerance_hours), key=lambda e: e.at
        )

    def describe(self) -> str:
        """'weeks run Mon 00:03 -> Fri 23:59 UTC (3 opens, 4 closes)' as found."""
        parts = []
        for edges, label in ((self.opens, "open"), (self.closes, "close")):
            if edges:
                common = Counter(f"{e.at:%a %H:%M}" for e in edges).most_common(1)[0][0]
                parts.append((label, common, len(edges)))
        text = " -> ".join(f"{label}s {when}" for label, when, _ in parts)
        counts = ", ".join(f"{n} {label}(s)" for label, _, n in parts)
        return f"weekly {text} UTC ({counts})"


def expected(kind: str, near: pd.Timestamp) -> pd.Timestamp | None:
    """The FX week's open (Sunday) or close (Friday) 17:00 New York nearest `near`, naive UTC."""
    weekday = 6 if kind == "open" else 4
    best: pd.Timestamp | None = None
    for days in (-1, 0, 1):
        day = (near + pd.Timedelta(days=days)).date()
        if day.weekday() != weekday:
            continue
        local = dt.datetime(day.year, day.month, day.day, 17, 0, tzinfo=NEW_YORK)
        utc = pd.Timestamp(local.astimezone(dt.UTC).replace(tzinfo=None))
        if abs(utc - near) <= _REACH and (best is None or abs(utc - near) < abs(best - near)):
            best = utc
    return best


def week_fit(ts: pd.Series) -> WeekFit:
    """The weekly edges of sorted, naive UTC bar times `ts` [N]."""
    weekends = Weekends()
    weekends.add(pd.DatetimeIndex(ts).as_unit("ns").asi8)
    return weekends.fit()


class Weekends:
    """The weekend gaps (24 h or more) of sorted bar times fed a chunk at a time, for a WeekFit.

    Holds the gaps and the first and last time only, so a file of any length fits in memory.
    """

    def __init__(self) -> None:
        self.first: int | None = None  # ns since the epoch, naive UTC
        self.last: int | None = None
        self.gaps: list[tuple[int, int]] = []  # (the bar before, the bar after)

    def add(self, ns: np.ndarray) -> None:
        """The next sorted bar times [N] (int64 ns since the epoch, naive UTC)."""
        if not len(ns):
            return
        if self.last is not None:
            ns = np.concatenate([[self.last], ns])
        else:
            self.first = int(ns[0])
        for i in np.flatnonzero(np.diff(ns) >= _WEEKEND_GAP.value) + 1:
            self.gaps.append((int(ns[i - 1]), int(ns[i])))
        self.last = int(ns[-1])

    def fit(self) -> WeekFit:
        """The weekly opens and closes found, each with its distance from the FX week's."""
        if self.first is None or self.last is None:
            return WeekFit(())
        minute = pd.Timedelta(minutes=1)
        candidates: list[tuple[str, pd.Timestamp]] = []
        for before, after in self.gaps:
            candidates.append(("close", pd.Timestamp(before) + minute))
            candidates.append(("open", pd.Timestamp(after)))
        edges: list[Edge] = []
        for kind, at in candidates:
            want = expected(kind, at)
            if want is not None:
                edges.append(Edge(kind, at, (at - want) / _HOUR))
        # The first and last bar count only when they lie inside the closed weekend.
        first, last = pd.Timestamp(self.first), pd.Timestamp(self.last) + minute
        want = expected("open", first)
        if want is not None and first < want - 0.5 * _HOUR and not _has(edges, "open", first):
            edges.append(Edge("open", first, (first - want) / _HOUR))
        want = expected("close", last)
        if want is not None and last > want + 0.5 * _HOUR and not _has(edges, "close", last):
            edges.append(Edge("close", last, (last - want) / _HOUR))
        return WeekFit(tuple(edges))


def _has(edges: list[Edge], kind: str, at: pd.Timestamp) -> bool:
    return any(e.kind == kind and e.at == at for e in edges)


def likely_zone(fit: WeekFit, offset_at: dict[pd.Timestamp, float]) -> str:
    """The `--tz` that puts the file's weeks right, given the UTC offset (hours) it was read in.

    `offset_at` maps each edge's time to the offset of the zone the file was read in there.
    """
    true_offsets = {e.at: offset_at[e.at] + round(e.error_hours) for e in fit.edges}
    if not true_offsets:
        return "UTC"

    def fits(shift: float) -> bool:
        return all(off == _new_york_offset(at) + shift for at, off in true_offsets.items())

    if fits(7):
        return BROKER_ZONE
    if fits(0):
        return "America/New_York"
    common = Counter(true_offsets.values()).most_common(1)[0][0]
    return fixed_zone(int(common))


def fixed_zone(hours: int) -> str:
    """The IANA name of a fixed UTC offset: +3 -> Etc/GMT-3 (the sign is inverted)."""
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"


def _new_york_offset(at: pd.Timestamp) -> float:
    utc = at.to_pydatetime().replace(tzinfo=dt.UTC)
    offset = utc.astimezone(NEW_YORK).utcoffset()
    return offset.total_seconds() / 3600 if offset is not None else -5.0
