"""Synthetic M1 mid candles with GBP_JPY-like statistics: the embedded default data.

Calendar. One bar per open minute, UTC. The market is closed from Friday 21:00 to Sunday 21:00
(no bars); the first bar of each week opens with a gap (a jump of N(0, 15 pips)). About 0.2 % of
the minutes are missing at random, and about once every three trading days an outage of 11–45
minutes leaves a gap longer than `data.max_gap_minutes` so session cutting has work to do.

Volatility (all regimes). Per-minute volatility in pips
    σ_t = σ_base · season(hour_t) · weekday(t) · exp(v_t),   σ_base = 1.35 pips · noise_scale,
    v_t = 0.999 · v_{t−1} + 0.0156 · ε_t      (stochastic volatility: clustering, half-life ~12 h,
                                               stationary std 0.35)
    season: 0.55 (21–23 UTC, Sydney) · 0.7 (00–06, Tokyo) · 1.0 (07, London open) ·
            1.15 (08–11) · 1.45 (12–15, London/New York overlap) · 1.0 (16–18) · 0.7 (19–20)
    weekday: Sun 0.5 (evening open), Mon 0.9, Tue 1.0, Wed 1.05, Thu 1.05, Fri 0.95.
Innovations z_t are Student-t with 4 degrees of freedom scaled to unit variance (fat tails).

Regimes (x_t = close in pips from the level, the instrument's typical price (170 for GBP_JPY)
± 1 % by seed; each bar's change r_t = x_t − x_{t−1}):
- `random`: r_t = σ_t z_t. A martingale: the next change is independent of the past, so no rule
  beats the spread. The price wanders freely (~17 yen std over 3.5 years from 170).
- `trend`: r_t = μ·s_t + σ_t z_t with a hidden drift state s_t ∈ {−1, 0, +1}. Each bar the state
  ends with probability 1/L (episodes last L bars on average); the next state is 0 with
  probability 0.25, otherwise +1 with probability 1/(1 + exp((price − level) / 5 yen)) (a weak
  pull keeping the price near the level) and −1 otherwise. By default μ = 0.6 pips/bar and
  L = 60, so an average episode carries ~36 pips: a momentum rule (follow the sign of the last
  20 bars) beats a 4-pip spread. Multi-bar returns are positively autocorrelated.
- `meanrevert`: x_t = a_t + y_t: an Ornstein–Uhlenbeck deviation y_t = (1 − 1/L)·y_{t−1} +
  σ_t z_t around a slowly moving anchor a_t = a_{t−1} + μ · N(0, 1) − 1e-6 · a_{t−1} (a_t in
  pips from the level). By default L = 120 (half-life ~83 bars, stationary std ~10 pips at
  σ_base) and μ = 0.2 pips; fading a 10-pip deviation from the 480-bar mean for 120 bars nets
  ~7 pips a trade after a 4-pip spread. Multi-bar returns are negatively autocorrelated.

Knobs (`synthesize` keywords; `micro data synth --drift-pips --regime-bars --noise-scale`). None
means the regime's default above, which reproduces the default market bit for bit; a knob that a
regime does not have is refused.
- `drift_pips` μ: `trend`: the drift per bar while a trend lasts (default 0.6; 0 leaves only the
  noise). `meanrevert`: the std per bar of the anchor's random walk, the part of the price that
  never reverts (default 0.2); raising it buries the reversion in a random walk. Range 0–20.
- `regime_bars` L: `trend`: the mean length of a drift episode in bars (default 60; geometric).
  `meanrevert`: the OU time constant 1/θ in bars (default 120; half-life L·ln 2; stationary std
  of y ≈ σ·√(L/2)). Range 1–100,000.
- `noise_scale`: multiplies σ_base in every regime (default 1.0; range 0.05–20), which scales
  the per-bar noise, the wicks and (in `meanrevert`) the reverting deviation itself; volume does
  not change. The trend's drift-to-noise ratio per bar is μ / (1.35 · noise_scale).

Bars: open_t = close_{t−1} (+ the weekly opening jump), close_t = x_t, high/low extend
max/min(open, close) by σ_t · 0.6 · Exp(1) wicks; prices rounded to the instrument's precision;
volume ~ 30 · σ_t/σ_base · LogNormal(0, 0.4) + 1 ticks. Deterministic by seed: one
`np.random.default_rng(seed)`, no global state.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from numba import njit

from micro.data.sessions import FRIDAY_CLOSE_REF
from micro.errors import UserError
from micro.features.temporal import WEEK_SECONDS
from micro.instruments import instrument as instrument_facts
from micro.runtime import Context

log = logging.getLogger("micro.data")

REGIMES = ("random", "trend", "meanrevert")
TUNABLE = ("trend", "meanrevert")  # regimes with a drift and a time scale

SIGMA_BASE_PIPS = 1.35
VOL_PERSISTENCE = 0.999
VOL_SHOCK = 0.0156
T_DOF = 4.0
WEEKLY_GAP_PIPS = 15.0
MISSING_MINUTE_PROB = 0.002
OUTAGES_PER_TRADING_DAY = 1.0 / 3.0
WICK_SCALE = 0.6

TREND_DRIFT_PIPS = 0.6
TREND_EPISODE_BARS = 60.0
TREND_FLAT_PROB = 0.25
TREND_PULL_PRICE = 5.0  # price units (yen for JPY pairs): the anchor pull's logistic scale

OU_BARS = 120.0  # the OU time constant 1/θ
ANCHOR_STEP_PIPS = 0.2
ANCHOR_PULL = 1e-6

DRIFT_RANGE_PIPS = (0.0, 20.0)
REGIME_BARS_RANGE = (1.0, 100_000.0)
NOISE_SCALE_RANGE = (0.05, 20.0)
DEFAULT_DRIFT_PIPS = {"trend": TREND_DRIFT_PIPS, "meanrevert": ANCHOR_STEP_PIPS}
DEFAULT_REGIME_BARS = {"trend": TREND_EPISODE_BARS, "meanrevert": OU_BARS}

SEASON_BY_HOUR = np.array(
    [0.7] * 7 + [1.0] + [1.15] * 4 + [1.45] * 4 + [1.0] * 3 + [0.7] * 2 + [0.55] * 3
)  # [24] UTC hour -> volatility multiplier
SEASON_BY_WEEKDAY = np.array([0.9, 1.0, 1.05, 1.05, 0.95, 1.0, 0.5])  # [7] Mon=0 .. Sun=6


def market_open(ts_seconds: np.ndarray) -> np.ndarray:
    """[T] bool: whether the FX market is open at each UTC minute (closed Fri 21:00–Sun 21:00)."""
    since_close = (ts_seconds - FRIDAY_CLOSE_REF) % WEEK_SECONDS
    return since_close >= 2 * 86400


def synthesize(
    instrument: str,
    days: int,
    seed: int,
    regime: str,
    start: str | pd.Timestamp,
    *,
    drift_pips: float | None = None,
    regime_bars: float | None = None,
    noise_scale: float = 1.0,
) -> pd.DataFrame:
    """M1 candles (ts naive UTC, open, high, low, close, volume) over `days` calendar days.

    `drift_pips`, `regime_bars` (None: the regime's default) and `noise_scale`: module doc.
    """
    frame, _ = synthesize_with_hidden_state(
        instrument, days, seed, regime, start,
        drift_pips=drift_pips, regime_bars=regime_bars, noise_scale=noise_scale,
    )  # fmt: skip
    return frame


def synthesize_with_hidden_state(
    instrument: str,
    days: int,
    seed: int,
    regime: str,
    start: str | pd.Timestamp,
    *,
    drift_pips: float | None = None,
    regime_bars: float | None = None,
    noise_scale: float = 1.0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """`synthesize`'s candles and [rows] the hidden state behind each bar (for tests, benches).

    The hidden state: `trend` the drift sign s_t (−1, 0, +1); `meanrevert` the OU deviation
    y_t in pips; `random` zeros.
    """
    if regime not in REGIMES:
        raise UserError(f"regime {regime!r}: expected one of {', '.join(REGIMES)}")
    if days < 1:
        raise UserError(f"days {days}: expected at least 1 calendar day")
    drift, bars, scale = regime_knobs(regime, drift_pips, regime_bars, noise_scale)
    facts = instrument_facts(instrument)
    first = _parse_start(start)
    rng = np.random.default_rng(seed)

    minutes = np.arange(days * 1440, dtype=np.int64)
    ts_all = first.value // 1_000_000_000 + 60 * minutes  # [M] seconds, every calendar minute
    ts = ts_all[market_open(ts_all)]  # [T] open minutes
    n = len(ts)
    if n == 0:
        raise UserError(f"{days} day(s) from {first:%Y-%m-%d} fall entirely on a weekend")

    day = ts // 86400
    hour = (ts // 3600) % 24
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    season = SEASON_BY_HOUR[hour] * SEASON_BY_WEEKDAY[weekday]  # [T]
    week_open = np.zeros(n, dtype=bool)
    week_open[1:] = (ts[1:] - ts[:-1]) > 3600
    week_open[0] = True

    vol_shocks = rng.standard_normal(n)
    z = rng.standard_t(T_DOF, n) / np.sqrt(T_DOF / (T_DOF - 2.0))  # [T] unit variance
    uniforms = rng.random((n, 2))  # [T, 2] for the regime state machine
    aux = rng.standard_normal(n)  # [T] anchor steps
    jumps = np.where(week_open, rng.standard_normal(n) * WEEKLY_GAP_PIPS, 0.0)  # [T] pips
    jumps[0] = 0.0

    log_vol = _log_vol_path(vol_shocks, VOL_PERSISTENCE, VOL_SHOCK)
    sigma_base = SIGMA_BASE_PIPS * scale
    sigma = sigma_base * season * np.exp(log_vol)  # [T] pips per bar
    level = facts.typical_price or 170.0
    level = float(np.round(level * (1.0 + 0.02 * (rng.random() - 0.5)), facts.precision))
    pull_pips = TREND_PULL_PRICE / facts.pip * (level / 170.0)
    close_pips, hidden = _mid_path(
        REGIMES.index(regime), sigma, z, jumps, uniforms, aux, pull_pips, drift, bars
    )  # [T] pips from `level`, [T] hidden state
    open_pips = np.empty(n)
    open_pips[0] = 0.0
    open_pips[1:] = close_pips[:-1]
    open_pips += jumps

    wick_up = sigma * WICK_SCALE * rng.exponential(1.0, n)
    wick_down = sigma * WICK_SCALE * rng.exponential(1.0, n)
    pip = facts.pip
    digits = facts.precision
    open_ = np.round(level + open_pips * pip, digits)
    close = np.round(level + close_pips * pip, digits)
    high = np.round(np.maximum(open_, close) + wick_up * pip, digits)
    low = np.round(np.minimum(open_, close) - wick_down * pip, digits)
    volume = np.round(30.0 * sigma / sigma_base * rng.lognormal(0.0, 0.4, n)) + 1.0

    keep = _missing_minutes(rng, n)
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(ts[keep], unit="s"),
            "open": open_[keep],
            "high": high[keep],
            "low": low[keep],
            "close": close[keep],
            "volume": volume[keep],
        }
    )
    return frame, hidden[keep]


def regime_knobs(
    regime: str, drift_pips: float | None, regime_bars: float | None, noise_scale: float
) -> tuple[float, float, float]:
    """(drift pips, regime bars, noise scale) of `regime`, defaults filled; UserError if bad."""
    if regime not in TUNABLE:
        for flag, value in (("--drift-pips", drift_pips), ("--regime-bars", regime_bars)):
            if value is not None:
                raise UserError(
                    f"{flag} {value:g}: the {regime} regime has no drift or regime length; "
                    f"use it with {' or '.join(TUNABLE)}"
                )
        drift, bars = 0.0, 1.0  # unused by the random walk
    else:
        drift = DEFAULT_DRIFT_PIPS[regime] if drift_pips is None else float(drift_pips)
        bars = DEFAULT_REGIME_BARS[regime] if regime_bars is None else float(regime_bars)
    unit = "pips per bar" if regime == "trend" else "pips (anchor step std per bar)"
    checks = (
        ("--drift-pips", drift, DRIFT_RANGE_PIPS, unit),
        ("--regime-bars", bars, REGIME_BARS_RANGE, "bars"),
        ("--noise-scale", float(noise_scale), NOISE_SCALE_RANGE, "× σ_base"),
    )
    for flag, value, (low, high), what in checks:
        if not (math.isfinite(value) and low <= value <= high):
            raise UserError(f"{flag} {value:g}: expected {low:g} to {high:g} {what}")
    return drift, bars, float(noise_scale)


def days_for_bars(bars: int) -> int:
    """Calendar days that hold at least `bars` synthetic bars (5 trading days a week)."""
    return int(np.ceil(bars / (1440 * 5 / 7) * 1.01)) + 7


def _parse_start(start: str | pd.Timestamp) -> pd.Timestamp:
    try:
        first = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise UserError(f"--start {start!r}: expected a UTC day as YYYY-MM-DD") from None
    if first is pd.NaT:
        raise UserError(f"--start {start!r}: expected a UTC day as YYYY-MM-DD")
    if first.tzinfo is not None:
        first = first.tz_convert("UTC").tz_localize(None)
    return first.floor("min").as_unit("ns")


def _missing_minutes(rng: np.random.Generator, n: int) -> np.ndarray:
    """[T] bool rows to keep: a few random missing minutes and some outages of 11–45 minutes."""
    keep = rng.random(n) >= MISSING_MINUTE_PROB
    outages = rng.poisson(OUTAGES_PER_TRADING_DAY * n / 1440.0)
    starts = rng.integers(1, max(n - 1, 2), size=outages)
    lengths = rng.integers(11, 46, size=outages)
    for s, length in zip(starts, lengths, strict=True):  # a few hundred outages at most
        keep[s : s + length] = False
    keep[0] = True
    return keep


@njit(cache=True)
def _log_vol_path(shocks: np.ndarray, persistence: float, scale: float) -> np.ndarray:
    """[T] AR(1) log-volatility v_t = φ v_{t−1} + scale · ε_t, started at its stationary law."""
    n = shocks.shape[0]
    out = np.empty(n)
    v = shocks[0] * scale / np.sqrt(1.0 - persistence * persistence)
    for t in range(n):
        if t > 0:
            v = persistence * v + scale * shocks[t]
        out[t] = v
    return out


@njit(cache=True)
def _mid_path(
    regime: int,
    sigma: np.ndarray,
    z: np.ndarray,
    jumps: np.ndarray,
    uniforms: np.ndarray,
    aux: np.ndarray,
    pull_pips: float,
    drift_pips: float,
    regime_bars: float,
) -> tuple[np.ndarray, np.ndarray]:
    """[T] close in pips from the level and [T] hidden state: 0 random, 1 trend, 2 meanrevert.

    The hidden state is the trend's drift sign or the meanrevert OU deviation (module doc).
    """
    n = sigma.shape[0]
    out = np.empty(n)
    hidden = np.zeros(n)
    switch = 1.0 / regime_bars  # trend: chance an episode ends each bar
    keep = 1.0 - 1.0 / regime_bars  # meanrevert: 1 − θ
    x = 0.0
    state = 0.0  # trend drift sign
    anchor = 0.0  # meanrevert anchor (pips)
    deviation = 0.0  # meanrevert OU deviation (pips)
    for t in range(n):
        noise = sigma[t] * z[t]
        if regime == 0:
            x = x + jumps[t] + noise
        elif regime == 1:
            if t == 0 or uniforms[t, 0] < switch:
                u = uniforms[t, 1]
                if u < TREND_FLAT_PROB:
                    state = 0.0
                else:
                    p_up = 1.0 / (1.0 + np.exp(x / pull_pips))
                    state = 1.0 if (u - TREND_FLAT_PROB) / (1.0 - TREND_FLAT_PROB) < p_up else -1.0
            x = x + jumps[t] + drift_pips * state + noise
            hidden[t] = state
        else:
            anchor = anchor + jumps[t] + drift_pips * aux[t] - ANCHOR_PULL * anchor
            deviation = keep * deviation + noise
            x = anchor + deviation
            hidden[t] = deviation
        out[t] = x
    return out, hidden


def run_synth(ctx: Context) -> int:
    """`micro data synth`: generate candles and write them to the store."""
    from micro.data.store import connect, write_candles

    ctx.start_logging("data")
    args = ctx.args
    cfg = ctx.config.data
    name = getattr(args, "instrument", None) or cfg.instrument
    days = cfg.synth_days if getattr(args, "days", None) is None else args.days
    seed = cfg.synth_seed if getattr(args, "seed", None) is None else args.seed
    regime = getattr(args, "regime", None) or cfg.synth_regime
    start = getattr(args, "start", None) or "2022-01-03"
    if days < 1:
        raise UserError(f"--days {days}: expected at least 1 calendar day")
    if seed < 0:
        raise UserError(f"--seed {seed}: expected a non-negative integer")
    drift_pips: float | None = getattr(args, "drift_pips", None)
    regime_bars: float | None = getattr(args, "regime_bars", None)
    noise_scale = 1.0 if getattr(args, "noise_scale", None) is None else float(args.noise_scale)
    drift, bars, scale = regime_knobs(regime, drift_pips, regime_bars, noise_scale)
    frame = synthesize(
        name,
        days,
        seed,
        regime,
        start,
        drift_pips=drift_pips,
        regime_bars=regime_bars,
        noise_scale=noise_scale,
    )
    con = connect(ctx.home.store)
    try:
        result = write_candles(con, name, frame, replace=getattr(args, "replace", False))
    finally:
        con.close()
    first, last = frame["ts"].iloc[0], frame["ts"].iloc[-1]
    shape = f"noise ×{scale:g}"
    if regime in TUNABLE:
        shape = f"drift {drift:g} pips, regime {bars:g} bars, {shape}"
    log.info(
        "synthetic %s (%s regime, %s, seed %d): %d bars %s .. %s UTC; %d new, %d unchanged, "
        "%d replaced in %s",
        name,
        regime,
        shape,
        seed,
        len(frame),
        f"{first:%Y-%m-%d %H:%M}",
        f"{last:%Y-%m-%d %H:%M}",
        result.inserted,
        result.unchanged,
        result.replaced,
        ctx.home.store,
    )
    log.info("next: `micro data prepare` computes features, labels and sessions")
    return 0
