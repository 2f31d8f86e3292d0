"""The learning judge: does the default config find timing skill on markets it has never seen?

For each market of a fixed suite (synthetic regimes `trend`, `meanrevert` and `random`, plus
harder variants of the structured ones: weaker drift against noise, longer and shorter regimes;
seeds the tests never use) it synthesises and prepares a fresh store, runs the real `micro train`
with the default config for a wall budget (`--minutes`), then scores checkpoints greedily, the way
the validator does (`score_checkpoint`): a checkpoint every `--score-every` minutes of training on
the validation split (the learning curve, and **minutes to skill**: the first one that meets the
skill bar), and the last and the best of them (best by validation bootstrap 5th-percentile
expectancy among those with at least 30 trades, never by test) on both the validation and the
test split.

The skill bar on a split: at least 30 trades, bootstrap 5th-percentile expectancy > 0, and at
least the 95th percentile against both random-entry baselines (the agent's sides and holding
times; a fair coin for the side). Targets (issue 10) are checked per market and printed with the
figures. `--real DIR` runs the same protocol on every M1 file in DIR (MT4 export format) instead,
and adds the deflated Sharpe ratio; it has no targets.

`--max-episodes N` trains each market N episodes instead (the curve then marks every
`--score-every-episodes`): a budget that does not depend on how fast the machine is that day,
for comparing two configs; with `--minutes` too, whichever comes first.

Each scored split also carries two of the report's diagnostics: what the side of the agent's own
exits made in the 60 bars after them (`after_exit_60_pips`, and for trades closed younger than 30
bars: above 0, it closes too early) and the value head's bias on flat decisions.

`--set section.key=value` (repeatable) changes the config of every run: that is how an ablation
is measured against the defaults. Prints one JSON object (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _micro import micro  # noqa: E402  (bench/ is this script's own folder)

from micro.errors import DataError  # noqa: E402  (this checkout's micro, not an installed one)

# name -> synth arguments. Seeds 101-399 are the judge's own: tests never use them.
SUITE: dict[str, dict[str, Any]] = {
    "trend": {"regime": "trend", "seed": 101},
    "trend_weak": {"regime": "trend", "seed": 102, "drift_pips": 0.35},
    "trend_short": {"regime": "trend", "seed": 103, "regime_bars": 30},
    "trend_long_noisy": {
        "regime": "trend",
        "seed": 104,
        "regime_bars": 120,
        "drift_pips": 0.5,
        "noise_scale": 2.0,
    },
    "meanrevert": {"regime": "meanrevert", "seed": 201},
    "meanrevert_slow": {"regime": "meanrevert", "seed": 202, "regime_bars": 240},
    "meanrevert_calm": {"regime": "meanrevert", "seed": 203, "noise_scale": 0.7},
    "random": {"regime": "random", "seed": 301},
}
QUICK = ("trend", "random")
QUICK_MINUTES = 2.0
SKILL_PERCENTILE = 95.0
SKILL_TRADES = 30
RANDOM_TRADES_PER_SESSION = 0.1
FAST_MARKETS = ("trend", "meanrevert")
FAST_MINUTES = 10.0
NUMBERED = re.compile(r"^ckpt_ep(\d{7})\.pth$")


def log(message: str) -> None:
    print(f"[learning {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def usage_error(message: str) -> None:
    """Bad input: one line, exit status 2, nothing run."""
    print(f"bench/learning.py: {message}", file=sys.stderr)
    raise SystemExit(2)


class MarketFailed(Exception):
    """A step of one market's protocol failed (the message ends with the command's stderr)."""


def checked(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise MarketFailed(f"{what} failed: {result.stderr.strip()[-2000:]}")


def synth_args(spec: dict[str, Any], days: int) -> list[str]:
    args = ["data", "synth", "--days", str(days), "--seed", str(spec["seed"])]
    args += ["--regime", spec["regime"]]
    for key in ("drift_pips", "regime_bars", "noise_scale"):
        if key in spec:
            args += [f"--{key.replace('_', '-')}", str(spec[key])]
    return args


def set_args(sets: list[str]) -> list[str]:
    return [part for s in sets for part in ("--set", s)]


def numbered_checkpoints(folder: Path) -> list[tuple[float, int, Path]]:
    """(created unix, episode, path) of every numbered checkpoint, oldest first."""
    out = []
    for path in folder.glob("ckpt_ep*.pth"):
        match = NUMBERED.match(path.name)
        if match:
            out.append((path.stat().st_mtime, int(match.group(1)), path))
    return sorted(out)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the judge prints for one scored split."""
    metrics = report["metrics"]
    baselines = report["baselines"]
    matched = baselines["random_entry"]
    fair = baselines.get("random_entry_fair_coin") or {}
    boot = report["bootstrap"]
    sessions = report["sessions"]["count"]
    trades = int(metrics["trades"])
    sides = report.get("_sides", {})
    diagnostics = report.get("diagnostics") or {}
    after = ((diagnostics.get("after_exit") or {}).get("horizons") or [{}])[-1]  # 60 bars
    flat_value = (diagnostics.get("value_error") or {}).get("flat") or {}
    return {
        "trades": trades,
        "trades_per_session": trades / sessions if sessions else None,
        "expectancy_pips": metrics.get("expectancy_pips"),
        "expectancy_p05": (boot.get("expectancy_pips") or {}).get("p5"),
        "sqn": metrics.get("sqn"),
        "total_pips": metrics.get("total_pips"),
        "buy_share": sides.get("buy_share"),
        "sell_share": sides.get("sell_share"),
        "percentile_matched": matched.get("agent_percentile"),
        "percentile_fair_coin": fair.get("agent_percentile"),
        "random_median_expectancy": (matched.get("expectancy_pips") or {}).get("p50"),
        "random_median_total_pips": (fair.get("total_pips") or matched.get("total_pips") or {}).get(
            "p50"
        ),
        "crossover_total_pips": baselines["moving_average_crossover"].get("total_pips"),
        "buy_and_hold_total_pips": baselines["buy_and_hold"].get("total_pips"),
        "dsr": report["sharpe"].get("dsr"),
        "sharpe": report["sharpe"].get("sharpe"),
        "after_exit_60_pips": (after.get("all") or {}).get("mean_pips"),
        "after_young_exit_60_pips": (after.get("young") or {}).get("mean_pips"),
        "flat_value_bias_pips": flat_value.get("bias_pips"),
    }


def has_skill(s: dict[str, Any]) -> bool:
    """The skill bar of the module docstring."""
    return bool(
        s["trades"] >= SKILL_TRADES
        and (s["expectancy_p05"] or 0.0) > 0.0
        and (s["percentile_matched"] or 0.0) >= SKILL_PERCENTILE
        and (s["percentile_fair_coin"] or 0.0) >= SKILL_PERCENTILE
    )


class Scorer:
    """Scores checkpoints of one home in this process, as the validator would."""

    def __init__(self, home: Path, sets: list[str], max_sessions: int) -> None:
        from micro.config import load_config
        from micro.data.market import load_market
        from micro.home import Home

        extra = [*sets, f"validation.max_sessions={max_sessions}"] if max_sessions else sets
        self.home = Home(home)
        self.config = load_config(home, extra, environ={})
        self.market = load_market(self.home.store, self.config)
        # As the validator does: validation.threads (default 1). Two torch threads on a core
        # that another process also wants spin on each other and run many times slower.
        import torch

        torch.set_num_threads(self.config.validation.threads or os.cpu_count() or 1)

    def score(self, path: Path, split: str) -> dict[str, Any]:
        from micro.validation.report import score_checkpoint

        report = score_checkpoint(self.home, self.config, path, split, market=self.market)
        report["_sides"] = self._sides(report)
        return report

    @staticmethod
    def _sides(report: dict[str, Any]) -> dict[str, float | None]:
        """Share of the entries (BUY + SELL decisions) that bought and that sold."""
        actions = report["evaluation"]["actions"]
        buy, sell = actions.get("BUY") or 0.0, actions.get("SELL") or 0.0
        entries = buy + sell
        if entries <= 0:
            return {"buy_share": None, "sell_share": None}
        return {"buy_share": buy / entries, "sell_share": sell / entries}


def run_market(
    name: str,
    spec: dict[str, Any],
    root: Path,
    args: argparse.Namespace,
    prepare: list[list[str]],
) -> dict[str, Any]:
    home = root / name
    home.mkdir(parents=True)
    sets = [*args.set, *spec.get("sets", [])]
    for command in prepare:
        checked(micro(home, *command, *set_args(sets)), f"{name}: micro {' '.join(command[:2])}")
    checked(micro(home, "data", "prepare", *set_args(sets)), f"{name}: micro data prepare")
    budget = ["--max-minutes", str(args.minutes)] if args.minutes else []
    if args.max_episodes:
        budget += ["--max-episodes", str(args.max_episodes)]
    log(f"{name}: micro train {' '.join(budget)}")
    started = time.time()
    train = micro(
        home,
        "train",
        *budget,
        *set_args([*sets, "train.keep_checkpoints=100000"]),
        timeout=args.minutes * 60 + 900 if args.minutes else None,
    )
    checked(train, f"{name}: micro train")
    trained_minutes = round((time.time() - started) / 60, 2)
    status = json.loads((home / "monitoring" / "trainer" / "status.json").read_text())
    scorer = Scorer(home, sets, args.max_sessions)
    latest = home / "checkpoints" / "latest.pth"
    picked = curve_checkpoints(numbered_checkpoints(home / "checkpoints"), started, args)
    if picked and picked[-1][1] == int(status["episodes"]):
        picked.pop()  # the same episode as latest.pth, which the curve ends with anyway
    picked.append((latest.stat().st_mtime, int(status["episodes"]), latest))
    curve: list[dict[str, Any]] = []
    reports: dict[Path, dict[str, Any]] = {}
    minutes_to_skill = episodes_to_skill = None
    for created, episode, path in picked:
        log(f"{name}: scoring {path.name} (episode {episode}) on validation")
        report = scorer.score(path, "validation")
        reports[path] = report
        s = summary(report)
        minutes = (created - started) / 60
        curve.append({"minutes": round(minutes, 2), "episode": episode, **s})
        if minutes_to_skill is None and has_skill(s):
            minutes_to_skill, episodes_to_skill = round(minutes, 2), episode

    def selection_score(c: tuple[float, int, Path]) -> float:
        """Validation bootstrap p5 expectancy; a checkpoint with too few trades never wins."""
        report = reports[c[2]]
        if report["metrics"]["trades"] < SKILL_TRADES:
            return -math.inf
        return report["bootstrap"]["expectancy_pips"]["p5"] or -math.inf

    best = max(reversed(picked), key=selection_score)  # ties (none qualify): the last
    out: dict[str, Any] = {
        "synth": spec,
        "episodes": int(status["episodes"]),
        "learner_steps": int(status["learner_steps"]),
        "env_steps": int(status["env_steps"]),
        "unroll_starts_per_position": status.get("unroll_starts_per_position"),
        "training_minutes": trained_minutes,
        "minutes_to_skill": minutes_to_skill,
        "episodes_to_skill": episodes_to_skill,
        "curve": curve,
    }
    for label, path in (("last", latest), ("best", best[2])):
        log(f"{name}: scoring {label} ({path.name}) on test")
        out[label] = {
            "checkpoint": path.name,
            "validation": summary(reports[path]),
            "test": summary(scorer.score(path, "test")),
        }
    mirror = mirror_home(home, root / f"{name}-mirror", sets)
    mirror_scorer = Scorer(mirror, sets, args.max_sessions)
    unbound = unbound_copy(latest, mirror / "checkpoints" / latest.name, mirror_scorer.config)
    out["last"]["mirror"] = {}
    for split in ("validation", "test"):
        log(f"{name}: scoring last on the mirrored {split} sessions")
        out["last"]["mirror"][split] = summary(mirror_scorer.score(unbound, split))
    out["targets"] = targets(name, spec, out)
    return out


def curve_checkpoints(
    ckpts: list[tuple[float, int, Path]], started: float, args: argparse.Namespace
) -> list[tuple[float, int, Path]]:
    """The checkpoints of the learning curve: the last one at or before each mark.

    Marks every `--score-every` minutes of training, or with `--max-episodes` every
    `--score-every-episodes` episodes (the curve of a budget that does not depend on the
    machine's speed). A checkpoint already picked for an earlier mark is not picked again.
    """
    by_episode = bool(args.max_episodes)
    step = args.score_every_episodes if by_episode else args.score_every
    end = args.max_episodes if by_episode else args.minutes

    def position(c: tuple[float, int, Path]) -> float:
        return c[1] if by_episode else (c[0] - started) / 60

    picked: list[tuple[float, int, Path]] = []
    mark = step
    while mark < end + 1e-9:
        before = [c for c in ckpts if position(c) <= mark + 1e-9]
        if before and (not picked or before[-1][1] != picked[-1][1]):
            picked.append(before[-1])
        mark += step
    return picked


def unbound_copy(checkpoint: Path, target: Path, config: Any) -> Path:
    """`checkpoint`'s weights saved at `target` without its data fingerprint.

    The validator refuses to score a checkpoint on data other than its own (the fingerprint);
    scoring on the mirror market is that on purpose, and a checkpoint without a fingerprint is
    scored (never promoted), so the copy drops it.
    """
    from micro.model.checkpoint import load_checkpoint, save_checkpoint

    loaded = load_checkpoint(checkpoint, config)
    save_checkpoint(
        target, loaded.net, config, episode=loaded.episode, learner_step=loaded.learner_step
    )
    return target


def mirror_home(home: Path, target: Path, sets: list[str]) -> Path:
    """A new home whose store holds `home`'s candles with every price move negated, prepared.

    Same timestamps, so the same sessions and splits; momentum's scaling bounds are symmetric,
    so a checkpoint trained on `home` reads the mirror's features as it reads the original's.
    """
    import numpy as np

    from micro.config import load_config
    from micro.data.store import connect, read_candles, write_candles
    from micro.features.mirror import mirror_candles

    config = load_config(home, sets, environ={})
    instrument = config.data.instrument
    con = connect(home / "data" / "market.duckdb", read_only=True)
    try:
        frame = read_candles(con, instrument)
    finally:
        con.close()
    columns = ["open", "high", "low", "close"]
    mirrored = mirror_candles(*(frame[c].to_numpy() for c in columns))
    frame[columns] = np.column_stack(mirrored)
    (target / "data").mkdir(parents=True)
    con = connect(target / "data" / "market.duckdb")
    try:
        write_candles(con, instrument, frame)
    finally:
        con.close()
    checked(micro(target, "data", "prepare", *set_args(sets)), f"{target.name}: prepare")
    return target


def targets(name: str, spec: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Issue 10's targets for this market, on both splits of the last checkpoint."""
    checks: dict[str, bool | None] = {}
    if spec["regime"] == "real":
        return {"met": None, "checks": {}}  # real data has no target: the figures are the answer
    for split in ("validation", "test"):
        s = result["last"][split]
        if spec["regime"] == "random":
            checks[f"{split}_trades_below_0.1_per_session"] = (
                s["trades_per_session"] is not None
                and s["trades_per_session"] < RANDOM_TRADES_PER_SESSION
            )
            checks[f"{split}_loss_no_worse_than_median_random"] = s["trades"] == 0 or (
                (s["expectancy_pips"] or 0.0) >= (s["random_median_expectancy"] or 0.0)
            )
            continue
        checks[f"{split}_skill"] = has_skill(s)
        shares = [s["buy_share"] or 0.0, s["sell_share"] or 0.0]
        checks[f"{split}_both_sides"] = min(shares) >= 0.1
        if spec["regime"] == "trend":
            better = max(s["crossover_total_pips"] or 0.0, s["buy_and_hold_total_pips"] or 0.0)
            checks[f"{split}_pips_beat_rules"] = (s["total_pips"] or 0.0) >= better
    if name in FAST_MARKETS:
        m = result["minutes_to_skill"]
        checks["minutes_to_skill_le_10"] = m is not None and m <= FAST_MINUTES
    return {"met": all(bool(v) for v in checks.values()), "checks": checks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="training wall budget/market (20 unless --max-episodes; quick 2)",
    )
    parser.add_argument("--markets", default="", help="comma-separated subset of the suite")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--days", type=int, default=120, help="synthetic calendar days/market")
    parser.add_argument("--score-every", type=float, default=0.0, help="minutes (0: minutes/8)")
    parser.add_argument("--max-sessions", type=int, default=0, help="cap sessions scored")
    parser.add_argument("--set", action="append", default=[], help="config override k=v")
    parser.add_argument("--real", default="", help="a folder of M1 MT4 files instead")
    parser.add_argument(
        "--tz",
        default="America/New_York+7",
        help="time zone of the --real files (MT4 broker server time: America/New_York+7)",
    )
    parser.add_argument("--keep", default="", help="keep the homes in this folder")
    parser.add_argument(
        "--max-episodes",
        type=int,
        default=0,
        help="train each market this many episodes instead (a budget independent of the "
        "machine's speed; with --minutes too, whichever comes first)",
    )
    parser.add_argument(
        "--score-every-episodes", type=int, default=0, help="with --max-episodes (0: 1/8 of it)"
    )
    args = parser.parse_args()
    if args.max_episodes < 0:
        usage_error(f"--max-episodes {args.max_episodes}: expected a positive number of episodes")
    if args.minutes is None and not args.max_episodes:
        args.minutes = QUICK_MINUTES if args.quick else 20.0
    if args.minutes is not None and args.minutes <= 0:
        usage_error(f"--minutes {args.minutes}: expected a positive number of minutes")
    if args.score_every_episodes < 0:
        usage_error(
            f"--score-every-episodes {args.score_every_episodes}: expected a positive number"
        )
    args.score_every = args.score_every or (args.minutes or 0) / 8
    args.score_every_episodes = args.score_every_episodes or max(1, args.max_episodes // 8)
    markets = plan(args)
    began = time.time()
    results: dict[str, Any] = {}
    root_ctx = tempfile.TemporaryDirectory(prefix="micro-learning-")
    root = Path(args.keep) if args.keep else Path(root_ctx.name)
    root.mkdir(parents=True, exist_ok=True)
    for name, (spec, prepare) in markets.items():
        try:
            results[name] = run_market(name, spec, root, args, prepare)
        except (MarketFailed, DataError) as exc:
            if spec["regime"] != "real":
                raise SystemExit(f"bench/learning.py: {exc}") from None
            # A real file too short for three splits is an answer too: say so and go on.
            results[name] = {"synth": spec, "error": str(exc), "targets": {"met": None}}
        log(f"{name}: targets met: {results[name]['targets']['met']}")
    print(
        json.dumps(
            {
                "bench": "learning",
                "minutes_per_market": args.minutes,
                "episodes_per_market": args.max_episodes or None,
                "sets": args.set,
                "cores": os.cpu_count(),
                "wall_minutes": round((time.time() - began) / 60, 1),
                "all_targets_met": all(
                    r["targets"]["met"] for r in results.values() if r["targets"]["met"] is not None
                ),
                "markets": results,
            },
            default=float,
        )
    )
    root_ctx.cleanup()


def suite_names(text: str) -> list[str]:
    """The suite markets named in a comma-separated `--markets` value; ValueError names unknowns."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        raise ValueError(
            f"--markets: unknown {', '.join(unknown)}; expected some of {', '.join(SUITE)}"
        )
    return names


def plan(args: argparse.Namespace) -> dict[str, tuple[dict[str, Any], list[list[str]]]]:
    """name -> (spec, commands that fill the store) for the markets to run."""
    if args.real:
        return real_markets(Path(args.real), args.tz)
    names = list(QUICK) if args.quick else list(SUITE)
    if args.markets:
        try:
            names = suite_names(args.markets)
        except ValueError as exc:
            usage_error(str(exc))
    return {n: (SUITE[n], [synth_args(SUITE[n], args.days)]) for n in names}


def real_markets(folder: Path, tz: str) -> dict[str, tuple[dict[str, Any], list[list[str]]]]:
    """One market per `*_M1_*` file in `folder` (instrument from the name: EURUSD -> EUR_USD)."""
    files = sorted(folder.glob("*.csv"))
    if not files:
        usage_error(f"--real {folder}: no .csv files there; pass a folder of M1 MT4 exports")
    out = {}
    for path in files:
        pair = path.name.split("_")[0].upper()
        instrument = f"{pair[:3]}_{pair[3:6]}"
        spec = {
            "regime": "real",
            "file": path.name,
            "instrument": instrument,
            "sets": [f"data.instrument={instrument}"],
        }
        out[path.stem] = (
            spec,
            [["data", "import", str(path.resolve()), "--instrument", instrument, "--tz", tz]],
        )
    return out


if __name__ == "__main__":
    main()
