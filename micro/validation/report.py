"""One validation report: score a checkpoint on a split and assemble everything into JSON.

`score_checkpoint` loads and verifies the checkpoint, plays the split greedily
(`micro.validation.evaluate`) and hands the trade list to the statistics that already exist
(metrics, Monte Carlo bootstrap, safe-f/CAR25, Sharpe/Sortino/PSR/DSR, baselines).
`build_report` assembles the dict (every key is documented in README.md, "Validation reports");
`failure_report` is the short form for a checkpoint that could not be scored. The promotion
decision, and the DSR over every checkpoint scored on the same data (`micro.validation.
selection`, computed at promotion time), are added by `micro.validation.promotion` before the
report is written. A report carries the data fingerprint of what it was scored on and the net
pips of each session (the trials' correlation and PBO need them), and what its pictures need
(`charts`: every trade's pips, the Monte Carlo fan, a few sessions as candles with each trade's
rationale; `micro.validation.charts`).

Reports of the validation split live in `validation/`, those of the test split in
`validation/test/`, so test results never take part in selecting a checkpoint (nor in its DSR).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from micro import __version__
from micro.config import Config
from micro.errors import CheckpointError, DataError
from micro.home import Home
from micro.validation.baselines import baselines_report
from micro.validation.charts import charts_report
from micro.validation.diagnostics import diagnostics_report
from micro.validation.evaluate import Evaluation, evaluate, evaluation_starts, simulations_for
from micro.validation.metrics import covered_days, trade_metrics
from micro.validation.montecarlo import bootstrap
from micro.validation.sharpe import sharpe_report
from micro.validation.sizing import configured_safe_f
from micro.volumes import NUMBERED, REPORT_SCHEMA, checkpoint_episode

if TYPE_CHECKING:
    from micro.data.market import Market

OK, FAILED, TIMEOUT = "ok", "failed", "timeout"


@dataclass(frozen=True)
class CheckpointInfo:
    """Which checkpoint a report is about, and whether it may become best.pth."""

    path: Path
    episode: int
    sidecar: dict[str, Any] | None
    learner_step: int | None
    promotable: bool  # a numbered checkpoint in the home's checkpoints/ (never latest/best)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "file": self.path.name,
            "episode": self.episode,
            "learner_step": self.learner_step,
            "numbered": bool(NUMBERED.match(self.path.name)),
            "promotable": self.promotable,
            "sidecar": self.sidecar,
        }


def is_promotable(home: Home, checkpoint: Path) -> bool:
    """Only numbered checkpoints in the home's checkpoints/ may be promoted (not latest/best)."""
    path = Path(checkpoint).resolve()
    return bool(NUMBERED.match(path.name)) and path.parent == home.checkpoints.resolve()


def utc_now() -> tuple[str, float]:
    """(ISO-8601 UTC to the second, unix seconds) of now."""
    now = time.time()
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"), now


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), UTC).isoformat(timespec="minutes")


def build_report(
    evaluation: Evaluation,
    market: Market,
    config: Config,
    checkpoint: CheckpointInfo,
    load_seconds: float = 0.0,
    data_fingerprint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full report of one greedy run (status "ok"), its DSR without other trials yet."""
    v = config.validation
    starts = evaluation.starts  # [S]
    trades = evaluation.trades  # [K] TRADE_DTYPE
    pips = np.asarray(trades["pips"], dtype=np.float64)  # [K]
    length = int(market.session_bars)
    days = covered_days(market.ts, starts, length)  # [D] UTC day numbers
    began = time.perf_counter()
    metrics = trade_metrics(
        trades,
        stop_loss_pips=config.risk.stop_loss_pips,
        account_pips=v.account_pips,
        sessions=int(starts.size),
        decisions_per_session=length - 1,
        session_days=float(days.size),
    )
    equity = metrics.pop("equity_curve_sampled")
    del metrics["equity_curve"]  # every trade's point: the sampled curve keeps peaks & troughs
    montecarlo = bootstrap(pips, runs=v.bootstrap_runs, seed=v.seed, block_size=v.block_size)
    sizing = configured_safe_f(pips, metrics["trades_per_day"], v)
    sharpe = sharpe_report(trades, days)
    session_pnl = np.zeros(starts.size)  # [S] net pips of each session
    np.add.at(session_pnl, np.searchsorted(starts, trades["session"]), pips)
    statistics_seconds = time.perf_counter() - began
    began = time.perf_counter()
    baselines = baselines_report(market, config, starts, trades)
    baselines_seconds = time.perf_counter() - began
    began = time.perf_counter()
    extra = evaluation.diagnostics
    diagnostics = diagnostics_report(extra, trades, config, market) if extra is not None else None
    diagnostics_seconds = time.perf_counter() - began + (extra.seconds if extra else 0.0)
    began = time.perf_counter()
    charts = charts_report(
        market, starts, trades, evaluation.acted,
        runs=v.bootstrap_runs, seed=v.seed, block_size=v.block_size,
    )  # fmt: skip
    charts_seconds = time.perf_counter() - began
    created_at, created_unix = utc_now()
    total = (
        load_seconds + evaluation.seconds + statistics_seconds + baselines_seconds
        + diagnostics_seconds + charts_seconds
    )  # fmt: skip
    return {
        "schema_version": REPORT_SCHEMA,
        "status": OK,
        "error": None,
        "episode": checkpoint.episode,
        "split": evaluation.split,
        "created_at": created_at,
        "created_unix": created_unix,
        "micro_version": __version__,
        "checkpoint": checkpoint.to_dict(),
        "sessions": {
            "count": int(starts.size),
            "session_bars": length,
            "decisions_per_session": length - 1,
            "trading_days": int(days.size),
            "first_start_utc": _utc(market.ts[starts[0]]) if starts.size else None,
            "last_end_utc": _utc(market.ts[starts[-1] + length - 1]) if starts.size else None,
            "start_utc": [_utc(market.ts[s]) for s in starts],
            "pnl_pips": [float(x) for x in session_pnl],
        },
        "evaluation": {
            "mode": "greedy",
            "simulations": evaluation.simulations,
            "decisions": evaluation.decisions,
            "actions": evaluation.action_shares(),
            "seed": v.seed,
        },
        "metrics": metrics,
        "bootstrap": montecarlo,
        "safe_f": sizing,
        "sharpe": sharpe,
        "baselines": baselines,
        "diagnostics": diagnostics,
        "equity_curve": equity,
        "charts": charts,
        "timing": {
            "load_seconds": load_seconds,
            "evaluation_seconds": evaluation.seconds,
            "statistics_seconds": statistics_seconds,
            "baselines_seconds": baselines_seconds,
            "diagnostics_seconds": diagnostics_seconds,
            "charts_seconds": charts_seconds,
            "total_seconds": total,
            "decisions_per_second": (
                evaluation.decisions / evaluation.seconds if evaluation.seconds > 0 else None
            ),
        },
        "config": config.to_dict(redact=True),
        "data_fingerprint": data_fingerprint,
        "promotion": None,
    }


def failure_report(
    checkpoint: CheckpointInfo, split: str, status: str, error: str, seconds: float
) -> dict[str, Any]:
    """The report of a checkpoint that could not be scored ("failed" or "timeout")."""
    created_at, created_unix = utc_now()
    return {
        "schema_version": REPORT_SCHEMA,
        "status": status,
        "error": error,
        "episode": checkpoint.episode,
        "split": split,
        "created_at": created_at,
        "created_unix": created_unix,
        "micro_version": __version__,
        "checkpoint": checkpoint.to_dict(),
        "timing": {"total_seconds": seconds},
        "promotion": {
            "promoted": False,
            "reason": f"not scored ({status})",
        },
    }


def score_checkpoint(
    home: Home,
    config: Config,
    checkpoint: Path,
    split: str,
    market: Market | None = None,
    diagnostics: bool = True,
) -> dict[str, Any]:
    """Load, verify and score `checkpoint` on `split`: a full report without its promotion
    (`diagnostics`: planning gain, σ calibration and value error too; the bench turns it off).

    Raises CheckpointError for a missing/truncated/corrupt/incompatible file and DataError for
    an unprepared store or a split without sessions.
    """
    from micro.data.fingerprint import differences, read_fingerprint
    from micro.data.market import load_market
    from micro.model.checkpoint import load_checkpoint, read_sidecar

    began = time.perf_counter()
    if config.validation.threads:
        # Every scoring, not only the process's first: numba's parallel safe-f kernel shares
        # the OpenMP pool with torch and leaves it at numba's size after a report is sized.
        import torch

        torch.set_num_threads(config.validation.threads)
    checkpoint = Path(checkpoint)
    episode = checkpoint_episode(checkpoint)
    if episode is not None and checkpoint.is_file() and read_sidecar(checkpoint) is None:
        raise CheckpointError(
            f"{checkpoint.with_suffix('.json')}: the sidecar of a numbered checkpoint is missing "
            "or not valid JSON, so its sha256 cannot be checked; use another checkpoint"
        )
    loaded = load_checkpoint(checkpoint, config)
    if market is None:
        market = load_market(home.store, config)
    fingerprint = read_fingerprint(home.store, config, simulations_for(config))
    if loaded.data_fingerprint is not None:  # one without is scored, never promoted
        differ = differences(loaded.data_fingerprint, fingerprint, "training")
        if differ:
            raise CheckpointError(
                f"{checkpoint}: trained on other data than {home.store} holds "
                f"({'; '.join(differ)}); score it on the data it was trained on"
            )
    starts = evaluation_starts(market, split, config.validation.max_sessions)
    if starts.size == 0:
        raise DataError(
            f"{home.store}: no {split} sessions; import or synthesise more data "
            "(`micro data synth --days 60`) and run `micro data prepare`"
        )
    sidecar = loaded.sidecar
    if episode is None:
        episode = sidecar["episode"] if sidecar and "episode" in sidecar else loaded.episode
    info = CheckpointInfo(
        path=checkpoint.resolve(),
        episode=int(episode),
        sidecar=sidecar,
        learner_step=loaded.learner_step,
        promotable=is_promotable(home, checkpoint),
    )
    load_seconds = time.perf_counter() - began
    evaluation = evaluate(loaded.net, market, config, starts, split=split, diagnostics=diagnostics)
    return build_report(evaluation, market, config, info, load_seconds, fingerprint)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A short human summary of a report: trades, expectancy, SQN band, drawdown, promotion."""
    cp = report["checkpoint"]
    head = f"{cp['file']} (episode {report['episode']}) on the {report['split']} split"
    if report["status"] != OK:
        return [f"{head}: {report['status']}: {report['error']}"]
    m, boot = report["metrics"], report["bootstrap"]
    sessions, ev = report["sessions"], report["evaluation"]
    lines = [
        f"{head}: {sessions['count']} sessions, {sessions['trading_days']} days, "
        f"{ev['simulations']} simulations",
        f"  trades {m['trades']}  expectancy {_num(m['expectancy_pips'])} pips  "
        f"win rate {_pct(m['win_rate'])}  profit factor {_num(m['profit_factor'])}",
        f"  SQN {_num(m['sqn'])} (Monte Carlo 5–95%: {_num(boot['sqn']['p5'])} … "
        f"{_num(boot['sqn']['p95'])})  max drawdown {_num(m['max_drawdown_pips'])} pips "
        f"({_num(m['max_drawdown_pct'])}%)",
    ]
    baselines = report["baselines"]
    rank = baselines["random_entry"]["agent_percentile"]
    rank_text = "n/a (no trades)" if rank is None else f"{rank:.0f}th percentile"
    coin = (baselines.get("random_entry_fair_coin") or {}).get("agent_percentile")
    if coin is not None:  # reports written before the fair-coin baseline lack it
        rank_text += f" with the agent's sides, {coin:.0f}th with a fair coin's"
    lines.append(f"  vs random entry: {rank_text}")
    lines.extend(diagnostics_lines(report.get("diagnostics")))
    promotion = report.get("promotion") or {}
    if promotion.get("promoted"):
        lines.append(f"  promoted to best.pth: {promotion.get('reason')}")
    else:
        lines.append(f"  not promoted: {promotion.get('reason', 'no decision')}")
    return lines


def diagnostics_lines(diagnostics: dict[str, Any] | None) -> list[str]:
    """One line on what search adds, σ's calibration and the value error (none if absent)."""
    if not diagnostics:
        return []
    gain = diagnostics["planning_gain"]
    sigma, value = diagnostics["chance_calibration"], diagnostics["value_error"]
    flat, held = value.get("flat") or {}, value.get("in_position") or {}  # n/a in older reports
    line = (
        f"  search {_num(gain['search']['total_pips'])} pips vs prior "
        f"{_num(gain['policy_prior']['total_pips'])}, random "
        f"{_num(gain['random']['total_pips'])}; σ Brier {_num(sigma['brier'])} "
        f"(base rates {_num(sigma['brier_climatology'])}); value MAE "
        f"{_num(value['mae_pips'])} pips (bias flat {_num(flat.get('bias_pips'))}, "
        f"in a position {_num(held.get('bias_pips'))})"
    )
    horizons = (diagnostics.get("after_exit") or {}).get("horizons") or []  # older: none
    if horizons:
        last = horizons[-1]["all"]
        line += (
            f"; the side after its {last['exits']} exits: {_num(last['mean_pips'])} pips in "
            f"{horizons[-1]['bars']} bars (± {_num(last['stderr_pips'])})"
        )
    return [line]


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"
