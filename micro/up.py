"""`micro up`: the whole system on one machine, without Docker.

Prepares data if the store is empty (synthetic by default, and says so), then runs the trainer,
the validator and the live trader as child processes and shows the dashboard. A service that
exits unexpectedly is restarted with backoff. The live trader starts once the validator has
promoted a `best.pth` (it never trades an unvalidated checkpoint); it uses the simulated broker
unless OANDA_TOKEN is set. Ctrl-C, SIGTERM or the end of `--duration` stop everything cleanly:
each child gets SIGTERM (the trainer writes latest.pth), stragglers are killed, and children
die with this process even if it is killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from micro import atomic
from micro.alerts import Alerter
from micro.monitoring.readers import read_json_object
from micro.processes import die_with_parent
from micro.runtime import Context
from micro.volumes import (
    LiveState,
    SchemaError,
    SupervisedService,
    TrainerStatus,
    UpStatus,
    ValidatorStatus,
    best_checkpoint,
    live_state_path,
    report_files,
    trainer_status_path,
    up_folder,
    up_status_path,
    validator_status_path,
)

log = logging.getLogger("micro.up")

RESTART_BACKOFF = (2.0, 5.0, 10.0, 30.0, 60.0)
STOP_GRACE_SECONDS = 30.0
SUMMARY_EVERY_SECONDS = 15.0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    up = sub.add_parser(
        "up",
        parents=[common],
        help="prepare data and run trainer + validator + live trader + dashboard",
    )
    up.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop everything after this many seconds (default: until Ctrl-C / SIGTERM)",
    )
    up.add_argument(
        "--no-dash", action="store_true", help="log a summary line instead of the dashboard"
    )
    up.set_defaults(handler=run_up)


@dataclass
class Service:
    """One supervised child process."""

    name: str
    args: list[str]
    ready: str | None = None  # a file that must exist before it starts
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    restart_at: float = 0.0
    log_file: BinaryIO | None = None
    exits: list[int] = field(default_factory=list)
    exit_times: list[float] = field(default_factory=list)  # monotonic s of each unexpected exit

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when `micro up` dies (so the trainer still saves)."""
    die_with_parent(signal.SIGTERM)


class Stack:
    """Starts, supervises and stops the services."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.home = ctx.home
        self.base = [sys.executable, "-m", "micro.cli", "--home", str(self.home.root)]
        for item in getattr(ctx.args, "sets", None) or []:
            self.base += ["--set", item]
        best = str(best_checkpoint(self.home))
        self.services = [
            Service("trainer", ["train"]),
            Service("validator", ["validate", "--watch"]),
            Service("live", ["live"], ready=best),
        ]
        self.stopping = threading.Event()
        self.alerts = Alerter.from_env(ctx.config.alerts, "up")  # crashes and restart loops
        self.logs = up_folder(self.home)
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, service: Service) -> None:
        if service.log_file is None:
            service.log_file = open(self.logs / f"{service.name}.log", "ab")  # noqa: SIM115
        service.process = subprocess.Popen(
            self.base + service.args,
            stdin=subprocess.DEVNULL,
            stdout=service.log_file,
            stderr=subprocess.STDOUT,
            cwd=self.home.root,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches `micro up` only; it stops the children
        )
        log.info(
            "%s started (pid %d): micro %s",
            service.name,
            service.process.pid,
            " ".join(service.args),
        )

    def supervise_once(self) -> None:
        now = time.monotonic()
        for service in self.services:
            if self.stopping.is_set():
                return
            if service.running:
                continue
            if service.process is None:
                if service.ready is None or Path(service.ready).exists():
                    self.start(service)
                continue
            if service.restart_at == 0.0:
                code = service.process.returncode
                service.exits.append(code)
                delay = RESTART_BACKOFF[min(service.restarts, len(RESTART_BACKOFF) - 1)]
                service.restart_at = now + delay
                log.error(
                    "%s exited with status %s; restarting in %.0f s (log: %s)",
                    service.name,
                    code,
                    delay,
                    self.logs / f"{service.name}.log",
                )
                self.alert_exit(service, code, delay, now)
            elif now >= service.restart_at:
                service.restarts += 1
                service.restart_at = 0.0
                self.start(service)

    def alert_exit(self, service: Service, code: int, delay: float, now: float) -> None:
        """Alert a service's unexpected exit, and a restart loop (N exits within a window)."""
        alerts = self.ctx.config.alerts
        service.exit_times.append(now)
        recent = [t for t in service.exit_times if now - t <= alerts.restart_loop_seconds]
        where = f"log: {self.logs / f'{service.name}.log'}"
        if len(recent) >= alerts.restart_loop_restarts:
            self.alerts.send(
                "restart_loop",
                f"{service.name} in a restart loop: {len(recent)} exits in "
                f"{alerts.restart_loop_seconds:.0f} s",
                f"last exit status {code}; next restart in {delay:.0f} s\n{where}",
                key=f"restart_loop:{service.name}",
                level="failure",
            )
        else:
            self.alerts.send(
                "crash",
                f"{service.name} exited with status {code}",
                f"restarting in {delay:.0f} s\n{where}",
                key=f"crash:{service.name}",
                level="failure",
            )

    def write_status(self) -> None:
        status = UpStatus(
            pid=os.getpid(),
            updated_unix=time.time(),
            services=tuple(
                SupervisedService(
                    name=s.name,
                    state=_state(s),
                    pid=s.process.pid if s.process is not None else None,
                    restarts=s.restarts,
                )
                for s in self.services
            ),
        )
        atomic.write_json(up_status_path(self.home), status.to_dict())

    def stop(self) -> None:
        """SIGTERM every child, wait for them, kill what is left; no orphans."""
        self.stopping.set()
        running = [(s, s.process) for s in self.services if s.process and s.process.poll() is None]
        for service, process in running:
            log.info("stopping %s (pid %d)", service.name, process.pid)
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for service, process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in %.0f s; killing it", service.name, STOP_GRACE_SECONDS)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for service in self.services:
            if service.log_file is not None:
                service.log_file.close()
        self.write_status()
        self.alerts.close()


def run_up(ctx: Context) -> int:
    from micro.data.prepare import ensure_default_data

    ctx.start_logging("monitoring", console=not _use_dashboard(ctx))
    stack = Stack(ctx)  # first: a bad alert target URL ends it before any data is made
    data_warnings = ensure_default_data(ctx.home, ctx.config)
    if _use_dashboard(ctx):  # the log reaches monitoring/logs only: say them above the dashboard
        for warning in data_warnings:
            print(f"micro up: WARNING: {warning}", file=sys.stderr)
    if not os.environ.get("OANDA_TOKEN"):
        log.info("no OANDA_TOKEN: the live trader runs the simulated broker (paper mode)")
    started = time.monotonic()
    duration = ctx.args.duration

    def request_stop(*_: object) -> None:
        stack.stopping.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def supervise() -> None:
        last_summary = 0.0
        while not stack.stopping.is_set():
            stack.supervise_once()
            stack.write_status()
            if duration is not None and time.monotonic() - started >= duration:
                log.info("--duration %.0f s reached", duration)
                stack.stopping.set()
                break
            if not _use_dashboard(ctx) and time.monotonic() - last_summary >= SUMMARY_EVERY_SECONDS:
                log.info("%s", summary_line(ctx))
                last_summary = time.monotonic()
            stack.stopping.wait(0.5)

    supervisor = threading.Thread(target=supervise, name="micro-up-supervisor", daemon=True)
    supervisor.start()
    try:
        if _use_dashboard(ctx):
            from micro.monitoring.dashboard import run_dashboard

            run_dashboard(ctx.home, ctx.config, should_stop=stack.stopping.is_set)
        while not stack.stopping.is_set():
            stack.stopping.wait(0.5)
    finally:
        stack.stopping.set()
        supervisor.join(timeout=5)
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("all services stopped")
    return 0


def _use_dashboard(ctx: Context) -> bool:
    return sys.stdout.isatty() and not ctx.args.no_dash


def _state(service: Service) -> str:
    """What `micro up` is doing with `service`, as the dashboard shows it."""
    if service.running:
        return "running"
    if service.process is None and service.ready:
        return "waiting for " + Path(service.ready).name
    return "restarting" if service.process is not None else "starting"


def summary_line(ctx: Context) -> str:
    """One line from the services' status files (the dashboard's plain-text little brother)."""
    home = ctx.home
    try:
        trainer = TrainerStatus.from_dict(read_json_object(trainer_status_path(home))[0] or {})
        validator = ValidatorStatus.from_dict(
            read_json_object(validator_status_path(home))[0] or {}
        )
        live, _ = read_json_object(live_state_path(home))
        live_state = None if live is None else LiveState.from_dict(live)
    except SchemaError as exc:
        return str(exc)
    return (
        f"trainer: {trainer.episodes or 0} episodes, "
        f"{trainer.env_steps_per_s or 0:.0f} steps/s | "
        f"validator: {len(report_files(home.validation))} reports, {validator.state or 'down'} | "
        f"live: {'up' if live_state is not None else 'waiting for best.pth'}"
    )
