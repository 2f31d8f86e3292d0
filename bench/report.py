"""Benchmark of the HTML report: one page for a checkpoint with 5,000 trades (issue 16).

The report is real: a checkpoint that trades (the hand-made momentum trader of
`tests/skill.py`, small model sizes) is scored by `score_checkpoint` and concluded as the
validator does, on enough synthetic `trend` validation sessions for at least `--trades` trades
(a pilot scoring of a few sessions measures its trades per session; the session count is scaled
up from it until the trades are there). Then, timed:

- `build_seconds`: `micro.validation.html.write_html` as the validator calls it: read the JSON,
  build every chart, write the page atomically (the shared plotly.js is already in the folder);
  the fastest of `--repeats` (the machine's other load only adds time), all in
  `build_all_seconds`. `first_build_seconds`: the first page of a folder, which also writes
  plotly.js beside it (once per folder).
- `page_bytes`: the page itself (target ≤ 5 MB, `TARGET_BYTES`); `asset_bytes`: the shared
  plotly.js a browser loads beside it (once per folder, not per page).
- `reference_seconds` / `reference_bytes`: `json.dump` of the same report to a file in the same
  process, the plain reference; `build_time_ratio` = build / reference.
- `command_seconds`: `micro report REPORT` as a user runs it (a fresh process: start-up and
  imports included).

`within_target`: build ≤ 2 s (`TARGET_SECONDS`) and page ≤ 5 MB. Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _micro import micro  # noqa: E402  (bench/ is this script's own folder)
from validate import prepared_home  # noqa: E402

from micro.config import Config, replace  # noqa: E402
from micro.model.checkpoint import save_checkpoint  # noqa: E402
from micro.pages import PLOTLY_ASSET  # noqa: E402
from micro.validation.html import write_html  # noqa: E402
from micro.validation.promotion import conclude  # noqa: E402
from micro.validation.report import score_checkpoint  # noqa: E402
from tests.skill import momentum_network  # noqa: E402  (a checkpoint that trades, by hand)

TARGET_SECONDS = 2.0
TARGET_BYTES = 5_000_000
PILOT_SESSIONS = 12
MIN_TRADES_PER_SESSION = 5  # the store is made for this rate; the momentum trader makes ~8
SMALL_MODEL = {
    "model.tcn_channels": 16,
    "model.hidden": 32,
    "model.mlp_hidden": 32,
    "model.static_hidden": 16,
}


def config_for(sessions: int, simulations: int) -> Config:
    return replace(
        Config(),
        **{
            **SMALL_MODEL,
            "data.train_fraction": 0.05,
            "data.validation_fraction": 0.85,
            "validation.max_sessions": sessions,
            "validation.simulations": simulations,
        },
    )


def scored_report(root: Path, trades: int, simulations: int, seed: int) -> Path:
    """The report file of the momentum checkpoint scored on sessions holding >= `trades` trades
    (or every session the store holds, if fewer): a pilot on a few sessions measures its trades
    per session, and a short scoring is scaled up until the count is reached."""
    stored = math.ceil(trades / MIN_TRADES_PER_SESSION)
    config = config_for(stored, simulations)
    home = prepared_home(root / "home", config, stored, seed)
    path = home.checkpoints / "ckpt_ep0000050.pth"
    save_checkpoint(path, momentum_network(config), config, episode=50, learner_step=1)
    chosen = PILOT_SESSIONS
    while True:
        config = config_for(chosen, simulations)
        report = score_checkpoint(home, config, path, "validation")
        made, played = report["metrics"]["trades"], report["sessions"]["count"]
        if made >= trades or played < chosen:  # enough, or the store has no more sessions
            return conclude(home, config, report)
        chosen = max(chosen + 1, math.ceil(1.05 * trades * played / max(made, 1)))


def run(trades: int, simulations: int, repeats: int, seed: int) -> dict:
    """Every measurement; the JSON-able result."""
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="micro-bench-report-") as tmp:
        report_file = scored_report(Path(tmp), trades, simulations, seed)
        report = json.loads(report_file.read_text())
        began = time.perf_counter()
        page = write_html(report_file)  # the folder's first page: plotly.js written too
        first = time.perf_counter() - began
        builds = []
        for _ in range(max(1, repeats)):
            began = time.perf_counter()
            write_html(report_file)
            builds.append(time.perf_counter() - began)
        references = []
        reference_file = Path(tmp) / "reference.json"
        for _ in range(max(1, repeats)):
            began = time.perf_counter()
            with open(reference_file, "w") as fh:
                json.dump(report, fh)
            references.append(time.perf_counter() - began)
        page_bytes = page.stat().st_size
        asset_bytes = (page.parent / PLOTLY_ASSET).stat().st_size
        reference_bytes = reference_file.stat().st_size
        report_json_bytes = report_file.stat().st_size
        began = time.perf_counter()
        command = micro(report_file.parents[1], "report", str(report_file), timeout=600)
        command_seconds = time.perf_counter() - began
        if command.returncode != 0:
            raise SystemExit(f"micro report failed: {command.stderr.strip()}")
    build, reference = min(builds), min(references)
    return {
        "trades": report["metrics"]["trades"],
        "sessions": report["sessions"]["count"],
        "drawn_sessions": len(report["charts"]["sessions"]),
        "build_seconds": round(build, 4),
        "build_all_seconds": [round(s, 4) for s in builds],
        "first_build_seconds": round(first, 4),
        "page_bytes": page_bytes,
        "asset_bytes": asset_bytes,
        "report_json_bytes": report_json_bytes,
        "reference_seconds": round(reference, 4),
        "reference_bytes": reference_bytes,
        "build_time_ratio": round(build / reference, 2) if reference > 0 else None,
        "command_seconds": round(command_seconds, 3),
        "target_seconds": TARGET_SECONDS,
        "target_bytes": TARGET_BYTES,
        "within_target": build <= TARGET_SECONDS and page_bytes <= TARGET_BYTES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trades", type=int, default=5000, help="trades the scored checkpoint makes, at least"
    )
    parser.add_argument(
        "--simulations", type=int, default=2, help="search simulations per decision in scoring"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed builds (fastest reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(run(args.trades, args.simulations, args.repeats, args.seed)))


if __name__ == "__main__":
    main()
