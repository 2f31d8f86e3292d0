"""Benchmark of `micro data prepare` and `micro data import`: synthetic bars, timed.

Synthesises `--bars` M1 bars (default 1.3 million, ~3.5 years like the original GBPJPY set),
writes them to a store in a temporary folder, then runs `prepare_store` in a child process so
the synthesis' memory does not count, and reports the child's wall time and peak RSS. The numba
kernels are compiled (or loaded from cache) in the child on a tiny store before the clock
starts. A plain pandas rolling-window implementation of the same features and labels is timed on
a slice in the same run as the reference (and checked against the fast path). Prints one JSON
object. Target: 1.3 M bars prepared in ≤ 30 s and ≤ 2 GiB on 2 cores.

Import: an MT4 export of `--import-bars` synthetic bars (default 1.3 million) and one of
`--large-import-bars` (default 10 million; 0 skips it), written in broker server time
(America/New_York+7) into a temporary folder, each imported by the real `micro data import`
in a child process; its wall time and peak RSS (`os.wait4`) are reported. The reference is a
plain `pandas.read_csv` of the whole 1.3-million-row file in a child process, no checks and no
store: what reading it at once costs. Target: the 10-million-row import within 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from micro.config import Config
from micro.data.store import connect, write_candles
from micro.data.synth import days_for_bars, synthesize
from micro.features.outcomes import outcome_labels
from micro.features.temporal import raw_features

INSTRUMENT = "GBP_JPY"
PIP = 0.01
BROKER_ZONE = "America/New_York+7"  # MT4 broker server time
GIB_MB = 1024.0

PEAK_OF = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
open(sys.argv[1], "w").write(str(peak_kb))
sys.exit(code)
"""

READ_WHOLE = """
import sys
import pandas as pd
names = ["date", "time", "open", "high", "low", "close", "volume"]
pd.read_csv(sys.argv[1], header=None, names=names, dtype={"date": str, "time": str})
"""

CHILD = """
import json, resource, sys, time
from pathlib import Path
from micro.config import Config
from micro.data.prepare import prepare_store
prepare_store(Path(sys.argv[2]), Config())  # compile or load the numba kernels
started = time.perf_counter()
summary = prepare_store(Path(sys.argv[1]), Config(), force=True)
seconds = time.perf_counter() - started
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sessions = summary["sessions"]
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024, "sessions": sessions}))
"""


def reference_features(frame: pd.DataFrame, range_bars: int = 60, fast_bars: int = 5) -> np.ndarray:
    """[T, 9] raw features (momentum/range unscaled pips) with plain pandas rolling windows."""
    close, high, low = frame["close"], frame["high"], frame["low"]
    hi = high.rolling(range_bars).max()
    lo = low.rolling(range_bars).min()
    out = pd.DataFrame(index=frame.index)
    out[0] = ((close - lo) / np.maximum(hi - lo, PIP)).clip(0.0, 1.0)
    out[1] = (close - close.shift(range_bars)) / PIP
    out[2] = (hi - lo) / PIP
    out[3] = np.tanh((close - close.shift(fast_bars)) / PIP / 10.0)
    out[4] = np.tanh((close - close.shift(1)) / PIP / 10.0)
    ts = frame["ts"]
    weekday = ts.dt.day_of_week
    out[5] = np.cos(2 * np.pi * weekday / 7)
    out[6] = np.sin(2 * np.pi * weekday / 7)
    week_open = (ts - pd.Timedelta(hours=21)).dt.to_period("W-SAT").dt.start_time + pd.Timedelta(
        hours=21
    )
    hours = ((ts - week_open) / pd.Timedelta(hours=1)).clip(0.0, 120.0 - 1.0 / 60.0)
    out[7] = np.cos(2 * np.pi * hours / 120.0)
    out[8] = np.sin(2 * np.pi * hours / 120.0)
    history = max(range_bars, fast_bars)
    values = out.to_numpy(dtype=np.float64)
    values[:history] = np.nan
    return values


def reference_outcomes(close: pd.Series, std_bars: int = 20, k: float = 0.33) -> np.ndarray:
    """[T] int8 outcome labels with a pandas rolling std."""
    change = close.diff()
    thr = k * change.rolling(std_bars).std(ddof=0)
    d = close.shift(-1) - close
    labels = np.where(d > thr, 2, np.where(d < -thr, 0, 1)).astype(np.int8)
    labels[thr.isna().to_numpy() | d.isna().to_numpy()] = -1
    return labels


def write_mt4(path: Path, bars: int, seed: int = 7) -> int:
    """An MT4 export of `bars` synthetic GBP_JPY bars in broker server time; returns the rows.

    Synthesised and written 52 weeks at a time (each year its own seed, from 1990), so the
    writer's memory does not grow with the file; DuckDB formats the text.
    """
    written, year = 0, 0
    part = path.with_suffix(".part")
    con = duckdb.connect()
    with open(path, "wb") as out:
        while written < bars:
            start = pd.Timestamp("1990-01-01") + pd.Timedelta(weeks=52 * year)
            frame = synthesize(INSTRUMENT, 364, seed + year, "trend", start)
            frame = frame.iloc[: bars - written]
            utc = frame["ts"].dt.tz_localize("UTC")
            local = utc.dt.tz_convert("America/New_York").dt.tz_localize(None)
            frame["local"] = local + pd.Timedelta(hours=7)
            con.register("bars", frame)
            con.execute(
                f"""
                COPY (SELECT strftime(local, '%Y.%m.%d'), strftime(local, '%H:%M'),
                    printf('%.3f', open), printf('%.3f', high), printf('%.3f', low),
                    printf('%.3f', close), CAST(volume AS BIGINT)
                FROM bars ORDER BY local) TO '{part}' (HEADER false, QUOTE '')
                """
            )
            con.unregister("bars")
            with open(part, "rb") as piece:
                shutil.copyfileobj(piece, out)
            written += len(frame)
            year += 1
    part.unlink()
    con.close()
    return written


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run `command` as a grandchild; its wall seconds and peak RSS in MB (exit status checked).

    Linux hands a forked child its parent's RSS high-water mark, so this process (hundreds of
    MB after synthesising) would count in a child's peak: a small Python process in between
    starts the command and reads its peak with `RUSAGE_CHILDREN`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak_kb"
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-S", "-c", PEAK_OF, str(peak_file), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        if child.returncode != 0:
            sys.stderr.write(child.stderr.decode(errors="replace"))
            raise SystemExit(f"{command[2:6]} failed in the child process ({child.returncode})")
        return seconds, int(peak_file.read_text()) / 1024.0


def import_figures(folder: Path, bars: int) -> dict[str, float]:
    """Seconds and peak RSS of `micro data import` of a `bars`-row MT4 file into a new home."""
    path = folder / f"mt4_{bars}.csv"
    started = time.perf_counter()
    write_mt4(path, bars)
    write_seconds = time.perf_counter() - started
    home = folder / f"home_{bars}"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env["MICRO_HOME"] = str(home)
    command = [sys.executable, "-m", "micro.cli", "data", "import", str(path)]
    seconds, peak = measured([*command, "--tz", BROKER_ZONE], env)
    figures = {
        "bars": bars,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "write_seconds": round(write_seconds, 1),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak, 1),
    }
    again, again_peak = measured([*command, "--tz", BROKER_ZONE], env)  # every bar stored
    figures["reimport_seconds"] = round(again, 2)
    figures["reimport_peak_rss_mb"] = round(again_peak, 1)
    if bars <= 2_000_000:
        read_seconds, read_peak = measured([sys.executable, "-c", READ_WHOLE, str(path)])
        figures["reference_read_whole_seconds"] = round(read_seconds, 2)
        figures["reference_read_whole_peak_rss_mb"] = round(read_peak, 1)
    shutil.rmtree(home)
    path.unlink()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_300_000, help="bars prepared")
    parser.add_argument(
        "--reference-bars", type=int, default=200_000, help="bars of the pandas reference"
    )
    parser.add_argument(
        "--import-bars", type=int, default=1_300_000, help="rows of the MT4 file imported"
    )
    parser.add_argument(
        "--large-import-bars",
        type=int,
        default=10_000_000,
        help="rows of the large MT4 file imported (0: skip it)",
    )
    args = parser.parse_args()
    config = Config()

    started = time.perf_counter()
    frame = synthesize(INSTRUMENT, days_for_bars(args.bars), 7, "trend", "2019-01-07")
    frame = frame.iloc[: args.bars].reset_index(drop=True)
    synth_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="micro-bench-") as tmp:
        store = Path(tmp) / "market.duckdb"
        warm = Path(tmp) / "warm.duckdb"
        for path, part in ((store, frame), (warm, frame.iloc[:20_000])):
            con = connect(path)
            write_candles(con, INSTRUMENT, part)
            con.close()
        peak_file = Path(tmp) / "peak_kb"  # through PEAK_OF: see `measured`
        child = subprocess.run(
            [sys.executable, "-S", "-c", PEAK_OF, str(peak_file)]
            + [sys.executable, "-c", CHILD, str(store), str(warm)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            sys.stderr.write(child.stderr)
            raise SystemExit(f"prepare failed in the child process (exit {child.returncode})")
        result = json.loads(child.stdout.strip().splitlines()[-1])

    part = frame.iloc[: args.reference_bars].reset_index(drop=True)
    started = time.perf_counter()
    expected = reference_features(
        part, config.features.range_bars, config.features.fast_momentum_bars
    )
    expected_outcome = reference_outcomes(part["close"])
    reference_seconds = time.perf_counter() - started
    ts = part["ts"].to_numpy().astype("datetime64[s]").astype(np.int64)
    raw_features(
        ts[:100], part["high"][:100], part["low"][:100], part["close"][:100], PIP, config.features
    )
    outcome_labels(part["close"].to_numpy()[:100], config.features)  # load the compiled kernels
    started = time.perf_counter()
    fast = raw_features(ts, part["high"], part["low"], part["close"], PIP, config.features)
    fast_outcome = outcome_labels(part["close"].to_numpy(), config.features)
    fast_seconds = time.perf_counter() - started
    both = np.isfinite(expected) & np.isfinite(fast)
    max_diff = float(np.max(np.abs(expected[both] - fast[both]))) if both.any() else 0.0

    imports: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="micro-bench-import-") as tmp:
        imports["import"] = import_figures(Path(tmp), args.import_bars)
        if args.large_import_bars:
            large = import_figures(Path(tmp), args.large_import_bars)
            large["within_2_gib"] = max(large["peak_rss_mb"], large["reimport_peak_rss_mb"]) <= (
                2 * GIB_MB
            )
            imports["large_import"] = large

    print(
        json.dumps(
            {
                "bars": len(frame),
                "seconds": round(result["seconds"], 3),
                "peak_rss_mb": round(result["peak_rss_mb"], 1),
                "synth_seconds": round(synth_seconds, 3),
                "reference_bars_per_s": round(len(part) / reference_seconds),
                "bars_per_s": round(len(frame) / result["seconds"]),
                "features_bars_per_s": round(len(part) / fast_seconds),
                "reference_max_abs_diff": max_diff,
                "reference_outcomes_agree": float(np.mean(expected_outcome == fast_outcome)),
                "sessions": result["sessions"],
                **imports,
            }
        )
    )


if __name__ == "__main__":
    main()
