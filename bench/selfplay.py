"""Benchmark of self-play: `Agent.act` + `TradingEnv.step` with the batched vs the reference search.

Builds a market in memory from synthetic `trend` bars (`micro.data.synth.synthesize`, then the
same feature, outcome and session functions `micro data prepare` uses, without a store), a
`StochasticMuZeroNet` with the default config, and `--envs` environments (default 256). For 5
and for 25 simulations it measures, in one run:

- env steps per second of explore-mode self-play with the batched search, and with the plain
  reference search on the same network (same per-step work: the same Agent, config and env;
  it is slow, so it runs on `--reference-envs` environments and for fewer steps);
- the share of the batched run's wall time spent inside the three network calls (each call
  wrapped with a timer), and the seconds in each call kind (initial = the TCN);
- memory per environment: bytes of the tree arrays + hidden-state buffers / B.

`--seconds S` bounds the whole run (each phase runs at least one timed step). Prints one JSON
object: {"sims_5": {"batched_steps_per_s", "reference_steps_per_s", "speedup",
"network_share", "bytes_per_env", ...}, "sims_25": {...}}. Targets: speedup ≥ 20× at 5
simulations and network_share ≥ 0.6.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from micro.config import Config
from micro.data.market import Market
from micro.data.sessions import cut_sessions
from micro.data.synth import synthesize
from micro.env.trading import Observation, TradingEnv
from micro.features.outcomes import outcome_labels
from micro.features.scaling import fit_scaling
from micro.features.temporal import raw_features, scale_features
from micro.instruments import instrument
from micro.mcts.agent import Agent, Observations
from micro.mcts.reference import reference_search
from micro.mcts.search import run_simulations, search
from micro.model.inference import AfterstateOutput, InitialOutput, RecurrentOutput
from micro.model.networks import StochasticMuZeroNet

INSTRUMENT = "GBP_JPY"
SIMULATIONS = (5, 25)
CALLS = ("initial_inference", "afterstate_inference", "recurrent_inference")
ROUNDS = 3  # batched and reference runs alternate this many times per simulation count


class TimedModel(nn.Module):
    """The network with a stopwatch around each of its three search calls."""

    def __init__(self, net: StochasticMuZeroNet) -> None:
        super().__init__()
        self.net = net
        self.seconds = dict.fromkeys(CALLS, 0.0)

    def reset(self) -> None:
        """Zero the stopwatches."""
        self.seconds = dict.fromkeys(CALLS, 0.0)

    def initial_inference(self, window: torch.Tensor, static: torch.Tensor) -> InitialOutput:
        started = time.perf_counter()
        out = self.net.initial_inference(window, static)
        self.seconds["initial_inference"] += time.perf_counter() - started
        return out

    def afterstate_inference(self, state: torch.Tensor, action: torch.Tensor) -> AfterstateOutput:
        started = time.perf_counter()
        out = self.net.afterstate_inference(state, action)
        self.seconds["afterstate_inference"] += time.perf_counter() - started
        return out

    def recurrent_inference(
        self, afterstate: torch.Tensor, outcome: torch.Tensor
    ) -> RecurrentOutput:
        started = time.perf_counter()
        out = self.net.recurrent_inference(afterstate, outcome)
        self.seconds["recurrent_inference"] += time.perf_counter() - started
        return out


def synthetic_market(config: Config, days: int, seed: int) -> Market:
    """A prepared market built in memory from synthetic bars (no store)."""
    frame = synthesize(INSTRUMENT, days, seed, "trend", "2024-01-01")
    pip = instrument(INSTRUMENT).pip
    ts = pd.to_datetime(frame["ts"]).to_numpy().astype("datetime64[s]").astype(np.int64)
    high = frame["high"].to_numpy(np.float64)
    low = frame["low"].to_numpy(np.float64)
    close = frame["close"].to_numpy(np.float64)
    raw = raw_features(ts, high, low, close, pip, config.features)
    features = scale_features(raw, fit_scaling(raw[:, 1], raw[:, 2]))
    outcome = outcome_labels(close, config.features)
    sessions = cut_sessions(ts, high, low, outcome, pip, config.data, config.features)
    return Market(
        instrument=INSTRUMENT,
        pip=pip,
        ts=ts,
        open=frame["open"].to_numpy(np.float64),
        high=high,
        low=low,
        close=close,
        features=features,
        outcome=outcome,
        session_starts=sessions,
        session_bars=config.data.session_bars,
        window=config.features.window,
    )


@dataclass
class SelfPlay:
    """B environments playing sessions back to back with one agent."""

    market: Market
    config: Config
    agent: Agent
    envs: int
    rng: np.random.Generator
    starts: np.ndarray = field(init=False)
    env: TradingEnv = field(init=False)
    observation: Observation = field(init=False)

    def __post_init__(self) -> None:
        self.starts = np.concatenate(list(self.market.session_starts.values()))
        self.env = TradingEnv(self.market, self.config, self.envs)
        self.observation = self.env.reset(self.rng.choice(self.starts, self.envs))

    def observations(self) -> Observations:
        """The agent's view of the current observation."""
        obs = self.observation
        return Observations(
            window=self.market.windows(obs.rows), static=obs.static, legal=obs.legal, side=obs.side
        )

    def step(self) -> None:
        """One decision in every env; finished sessions restart on a random session."""
        actions, _ = self.agent.act(self.observations(), "explore", self.rng)
        result = self.env.step(actions)
        self.observation = result.observation
        done = np.flatnonzero(result.done)
        if done.size:
            starts = self.rng.choice(self.starts, done.size)
            self.observation = self.env.reset_envs(done, starts)


@dataclass
class Meter:
    """Env steps, wall seconds and seconds inside each network call, summed over rounds."""

    envs: int
    steps: int = 0
    elapsed: float = 0.0
    network: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CALLS, 0.0))

    def run(self, play: SelfPlay, model: TimedModel, budget_s: float) -> None:
        """Step `play` until `budget_s` has passed (at least once), adding up the figures."""
        model.reset()
        started = time.perf_counter()
        while True:
            play.step()
            self.steps += 1
            elapsed = time.perf_counter() - started
            if elapsed >= budget_s:
                break
        self.elapsed += elapsed
        for name in CALLS:
            self.network[name] += model.seconds[name]

    def steps_per_s(self) -> float:
        """Environment steps (decisions) per second."""
        return self.steps * self.envs / self.elapsed

    def network_share(self) -> float:
        """Share of the wall time spent inside the network's three calls."""
        return sum(self.network.values()) / self.elapsed


def bytes_per_env(play: SelfPlay, model: TimedModel, simulations: int) -> float:
    """(tree arrays + hidden-state buffers) / B for one search of the current observations."""
    obs = play.observations()
    tree, hidden = run_simulations(
        model, obs.window, obs.static, obs.legal, obs.side, play.config.mcts, simulations
    )
    return (tree.nbytes + hidden.nbytes) / play.envs


def run(seconds: float, envs: int, reference_envs: int, days: int, seed: int) -> dict:
    """All measurements within about `seconds` of wall time; the JSON-able result.

    Batched and reference runs alternate in short rounds so that a change in the machine's load
    (other processes on the same cores) affects both alike.
    """
    deadline = time.perf_counter() + seconds
    config = Config()
    market = synthetic_market(config, days, seed)
    torch.manual_seed(seed)
    net = StochasticMuZeroNet(config.model, config.features.window).eval()
    model = TimedModel(net)
    report: dict = {}
    for i, simulations in enumerate(SIMULATIONS):
        mcts = replace(config.mcts, simulations=simulations)
        rng = np.random.default_rng(seed)
        batched_play = SelfPlay(market, config, Agent(model, mcts, search_fn=search), envs, rng)
        agent = Agent(model, mcts, search_fn=reference_search)
        reference_play = SelfPlay(market, config, agent, reference_envs, rng)
        batched_play.step()  # warm-up: compiles or loads the numba kernels, warms torch up
        reference_play.step()
        memory = bytes_per_env(batched_play, model, simulations)
        batched, reference = Meter(envs), Meter(reference_envs)
        round_s = max(0.0, deadline - time.perf_counter()) / (len(SIMULATIONS) - i) / ROUNDS
        for _ in range(ROUNDS):
            batched.run(batched_play, model, round_s * 0.4)
            reference.run(reference_play, model, round_s * 0.6)
        report[f"sims_{simulations}"] = {
            "batched_steps_per_s": round(batched.steps_per_s(), 1),
            "reference_steps_per_s": round(reference.steps_per_s(), 2),
            "speedup": round(batched.steps_per_s() / reference.steps_per_s(), 1),
            "network_share": round(batched.network_share(), 3),
            "bytes_per_env": round(memory),
            "envs": envs,
            "reference_envs": reference_envs,
            "reference_network_share": round(reference.network_share(), 3),
            **{
                f"batched_{name}_s_per_step": round(batched.network[name] / batched.steps, 5)
                for name in CALLS
            },
        }
    report["torch_threads"] = torch.get_num_threads()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="bound on the whole run")
    parser.add_argument("--envs", type=int, default=256, help="environments, batched search")
    parser.add_argument(
        "--reference-envs", type=int, default=32, help="environments, reference search"
    )
    parser.add_argument("--days", type=int, default=21, help="calendar days of synthetic bars")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = run(args.seconds, args.envs, args.reference_envs, args.days, args.seed)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
