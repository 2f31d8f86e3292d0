"""Soak of the live trader: `micro live --broker oanda` against the fake v20 server, for thousands
of bars at full speed, with random broker faults and SIGKILLs and restarts of the trader.

The fake server (tests/fakes) replays a synthetic market: its clock moves one minute on every
candles request, so the trader runs as fast as it can poll. A fault thread arms, at random
moments, one fault at a time of each kind: 5xx and 429 answers on any route; slow order answers
(under the timeout); lost answers (the order is carried out, the answer cut); orders filled
after the client gave up (held past the timeout, then carried out); orders lost on the way (never
carried out); dropped and stalled pricing streams; orders cancelled inside a 201 with a random
reason OANDA may give. The trader is SIGKILLed at random moments (start-up and mid-order
included: a share of the kills lands in the first seconds of a start, the rest after a random
number of bars) and started again. At the end the faults stop, the trader gets a calm spell to
reconcile, and is stopped with SIGTERM.

Prints ONE JSON object: bars (distinct bars the trader journaled), orders (POSTed, and distinct
client ids, and the most sends of one client id: a trader stuck re-sending an order shows
there), refusals (the broker's reasons, most common first), faults (delivered, by kind),
restarts (SIGKILLs), start_refusals (exits with status 2, e.g. a broker down at start-up),
crashes (any other exit: must be 0), and the figures that must be 0: duplicate_trades (a trade
opened at the broker while another was open), duplicate_orders (orders the trader sent under
a client id after its journal held a fill of that id or OANDA's refusal of it as
CLIENT_TRADE_ID_ALREADY_EXISTS: an order sent again after the trader knew it had filled),
refused_as_taken beside it (every order the broker refused as CLIENT_TRADE_ID_ALREADY_EXISTS:
a lost order arriving after its fenced reuse filled, or a reuse sent just as the lost order
filled unseen; the fence at work, no position doubled),
positions_without_broker_stop (an order sent without a stop-loss or a trade without one),
journal_lines_unreadable, mismatches_at_end (the book's position versus the broker's open trades
after the final stop, and an order still pending; a position the broker's stop closed on a bar the
trader never read, the fake's clock having moved on its last poll, is counted apart as
stopped_after_last_bar: the next start books it as closed while away), identifier_leaks (files
in the home holding the token or the account id). Also the journal's repairs (torn lines cut
after a SIGKILL), mismatch events seen on the way, the SIGTERM exit time and `ok` (every
must-be-0 is 0 and the final stop exited 0).

    python bench/soak.py [--bars 3000] [--seed 1] [--kill-every 150] [--fault-every 0.4]

The budget is bars on the fake's clock; `--max-seconds` bounds the wall time (`completed`
false when it ran out first).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from bench._micro import micro  # noqa: E402  (importable from tests too)
from micro.config import load_config  # noqa: E402  (this checkout's micro, not an installed one)
from micro.data.store import connect, read_candles  # noqa: E402
from micro.model.checkpoint import save_checkpoint  # noqa: E402
from micro.model.networks import StochasticMuZeroNet  # noqa: E402
from tests.fakes import FakeOanda  # noqa: E402
from tests.fakes.oanda_trading import MARKET_ORDER_CANCEL_REASONS  # noqa: E402

FAULT_KINDS = (
    "5xx",
    "429",
    "slow_answer",
    "lost_answer",
    "late_fill",
    "lost_order",
    "stream_drop",
    "stream_stall",
    "cancel",
)
TIMEOUT_SECONDS = 0.5  # live.oanda.timeout_seconds in the soak's home
START_ROW = 600  # Monday 10:00 of the synthetic market (its first 400 bars warm the trader up)
SYNTH_DAYS = 12  # two weeks of bars from Monday 2022-01-03
SOAK_TOML = f"""
[model]
tcn_channels = 16
hidden = 32
mlp_hidden = 32
static_hidden = 16
[mcts]
simulations = 3
[validation]
simulations = 3
[live]
poll_seconds = 0.02
warmup_bars = 400
[live.oanda]
timeout_seconds = {TIMEOUT_SECONDS}
max_retries = 1
backoff_seconds = 0.0
stream_timeout_seconds = 1.0
stream_backoff_seconds = 0.05
stream_max_backoff_seconds = 0.5
[risk]
stop_loss_pips = 5.0
circuit_breaker_errors = 3
circuit_open_seconds = 0.3
daily_loss_limit_pips = 100000.0
max_drawdown_pips = 100000.0
weekly_close_buffer_minutes = 0
"""  # a 5-pip stop: positions stop out within a few bars, so the net (which sells when flat and
# holds) sends an order every few bars


@dataclass
class SoakOptions:
    """The soak's budget and its randomness."""

    bars: int = 3000  # on the fake's clock
    seed: int = 1
    kill_every: int = 150  # mean bars between SIGKILLs (uniform in [0.25, 1.75] × this)
    startup_kills: float = 0.2  # the share of SIGKILLs sent during start-up instead (0-6 s in)
    fault_every: float = 0.4  # mean seconds between faults (exponential)
    kinds: tuple[str, ...] = FAULT_KINDS
    token: str = "soak-token-5b1d0c7e9a"
    account: str = "101-004-2718281-828"
    max_seconds: float = 1800.0
    calm_seconds: float = 8.0  # no faults at the end, before the SIGTERM
    extra_faults: list[dict[str, Any]] = field(default_factory=list)  # fake.inject kwargs, at start


def prepared_home(root: Path, seed: int = 3) -> tuple[Path, pd.DataFrame]:
    """A home with a synthetic prepared store, the soak's micro.toml and a net that trades."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    for args in (("data", "synth", "--days", str(SYNTH_DAYS), "--seed", str(seed)),
                 ("data", "prepare")):  # fmt: skip
        done = micro(home, *args, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"micro {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    (home / "micro.toml").write_text(SOAK_TOML)
    config = load_config(home, environ={})
    torch.manual_seed(1)  # a net that trades often
    net = StochasticMuZeroNet(config.model, config.features.window)
    save_checkpoint(home / "checkpoints" / "best.pth", net, config, episode=1, learner_step=1)
    con = connect(home / "data" / "market.duckdb", read_only=True)
    try:
        frame = read_candles(con, config.data.instrument)
    finally:
        con.close()
    return home, frame


class Faults:
    """Arms random faults on the fake, one of a kind at a time, and counts what was delivered."""

    def __init__(self, fake: FakeOanda, options: SoakOptions) -> None:
        self.fake = fake
        self.options = options
        self.rng = random.Random(options.seed * 7919 + 1)
        self.armed: Counter[str] = Counter()
        self.kind_of: dict[int, str] = {}  # id(Fault) -> kind
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        account = f"/v3/accounts/{fake.account.id}"
        self.orders = account + "/orders"
        self.paths = [
            self.orders,
            "/v3/instruments",
            account + "/openTrades",
            account + "/trades",
            account + "/pricing",
            account + "/transactions",
            account + "/summary",
        ]

    def start(self) -> None:
        for kwargs in self.options.extra_faults:
            self._inject("extra", **kwargs)
        self.thread.start()

    def stop(self) -> None:
        """No more faults; clear those not yet delivered."""
        self.stop_event.set()
        self.thread.join(timeout=10)
        fake = self.fake
        with fake._lock:
            for fault in fake._faults:
                self.armed[self.kind_of.get(id(fault), "?")] -= fault.times
            fake._faults.clear()
        if fake.cancel_next_order is not None:
            self.armed["cancel"] -= 1
            fake.cancel_next_order = None
        if getattr(fake, "lose_orders", 0):
            self.armed["lost_order"] -= fake.lose_orders
            fake.lose_orders = 0
        with fake.stream_lock:
            for kind in fake.stream_faults:
                self.armed["stream_drop" if kind == "drop" else "stream_stall"] -= 1
            fake.stream_faults.clear()

    def delivered(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.armed.items()) if v}

    def _run(self) -> None:
        while not self.stop_event.wait(self.rng.expovariate(1.0 / self.options.fault_every)):
            self._one(self.rng.choice(self.options.kinds))

    def _order_fault_armed(self) -> bool:
        fake = self.fake
        with fake._lock:
            queued = any(f.path == self.orders for f in fake._faults)
        return queued or fake.cancel_next_order is not None or getattr(fake, "lose_orders", 0) > 0

    def _inject(self, kind: str, times: int = 1, **kwargs: Any) -> None:
        fake = self.fake
        fake.inject(times=times, **kwargs)
        with fake._lock:
            self.kind_of[id(fake._faults[-1])] = kind
        self.armed[kind] += times

    def _one(self, kind: str) -> None:
        rng, fake = self.rng, self.fake
        on_orders = kind in ("lost_answer", "late_fill", "lost_order", "cancel")
        if on_orders and self._order_fault_armed():
            return  # one order fault at a time: the next order meets it
        if kind == "5xx":
            status = rng.choice((500, 502, 503, 504))
            path = rng.choice(self.paths)
            if path == self.orders and self._order_fault_armed():
                return
            self._inject(kind, times=rng.randint(1, 3), status=status, path=path)
        elif kind == "429":
            self._inject(
                kind, status=429, retry_after=rng.uniform(0.02, 0.2), path=rng.choice(self.paths)
            )
        elif kind == "slow_answer":
            path = rng.choice(self.paths)
            if path == self.orders and self._order_fault_armed():
                return
            self._inject(kind, delay=rng.uniform(0.2, 0.8) * TIMEOUT_SECONDS, path=path)
        elif kind == "lost_answer":
            self._inject(kind, drop=True, path=self.orders)
        elif kind == "late_fill":
            self._inject(kind, delay=rng.uniform(1.2, 4.0) * TIMEOUT_SECONDS, path=self.orders)
        elif kind == "lost_order":
            if hasattr(fake, "lose_orders"):
                fake.lose_orders += 1
                self.armed[kind] += 1
        elif kind in ("stream_drop", "stream_stall"):
            fake.stream_fault("drop" if kind == "stream_drop" else "silent")
            self.armed[kind] += 1
        elif kind == "cancel":
            fake.cancel_next_order = rng.choice(MARKET_ORDER_CANCEL_REASONS)
            self.armed[kind] += 1


class TraderProcess:
    """`micro live --broker oanda` as a child process, its output kept in home/soak/."""

    def __init__(self, home: Path, fake: FakeOanda) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MICRO_", "OANDA_"))}
        self.env.update(
            PYTHONPATH=str(REPO) + os.pathsep + self.env.get("PYTHONPATH", ""),
            OMP_NUM_THREADS="1",
            OANDA_TOKEN=fake.token,
            OANDA_ACCOUNT=fake.account.id,
            MICRO_LIVE__OANDA__API_URL=fake.api_url,
            MICRO_LIVE__OANDA__STREAM_URL=fake.stream_url,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        (home / "soak").mkdir(exist_ok=True)

    def start(self) -> None:
        self.starts += 1
        log = open(self.home / "soak" / f"trader-{self.starts:04d}.log", "wb")  # noqa: SIM115
        command = [sys.executable, "-m", "micro.cli", "--home", str(self.home), "live",
                   "--broker", "oanda"]  # fmt: skip
        self.proc = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def terminate(self, grace: float = 30.0) -> tuple[int | None, float | None]:
        """SIGTERM; (exit status, seconds to exit), or (None, None) when it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.exit_code(), 0.0)
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return (None, None)
        return (code, round(time.monotonic() - began, 2))


def soak(home: Path, frame: pd.DataFrame, options: SoakOptions) -> dict[str, Any]:
    """Run the soak in `home` (from `prepared_home`) over `frame`; the report."""
    rng = random.Random(options.seed)
    began = time.monotonic()
    with FakeOanda(candles=frame, token=options.token, account=options.account) as fake:
        start = pd.Timestamp(frame["ts"].iloc[START_ROW])
        clock = fake.replay(start)

        def bars_on_clock() -> int:
            return int((clock.now - start) / pd.Timedelta(minutes=1))

        faults = Faults(fake, options)
        trader = TraderProcess(home, fake)
        exits: Counter[int] = Counter()
        restarts = 0

        def next_kill() -> tuple[float, int]:
            """When to kill the trader just started: (monotonic time, bar on the fake's clock)."""
            if rng.random() < options.startup_kills:
                return (time.monotonic() + rng.uniform(0.0, 6.0), -1)
            span = max(1, round(rng.uniform(0.25, 1.75) * options.kill_every))
            return (float("inf"), bars_on_clock() + span)

        trader.start()
        faults.start()
        kill_at, kill_bar = next_kill()
        completed = True
        while bars_on_clock() < options.bars:
            if time.monotonic() - began > options.max_seconds:
                completed = False
                break
            time.sleep(0.05)
            code = trader.exit_code()
            if code is not None:  # it stopped by itself (a refusal at start-up, or a crash)
                exits[code] += 1
                time.sleep(0.2)
                trader.start()
                kill_at, kill_bar = next_kill()
            elif time.monotonic() >= kill_at or (kill_bar >= 0 and bars_on_clock() >= kill_bar):
                trader.kill()
                restarts += 1
                trader.start()
                kill_at, kill_bar = next_kill()
        faults.stop()
        calm_until = time.monotonic() + options.calm_seconds
        calm_start = bars_on_clock()
        while time.monotonic() < calm_until or bars_on_clock() < calm_start + 30:
            if time.monotonic() > calm_until + 120:
                break
            code = trader.exit_code()
            if code is not None:
                exits[code] += 1
                trader.start()
            time.sleep(0.1)
        final_code, stop_seconds = trader.terminate()
        time.sleep(0.2)
        report = measure(home, fake, options)
        report.update(
            faults=faults.delivered(),
            restarts=restarts,
            start_refusals=exits.get(2, 0),
            crashes=sum(n for code, n in exits.items() if code not in (0, 2)),
            final_exit_status=final_code,
            sigterm_exit_seconds=stop_seconds,
            bars_on_fake_clock=bars_on_clock(),
            completed=completed,
            wall_seconds=round(time.monotonic() - began, 1),
            fake_errors=[repr(e)[:300] for e in fake.errors][:5],
        )
    report["ok"] = bool(
        report["completed"]
        and report["final_exit_status"] == 0
        and all(report[k] == 0 for k in MUST_BE_ZERO)
    )
    return report


MUST_BE_ZERO = (
    "duplicate_trades",
    "duplicate_orders",
    "positions_without_broker_stop",
    "journal_lines_unreadable",
    "mismatches_at_end",
    "identifier_leaks",
    "crashes",
)


def measure(home: Path, fake: FakeOanda, options: SoakOptions) -> dict[str, Any]:
    """The soak's figures from the journal, state.json, the fake's records and the home's files."""
    lines, unreadable = journal_lines(home / "live" / "journal.jsonl")
    bars = {
        x["bar"]["ts"] for x in lines if x.get("kind") == "bar" and isinstance(x.get("bar"), dict)
    }
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/orders")]
    clients = {((r.body or {}).get("order") or {}).get("tradeClientExtensions", {}).get("id")
               for r in posts}  # fmt: skip
    with fake.trade_lock:
        trades = [dict(t) for t in fake.account.trades + fake.closed_trades]
        open_trades = [dict(t) for t in fake.account.trades]
        closed_trades = [dict(t) for t in fake.closed_trades]
        refused_as_taken = sum(
            1
            for t in fake.account.transactions
            if t.get("rejectReason") == "CLIENT_TRADE_ID_ALREADY_EXISTS"
        )
    no_stop = sum(1 for r in posts if not ((r.body or {}).get("order") or {}).get("stopLossOnFill"))
    no_stop += sum(1 for t in trades if not (t.get("stopLossOrder") or {}).get("price"))
    no_stop += sum(1 for t in open_trades if t["stopLossOrder"].get("state") != "PENDING")
    state = json.loads((home / "live" / "state.json").read_text())
    problems, stopped_unseen = mismatches(state, open_trades, closed_trades)
    kinds = Counter(x.get("kind") for x in lines)
    sends = Counter(
        ((r.body or {}).get("order") or {}).get("tradeClientExtensions", {}).get("id")
        for r in posts
    )
    refusals = Counter(_reason(x.get("reason")) for x in lines if x.get("kind") == "rejected")
    return {
        "bars": len(bars),
        "orders": len(posts),
        "order_client_ids": len(clients),
        "most_sends_of_one_client_id": max(sends.values(), default=0),
        "refusals": dict(refusals.most_common(6)),
        "broker_trades": len(trades),
        "duplicate_trades": duplicate_trades(trades),
        "duplicate_orders": duplicate_orders(lines),
        "refused_as_taken": refused_as_taken,
        "positions_without_broker_stop": no_stop,
        "journal_lines": len(lines),
        "journal_lines_unreadable": unreadable,
        "journal_repairs": kinds.get("repair", 0),
        "mismatch_events": sum(1 for x in lines if x.get("event") == "mismatch"),
        "mismatches_at_end": problems,
        "stopped_after_last_bar": stopped_unseen,
        "identifier_leaks": len(leaks(home, [options.token, options.account])),
    }


def duplicate_orders(lines: list[dict[str, Any]]) -> int:
    """Orders the trader sent under a client id after its journal held a fill of that id, or
    the broker's refusal of it as already taken (an order sent again after it had filled)."""
    known: set[str] = set()
    count = 0
    for line in lines:
        client_id, kind = line.get("client_id"), line.get("kind")
        if not isinstance(client_id, str):
            continue
        if kind == "order" and client_id in known:
            count += 1
        taken = kind == "rejected" and "already" in str(line.get("reason")).lower()
        if kind == "fill" or (taken and "trade" in str(line.get("reason")).lower()):
            known.add(client_id)
    return count


def _reason(text: Any) -> str:
    """A refusal's reason without the request in front of it: OANDA's message or cancel reason."""
    text = str(text)
    refused = re.search(r"\((\d{3}: .*)\)$", text) if text.startswith("OANDA refused") else None
    if refused is not None:
        return refused.group(1)
    return re.sub(r"/v3/\S+", "...", text)[:120]


def journal_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Every line of the journal that is a JSON object, and how many are not (a torn tail too)."""
    good: list[dict[str, Any]] = []
    bad = 0
    for text in path.read_bytes().split(b"\n") if path.is_file() else []:
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            bad += 1
            continue
        if isinstance(line, dict):
            good.append(line)
        else:
            bad += 1
    return good, bad


def duplicate_trades(trades: list[dict[str, Any]]) -> int:
    """Trades opened while another was open (transaction ids order the account's history)."""
    spans = sorted(
        (int(t["id"]), int((t.get("closingTransactionIDs") or [10**18])[0])) for t in trades
    )
    duplicates, open_until = 0, -1
    for opened, closed in spans:
        if opened < open_until:
            duplicates += 1
        open_until = max(open_until, closed)
    return duplicates


def mismatches(
    state: dict[str, Any], open_trades: list[dict[str, Any]], closed_trades: list[dict[str, Any]]
) -> tuple[int, int]:
    """Differences between the book (state.json) and the broker's open trades, after the stop;
    and how many of the book's positions the broker's stop closed on a bar the trader never saw.

    The fake's clock moves on every candles request and fills stops on the bar that just
    completed, which the trader reads on its next poll: a SIGTERM between the two leaves the
    book holding a trade its stop has closed. That is no mismatch but what the next start books
    as closed while away (`Reconciler.at_start`), so it is counted apart. A position closed any
    other way, or on a bar the trader had seen, is a mismatch.
    """
    problems = 0
    stopped_unseen = 0
    position = state.get("position")
    held = {str(position["trade_id"]): position} if position else {}
    broker = {str(t["id"]): t for t in open_trades}
    closed = {str(t["id"]): t for t in closed_trades}
    last_bar = state.get("last_bar") or {}
    seen_until = int(last_bar.get("ts", 0)) + 60  # the close of the last bar the trader read
    for trade_id in set(held) - set(broker):
        record = closed.get(trade_id)
        if record is not None and _stopped_after(record, seen_until):
            stopped_unseen += 1
        else:
            problems += 1
    problems += len(set(broker) - set(held))
    for trade_id in set(held) & set(broker):
        units = int(broker[trade_id]["currentUnits"])
        side = 1 if units > 0 else -1
        if held[trade_id]["side"] != side or held[trade_id]["units"] != abs(units):
            problems += 1
    problems += 1 if state.get("pending_order") else 0
    return problems, stopped_unseen


def _stopped_after(record: dict[str, Any], seen_until: int) -> bool:
    """Whether the broker's stop closed this trade after `seen_until` (s UTC)."""
    if (record.get("stopLossOrder") or {}).get("state") != "FILLED":
        return False
    closed_at = pd.Timestamp(record["closeTime"]).timestamp()
    return closed_at > seen_until


def leaks(home: Path, secrets: list[str]) -> list[str]:
    """Files under `home` (every file, recursively, binary too) holding any of `secrets`."""
    needles = [s.encode() for s in secrets if s]
    found = []
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(str(path.relative_to(home)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = SoakOptions()
    parser.add_argument("--bars", type=int, default=defaults.bars)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--kill-every", type=int, default=defaults.kill_every, metavar="BARS")
    parser.add_argument("--fault-every", type=float, default=defaults.fault_every, metavar="S")
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds)
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it")
    args = parser.parse_args()
    options = SoakOptions(
        bars=args.bars,
        seed=args.seed,
        kill_every=args.kill_every,
        fault_every=args.fault_every,
        max_seconds=args.max_seconds,
    )
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        home, frame = prepared_home(args.keep)
        report = soak(home, frame, options)
    else:
        with tempfile.TemporaryDirectory(prefix="micro-soak-") as tmp:
            home, frame = prepared_home(Path(tmp))
            report = soak(home, frame, options)
    print(json.dumps(report, sort_keys=True))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
