"""Selection bias: a candidate's Deflated Sharpe Ratio and PBO among every checkpoint on its data.

Every checkpoint scored on the same validation data (the same `validation` scope of the data
fingerprint: sessions, scaling, costs, stop, simulations) is one trial of the search for a good
checkpoint, whoever scored it (the watcher or a hand `micro validate`); trials are counted once
per distinct weights (sha256), so best.pth re-scored is not a new trial. At promotion time, under
the promotion lock, `selection` reads them all and computes, for the candidate:

- the effective number of independent trials N̂ from the average pairwise correlation of their
  per-session P&L (`micro.validation.sharpe.effective_trials`);
- SR0, the Sharpe the best of N̂ luck-only trials would show, from the variance of the trials'
  daily Sharpes, and the DSR = PSR(SR0) of the candidate's daily P&L;
- PBO by combinatorially symmetric cross-validation over checkpoints × time blocks of the
  validation sessions (`micro.validation.pbo`).

Reports without a data fingerprint or per-session P&L (written before micro kept them) are no
trials: they cannot be shown to be on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from micro import atomic
from micro.data.fingerprint import same_data
from micro.validation.pbo import probability_of_overfitting
from micro.validation.sharpe import (
    effective_trials,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
)
from micro.volumes import report_files


@dataclass(frozen=True)
class Trial:
    """One scored checkpoint as a trial of the selection."""

    file: str
    sha256: str | None
    sharpe_daily: float | None
    session_pnl: np.ndarray  # [S] net pips per validation session, in time order


def trial_of(report: Mapping[str, Any]) -> Trial | None:
    """The trial a full report makes, or None (not scored, or lacking per-session P&L)."""
    if report.get("status") != "ok":
        return None
    pnl = (report.get("sessions") or {}).get("pnl_pips")
    if not isinstance(pnl, list) or not all(isinstance(x, int | float) for x in pnl):
        return None
    checkpoint = report.get("checkpoint") or {}
    sidecar = checkpoint.get("sidecar") or {}
    sharpe = (report.get("sharpe") or {}).get("sharpe_daily")
    return Trial(
        file=str(checkpoint.get("file")),
        sha256=sidecar.get("sha256") if isinstance(sidecar.get("sha256"), str) else None,
        sharpe_daily=float(sharpe) if isinstance(sharpe, int | float) else None,
        session_pnl=np.asarray(pnl, dtype=np.float64),
    )


def trials_on_same_data(
    folder: Path, fingerprint: Mapping[str, Any], scope: str, exclude: Path | None = None
) -> list[Trial]:
    """Trials of every readable report in `folder` scored on the same `scope` data.

    `exclude`: the candidate's own report path (a re-scoring replaces it).
    """
    out: dict[str, Trial] = {}
    for _, path in report_files(folder):
        if exclude is not None and path.name == exclude.name:
            continue
        report = atomic.read_json(path)
        if not isinstance(report, dict) or not same_data(
            report.get("data_fingerprint"), fingerprint, scope
        ):
            continue
        trial = trial_of(report)
        if trial is not None:
            out.setdefault(trial.sha256 or f"{path.name}", trial)
    return list(out.values())


def selection(
    report: Mapping[str, Any], others: list[Trial], pbo_blocks: int = 8
) -> dict[str, Any]:
    """DSR over the effective trials, and PBO, of the candidate `report` among `others`."""
    own = trial_of(report)
    if own is None:
        raise ValueError("selection needs a scored report with per-session P&L")
    trials = [t for t in others if t.sha256 is None or t.sha256 != own.sha256]
    trials.append(own)
    same_sessions = [t for t in trials if t.session_pnl.size == own.session_pnl.size]
    sharpes = [t.sharpe_daily for t in trials]
    defined = [t for t in same_sessions if t.sharpe_daily is not None]
    matrix = np.stack([t.session_pnl for t in defined]) if defined else np.zeros((0, 0))
    count = sum(1 for v in sharpes if v is not None and math.isfinite(v))
    rho = effective_trials(matrix)[1] if len(defined) >= 2 else None
    floored = 0.0 if rho is None else max(rho, 0.0)
    effective = floored + (1.0 - floored) * count  # N̂ = ρ̄ + (1 − ρ̄)·M, in [1, M]
    sr0 = expected_max_sharpe(sharpes, effective)
    sharpe = report.get("sharpe") or {}
    dsr = _dsr(sharpe, sr0)
    pnl_matrix = np.stack([t.session_pnl for t in same_sessions])  # [N, S]
    return {
        "trials": count,
        "checkpoints": len(trials),
        "effective_trials": effective,
        "average_correlation": rho,
        "expected_max_sharpe_daily": sr0,
        "dsr": dsr,
        "pbo": probability_of_overfitting(pnl_matrix, pbo_blocks),
    }


def _dsr(sharpe: Mapping[str, Any], benchmark: float) -> float | None:
    """PSR of the report's daily Sharpe against `benchmark` (None where undefined)."""
    values = [sharpe.get(k) for k in ("sharpe_daily", "days", "daily_skewness", "daily_kurtosis")]
    if not all(isinstance(v, int | float) for v in values):
        return None
    sr, days, skewness, kurtosis = (float(v) for v in values)  # type: ignore[arg-type]
    return probabilistic_sharpe_ratio(sr, int(days), skewness, kurtosis, benchmark)
