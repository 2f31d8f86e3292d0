"""The learner's replay buffer: positions of finished episodes as indices, not copies of windows.

Each position keeps the decision row (the window is gathered from the market's feature array
when sampled), its 6 position features, the action taken, the reward of the step, the chance
outcome, the search's root value and policy target. Positions live in ring arrays with absolute
ids; a position knows the id one past its episode's last step, so unrolls and n-step returns stop
at the true terminal. Sampling returns everything the learner needs for an unroll of K steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from micro.env.actions import HOLD, MIRROR_ACTION, MIRROR_OUTCOME, NEUTRAL, NUM_ACTIONS, legal_mask
from micro.env.position import mirror_static
from micro.features.mirror import mirror_windows


@dataclass(frozen=True)
class Trajectory:
    """One finished episode (T decision steps) as an actor sends it to the learner."""

    rows: np.ndarray  # [T] int64 decision rows into the market arrays
    static: np.ndarray  # [T, 6] float32 position features at each decision
    side: np.ndarray  # [T] int8 position side at each decision (gives the legal mask)
    actions: np.ndarray  # [T] int8 action taken
    rewards: np.ndarray  # [T] float32 pips, reward of the step taken at t
    outcomes: np.ndarray  # [T] int8 chance outcome of bar t -> t+1 (-1 unknown)
    root_values: np.ndarray  # [T] float32 pips, search value at the root
    policies: np.ndarray  # [T, 4] float32 search policy target
    weight_version: int  # learner weights version the actor used
    actor: int  # actor id
    node: str = ""  # Ray node id of the machine the actor ran on ("": a local actor process)
    end_value: float = 0.0  # pips the targets bootstrap from past the last step (0: terminal)
    explored: np.ndarray | None = None  # [T] bool action taken was not the search's best (None: no)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Batch:
    """An unroll batch: B positions, K unroll steps (index k = 0..K for states)."""

    ids: np.ndarray  # [B] int64 absolute position ids (for priority updates)
    rows: np.ndarray  # [B] int64 decision row of the first state
    static: np.ndarray  # [B, 6] float32
    actions: np.ndarray  # [B, K] int64 actions a_0..a_{K-1}
    outcomes: np.ndarray  # [B, K] int64 chance outcomes c_0..c_{K-1} (NEUTRAL where unknown)
    outcome_mask: np.ndarray  # [B, K] float32 1 where the outcome is a real label
    legal: np.ndarray  # [B, K+1, 4] bool legal actions of each state
    value_target: np.ndarray  # [B, K+1] float32 pips, n-step value of state k
    reward_target: np.ndarray  # [B, K] float32 pips, reward of transition k
    policy_target: np.ndarray  # [B, K+1, 4] float32
    state_mask: np.ndarray  # [B, K+1] float32 1 while state k is inside the episode
    weights: np.ndarray  # [B] float32 importance weights (1 without prioritised replay)


@dataclass(frozen=True)
class BootstrapPoints:
    """The stored positions a batch's n-step value targets bootstrap from (M of them).

    Target i of the batch's flattened [B·(K+1)] value targets is Σ rewards + weight_i × stored_i;
    reanalysis swaps `stored` for a fresher network's value of the same position.
    """

    target: np.ndarray  # [M] int64 flat index into the batch's [B, K+1] value targets
    rows: np.ndarray  # [M] int64 decision rows of the bootstrap positions
    static: np.ndarray  # [M, 6] float32 their position features
    side: np.ndarray  # [M] int8 their position sides (legal actions)
    weight: np.ndarray  # [M] float32 γ^n, the bootstrap's share of the target
    stored: np.ndarray  # [M] float32 pips, the value the search stored when it was played


@dataclass(frozen=True)
class _Unroll:
    """Where an unroll's K+1 states and their value targets sit in the ring ([B, K+1] each)."""

    inside: np.ndarray  # state k is inside the first state's episode
    slots: np.ndarray  # ring slots of the states
    value_ids: np.ndarray  # the ids whose n-step values are the targets (the end past it)
    episode_end: np.ndarray  # the ends those n-step values stop at
    end_value: np.ndarray  # [B, 1] the episode's value past its end


class SumTree:
    """Priorities of `capacity` slots in a binary tree of sums: set and draw in O(log n) each.

    Leaves hold the priorities (0 for an empty slot); every inner node holds the sum of its two
    children, recomputed from them on each set (no running additions, so no drift). A draw walks
    from the root to the leaf whose cumulative range holds a uniform point of the total mass.
    """

    def __init__(self, capacity: int) -> None:
        self.leaves = 1 << max(0, (capacity - 1).bit_length())  # power of two ≥ capacity
        self.depth = self.leaves.bit_length() - 1
        self.tree = np.zeros(2 * self.leaves, np.float64)  # node i: children 2i, 2i+1; root 1

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def __getitem__(self, slots: np.ndarray) -> np.ndarray:
        leaves: np.ndarray = self.tree[self.leaves + slots]
        return leaves

    def set(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        """Leaf `slots[i]` := `priorities[i]` (the last write wins for a repeated slot)."""
        nodes = self.leaves + np.asarray(slots, np.int64)
        self.tree[nodes] = priorities
        for _ in range(self.depth):
            nodes = np.unique(nodes >> 1)
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """`count` slots, each with probability priority / total (independent draws)."""
        if self.total <= 0.0:
            raise ValueError("sum tree holds no priority")
        mass = rng.random(count) * self.total
        nodes = np.ones(count, np.int64)
        for _ in range(self.depth):
            left = self.tree[2 * nodes]
            # Right when the point lies past the left mass, unless rounding left the right empty
            # (then the left holds all of this node's mass): a draw never lands on a zero leaf.
            right = (mass >= left) & (self.tree[2 * nodes + 1] > 0.0)
            mass = np.where(right, mass - left, mass)
            nodes = 2 * nodes + right
        return nodes - self.leaves


class ReplayBuffer:
    """Ring arrays of positions; uniform or prioritised sampling of unroll start positions."""

    def __init__(
        self,
        capacity: int,
        *,
        unroll_steps: int,
        n_step: int,
        discount: float,
        prioritized: bool = False,
        priority_alpha: float = 0.6,
        priority_beta: float = 0.4,
        cut_explored: bool = False,
        cut_explored_exits: bool = False,
    ) -> None:
        self.capacity = capacity
        self.unroll_steps = unroll_steps
        self.n_step = n_step
        self.discount = discount
        self.prioritized = prioritized
        self.alpha = priority_alpha
        self.beta = priority_beta
        self.cut_explored = cut_explored
        self.cut_explored_exits = cut_explored_exits and not cut_explored
        c = capacity
        self.rows = np.zeros(c, np.int64)
        self.static = np.zeros((c, 6), np.float32)
        self.side = np.zeros(c, np.int8)
        self.actions = np.zeros(c, np.int8)
        self.rewards = np.zeros(c, np.float32)
        self.outcomes = np.zeros(c, np.int8)
        self.root_values = np.zeros(c, np.float32)
        self.policies = np.zeros((c, NUM_ACTIONS), np.float32)
        self.explored = np.zeros(c, bool)
        self.episode_end = np.zeros(c, np.int64)  # absolute id one past the episode's last step
        self.end_value = np.zeros(c, np.float32)  # the episode's value past its end (pips)
        self.priority = SumTree(c if prioritized else 1)
        self.total = 0  # absolute ids handed out so far
        self.episodes = 0

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    @property
    def oldest(self) -> int:
        return max(0, self.total - self.capacity)

    def add(self, trajectory: Trajectory) -> None:
        """Append one finished episode (longer than the buffer: only its tail is kept)."""
        t = len(trajectory)
        if t == 0:
            return
        start = self.total
        ids = np.arange(start, start + t)
        slots = ids % self.capacity
        self.rows[slots] = trajectory.rows
        self.static[slots] = trajectory.static
        self.side[slots] = trajectory.side
        self.actions[slots] = trajectory.actions
        self.rewards[slots] = trajectory.rewards
        self.outcomes[slots] = trajectory.outcomes
        self.root_values[slots] = trajectory.root_values
        self.policies[slots] = trajectory.policies
        self.explored[slots] = False if trajectory.explored is None else trajectory.explored
        self.episode_end[slots] = start + t
        self.end_value[slots] = trajectory.end_value
        self.total += t
        self.episodes += 1
        if self.prioritized:
            # Initial priority: how far the search's root value is from the n-step return.
            values = self._n_step_values(ids, self.episode_end[slots], self.end_value[slots])
            error = np.abs(values - trajectory.root_values)
            self.priority.set(slots, np.maximum(error, 1e-3) ** self.alpha)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """B unroll start positions, uniformly or by priority, with all their targets."""
        n = len(self)
        if n == 0:
            raise ValueError("replay buffer is empty")
        oldest = self.oldest
        if self.prioritized:
            slots = self.priority.draw(batch_size, rng)  # every filled slot holds a live id
            ids = oldest + (slots - oldest) % self.capacity
            p = self.priority[slots] / self.priority.total
            weights = (n * p) ** (-self.beta)
            weights = (weights / weights.max()).astype(np.float32)
        else:
            ids = oldest + rng.integers(0, n, size=batch_size)
            weights = np.ones(batch_size, np.float32)
        return self._batch(ids.astype(np.int64), weights)

    def update_priorities(self, ids: np.ndarray, errors: np.ndarray) -> None:
        """New priorities |value error|^alpha for sampled positions still in the buffer."""
        if not self.prioritized:
            return
        keep = ids >= self.oldest
        self.priority.set(ids[keep] % self.capacity, np.maximum(errors[keep], 1e-3) ** self.alpha)

    # ------------------------------------------------------------------ targets

    def _horizons(self, ids: np.ndarray, end: np.ndarray) -> np.ndarray:
        """[...] steps of real reward the value targets of `ids` sum before they bootstrap.

        n, or with `cut_explored` the steps to the first exploratory decision after the
        position (with `cut_explored_exits`: the first one in a held position), whichever comes
        first. The position's own action is what its target values (the afterstate Q of the
        action taken is trained on it), so it is never cut there.
        """
        horizon = np.full(ids.shape, self.n_step, np.int64)
        if self.cut_explored or self.cut_explored_exits:
            for m in range(self.n_step - 1, 0, -1):  # the earliest exploratory step wins
                slot = (ids + m) % self.capacity
                explored = (ids + m < end) & self.explored[slot]
                if self.cut_explored_exits:
                    explored &= self.side[slot] != 0
                horizon = np.where(explored, m, horizon)
        return horizon

    def _n_step_values(self, ids: np.ndarray, end: np.ndarray, end_value: np.ndarray) -> np.ndarray:
        """[...] absolute ids, their episodes' ends and end values -> n-step value targets (pips).

        z_j = Σ_{m<h} γ^m r_{j+m} + γ^h v_{j+h}, with h = n (or the steps to the next
        exploratory decision: `_horizons`), where v at the episode's end is its end value (0: the
        session end is a true terminal; `train.session_end` bootstrap: the last bar's search
        value) and terms past it are 0. Ids at or past their episode's end get 0.
        """
        inside = ids < end
        horizon = self._horizons(ids, end)
        value = np.zeros(ids.shape, np.float64)
        for m in range(self.n_step):
            j = ids + m
            ok = inside & (j < end) & (m < horizon)
            value += np.where(ok, self.discount**m * self.rewards[j % self.capacity], 0.0)
        j = ids + horizon
        ok = inside & (j < end)
        value += np.where(ok, self.discount**horizon * self.root_values[j % self.capacity], 0.0)
        cut = inside & (j >= end)  # the n steps reach the end: bootstrap from the end value
        value += np.where(cut, self.discount ** (end - ids).clip(0) * end_value, 0.0)
        return value.astype(np.float32)

    def _unroll(self, ids: np.ndarray) -> _Unroll:
        first = ids % self.capacity
        end = self.episode_end[first]  # [B] all steps of an unroll share the first's episode
        steps = ids[:, None] + np.arange(self.unroll_steps + 1)[None, :]  # [B, K+1]
        inside = steps < end[:, None]
        slots = steps % self.capacity
        # Positions past the end may hold another episode's data: everything there is masked.
        return _Unroll(
            inside=inside,
            slots=slots,
            value_ids=np.where(inside, steps, end[:, None]),
            episode_end=np.where(inside, self.episode_end[slots], end[:, None]),
            end_value=self.end_value[first][:, None],
        )

    def bootstrap_points(self, ids: np.ndarray) -> BootstrapPoints:
        """The positions the value targets of unrolls starting at `ids` bootstrap from.

        Exactly the γ^n v_{j+n} terms of `_n_step_values` (the end value of a cut session is
        not among them: it belongs to a bar no position of the buffer holds).
        """
        u = self._unroll(ids)
        horizon = self._horizons(u.value_ids, u.episode_end)
        j = u.value_ids + horizon
        ok = (u.value_ids < u.episode_end) & (j < u.episode_end)
        target = np.flatnonzero(ok)
        slots = j.reshape(-1)[target] % self.capacity
        return BootstrapPoints(
            target=target.astype(np.int64),
            rows=self.rows[slots],
            static=self.static[slots],
            side=self.side[slots],
            weight=(self.discount ** horizon.reshape(-1)[target]).astype(np.float32),
            stored=self.root_values[slots],
        )

    def _batch(self, ids: np.ndarray, weights: np.ndarray) -> Batch:
        k = self.unroll_steps
        first = ids % self.capacity
        u = self._unroll(ids)
        inside, slots = u.inside, u.slots
        value_target = self._n_step_values(u.value_ids, u.episode_end, u.end_value)
        actions = np.where(inside[:, :k], self.actions[slots[:, :k]], HOLD).astype(np.int64)
        raw_outcomes = self.outcomes[slots[:, :k]].astype(np.int64)
        known = inside[:, :k] & (raw_outcomes >= 0)
        outcomes = np.where(known, raw_outcomes, NEUTRAL)
        reward_target = np.where(inside[:, :k], self.rewards[slots[:, :k]], 0.0).astype(np.float32)
        side = np.where(inside, self.side[slots], 0)
        legal = legal_mask(side)
        policy = np.where(inside[..., None], self.policies[slots], 0.0).astype(np.float32)
        return Batch(
            ids=ids,
            rows=self.rows[first].copy(),
            static=self.static[first].copy(),
            actions=actions,
            outcomes=outcomes,
            outcome_mask=known.astype(np.float32),
            legal=legal,
            value_target=value_target,
            reward_target=reward_target,
            policy_target=policy,
            state_mask=inside.astype(np.float32),
            weights=weights,
        )


def mirror_batch(batch: Batch, windows: np.ndarray, flip: np.ndarray) -> tuple[Batch, np.ndarray]:
    """The positions where `flip` ([B] bool) as played in the mirror market (moves negated).

    Windows and the side feature mirror (`mirror_windows`, `mirror_static`), BUY ↔ SELL in the
    actions and policy targets, DOWN ↔ UP in the outcomes; rewards and values are unchanged (a
    long's pips in the market are the short's pips in its mirror) and so are the legal masks.
    """
    if not flip.any():
        return batch, windows
    windows = windows.copy()
    windows[flip] = mirror_windows(windows[flip])
    static = batch.static.copy()
    static[flip] = mirror_static(static[flip])
    actions = np.where(flip[:, None], MIRROR_ACTION[batch.actions], batch.actions)
    outcomes = np.where(flip[:, None], MIRROR_OUTCOME[batch.outcomes], batch.outcomes)
    policy = batch.policy_target.copy()
    policy[flip] = policy[flip][..., MIRROR_ACTION]
    mirrored = dataclasses.replace(
        batch, static=static, actions=actions, outcomes=outcomes, policy_target=policy
    )
    return mirrored, windows
