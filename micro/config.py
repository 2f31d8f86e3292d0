"""One frozen dataclass tree for all of micro, loaded from micro.toml, MICRO_* env and --set flags.

Precedence (later wins): defaults < `<home>/micro.toml` < `MICRO_<SECTION>__<KEY>` environment
variables < `--set section.key=value` flags. Unknown keys and values of the wrong type or outside
their range are refused with a `ConfigError` naming the key and what is expected.

Each field documents itself in the string right under it; constraints live in the field's
metadata (`ge`, `gt`, `le`, `lt`, `choices`) and are checked by `validate`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from micro import config_load
from micro.errors import ConfigError
from micro.instruments import TYPICAL_PRICE
from micro.redaction import REDACTED

ENV_PREFIX = "MICRO_"
# MICRO_* variables that are read elsewhere and are no config setting (not warned about).
ENV_NOT_SETTINGS = frozenset({"MICRO_HOME", "MICRO_SERVICE", "MICRO_ALERT_URLS"})
CONFIG_FILE = "micro.toml"
SECRET_KEYS = frozenset({"account", "token"})


def _f(default: Any, **constraints: Any) -> Any:
    """A dataclass field with a default and range/choice constraints kept in its metadata."""
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=constraints)
    return field(default=default, metadata=constraints)


@dataclass(frozen=True)
class DataConfig:
    instrument: str = "GBP_JPY"
    """The instrument every service trades and reads (OANDA spelling, e.g. GBP_JPY)."""
    session_bars: int = _f(360, ge=40, le=10_000)
    """Bars in one session (an episode): consecutive M1 bars, decisions on all but the last."""
    max_gap_minutes: int = _f(10, ge=1, le=1440)
    """A session may not span a gap in the candles longer than this (minutes)."""
    min_session_range_pips: float = _f(10.0, ge=0.0)
    """A session whose high-low range is below this (pips) is dropped as dead market."""
    train_fraction: float = _f(0.70, gt=0.0, lt=1.0)
    """Share of the time span (by bars) used for training; splits are ordered by time."""
    validation_fraction: float = _f(0.15, gt=0.0, lt=1.0)
    """Share of the time span used for validation; the rest (after embargoes) is test."""
    embargo_minutes: int = _f(1440, ge=0)
    """Gap left unused between train/validation and validation/test so no window straddles."""
    synth_days: int = _f(120, ge=1, le=20_000)
    """Calendar days of synthetic data `micro up` generates when the store is empty."""
    synth_seed: int = _f(7, ge=0)
    """Seed of that default synthetic data."""
    synth_regime: Literal["random", "trend", "meanrevert"] = _f(
        "trend", choices=("random", "trend", "meanrevert")
    )
    """Regime of that default synthetic data (`trend` has learnable structure)."""


@dataclass(frozen=True)
class FeaturesConfig:
    window: int = _f(32, ge=4, le=512)
    """Bars in the temporal window the representation network sees (window × 9 features)."""
    range_bars: int = _f(240, ge=5, le=1440)
    """Lookback of position_in_range, momentum and rolling range (bars). 240 sees a slow
    reversion's mean (60 was the default before; bench/learning.py, README Learning)."""
    fast_momentum_bars: int = _f(5, ge=1, le=120)
    """Lookback of the fast momentum feature (bars)."""
    outcome_std_bars: int = _f(20, ge=2, le=1440)
    """Rolling window of the close-to-close std that scales the outcome thresholds (bars)."""
    outcome_threshold: float = _f(0.33, gt=0.0, le=5.0)
    """A bar is UP/DOWN when its close-to-close change exceeds this many rolling stds."""


@dataclass(frozen=True)
class EnvConfig:
    spread_pips: dict[str, float] = _f(
        {
            "GBP_JPY": 4.0,
            "EUR_JPY": 2.5,
            "USD_JPY": 1.5,
            "CAD_JPY": 3.0,
            "AUD_JPY": 2.5,
            "EUR_USD": 1.2,
            "GBP_USD": 1.8,
            "AUD_USD": 1.5,
            "USD_CAD": 2.0,
            "USD_CHF": 2.0,
        },
        ge=0.0,
    )
    """Round-trip spread per instrument (pips), paid on entry; keys are instruments of the
    instrument table (micro/instruments.py) or `data.instrument`."""
    default_spread_pips: float = _f(3.0, ge=0.0)
    """Spread for an instrument missing from the table (pips)."""
    commission_pips: float = _f(0.0, ge=0.0)
    """Commission per round trip (pips), paid on entry."""
    slippage_pips: float = _f(0.0, ge=0.0)
    """Slippage per fill (pips), paid on entry and on exit."""
    reward: Literal["mtm", "amddp1"] = _f("mtm", choices=("mtm", "amddp1"))
    """`mtm`: mark-to-market pips each bar net of costs; `amddp1`: pips − k·drawdown on close."""
    drawdown_penalty: float = _f(0.01, ge=0.0)
    """k of `amddp1`: weight of the trade's max drawdown (pips) subtracted on close."""
    use_stop_loss: bool = True
    """Close a position at `risk.stop_loss_pips` from entry, as the broker-side stop would."""


@dataclass(frozen=True)
class ModelConfig:
    tcn_channels: int = _f(64, ge=4, le=4096)
    """Channels of each TCN layer over the temporal window (the seed's 240 stays selectable;
    64 learns faster on 2 cores: bench/learning.py, README "Learning")."""
    tcn_kernel: int = _f(3, ge=2, le=16)
    """Kernel size of the causal convolutions."""
    tcn_dilations: tuple[int, ...] = _f((1, 2, 4), ge=1, le=1024, min_items=1)
    """Dilation of each residual TCN block (at least one block)."""
    static_hidden: int = _f(64, ge=4, le=4096)
    """Width of the MLP over the 6 static (position) features."""
    hidden: int = _f(128, ge=8, le=8192)
    """Size of the hidden state s and of the afterstate."""
    mlp_hidden: int = _f(128, ge=8, le=8192)
    """Width of the hidden layer of each dynamics/prediction head."""
    value_support: int = _f(16, ge=2, le=300)
    """Value support: integer bins −n..n in h-space (h(x) = sign(x)(√(|x|+1)−1)+εx, x in pips)."""
    reward_support: int = _f(8, ge=2, le=300)
    """Reward support: integer bins −n..n in h-space (pips per bar)."""
    support_mean: Literal["h", "pips"] = _f("h", choices=("h", "pips"))
    """What a value or reward distribution over the bins decodes to: `h` (MuZero's) h⁻¹ of its
    mean in h-space, which shrinks a noisy target towards 0; `pips` its mean in pips, each bin
    standing for h⁻¹ of itself and the two-hot targets split linearly in pips."""


@dataclass(frozen=True)
class MctsConfig:
    simulations: int = _f(8, ge=1, le=4096)
    """Simulations per decision."""
    root_selection: Literal["puct", "gumbel"] = _f("puct", choices=("puct", "gumbel"))
    """`puct` with root Dirichlet noise, or Gumbel top-k with sequential halving."""
    pb_c_init: float = _f(1.25, gt=0.0)
    """pUCT exploration constant c1."""
    pb_c_base: float = _f(19652.0, gt=0.0)
    """pUCT exploration constant c2."""
    discount: float = _f(0.997, gt=0.0, le=1.0)
    """Discount per real step (bar). 0.997 keeps a gain 120 bars away at 70 % of itself (0.99:
    30 %, about the spread)."""
    dirichlet_alpha: float = _f(0.3, gt=0.0)
    """Root Dirichlet noise concentration (explore mode only)."""
    exploration_fraction: float = _f(0.25, ge=0.0, le=1.0)
    """Share of the root prior replaced by Dirichlet noise (explore mode only)."""
    q_floor_pips: float = _f(1.0, gt=0.0)
    """Min-max Q normalisation never divides by a range smaller than this (pips)."""
    gumbel_scale: float = _f(1.0, ge=0.0)
    """Scale of the Gumbel noise at the root (explore mode; gumbel selection only)."""
    gumbel_c_visit: float = _f(50.0, gt=0.0)
    """σ(q) transform constant c_visit (gumbel selection only)."""
    gumbel_c_scale: float = _f(1.0, gt=0.0)
    """σ(q) transform constant c_scale (gumbel selection only)."""


@dataclass(frozen=True)
class TrainConfig:
    seed: int = _f(0, ge=0)
    """Seed of every RNG in the trainer (actors derive theirs from it)."""
    actors: int = _f(1, ge=1, le=256)
    """Self-play actor processes."""
    envs_per_actor: int = _f(64, ge=1, le=8192)
    """Environments each actor steps through one batched search."""
    batch_size: int = _f(256, ge=1, le=65536)
    """Learner batch (positions per gradient step)."""
    unroll_steps: int = _f(5, ge=1, le=32)
    """K: steps the dynamics are unrolled in training."""
    n_step: int = _f(15, ge=1, le=1000)
    """Bars of real reward before bootstrapping from the stored root value."""
    learning_rate: float = _f(1e-3, gt=0.0, le=1.0)
    """Adam learning rate (until `learning_rate_decay_start` episodes when it decays)."""
    learning_rate_end: float = _f(1e-4, gt=0.0, le=1.0)
    """The learning rate once its decay is over."""
    learning_rate_decay_start: int = _f(5_000, ge=0)
    """Episodes of training at `learning_rate` before the decay begins."""
    learning_rate_decay_episodes: int = _f(0, ge=0)
    """Episodes over which the learning rate goes linearly from `learning_rate` to
    `learning_rate_end` after `learning_rate_decay_start`; 0: constant `learning_rate`."""
    weight_average: float = _f(0.0, ge=0.0, lt=1.0)
    """Decay of an exponential moving average of the learner's weights, updated every step;
    when > 0 the actors play and the checkpoints carry the average (0: the learner's own)."""
    weight_decay: float = _f(1e-4, ge=0.0)
    """Adam (decoupled) weight decay."""
    grad_clip: float = _f(5.0, gt=0.0)
    """Global gradient-norm clip."""
    loss_policy: float = _f(1.0, ge=0.0)
    """Weight of the policy loss."""
    loss_value: float = _f(0.25, ge=0.0)
    """Weight of the value loss."""
    loss_reward: float = _f(1.0, ge=0.0)
    """Weight of the reward loss."""
    loss_chance: float = _f(1.0, ge=0.0)
    """Weight of the σ (chance outcome) cross-entropy."""
    loss_afterstate_q: float = _f(0.25, ge=0.0)
    """Weight of the afterstate Q loss."""
    replay_capacity: int = _f(1_000_000, ge=1000)
    """Positions kept in replay (as indices, not copies of windows)."""
    min_replay: int = _f(2_000, ge=1)
    """Positions in replay before the learner starts."""
    replay_ratio: float = _f(2.0, gt=0.0)
    """Unroll starts the learner samples per position self-play generates (batch_size per step).
    Whichever side runs ahead waits: the learner past the ratio, the actors below it."""
    mirror: bool = True
    """Train on the mirror market too: half of each batch is mirrored (price moves negated,
    BUY ↔ SELL, DOWN ↔ UP), so the training period's drift cannot be learned as a side bet."""
    prioritized: bool = False
    """Prioritised replay (priority = |value error|^alpha, importance weights ^beta)."""
    priority_alpha: float = _f(0.6, ge=0.0, le=1.0)
    """Prioritised replay exponent alpha."""
    priority_beta: float = _f(0.4, ge=0.0, le=1.0)
    """Prioritised replay importance-sampling exponent beta."""
    exit_exploration: float = _f(0.05, ge=0.0, le=1.0)
    """Chance that self-play explores a held position's hold-or-close decision (pUCT: root noise
    and an action sampled from the visits; Gumbel: root Gumbel noise); otherwise it takes the
    search's best action. 1: every decision explores, and an untrained agent holds a trade about
    2 bars (at 0: about 40)."""
    value_bootstrap: Literal["search", "best"] = _f("best", choices=("search", "best"))
    """What the n-step value target bootstraps from: the search's root value (`search`, a
    visit-weighted mean that includes the explored actions) or the best searched action's Q
    (`best`: the value of acting greedily from there on, not charged for exploration)."""
    cut_explored: bool = False
    """Cut each n-step value target at the first exploratory decision after its position (one
    whose action is not the search's best): the target sums the rewards before it and bootstraps
    from that position's stored value, so the value of the action taken is greedy play's after
    it (as `value_bootstrap` best values the bootstrap itself), not charged for the explored
    entries and exits of the n steps (Watkins's Q(λ) cut)."""
    cut_explored_exits: bool = False
    """The same cut at explored decisions of a held position only (an exit or hold that was not
    the search's best): a held trade's value is not charged for exits self-play explored after
    it, while the targets of flat positions still sum the entries it explored (how entries are
    first learned). Has no effect with `cut_explored`, which cuts at both."""
    entry_exploration: float = _f(0.25, ge=0.0, le=1.0)
    """The same chance for a flat position's decision to enter or stay out; otherwise it takes
    the search's best action with no root noise. 1: every flat decision explores. With a decay
    (below) this is the chance once the decay is over."""
    entry_exploration_start: float = _f(1.0, ge=0.0, le=1.0)
    """The entry chance at the start of training, when `entry_exploration_decay_episodes` > 0."""
    entry_exploration_decay_episodes: int = _f(5_000, ge=0)
    """Episodes over which the entry chance goes linearly from `entry_exploration_start` to
    `entry_exploration`; 0: `entry_exploration` from the first episode."""
    reanalyze: bool = False
    """Bootstrap the n-step value targets from the learner's current network when a batch is
    sampled instead of from the value the search stored when the position was played (the
    value half of MuZero Reanalyze); `value_bootstrap` picks the network's state value or its
    best afterstate Q. A cut session's end value stays the stored one."""
    session_end: Literal["terminal", "bootstrap"] = _f(
        "bootstrap", choices=("terminal", "bootstrap")
    )
    """What the session's end is to the value targets: a true terminal (`terminal`: nothing
    after it, the forced close's exit cost counted), or a cut the live trader never meets
    (`bootstrap`: the last bar is searched as if the session went on, the targets bootstrap
    from that value and the forced close's exit cost is not charged; needs `env.reward` mtm)."""
    temperature_start: float = _f(1.0, gt=0.0)
    """Action-sampling temperature at the start of training."""
    temperature_end: float = _f(0.25, gt=0.0)
    """Temperature once the decay is over."""
    temperature_decay_episodes: int = _f(5_000, ge=1)
    """Episodes over which the temperature decays linearly."""
    publish_weights_steps: int = _f(10, ge=1)
    """Learner steps between weight publications to the actors."""
    checkpoint_every_episodes: int = _f(50, ge=1)
    """Episodes between numbered checkpoints `ckpt_ep{N:07d}.pth`."""
    keep_checkpoints: int = _f(5, ge=1)
    """Numbered checkpoints kept (never one not yet scored, never best)."""
    latest_every_seconds: float = _f(60.0, gt=0.0)
    """Seconds between rewrites of `latest.pth`."""
    report_every_seconds: float = _f(5.0, gt=0.0)
    """Seconds between status.json / metrics.jsonl / TensorBoard reports."""
    threads: int = _f(0, ge=0, le=256)
    """Torch threads per process (0: let torch decide)."""
    backend: Literal["local", "ray"] = _f("local", choices=("local", "ray"))
    """Where self-play actors run: `local` processes of the trainer, or `ray` actors spread over
    a Ray cluster's machines (`pip install micro[ray]`). Learner, replay and checkpoints stay in
    the trainer process either way."""
    ray_address: str = ""
    """Ray cluster to join with the `ray` backend: HOST:PORT of its head, `auto` for the cluster
    `ray start` began on this machine, or empty for a private Ray on this machine alone."""
    ray_cpus_per_actor: float = _f(1.0, gt=0.0, le=256.0)
    """CPUs each Ray actor reserves in the placement group (Ray's `num_cpus`)."""
    ray_object_store_mb: int = _f(0, ge=0, le=1_000_000)
    """Object store of the private Ray (MiB; 0: Ray's default); a joined cluster keeps its own."""
    ray_placement_timeout_seconds: float = _f(60.0, gt=0.0, le=86_400.0)
    """Seconds to wait for the cluster to hold every actor's CPUs before giving up."""


@dataclass(frozen=True)
class ValidationConfig:
    split: Literal["validation", "test"] = _f("validation", choices=("validation", "test"))
    """Sessions scored by default (the test split never promotes)."""
    max_sessions: int = _f(0, ge=0)
    """Cap on sessions scored per checkpoint (0: all of the split)."""
    bootstrap_runs: int = _f(1000, ge=10)
    """Monte Carlo resamples of the trade list."""
    block_size: int = _f(0, ge=0)
    """Block bootstrap block length in trades (0: plain i.i.d. resampling)."""
    seed: int = _f(12345, ge=0)
    """Seed of the bootstrap and of the random-entry baselines."""
    min_trades: int = _f(30, ge=1)
    """A checkpoint with fewer trades is never promoted."""
    max_drawdown_pct: float = _f(20.0, gt=0.0, le=100.0)
    """A checkpoint whose max drawdown exceeds this share of the account is never promoted."""
    account_pips: float = _f(1000.0, gt=0.0)
    """Account size expressed in pips of one unit: drawdown % and safe-f are relative to it."""
    promotion_score: Literal["sqn_p25", "sqn", "expectancy_p25", "car25"] = _f(
        "sqn_p25", choices=("sqn_p25", "sqn", "expectancy_p25", "car25")
    )
    """Score a checkpoint must beat the current best on to be promoted."""
    min_expectancy_p5_pips: float = _f(0.0, ge=-1000.0, le=1000.0)
    """Promotion gate: the bootstrap's 5th-percentile expectancy (pips per trade) must exceed it."""
    min_random_entry_percentile: float = _f(95.0, ge=0.0, le=100.0)
    """Promotion gate: the rank against random entry with the agent's own sides (timing skill)."""
    min_dsr: float = _f(0.95, ge=0.0, le=1.0)
    """Promotion gate: the Deflated Sharpe Ratio over every checkpoint scored on the same data."""
    pbo_blocks: int = _f(8, ge=2, le=16)
    """Time blocks of the validation sessions for the PBO's combinatorial cross-validation."""
    max_test_drop: float = _f(0.5, gt=0.0, le=10.0)
    """A new best whose test expectancy falls more than this share below validation is flagged."""
    safe_f_horizon_years: float = _f(2.0, gt=0.0)
    """Horizon of Bandy's safe-f drawdown simulation (years at the observed trade rate)."""
    safe_f_drawdown_tolerance: float = _f(0.20, gt=0.0, lt=1.0)
    """Safe-f: the 95th-percentile drawdown over the horizon must stay within this."""
    safe_f_max: float = _f(1.0, gt=0.0, le=100.0)
    """Largest safe-f searched: f = 1 trades one unit per `account_pips` of equity."""
    ma_fast_bars: int = _f(10, ge=1, le=10_000)
    """Fast simple moving average of the crossover baseline (bars of closes)."""
    ma_slow_bars: int = _f(60, ge=2, le=10_000)
    """Slow simple moving average of the crossover baseline (bars); must exceed the fast one."""
    random_baselines: int = _f(1000, ge=10)
    """Random-entry traders the agent is ranked against."""
    checkpoint_time_limit_seconds: float = _f(900.0, gt=0.0)
    """A checkpoint still being scored after this long is abandoned and recorded as such."""
    poll_seconds: float = _f(5.0, gt=0.0)
    """Seconds between looks at checkpoints/ when watching."""
    simulations: int = _f(32, ge=0, le=4096)
    """Simulations per greedy decision in validation and live (0: mcts.simulations). Greedy
    acting takes the most visited root action, so it needs more simulations than self-play,
    which samples: with few, visits follow the prior (measured: 4 → no trades, 32 → the
    learned edge)."""
    threads: int = _f(1, ge=0, le=256)
    """Torch threads of the scoring process (0: torch decides; 1 leaves the cores to training)."""


@dataclass(frozen=True)
class OandaConfig:
    environment: Literal["practice", "live"] = _f("practice", choices=("practice", "live"))
    """OANDA environment; `live` also needs the `--live-money` flag before real money moves."""
    api_url: str = ""
    """REST base URL (empty: OANDA's URL for `environment`); a proxy or test double may stand in."""
    stream_url: str = ""
    """Streaming base URL (empty: OANDA's URL for `environment`)."""
    account: str = ""
    """Account id (prefer env OANDA_ACCOUNT); redacted from every dump."""
    timeout_seconds: float = _f(10.0, gt=0.0, le=300.0)
    """Timeout of every request (seconds)."""
    max_retries: int = _f(6, ge=0, le=100)
    """Retries of a request failing with 429/5xx/timeouts, with exponential backoff."""
    backoff_seconds: float = _f(1.0, ge=0.0, le=300.0)
    """First backoff delay; doubled on each retry (capped at 60 s)."""
    price_stream: bool = True
    """Take prices from the pricing stream (REST pricing whenever it is down); false: REST only."""
    stream_timeout_seconds: float = _f(10.0, gt=0.0, le=300.0)
    """No stream line (heartbeats included) for this long: a dead stream (OANDA beats every 5 s)."""
    stream_backoff_seconds: float = _f(0.5, gt=0.0, le=300.0)
    """First delay before reconnecting the stream; doubled on each failed attempt (seconds)."""
    stream_max_backoff_seconds: float = _f(30.0, gt=0.0, le=600.0)
    """Cap of the stream's reconnect delay (seconds)."""


@dataclass(frozen=True)
class LiveConfig:
    broker: Literal["auto", "sim", "oanda"] = _f("auto", choices=("auto", "sim", "oanda"))
    """`auto`: oanda when OANDA_TOKEN is set, else the simulated broker (paper mode)."""
    poll_seconds: float = _f(5.0, gt=0.0)
    """Seconds between polls for a newly completed M1 candle."""
    units: int = _f(1000, ge=1)
    """Units per entry (one position, net)."""
    warmup_bars: int = _f(600, ge=1)
    """History fetched at start to warm the features up (bars)."""
    adopt_unknown_positions: bool = False
    """Adopt an open position the journal does not know instead of refusing to trade."""
    stalled_clock_seconds: float = _f(150.0, gt=0.0)
    """No new completed candle for this long (wall seconds) means the market is closed: idle."""
    oanda: OandaConfig = field(default_factory=OandaConfig)
    """OANDA connection settings."""


@dataclass(frozen=True)
class RiskConfig:
    stop_loss_pips: float = _f(30.0, gt=0.0)
    """Broker-side stop-loss distance on every entry (pips); also the R unit in validation."""
    max_units: int = _f(10_000, ge=1)
    """Largest position ever sent (units)."""
    daily_loss_limit_pips: float = _f(100.0, gt=0.0)
    """Realised+open loss in a trading day that halts new entries until the next day (pips)."""
    max_drawdown_pips: float = _f(300.0, gt=0.0)
    """Drawdown from the equity peak that halts trading (pips)."""
    circuit_breaker_errors: int = _f(5, ge=1)
    """Consecutive broker errors that open the circuit breaker."""
    circuit_open_seconds: float = _f(60.0, gt=0.0)
    """Seconds the breaker stays open before a half-open trial."""
    weekly_close_buffer_minutes: int = _f(60, ge=0)
    """No new entries within this many minutes of the weekly close (Fri 21:00 UTC)."""
    stale_price_seconds: float = _f(180.0, gt=0.0)
    """A price older than this never leads to an order."""


@dataclass(frozen=True)
class AlertsConfig:
    """Alerts (`micro.alerts`): the targets are apprise URLs in env MICRO_ALERT_URLS only (they
    hold tokens), never in micro.toml; without that variable no alert is sent."""

    max_per_hour: int = _f(30, ge=1, le=10_000)
    """Alerts sent by one service in any rolling hour; the rest are counted and said in the next."""
    dedupe_seconds: float = _f(600.0, ge=0.0, le=7 * 86_400.0)
    """An alert with the same key as one sent this recently is dropped (seconds)."""
    disconnect_seconds: float = _f(120.0, gt=0.0, le=86_400.0)
    """The live trader alerts once its broker link has been down this long (seconds)."""
    timeout_seconds: float = _f(10.0, gt=0.0, le=300.0)
    """Connect and read timeout of each delivery to a target (seconds)."""
    restart_loop_restarts: int = _f(3, ge=1, le=1000)
    """`micro up` restarting one service this many times within `restart_loop_seconds` is a loop."""
    restart_loop_seconds: float = _f(900.0, gt=0.0, le=86_400.0)
    """The window of that restart count (seconds)."""
    daily_summary: bool = True
    """The live trader sends a summary when the FX trading day rolls (21:00 UTC)."""


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mcts: MctsConfig = field(default_factory=MctsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    def spread_pips(self, instrument: str | None = None) -> float:
        """Spread (pips) of `instrument` (default: the configured one) from the table."""
        name = instrument or self.data.instrument
        return self.env.spread_pips.get(name, self.env.default_spread_pips)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """The whole tree as plain JSON-able data; secrets replaced by '***' unless redact=False."""
        plain: dict[str, Any] = _to_plain(self, redact)
        return plain

    def section_hash(self, *sections: str) -> str:
        """sha256 (16 hex) of the named sections: tells whether two configs are compatible."""
        plain = {s: _to_plain(getattr(self, s), redact=False) for s in sections}
        for s, keys in LATER_KEYS.items():  # at the behaviour before them: hashed as before
            for key, before in keys.items():
                if s in plain and plain[s].get(key) == before:
                    del plain[s][key]
        blob = json.dumps(plain, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# Sections whose values change the meaning of a checkpoint's weights.
MODEL_SECTIONS = ("features", "model")

# Settings of those sections added after checkpoints were first written, with the value that
# gives the behaviour before them: a checkpoint without one was made with that value, and a
# config at that value hashes as it did before the setting existed.
LATER_KEYS: dict[str, dict[str, Any]] = {"model": {"support_mean": "h"}}


def _to_plain(obj: Any, redact: bool) -> Any:
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if redact and f.name in SECRET_KEYS and value:
                out[f.name] = REDACTED
            else:
                out[f.name] = _to_plain(value, redact)
        return out
    if isinstance(obj, tuple):
        return [_to_plain(v, redact) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v, redact) for k, v in obj.items()}
    return obj


def ray_address_ok(address: str) -> bool:
    """Whether `address` is empty, `auto`, or HOST:PORT with a port in 1-65535."""
    if address in ("", "auto"):
        return True
    host, sep, port = address.rpartition(":")
    return bool(sep and host.strip("[]") and port.isdigit() and 1 <= int(port) <= 65535)


def with_checks(config: Config) -> Config:
    """Cross-field checks that no single field can express."""
    if config.data.train_fraction + config.data.validation_fraction >= 1.0:
        raise ConfigError(
            "config: data.train_fraction + data.validation_fraction must be < 1 "
            "(the rest is the test split)"
        )
    if config.validation.ma_fast_bars >= config.validation.ma_slow_bars:
        raise ConfigError("config: validation.ma_fast_bars must be < validation.ma_slow_bars")
    if config.features.window > config.data.session_bars:
        raise ConfigError("config: features.window must not exceed data.session_bars")
    if config.train.session_end == "bootstrap" and config.env.reward != "mtm":
        raise ConfigError(
            "config: train.session_end = bootstrap needs env.reward = mtm (amddp1 pays a trade's "
            "whole reward at its close, which a cut position never reaches); with amddp1 set "
            "train.session_end = terminal"
        )
    if not ray_address_ok(config.train.ray_address):
        raise ConfigError(
            f"config: train.ray_address must be HOST:PORT of a Ray head (port 1-65535), auto, "
            f"or empty for a private Ray on this machine; got {config.train.ray_address!r}"
        )
    known = set(TYPICAL_PRICE) | {config.data.instrument}
    for name in config.env.spread_pips:
        if name not in known:
            raise ConfigError(
                f"config: env.spread_pips.{name} names no known instrument; use one of "
                f"{', '.join(sorted(known))} (OANDA spelling), or remove it"
            )
    return config


def load_config(
    home: Path | str,
    sets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Defaults, then `<home>/micro.toml`, then MICRO_* env, then `--set` flags; validated."""
    environ = os.environ if environ is None else environ
    path = Path(home) / CONFIG_FILE
    return with_checks(
        config_load.layered(Config, path, ENV_PREFIX, environ, sets, ENV_NOT_SETTINGS)
    )


def replace(config: Config, **dotted: Any) -> Config:
    """A validated copy with dotted keys changed: replace(c, **{'mcts.simulations': 5})."""
    return with_checks(
        config_load.from_plain(Config, config.to_dict(redact=False), "config", dotted)
    )


def config_from_dict(plain: Mapping[str, Any], source: str = "config") -> Config:
    """Rebuild (and validate) a Config from `Config.to_dict(redact=False)` output."""
    return with_checks(config_load.from_plain(Config, plain, source))
