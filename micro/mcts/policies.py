"""Selection rules of the search and acting from its result: pUCT, Gumbel, root noise, sampling.

Per-node rules work on one node's row of 4 actions and are compiled (numba) so the batched tree
kernels call them inside their loops; the plain reference search re-implements them in Python
and the parity tests hold the two equal. Root noise and acting are vectorised numpy over the
batch and take an explicit `np.random.Generator`: no global RNG, no wall clock.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from micro.env.actions import NUM_ACTIONS, NUM_OUTCOMES

LOW_LOGIT = -1e9  # floor of Gumbel scores (mctx's `score_considered`)


# ----------------------------------------------------------------- per-node rules (compiled)


@njit(cache=True)
def masked_softmax(logits: np.ndarray, legal: np.ndarray, out: np.ndarray) -> None:
    """Softmax of `logits` [4] over the legal actions into `out` [4]; illegal actions get 0."""
    top = -np.inf
    for a in range(NUM_ACTIONS):
        if legal[a] and logits[a] > top:
            top = logits[a]
    total = 0.0
    for a in range(NUM_ACTIONS):
        if legal[a]:
            out[a] = math.exp(logits[a] - top)
            total += out[a]
        else:
            out[a] = 0.0
    for a in range(NUM_ACTIONS):
        out[a] /= total


@njit(cache=True)
def puct_action(
    q: np.ndarray,  # [4] pips: mean value of each afterstate child (ignored where unvisited)
    child_visits: np.ndarray,  # [4] int
    prior: np.ndarray,  # [4] probabilities (root: after noise)
    legal: np.ndarray,  # [4] bool
    node_value: float,  # pips: the node's own running value estimate
    node_visits: int,
    pb_c_init: float,
    pb_c_base: float,
    q_floor: float,  # pips
) -> int:
    """pUCT over the legal actions with Q min-max normalised over the node and visited children."""
    low = node_value
    high = node_value
    for a in range(NUM_ACTIONS):
        if legal[a] and child_visits[a] > 0:
            low = min(low, q[a])
            high = max(high, q[a])
    scale = max(high - low, q_floor)
    sqrt_n = math.sqrt(node_visits)
    pb_c = pb_c_init + math.log((node_visits + pb_c_base + 1.0) / pb_c_base)
    best_action = -1
    best_score = -np.inf
    for a in range(NUM_ACTIONS):
        if not legal[a]:
            continue
        value = q[a] if child_visits[a] > 0 else node_value
        score = (value - low) / scale + prior[a] * sqrt_n / (1.0 + child_visits[a]) * pb_c
        if best_action < 0 or score > best_score:
            best_action = a
            best_score = score
    return best_action


@njit(cache=True)
def completed_q_transform(
    q: np.ndarray,  # [4] pips (ignored where unvisited)
    child_visits: np.ndarray,  # [4] int
    logits: np.ndarray,  # [4] network prior logits
    legal: np.ndarray,  # [4] bool
    raw_value: float,  # pips: the network's value of the node
    c_visit: float,
    c_scale: float,
    q_floor: float,  # pips
    out: np.ndarray,  # [4] σ(completed q̂), 0 on illegal actions
) -> None:
    """Gumbel MuZero's σ(completed Q): unvisited Q = mixed value, min-max scaled, visit-weighted."""
    prior = np.empty(NUM_ACTIONS)
    masked_softmax(logits, legal, prior)
    sum_visits = 0
    max_visits = 0
    sum_probs = 0.0
    for a in range(NUM_ACTIONS):
        if legal[a]:
            sum_visits += child_visits[a]
            max_visits = max(max_visits, child_visits[a])
            if child_visits[a] > 0:
                sum_probs += max(prior[a], 1e-300)
    weighted_q = 0.0
    for a in range(NUM_ACTIONS):
        if legal[a] and child_visits[a] > 0:
            weighted_q += max(prior[a], 1e-300) * q[a] / sum_probs
    mixed_value = (raw_value + sum_visits * weighted_q) / (sum_visits + 1)
    low = np.inf
    high = -np.inf
    for a in range(NUM_ACTIONS):
        if legal[a]:
            out[a] = q[a] if child_visits[a] > 0 else mixed_value
            low = min(low, out[a])
            high = max(high, out[a])
    scale = max(high - low, q_floor)
    visit_scale = (c_visit + max_visits) * c_scale
    for a in range(NUM_ACTIONS):
        out[a] = visit_scale * (out[a] - low) / scale if legal[a] else 0.0


@njit(cache=True)
def gumbel_interior_action(
    q: np.ndarray,  # [4] pips
    child_visits: np.ndarray,  # [4] int
    logits: np.ndarray,  # [4]
    legal: np.ndarray,  # [4] bool
    raw_value: float,  # pips
    c_visit: float,
    c_scale: float,
    q_floor: float,
) -> int:
    """Deterministic improved-policy selection: argmax π'(a) − N(a) / (1 + ΣN) over legal a."""
    sigma_q = np.empty(NUM_ACTIONS)
    completed_q_transform(
        q, child_visits, logits, legal, raw_value, c_visit, c_scale, q_floor, sigma_q
    )
    improved = np.empty(NUM_ACTIONS)
    for a in range(NUM_ACTIONS):
        improved[a] = logits[a] + sigma_q[a]
    probs = np.empty(NUM_ACTIONS)
    masked_softmax(improved, legal, probs)
    sum_visits = 0
    for a in range(NUM_ACTIONS):
        if legal[a]:
            sum_visits += child_visits[a]
    best_action = -1
    best_score = -np.inf
    for a in range(NUM_ACTIONS):
        if not legal[a]:
            continue
        score = probs[a] - child_visits[a] / (1.0 + sum_visits)
        if best_action < 0 or score > best_score:
            best_action = a
            best_score = score
    return best_action


@njit(cache=True)
def gumbel_root_action(
    q: np.ndarray,  # [4] pips
    child_visits: np.ndarray,  # [4] int
    logits: np.ndarray,  # [4]
    legal: np.ndarray,  # [4] bool
    raw_value: float,  # pips
    gumbel: np.ndarray,  # [4] root Gumbel noise (zeros when greedy)
    considered_visit: int,  # sequential halving: only actions with this many visits compete
    c_visit: float,
    c_scale: float,
    q_floor: float,
) -> int:
    """argmax g + logits + σ(q̂) among the legal actions that have `considered_visit` visits."""
    sigma_q = np.empty(NUM_ACTIONS)
    completed_q_transform(
        q, child_visits, logits, legal, raw_value, c_visit, c_scale, q_floor, sigma_q
    )
    top = -np.inf
    for a in range(NUM_ACTIONS):
        if legal[a] and logits[a] > top:
            top = logits[a]
    best_action = -1
    best_score = -np.inf
    for a in range(NUM_ACTIONS):
        if not legal[a]:
            continue
        if child_visits[a] != considered_visit:
            score = -np.inf
        else:
            score = max(LOW_LOGIT, gumbel[a] + (logits[a] - top) + sigma_q[a])
        if best_action < 0 or score > best_score:
            best_action = a
            best_score = score
    return best_action


@njit(cache=True)
def chance_outcome(sigma: np.ndarray, outcome_visits: np.ndarray) -> int:
    """The outcome to follow from an afterstate: argmax σ(c) / (N(c) + 1), ties → lowest c."""
    best_outcome = 0
    best_score = -np.inf
    for c in range(NUM_OUTCOMES):
        score = sigma[c] / (outcome_visits[c] + 1.0)
        if score > best_score:
            best_outcome = c
            best_score = score
    return best_outcome


# ----------------------------------------------------------------- root summaries (compiled)


@njit(cache=True)
def puct_root_choice(
    visit_counts: np.ndarray,  # [B, 4] int32
    q: np.ndarray,  # [B, 4] pips, NaN where unvisited
    policy_target: np.ndarray,  # [B, 4] out: visit distribution
    best_action: np.ndarray,  # [B] out: most visited, ties → higher Q, then lower index
) -> None:
    """The root visit distribution and the most visited action of each environment."""
    for b in range(visit_counts.shape[0]):
        total = 0
        for a in range(NUM_ACTIONS):
            total += visit_counts[b, a]
        best = -1
        for a in range(NUM_ACTIONS):
            policy_target[b, a] = visit_counts[b, a] / max(total, 1)
            if visit_counts[b, a] == 0:
                continue
            if (
                best < 0
                or visit_counts[b, a] > visit_counts[b, best]
                or (visit_counts[b, a] == visit_counts[b, best] and q[b, a] > q[b, best])
            ):
                best = a
        best_action[b] = best


@njit(cache=True)
def gumbel_root_choice(
    visit_counts: np.ndarray,  # [B, 4] int32
    q: np.ndarray,  # [B, 4] pips (ignored where unvisited)
    logits: np.ndarray,  # [B, 4]
    legal: np.ndarray,  # [B, 4] bool
    raw_value: np.ndarray,  # [B] pips
    gumbel: np.ndarray,  # [B, 4]
    c_visit: float,
    c_scale: float,
    q_floor: float,
    policy_target: np.ndarray,  # [B, 4] out: softmax(logits + σ(completed q̂))
    best_action: np.ndarray,  # [B] out: the sequential-halving winner
) -> None:
    """Gumbel MuZero's improved policy and chosen action among the most visited root actions."""
    sigma_q = np.empty(NUM_ACTIONS)
    improved = np.empty(NUM_ACTIONS)
    for b in range(visit_counts.shape[0]):
        completed_q_transform(
            q[b],
            visit_counts[b],
            logits[b],
            legal[b],
            raw_value[b],
            c_visit,
            c_scale,
            q_floor,
            sigma_q,
        )
        for a in range(NUM_ACTIONS):
            improved[a] = logits[b, a] + sigma_q[a]
        masked_softmax(improved, legal[b], policy_target[b])
        most = 0
        for a in range(NUM_ACTIONS):
            if legal[b, a]:
                most = max(most, visit_counts[b, a])
        best_action[b] = gumbel_root_action(
            q[b],
            visit_counts[b],
            logits[b],
            legal[b],
            raw_value[b],
            gumbel[b],
            most,
            c_visit,
            c_scale,
            q_floor,
        )


# ----------------------------------------------------------------- sequential halving


def considered_visits(num_considered: int, num_simulations: int) -> tuple[int, ...]:
    """Sequential halving as visit counts: at simulation i only actions with seq[i] visits compete.

    With k considered actions the budget is spread over ⌈log2 k⌉ phases; each phase gives every
    surviving action the same number of visits, then keeps the better half (at least 2).
    """
    if num_considered <= 1:
        return tuple(range(num_simulations))
    phases = math.ceil(math.log2(num_considered))
    sequence: list[int] = []
    visits = [0] * num_considered
    survivors = num_considered
    while len(sequence) < num_simulations:
        rounds = max(1, int(num_simulations / (phases * survivors)))
        for _ in range(rounds):
            sequence.extend(visits[:survivors])
            for i in range(survivors):
                visits[i] += 1
        survivors = max(2, survivors // 2)
    return tuple(sequence[:num_simulations])


def considered_visits_table(num_simulations: int) -> np.ndarray:
    """[5, S] int32: row k is the sequential-halving sequence for k legal root actions (k ≤ 4)."""
    rows = [considered_visits(k, num_simulations) for k in range(NUM_ACTIONS + 1)]
    return np.asarray(rows, dtype=np.int32).reshape(NUM_ACTIONS + 1, num_simulations)


# ----------------------------------------------------------------- root noise and acting


def dirichlet_noise(rng: np.random.Generator, legal: np.ndarray, alpha: float) -> np.ndarray:
    """[B, 4] Dirichlet(α) draws over each row's legal actions (0 on illegal ones)."""
    legal = np.asarray(legal, dtype=bool)
    draws = rng.gamma(alpha, 1.0, size=legal.shape) * legal  # [B, 4]
    total = draws.sum(axis=1, keepdims=True)
    uniform = legal / legal.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        noise: np.ndarray = np.where(total > 0, draws / total, uniform)
    return noise


def gumbel_noise(rng: np.random.Generator, batch: int, scale: float) -> np.ndarray:
    """[B, 4] Gumbel(0, 1) draws times `scale` for the root's top-k selection."""
    draws: np.ndarray = scale * rng.gumbel(size=(batch, NUM_ACTIONS))
    return draws


def sample_from_visits(
    visit_counts: np.ndarray, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """[B] int64 actions drawn from visit_counts^(1/temperature) [B, 4] (unvisited never drawn)."""
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    counts = np.asarray(visit_counts, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(counts) / temperature  # [B, 4], -inf where unvisited
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = np.asarray(rng.random(counts.shape[0]))[:, None]
    actions = (cumulative <= u).sum(axis=1)
    # Rounding at the top of the cumulative sum must never land on an unvisited action.
    last_visited = NUM_ACTIONS - 1 - np.argmax(counts[:, ::-1] > 0, axis=1)
    chosen: np.ndarray = np.minimum(actions, last_visited).astype(np.int64)
    return chosen
