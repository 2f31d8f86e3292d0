"""Write the shipped M1 samples: 600 synthetic GBP_JPY bars in the MT4, HistData and OANDA formats.

The bars come from micro's own generator (`micro data synth`, trend regime, seed 11) starting
2022-01-03 00:00 UTC, so the project may ship them. Each file holds the same bars in its format's
usual zone: MT4 in a broker's server time (UTC+2, import with `--tz Etc/GMT-2`), HistData in
EST without daylight saving (its default), OANDA in UTC (v20 candles JSON with one incomplete
candle at the end, as the API returns it, and OANDA CSV). The importer tests read them where
the real exports (`SHARED_DATA` in tests/conftest.py) are absent. Regenerate (only if the
formats change):

    .venv/bin/python -m tests.samples.make_samples
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from micro.data.synth import synthesize

HERE = Path(__file__).resolve().parent
BARS = 600
MT4 = HERE / "GBPJPY_M1_synth_mt4.csv"
HISTDATA = HERE / "DAT_ASCII_GBPJPY_M1_synth.csv"
OANDA_JSON = HERE / "GBPJPY_M1_synth_oanda.json"
OANDA_CSV = HERE / "GBPJPY_M1_synth_oanda.csv"
MT4_ZONE = "Etc/GMT-2"  # the broker's server time, UTC+2


def sample_bars() -> pd.DataFrame:
    """The sample's bars: ts naive UTC, open, high, low, close (3 decimals), volume."""
    frame = synthesize("GBP_JPY", 1, 11, "trend", "2022-01-03").iloc[:BARS]
    return frame.reset_index(drop=True)


def prices(row: pd.Series, sep: str) -> str:
    """open, high, low, close with 3 decimals, joined by `sep`."""
    return sep.join(f"{row[c]:.3f}" for c in ("open", "high", "low", "close"))


def rfc3339(ts: pd.Timestamp) -> str:
    """A naive UTC time as the v20 API writes it (nanoseconds, Z)."""
    return f"{ts:%Y-%m-%dT%H:%M:%S}.000000000Z"


def write_samples(bars: pd.DataFrame) -> None:
    """The four files, from the same bars."""
    mt4_ts = bars["ts"] + pd.Timedelta(hours=2)
    est_ts = bars["ts"] - pd.Timedelta(hours=5)
    MT4.write_text(
        "".join(
            f"{ts:%Y.%m.%d,%H:%M},{prices(row, ',')},{int(row['volume'])}\n"
            for ts, (_, row) in zip(mt4_ts, bars.iterrows(), strict=True)
        )
    )
    HISTDATA.write_text(  # HistData's volume column is always 0
        "".join(
            f"{ts:%Y%m%d %H%M%S};{prices(row, ';')};0\n"
            for ts, (_, row) in zip(est_ts, bars.iterrows(), strict=True)
        )
    )
    candles = [
        {
            "complete": True,
            "volume": int(row["volume"]),
            "time": rfc3339(row["ts"]),
            "mid": {k[0]: f"{row[k]:.3f}" for k in ("open", "high", "low", "close")},
        }
        for _, row in bars.iterrows()
    ]
    forming = dict(candles[-1], complete=False)
    forming["time"] = (
        f"{bars['ts'].iloc[-1] + pd.Timedelta(minutes=1):%Y-%m-%dT%H:%M:%S}.000000000Z"
    )
    OANDA_JSON.write_text(  # the API's document, one candle a line
        '{"instrument": "GBP_JPY", "granularity": "M1", "candles": [\n'
        + ",\n".join(json.dumps(c, separators=(",", ":")) for c in [*candles, forming])
        + "\n]}\n"
    )
    OANDA_CSV.write_text(
        "time,open,high,low,close,volume\n"
        + "".join(
            f"{row['ts']:%Y-%m-%dT%H:%M:%S}Z,{prices(row, ',')},{int(row['volume'])}\n"
            for _, row in bars.iterrows()
        )
    )


def fx_week_times(first_sunday: str, weeks: int) -> pd.DatetimeIndex:
    """Naive UTC minute bars of `weeks` FX weeks: Sunday 17:00 to Friday 17:00 New York."""
    spans = []
    for week in range(weeks):
        sunday = pd.Timestamp(first_sunday) + pd.Timedelta(days=7 * week)
        opens = (sunday + pd.Timedelta(hours=17)).tz_localize("America/New_York")
        closes = (sunday + pd.Timedelta(days=5, hours=17)).tz_localize("America/New_York")
        spans.append(
            pd.date_range(opens.tz_convert("UTC"), closes.tz_convert("UTC"), freq="1min")[:-1]
        )
    return pd.DatetimeIndex(pd.concat([s.to_series() for s in spans])).tz_localize(None)


def write_fx_weeks_mt4(
    path: Path, first_sunday: str, weeks: int, zone: str = "UTC", sep: str = ","
) -> pd.DatetimeIndex:
    """An MT4 export of `weeks` whole FX weeks, its clock in `zone`; returns the UTC times.

    Prices are a slow GBP_JPY-like zigzag (valid OHLC); `zone` is any name `--tz` takes
    (America/New_York+7 is MT4 broker server time).
    """
    from micro.data.zones import parse_zone, zone_shift

    utc = fx_week_times(first_sunday, weeks)
    _, shift = zone_shift(zone)
    local = utc.tz_localize("UTC").tz_convert(parse_zone(zone)).tz_localize(None) + pd.Timedelta(
        hours=shift
    )
    step = (pd.Series(range(len(utc))) % 240 - 120).abs().to_numpy() * 0.01
    rows = []
    for stamp, level in zip(local, step, strict=True):
        o = 169.0 + level
        rows.append(
            f"{stamp:%Y.%m.%d}{sep}{stamp:%H:%M}{sep}{o:.3f}{sep}{o + 0.02:.3f}{sep}"
            f"{o - 0.02:.3f}{sep}{o + 0.01:.3f}{sep}5\n"
        )
    path.write_text("".join(rows))
    return utc


if __name__ == "__main__":
    write_samples(sample_bars())
    for path in (MT4, HISTDATA, OANDA_JSON, OANDA_CSV):
        print(f"{path.relative_to(HERE.parents[1])}: {path.stat().st_size:,} bytes")
