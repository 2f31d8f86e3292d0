"""What a new user sees: `micro up` on the embedded default data, timed to the first promotion.

Runs the real `micro up --duration` (trainer, validator, paper trader on the simulated broker,
no dashboard) in an empty home with the default config, as `make up` does, and watches its files:
when `checkpoints/best.pth` first appears (the validator promoted a checkpoint through the default
gates), when the paper trader journals its first order and its first closed trade. At the end it
reads the validator's events and `best_metrics.json` (validation and test side by side) and the
last report's promotion decision (every gate with its value).

`--keep DIR` runs in DIR and keeps it; a `micro.toml` already there is the config of the run
(the default config otherwise).

Target (issue 10): a checkpoint promoted and the paper trader trading within 15 minutes on this
machine. SIGINT or SIGTERM stops the run early (the stack is stopped and the figures so far are
printed). Prints one JSON object (progress goes to stderr); exit status 0 whether or not the target
was met (the JSON says), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_MINUTES = 15.0
POLL_SECONDS = 2.0


def _say(text: str) -> None:
    sys.stderr.write(f"[up {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def _lines(path: Path) -> list[dict[str, Any]]:
    """The whole JSON lines of a jsonl file (a torn or foreign line is skipped)."""
    if not path.exists():
        return []
    out = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict):
            out.append(line)
    return out


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _minutes(since: float) -> float:
    return round((time.monotonic() - since) / 60.0, 2)


def _last_report(home: Path) -> dict[str, Any] | None:
    """The newest validation report (by modification time) that carries a promotion decision."""
    reports = sorted((home / "validation").glob("validation_ep*.json"), key=os.path.getmtime)
    for path in reversed(reports):
        report = _read(path)
        if report is not None and isinstance(report.get("promotion"), dict):
            return {"file": path.name, **report["promotion"]}
    return None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM, and SIGINT where the shell started us with it ignored


def run(home: Path, minutes: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICRO_", "OANDA_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    log = (home / "up.log").open("w")
    started = time.monotonic()
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "micro.cli",
            "--home",
            str(home),
            "up",
            "--duration",
            str(int(minutes * 60)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    seen: dict[str, float | None] = {"promoted": None, "first_order": None, "first_trade": None}
    best = home / "checkpoints" / "best.pth"
    journal = home / "live" / "journal.jsonl"
    try:
        while up.poll() is None:
            if seen["promoted"] is None and best.exists():
                seen["promoted"] = _minutes(started)
                _say(f"best.pth promoted after {seen['promoted']} min")
            if seen["first_order"] is None or seen["first_trade"] is None:
                kinds = {line.get("kind") for line in _lines(journal)}
                for key, kind in (("first_order", "order"), ("first_trade", "trade")):
                    if seen[key] is None and kind in kinds:
                        seen[key] = _minutes(started)
                        _say(f"paper trader: first {kind} after {seen[key]} min")
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        up.send_signal(signal.SIGINT)
    finally:
        try:
            up.wait(timeout=120)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        log.close()
    events = _lines(home / "validation" / "events.jsonl")
    trainer = _read(home / "monitoring" / "trainer" / "status.json") or {}
    journal_lines = _lines(journal)
    trades = [line for line in journal_lines if line.get("kind") == "trade"]
    promoted_in_time = seen["promoted"] is not None and seen["promoted"] <= TARGET_MINUTES
    trading_in_time = seen["first_order"] is not None and seen["first_order"] <= TARGET_MINUTES
    return {
        "bench": "up",
        "minutes": minutes,
        "exit_status": up.returncode,
        "minutes_to_promotion": seen["promoted"],
        "minutes_to_first_paper_order": seen["first_order"],
        "minutes_to_first_paper_trade": seen["first_trade"],
        "episodes": trainer.get("episodes"),
        "learner_steps": trainer.get("learner_steps"),
        "scored": sum(e.get("event") == "scored" for e in events),
        "promotions": sum(e.get("event") == "promoted" for e in events),
        "paper_trades": len(trades),
        "paper_pips": round(sum(float(t.get("pips") or 0.0) for t in trades), 1),
        "best_metrics": _read(home / "validation" / "best_metrics.json"),
        "last_decision": _last_report(home),
        "target_minutes": TARGET_MINUTES,
        "target_met": promoted_in_time and trading_in_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=TARGET_MINUTES, help="run length (15)")
    parser.add_argument(
        "--keep", type=Path, help="run in this folder (new, or only a micro.toml in it); keep it"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # stop early: the stack stops, the JSON is printed
    signal.signal(signal.SIGINT, _interrupt)
    if not 0.5 <= args.minutes <= 24 * 60:
        sys.stderr.write(f"--minutes {args.minutes:g}: expected 0.5 to 1440\n")
        raise SystemExit(2)
    if args.keep is not None and args.keep.exists():
        if not args.keep.is_dir() or {p.name for p in args.keep.iterdir()} - {"micro.toml"}:
            sys.stderr.write(
                f"--keep {args.keep}: not a new folder or one holding only a micro.toml; "
                "name a new one\n"
            )
            raise SystemExit(2)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args.keep, args.minutes)
    else:
        with tempfile.TemporaryDirectory(prefix="micro-up-") as tmp:
            result = run(Path(tmp), args.minutes)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
