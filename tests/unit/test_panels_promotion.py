"""The validator panel's promotion lines: every gate with its figure, validation beside test."""

from __future__ import annotations

from rich.console import Console, Group

from micro.monitoring.panels import best_lines, gates_line
from micro.volumes import BestMetrics, BestOnTest, GateResult, ReportSummary


def render(*parts: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(Group(*parts))  # type: ignore[arg-type]
    return console.export_text()


def test_the_gates_line_shows_passed_figures_and_the_failed_gate_with_its_bound() -> None:
    report = ReportSummary(
        checkpoint_file="ckpt_ep0000050.pth",
        status="ok",
        gates=(
            GateResult("split", "validation", "validation", True, "validation split"),
            GateResult("min_trades", 40, 30, True, "trades 40 ≥ validation.min_trades 30"),
            GateResult("min_dsr", 0.74, 0.95, False, "DSR 0.740 < validation.min_dsr 0.95"),
        ),
    )
    text = render(gates_line(report))
    assert (
        "gates ckpt_ep0000050.pth: ✓ split  ✓ trades 40  ✗ DSR 0.740 < validation.min_dsr" in text
    )


def test_the_best_shows_validation_beside_test_and_flags_a_large_drop() -> None:
    test = BestOnTest(
        status="ok", trades=35, expectancy_pips=0.3, sqn=0.4, flagged=True,
        why="expectancy fell from 1 pips on validation to 0.3 on test (drop 70%)",
    )  # fmt: skip
    best = BestMetrics(
        checkpoint="ckpt_ep0000050.pth", score_name="sqn_p25", score=1.5, trades=40, sqn=2.0,
        expectancy_pips=1.0, dsr=0.97, effective_trials=3.5, pbo=0.1, promoted_unix=1000.0,
        test=test,
    )  # fmt: skip
    text = render(*best_lines(best, now=1060.0))
    assert "best: ckpt_ep0000050.pth  sqn_p25 1.50  DSR 0.970 (3.5 effective trials)" in text
    assert "validation trades 40  SQN 2.00  expectancy +1.0 pips" in text
    assert "test       trades 35  SQN 0.40  expectancy +0.3 pips" in text
    assert "FLAGGED: expectancy fell from 1 pips on validation to 0.3 on test" in text
    pending = render(*best_lines(BestMetrics(checkpoint="ckpt_ep0000050.pth"), now=0.0))
    assert "test       pending" in pending
