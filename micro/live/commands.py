"""`micro live [--broker B] [--max-bars N] [--live-money] [--replay SPLIT]`; `micro live kill`.

`oanda` trades OANDA's practice environment unless BOTH `live.oanda.environment = "live"` and
`--live-money` ask for real money. `sim` is the paper mode (no OANDA_TOKEN needed): it fills
against the stored candles; `--replay validation|test` replays that split's sessions exactly as
the validator plays them (flat at each start, closed at each end). `auto` (the default of
`live.broker`) is oanda when OANDA_TOKEN is set, else sim. `micro live kill` writes live/KILL:
the running trader flattens and halts until the file is removed. `micro live pause` / `resume`
stop and allow new entries (a position keeps its stop); `micro live reset-halt` clears a
drawdown halt (both journaled by the trader, see `micro.live.control`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
from typing import Any

import numpy as np

from micro.runtime import Context

log = logging.getLogger("micro.live")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    live = sub.add_parser(
        "live",
        parents=[common],
        help="trade best.pth bar by bar (OANDA practice by default; sim = paper mode)",
        description=__doc__.split("\n\n", 1)[1],
    )
    live.add_argument(
        "--broker",
        choices=("auto", "oanda", "sim"),
        default=None,
        help="broker to trade through (default: live.broker; auto: oanda when OANDA_TOKEN is "
        "set, else sim)",
    )
    live.add_argument(
        "--max-bars",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after N 1-minute bars of this run (default: trade until stopped)",
    )
    live.add_argument(
        "--live-money",
        action="store_true",
        help="trade real money; also needs live.oanda.environment = 'live'",
    )
    live.add_argument(
        "--replay",
        choices=("validation", "test"),
        default=None,
        help="sim only: replay that split's sessions (the parity check with the validator) "
        "(default: none, trade the bars as they come)",
    )
    live.add_argument(
        "--wait-for-model",
        action="store_true",
        help="wait until the validator has promoted checkpoints/best.pth instead of exiting",
    )
    live.set_defaults(handler=run_live)
    live_sub = live.add_subparsers(dest="live_command", metavar="ACTION")
    kill = live_sub.add_parser(
        "kill", parents=[common], help="write live/KILL: the trader flattens and halts"
    )
    kill.add_argument(
        "--reason", default="manual kill", help="recorded in the KILL file (default: manual kill)"
    )
    kill.set_defaults(handler=run_kill)
    pause = live_sub.add_parser(
        "pause",
        parents=[common],
        help="write live/PAUSE: no new entries, positions keep their stops (until resume)",
    )
    pause.add_argument(
        "--reason", default="manual pause", help="recorded in the journal (default: manual pause)"
    )
    pause.set_defaults(handler=run_pause)
    resume = live_sub.add_parser(
        "resume", parents=[common], help="remove live/PAUSE: the trader may enter again"
    )
    resume.set_defaults(handler=run_resume)
    reset = live_sub.add_parser(
        "reset-halt",
        parents=[common],
        help="clear the drawdown halt (the trader journals it and restarts the equity peak)",
    )
    reset.add_argument(
        "--reason",
        default="reviewed by the operator",
        help="recorded in the journal (default: reviewed by the operator)",
    )
    reset.set_defaults(handler=run_reset_halt)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def run_kill(ctx: Context) -> int:
    from micro.atomic import write_json
    from micro.volumes import kill_path

    path = kill_path(ctx.home)
    write_json(path, _request(ctx.args.reason))
    print(f"kill switch set: {path} (the trader flattens and halts; remove the file to resume)")
    return 0


def _request(reason: str) -> dict[str, str]:
    """What an operator's kill, pause or halt reset file holds: when and why."""
    return {"time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "reason": reason}


def run_pause(ctx: Context) -> int:
    from micro.atomic import read_json, write_json
    from micro.volumes import pause_path

    path = pause_path(ctx.home)
    if path.exists():
        since = read_json(path)
        when = since.get("time") if isinstance(since, dict) else None
        print(f"already paused ({path}{f', since {when}' if when else ''})")
        return 0
    write_json(path, _request(ctx.args.reason))
    print(
        f"paused: {path} written; the trader sends no new entries (an open position keeps its "
        "stop and may still be closed) until `micro live resume`"
    )
    return 0


def run_resume(ctx: Context) -> int:
    from micro.volumes import pause_path

    path = pause_path(ctx.home)
    try:
        path.unlink()
    except FileNotFoundError:
        print(f"not paused ({path} does not exist)")
        return 0
    print(f"resumed: {path} removed; the trader may enter again at its next bar")
    return 0


def run_reset_halt(ctx: Context) -> int:
    from micro.atomic import write_json
    from micro.live.journal import StateFile
    from micro.volumes import live_state_path, reset_halt_path

    state = StateFile(live_state_path(ctx.home)).read()
    if state is None or state.risk.get("drawdown_halt") is not True:
        where = "no live/state.json yet" if state is None else "live/state.json shows none"
        print(f"no drawdown halt to reset ({where}); nothing written")
        return 0
    path = reset_halt_path(ctx.home)
    write_json(path, _request(ctx.args.reason))
    print(
        f"drawdown halt reset requested: {path} written; the trader clears it at its next check "
        "(or start), restarts the equity peak at the equity then, and journals it"
    )
    return 0


def chosen_broker(ctx: Context) -> str:
    """oanda or sim, from --broker, --replay, live.broker and OANDA_TOKEN."""
    from micro.data.oanda_client import TOKEN_ENV
    from micro.errors import UserError

    choice = ctx.args.broker or ctx.config.live.broker
    if ctx.args.replay is not None:
        if choice == "oanda":
            raise UserError("--replay replays stored sessions with the sim broker; drop --broker")
        return "sim"
    if choice == "auto":
        return "oanda" if os.environ.get(TOKEN_ENV, "").strip() else "sim"
    return choice


def run_live(ctx: Context) -> int:
    import torch

    from micro.alerts import Alerter
    from micro.live.models import ModelSlot
    from micro.live.trader import Trader
    from micro.volumes import best_checkpoint

    ctx.start_logging("live")
    torch.set_num_threads(1)  # one decision of batch 1 per bar: threads only add contention
    config = ctx.config
    alerts = Alerter.from_env(config.alerts, "live")  # a bad target URL: one line, exit 2
    kind = chosen_broker(ctx)
    if kind == "oanda":
        broker, scaling, schedule = _oanda(ctx)
    else:
        broker, scaling, schedule = _sim(ctx)
    best = best_checkpoint(ctx.home)
    if ctx.args.wait_for_model and not _wait_for(best):
        return 0
    models = ModelSlot(best, config)
    trader = Trader(
        ctx.home, config, broker, models, scaling, schedule=schedule, max_bars=ctx.args.max_bars,
        alerts=alerts,
    )  # fmt: skip

    def stop(signum: int, frame: Any) -> None:
        log.info("signal %d: finishing the current bar, then stopping", signum)
        trader.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "micro live: %s broker, %s, model episode %d",
        broker.name,
        config.data.instrument,
        models.model.episode,
    )
    return trader.run()


def _oanda(ctx: Context) -> tuple[Any, Any, Any]:
    from micro.config import replace
    from micro.data.oanda_client import account_from_env, token_from_env
    from micro.errors import UserError
    from micro.live.bars import Schedule
    from micro.live.oanda import OandaBroker

    config = ctx.config
    token = token_from_env()
    account = account_from_env(config.live.oanda)
    wants_live = config.live.oanda.environment == "live"
    if ctx.args.live_money and not wants_live:
        raise UserError(
            "--live-money needs live.oanda.environment = 'live' as well (set it in micro.toml)"
        )
    if wants_live and not ctx.args.live_money:
        log.warning("live.oanda.environment is 'live' but --live-money was not given: practice")
        config = replace(config, **{"live.oanda.environment": "practice"})
    scaling = _scaling_of(ctx)
    log.info("OANDA %s environment", config.live.oanda.environment)
    return OandaBroker(config, token, account), scaling, Schedule()


def _sim(ctx: Context) -> tuple[Any, Any, Any]:
    from micro.data.market import load_market
    from micro.errors import UserError
    from micro.features.temporal import history_bars
    from micro.live.bars import Schedule
    from micro.live.sim import SimBroker

    config = ctx.config
    market = load_market(ctx.home.store, config)
    needed = history_bars(config.features) + config.features.window - 1
    if config.live.warmup_bars < needed:
        raise UserError(
            f"live.warmup_bars = {config.live.warmup_bars} is below the {needed} bars the "
            "features need before the first decision; raise it"
        )
    total = len(market.ts)
    if ctx.args.replay is not None:
        starts = market.sessions(ctx.args.replay)
        if starts.size == 0:
            raise UserError(
                f"the store has no {ctx.args.replay} sessions; import more data and run "
                "`micro data prepare`"
            )
        spans = [np.arange(max(s - needed, 0), s + market.session_bars) for s in starts]
        rows = np.unique(np.concatenate(spans))
        schedule = Schedule.sessions(market.ts, starts, market.session_bars)
    else:
        if total <= config.live.warmup_bars:
            raise UserError(
                f"the store holds {total} bars, fewer than live.warmup_bars + 1; import more"
            )
        rows = np.arange(config.live.warmup_bars, total)
        schedule = Schedule()
    broker = SimBroker.over_market(market, config.spread_pips(market.instrument), rows)
    return broker, _scaling_of(ctx), schedule


def _scaling_of(ctx: Context) -> Any:
    """The feature scaling fitted by `micro data prepare` (the store's meta)."""
    from micro.data.stamp import staleness
    from micro.data.store import connect, get_meta
    from micro.errors import DataError
    from micro.features.scaling import FeatureScaling

    path = ctx.home.store
    if not path.is_file():
        raise DataError(
            f"{path}: no market store; run `micro data download` and `micro data prepare`"
        )
    con = connect(path, read_only=True)
    try:
        reason = staleness(con, ctx.config)
        if reason is not None and "candles changed" not in reason:
            raise DataError(f"{path}: {reason}; run `micro data prepare`")
        stored = get_meta(con, "feature_scaling")
    finally:
        con.close()
    if stored is None:
        raise DataError(f"{path}: no feature scaling; run `micro data prepare`")
    return FeatureScaling.from_dict(stored)


def _wait_for(best: Any) -> bool:
    """Wait (responsive to SIGTERM/SIGINT) until `best` exists; False when asked to stop."""
    import time

    stop: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: stop.append(signum))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        if not best.exists():
            log.info("waiting for %s (the validator promotes it once a checkpoint earns it)", best)
        while not best.exists():
            if stop:
                log.info("stopped while waiting for a model")
                return False
            time.sleep(0.5)
        return True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
