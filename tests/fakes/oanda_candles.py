"""The fake v20 server's candle source: M1 mid bars served by time range or count."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from tests.fakes.oanda_v20 import MAX_COUNT, ONE_MINUTE, ApiError, CandleSource


class Candles:
    """The fake's candle store: frames by instrument, or a callable producing [start, end)."""

    def __init__(self, source: CandleSource, instrument: str) -> None:
        self.function: Callable[..., pd.DataFrame] | None = None
        self.frames: dict[str, pd.DataFrame] = {}
        if callable(source) and not isinstance(source, pd.DataFrame):
            self.function = source
        elif isinstance(source, pd.DataFrame):
            self.frames[instrument] = _normalise(source)
        elif isinstance(source, dict):
            self.frames = {name: _normalise(frame) for name, frame in source.items()}

    def has(self, instrument: str) -> bool:
        return self.function is not None or instrument in self.frames

    def between(
        self, instrument: str, start: pd.Timestamp | None, end: pd.Timestamp
    ) -> pd.DataFrame:
        """Bars with start <= ts < end (from the first bar when `start` is None)."""
        if self.function is not None:
            first = start if start is not None else end - pd.Timedelta(days=30)
            frame = _normalise(self.function(instrument, first, end))
            return frame[(frame["ts"] >= first) & (frame["ts"] < end)]
        frame = self.frames[instrument]
        stamps = frame["ts"].to_numpy(dtype="datetime64[ns]")
        lo = 0 if start is None else np.searchsorted(stamps, _ns(start), side="left")
        hi = np.searchsorted(stamps, _ns(end), side="left")
        return frame.iloc[lo:hi]

    def select(
        self,
        instrument: str,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        count: int,
        include_first: bool,
        now: pd.Timestamp,
    ) -> pd.DataFrame:
        """OANDA's rules: from+to, from+count, to+count or the latest count bars up to now."""
        horizon = now.floor("min") + ONE_MINUTE  # the bar forming at `now` is visible
        if start is not None:
            first = start if include_first else start + pd.Timedelta(microseconds=1)
            if end is not None:
                frame = self.between(instrument, first, min(end, horizon))
                if len(frame) > MAX_COUNT:
                    raise ApiError(400, "Maximum value for 'count' exceeded")
                return frame
            return self._forward(instrument, first, count, horizon)
        stop = min(end, horizon) if end is not None else horizon
        return self._backward(instrument, stop, count)

    def _forward(
        self, instrument: str, start: pd.Timestamp, count: int, horizon: pd.Timestamp
    ) -> pd.DataFrame:
        if self.function is None:
            return self.between(instrument, start, horizon).iloc[:count]
        parts, have, cursor = [], 0, start
        window = pd.Timedelta(minutes=max(count, 1440) * 2)
        while have < count and cursor < horizon:
            part = self.between(instrument, cursor, min(cursor + window, horizon))
            parts.append(part)
            have += len(part)
            cursor += window
        return _concat(parts).iloc[:count]

    def _backward(self, instrument: str, stop: pd.Timestamp, count: int) -> pd.DataFrame:
        if self.function is None:
            return self.between(instrument, None, stop).iloc[-count:]
        parts, have, cursor = [], 0, stop
        window = pd.Timedelta(minutes=max(count, 1440) * 2)
        for _ in range(64):
            if have >= count:
                break
            part = self.between(instrument, cursor - window, cursor)
            parts.insert(0, part)
            have += len(part)
            cursor -= window
        return _concat(parts).iloc[-count:]


def _ns(moment: pd.Timestamp) -> np.datetime64:
    return np.datetime64(pd.Timestamp(moment).as_unit("ns").value, "ns")


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else _normalise(pd.DataFrame())


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ts (naive UTC datetime64[ns]), open, high, low, close, volume; sorted, unique."""
    columns = ["ts", "open", "high", "low", "close", "volume"]
    if frame.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="datetime64[ns]" if c == "ts" else "float64") for c in columns}
        )
    out = frame.loc[:, columns].copy()
    ts = pd.to_datetime(out["ts"])
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    out["ts"] = ts.astype("datetime64[ns]")
    out = out.sort_values("ts").drop_duplicates("ts", keep="last")
    return out.reset_index(drop=True)
