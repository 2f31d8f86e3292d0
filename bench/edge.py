"""How much of a market's edge the agent's observation carries, before any learning.

For each market of the learning suite (`bench/learning.py`'s `SUITE`, same seeds) it synthesises
and prepares a fresh store with the config (`--set` changes it, e.g. `features.range_bars=240`),
then fits one ridge regression on the training split: the agent's whole observation window
(`features.window` × 9 features, flattened) → the close's move over the next H bars (pips), for
every H of `--horizons`. On the validation and the test split it reports the correlation of the
prediction with the move and what trading on it would net: enter on the bars whose |prediction|
is in the top `--top` share, in its sign, hold H bars, pay the instrument's spread.

The plain reference in the same run is a rule from the market's own statistics, not from the
observation: fade the close's distance from its 240-bar mean (`dev240`; a mean-reversion rule)
on the same share of bars. Where the ridge nets far less than the reference, the observation
does not carry the edge and no amount of training will find it; where it nets about as much, the
edge is there to learn. Positions overlap (every qualifying bar is a trade), so `se` is computed
from one trade per H bars. Prints one JSON object (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _micro import micro  # noqa: E402  (bench/ is this script's own folder)
from learning import SUITE, set_args, suite_names, synth_args  # noqa: E402

from micro.config import Config, load_config  # noqa: E402
from micro.data.market import Market, load_market  # noqa: E402
from micro.data.sessions import SPLITS  # noqa: E402
from micro.errors import ConfigError  # noqa: E402

MEAN_BARS = 240
RIDGE = 0.01  # penalty per sample on the standardised features


def log(message: str) -> None:
    print(f"[edge {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rows_with_future(market: Market, split: str, horizon: int) -> np.ndarray:
    """[N] every session row whose close H bars later lies in the same session."""
    starts = market.sessions(split)
    if starts.size == 0:
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(s, s + market.session_bars - horizon) for s in starts])


def traded(signal: np.ndarray, move: np.ndarray, top: float, spread: float, horizon: int) -> dict:
    """Net pips of trading sign(signal) on the top share of |signal|, held `horizon` bars."""
    chosen = np.abs(signal) >= np.quantile(np.abs(signal), 1.0 - top)
    pips = np.sign(signal[chosen]) * move[chosen] - spread
    independent = max(chosen.sum() / horizon, 1.0)
    return {
        "trades": int(chosen.sum()),
        "pips_per_trade": float(pips.mean()),
        "se": float(pips.std() / np.sqrt(independent)),
    }


def measure(market: Market, config: Config, horizons: list[int], top: float) -> dict[str, Any]:
    from micro.env.costs import costs_for

    spread = costs_for(config, config.data.instrument).entry_pips
    close = market.close / market.pip
    sums = np.concatenate([[0.0], np.cumsum(close)])
    out: dict[str, Any] = {"spread_pips": spread, "horizons": {}}
    for horizon in horizons:
        data = {}
        for split in SPLITS:
            rows = rows_with_future(market, split, horizon)
            rows = rows[rows >= MEAN_BARS]
            x = market.windows(rows).reshape(len(rows), -1).astype(np.float64)
            keep = ~np.isnan(x).any(axis=1)
            rows, x = rows[keep], x[keep]
            move = close[rows + horizon] - close[rows]
            mean = (sums[rows + 1] - sums[rows + 1 - MEAN_BARS]) / MEAN_BARS
            data[split] = (x, move, close[rows] - mean)
        x, move, _ = data["train"]
        mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
        z = (x - mu) / sd
        gram = z.T @ z + RIDGE * len(z) * np.eye(z.shape[1])
        weights = np.linalg.solve(gram, z.T @ (move - move.mean()))
        per_split = {}
        for split in ("validation", "test"):
            x, move, deviation = data[split]
            if len(move) < 2:
                per_split[split] = None
                continue
            predicted = ((x - mu) / sd) @ weights
            per_split[split] = {
                "rows": len(move),
                "observation": {
                    "corr": float(np.corrcoef(predicted, move)[0, 1]),
                    **traded(predicted, move, top, spread, horizon),
                },
                "fade_dev240": {
                    "corr": float(np.corrcoef(-deviation, move)[0, 1]),
                    **traded(-deviation, move, top, spread, horizon),
                },
            }
        out["horizons"][str(horizon)] = per_split
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", default="meanrevert,trend", help="suite markets")
    parser.add_argument("--days", type=int, default=120, help="synthetic calendar days/market")
    parser.add_argument("--horizons", default="30,60,120", help="bars held, comma-separated")
    parser.add_argument("--top", type=float, default=0.2, help="share of bars traded (0.2)")
    parser.add_argument("--set", action="append", default=[], help="config override k=v")
    args = parser.parse_args(argv)
    try:
        names = suite_names(args.markets)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not names:
        print(f"--markets: none named; expected some of {', '.join(SUITE)}", file=sys.stderr)
        return 2
    try:
        horizons = sorted({int(h) for h in args.horizons.split(",")})
    except ValueError:
        print(f"--horizons {args.horizons!r}: expected bar counts like 30,60,120", file=sys.stderr)
        return 2
    if not horizons or horizons[0] < 1 or not 0.0 < args.top <= 1.0:
        print("--horizons must be positive bar counts and --top in (0, 1]", file=sys.stderr)
        return 2
    try:  # defaults, then the --set flags, parsed as `micro --set` does (no micro.toml, no env)
        with tempfile.TemporaryDirectory(prefix="micro-edge-config-") as empty:
            config = load_config(empty, args.set, environ={})
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    result: dict[str, Any] = {"bench": "edge", "sets": args.set, "top": args.top, "markets": {}}
    with tempfile.TemporaryDirectory(prefix="micro-edge-") as tmp:
        for name in names:
            home = Path(tmp) / name
            home.mkdir()
            for command in (synth_args(SUITE[name], args.days), ["data", "prepare"]):
                done = micro(home, *command, *set_args(args.set))
                if done.returncode != 0:
                    print(f"{name}: micro {' '.join(command[:2])} failed: "
                          f"{done.stderr.strip()[-500:]}", file=sys.stderr)  # fmt: skip
                    return 2
            log(f"{name}: fitting")
            market = load_market(home / "data" / "market.duckdb", config)
            result["markets"][name] = measure(market, config, horizons, args.top)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
