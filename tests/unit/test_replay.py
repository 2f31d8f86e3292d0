from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from micro.env.actions import BUY, CLOSE, FLAT, HOLD, LONG
from micro.train.replay import ReplayBuffer, SumTree, Trajectory


def episode(rewards: list[float], values: list[float], first_row: int = 100) -> Trajectory:
    t = len(rewards)
    side = np.array([FLAT] + [LONG] * (t - 1), np.int8)
    actions = np.array([BUY] + [HOLD] * (t - 2) + [CLOSE], np.int8)[:t]
    return Trajectory(
        rows=np.arange(first_row, first_row + t, dtype=np.int64),
        static=np.arange(t * 6, dtype=np.float32).reshape(t, 6),
        side=side,
        actions=actions,
        rewards=np.array(rewards, np.float32),
        outcomes=np.array([2] * (t - 1) + [-1], np.int8),
        root_values=np.array(values, np.float32),
        policies=np.tile(np.array([0.1, 0.6, 0.3, 0.0], np.float32), (t, 1)),
        weight_version=3,
        actor=0,
    )


def buffer(**kw) -> ReplayBuffer:
    args = dict(capacity=1000, unroll_steps=2, n_step=2, discount=0.5)
    args.update(kw)
    return ReplayBuffer(**args)


def test_n_step_value_targets_are_hand_computed_and_stop_at_the_terminal() -> None:
    replay = buffer()
    replay.add(episode([1, 2, 4, 8], [10, 20, 40, 80]))
    batch = replay._batch(np.array([0, 2, 3]), np.ones(3, np.float32))
    # z_0 = r0 + γ r1 + γ² v2 = 1 + 1 + 0.25*40 = 12
    # z_1 = r1 + γ r2 + γ² v3 = 2 + 2 + 0.25*80 = 24
    # z_2 = r2 + γ r3 (v4 is past the end: 0) = 4 + 4 = 8
    # z_3 = r3 = 8 ; past the end: 0
    np.testing.assert_allclose(batch.value_target[0], [12, 24, 8])
    np.testing.assert_allclose(batch.value_target[1], [8, 8, 0])
    np.testing.assert_allclose(batch.value_target[2], [8, 0, 0])
    np.testing.assert_allclose(batch.state_mask[2], [1, 0, 0])


def test_a_cut_episode_bootstraps_from_its_end_value_and_a_terminal_one_does_not() -> None:
    # `train.session_end` bootstrap: the steps whose n-step return reaches the episode's end add
    # γ^(end − j) × its end value; the others are unchanged, and past the end stays 0.
    replay = buffer()
    replay.add(dataclasses.replace(episode([1, 2, 4, 8], [10, 20, 40, 80]), end_value=16.0))
    batch = replay._batch(np.array([0, 2, 3]), np.ones(3, np.float32))
    # z_0 = 1 + 1 + 0.25*40 = 12 and z_1 = 24 (the end is out of reach);
    # z_2 = r2 + γ r3 + γ² × 16 = 4 + 4 + 4 = 12; z_3 = r3 + γ × 16 = 8 + 8 = 16
    np.testing.assert_allclose(batch.value_target[0], [12, 24, 12])
    np.testing.assert_allclose(batch.value_target[1], [12, 16, 0])
    np.testing.assert_allclose(batch.value_target[2], [16, 0, 0])
    # the next episode's own end value, not this one's
    replay.add(dataclasses.replace(episode([1, 1], [0, 0], first_row=900), end_value=-4.0))
    batch = replay._batch(np.array([3, 5]), np.ones(2, np.float32))
    np.testing.assert_allclose(batch.value_target[:, 0], [16, 1 - 2])


def test_unroll_targets_follow_the_episode_and_mask_past_its_end() -> None:
    replay = buffer()
    replay.add(episode([1, 2, 4], [0, 0, 0], first_row=50))
    replay.add(episode([5, 5, 5], [0, 0, 0], first_row=900))
    batch = replay._batch(np.array([1]), np.ones(1, np.float32))
    assert batch.rows[0] == 51
    np.testing.assert_array_equal(batch.actions[0], [HOLD, CLOSE])
    np.testing.assert_allclose(batch.reward_target[0], [2, 4])
    # the outcome of the episode's last step is unknown (-1): masked
    np.testing.assert_array_equal(batch.outcome_mask[0], [1, 0])
    batch = replay._batch(np.array([2]), np.ones(1, np.float32))
    # state 1 and 2 are past the end: the next episode's data must not leak in
    np.testing.assert_allclose(batch.reward_target[0], [4, 0])
    np.testing.assert_array_equal(batch.state_mask[0], [1, 0, 0])
    assert batch.policy_target[0, 1:].sum() == 0


def test_legal_masks_follow_the_recorded_side() -> None:
    replay = buffer()
    replay.add(episode([0, 0, 0], [0, 0, 0]))
    batch = replay._batch(np.array([0]), np.ones(1, np.float32))
    np.testing.assert_array_equal(batch.legal[0, 0], [True, True, True, False])
    np.testing.assert_array_equal(batch.legal[0, 1], [True, False, False, True])


def test_ring_overwrites_oldest_positions_and_samples_only_live_ones() -> None:
    replay = buffer(capacity=5)
    replay.add(episode([1, 1, 1], [0, 0, 0], first_row=10))
    replay.add(episode([2, 2, 2], [0, 0, 0], first_row=20))
    assert len(replay) == 5 and replay.oldest == 1
    batch = replay.sample(200, np.random.default_rng(0))
    assert batch.ids.min() >= 1 and batch.ids.max() <= 5
    assert set(batch.rows.tolist()) <= {11, 12, 20, 21, 22}


def test_sampling_is_reproducible_by_seed() -> None:
    replay = buffer()
    for i in range(5):
        replay.add(episode([i, 1, 2, 3], [0, 1, 2, 3], first_row=i * 10))
    a = replay.sample(16, np.random.default_rng(7))
    b = replay.sample(16, np.random.default_rng(7))
    np.testing.assert_array_equal(a.ids, b.ids)


def test_prioritised_sampling_prefers_large_errors_and_weights_correct_for_it() -> None:
    replay = buffer(prioritized=True, priority_alpha=1.0, priority_beta=1.0)
    replay.add(episode([0, 0, 0, 0], [0, 0, 0, 0]))
    replay.update_priorities(np.array([0, 1, 2, 3]), np.array([30.0, 1.0, 1.0, 1.0]))
    batch = replay.sample(500, np.random.default_rng(1))
    assert (batch.ids == 0).mean() > 0.8
    assert batch.weights[batch.ids == 0].max() < batch.weights[batch.ids != 0].min()


def test_empty_buffer_refuses_to_sample() -> None:
    with pytest.raises(ValueError):
        buffer().sample(4, np.random.default_rng(0))


def test_bootstrap_points_are_exactly_the_stored_values_the_targets_use() -> None:
    # Reanalysis swaps these values for fresher ones: each point must be one γ^n v_{j+n} term of
    # a target (its row, position features and side), and nothing else may be.
    replay = buffer()
    replay.add(dataclasses.replace(episode([1, 2, 4, 8], [10, 20, 40, 80]), end_value=16.0))
    replay.add(episode([1, 1, 1], [5, 6, 7], first_row=900))
    ids = np.array([0, 1, 3, 4])
    batch = replay._batch(ids, np.ones(4, np.float32))
    points = replay.bootstrap_points(ids)
    # z_0 uses v2 (row 102), z_1 uses v3 (row 103); from id 2 on the episode's end is in reach
    # (its end value is not a position); the second episode's z_4 uses v6 (row 902)
    assert sorted(zip(points.target.tolist(), points.rows.tolist(), strict=True)) == [
        (0, 102), (1, 103), (3, 103), (9, 902),
    ]  # fmt: skip
    np.testing.assert_allclose(points.weight, 0.25)
    np.testing.assert_array_equal(points.stored, [40, 80, 80, 7])
    np.testing.assert_array_equal(points.static[0], np.arange(12, 18))
    np.testing.assert_array_equal(points.side, [LONG, LONG, LONG, LONG])
    replay.root_values[:] = 0.0
    zeroed = replay._batch(ids, np.ones(4, np.float32))
    change = np.zeros(batch.value_target.size, np.float32)
    np.add.at(change, points.target, points.weight * points.stored)
    np.testing.assert_allclose(batch.value_target - zeroed.value_target, change.reshape(4, 3))


def test_cut_explored_bootstraps_at_the_first_exploratory_decision() -> None:
    # `train.cut_explored`: a target sums rewards up to the first step after its own whose
    # action was explored and bootstraps from that step's stored value; without exploration in
    # reach, or with the knob off, the plain n-step target. Its own action is what it values,
    # explored or not.
    explored = np.array([False, False, True, False, False, False])
    trajectory = dataclasses.replace(
        episode([1, 2, 4, 8, 16, 32], [10, 20, 40, 80, 160, 320]), explored=explored
    )
    replay = buffer(n_step=3, cut_explored=True)
    replay.add(trajectory)
    batch = replay._batch(np.array([0, 3]), np.ones(2, np.float32))
    # z_0 = r0 + γ r1 + γ² v2 (step 2 explored, cut there) = 1 + 1 + 0.25 × 40 = 12
    # z_1 = r1 + γ v2 = 2 + 20 = 22;  z_2 = r2 + γ r3 + γ² r4 + γ³ v5 = 4 + 4 + 4 + 40 = 52
    # z_3 = r3 + γ r4 + γ² r5 (the end: terminal) = 8 + 8 + 8 = 24;  z_4 = 32;  z_5 = 32
    np.testing.assert_allclose(batch.value_target[0], [12, 22, 52])
    np.testing.assert_allclose(batch.value_target[1], [24, 32, 32])
    plain = buffer(n_step=3)
    plain.add(trajectory)
    uncut = plain._batch(np.array([0]), np.ones(1, np.float32))
    # z_0 = 1 + 1 + 1 + 0.125 × 80 = 13;  z_1 = 2 + 2 + 2 + 0.125 × 160 = 26;  z_2 = 52
    np.testing.assert_allclose(uncut.value_target[0], [13, 26, 52])
    # Reanalysis swaps exactly the values the cut targets bootstrap from, at their own weight.
    points = replay.bootstrap_points(np.array([0]))
    assert sorted(zip(points.target.tolist(), points.rows.tolist(), strict=True)) == [
        (0, 102), (1, 102), (2, 105),
    ]  # fmt: skip
    np.testing.assert_allclose(points.weight, [0.25, 0.5, 0.125])
    replay.root_values[:] = 0.0
    zeroed = replay._batch(np.array([0]), np.ones(1, np.float32))
    change = np.zeros(3, np.float32)
    np.add.at(change, points.target, points.weight * points.stored)
    np.testing.assert_allclose(batch.value_target[0] - zeroed.value_target[0], change)


def test_cut_explored_exits_cuts_at_explored_held_decisions_only() -> None:
    # `train.cut_explored_exits`: an explored entry (a flat decision) stays in the sum, an
    # explored decision in a position cuts it, as `cut_explored` does at both.
    trajectory = dataclasses.replace(
        episode([1, 2, 4, 8, 16, 32], [10, 20, 40, 80, 160, 320]),
        side=np.array([FLAT, FLAT, LONG, LONG, LONG, LONG], np.int8),
        explored=np.array([False, True, False, False, True, False]),
    )
    exits = buffer(n_step=3, cut_explored_exits=True)
    exits.add(trajectory)
    batch = exits._batch(np.array([0, 2]), np.ones(2, np.float32))
    # z_0 = 1 + 1 + 1 + 0.125 × 80 = 13 (the explored entry at step 1 is not cut)
    # z_1 = 2 + 2 + 2 + 0.125 × 160 = 26;  z_2 = r2 + γ r3 + γ² v4 (held, explored) = 4 + 4 + 40
    # z_3 = r3 + γ v4 = 8 + 80 = 88;  z_4 = r4 + γ r5 (the end: terminal) = 16 + 16 = 32
    np.testing.assert_allclose(batch.value_target[0], [13, 26, 48])
    np.testing.assert_allclose(batch.value_target[1], [48, 88, 32])
    for both in ({"cut_explored": True}, {"cut_explored": True, "cut_explored_exits": True}):
        every = buffer(n_step=3, **both)
        every.add(trajectory)
        # z_0 = r0 + γ v1 (the explored entry cuts too) = 1 + 10 = 11
        np.testing.assert_allclose(
            every._batch(np.array([0]), np.ones(1, np.float32)).value_target[0], [11, 26, 48]
        )


def test_an_episode_without_exploration_flags_is_never_cut() -> None:
    replay = buffer(n_step=3, cut_explored=True)
    replay.add(episode([1, 2, 4, 8, 16, 32], [10, 20, 40, 80, 160, 320]))
    batch = replay._batch(np.array([0]), np.ones(1, np.float32))
    np.testing.assert_allclose(batch.value_target[0], [13, 26, 52])


def test_sum_tree_draws_each_slot_by_its_share_of_the_mass_and_never_an_empty_one() -> None:
    tree = SumTree(5)  # not a power of two: 8 leaves, three never set
    tree.set(np.array([0, 1, 3, 4]), np.array([1.0, 2.0, 3.0, 4.0]))
    tree.set(np.array([4, 1]), np.array([0.0, 4.0]))  # overwrite: slot 4 emptied, slot 1 doubled
    assert tree.total == 8.0
    counts = np.bincount(tree.draw(80_000, np.random.default_rng(3)), minlength=tree.leaves)
    assert counts[2] == counts[4] == counts[5:].sum() == 0
    share = counts[[0, 1, 3]] / counts.sum()
    np.testing.assert_allclose(share, [1 / 8, 4 / 8, 3 / 8], atol=0.01)


def test_sum_tree_of_one_slot_and_an_empty_tree() -> None:
    tree = SumTree(1)
    with pytest.raises(ValueError):
        tree.draw(1, np.random.default_rng(0))
    tree.set(np.array([0]), np.array([0.5]))
    np.testing.assert_array_equal(tree.draw(4, np.random.default_rng(0)), [0, 0, 0, 0])


def test_sum_tree_inner_sums_hold_after_many_small_updates() -> None:
    # Each set recomputes its ancestors from their children: no drift from running additions.
    rng = np.random.default_rng(4)
    tree = SumTree(1000)
    leaf = np.zeros(1000)
    for _ in range(300):
        slots = rng.integers(0, 1000, 64)
        values = rng.random(64) * 10.0 ** rng.integers(-6, 3)
        tree.set(slots, values)
        leaf[slots] = tree[slots]  # the last write wins for a slot drawn twice in one set
    assert tree.total == pytest.approx(leaf.sum(), rel=1e-12)
    np.testing.assert_array_equal(tree[np.arange(1000)], leaf)


def test_prioritised_sampling_after_the_ring_wraps_draws_live_ids_by_priority() -> None:
    replay = buffer(capacity=1000, prioritized=True, priority_alpha=1.0, priority_beta=1.0)
    for i in range(7):  # 7 × 360 positions in a ring of 1000: ids 1520 … 2519 are live
        replay.add(episode([0.0] * 360, [0.0] * 360, first_row=i * 1000))
    live = np.arange(replay.oldest, replay.total)
    replay.update_priorities(live, np.full(len(live), 1.0))
    replay.update_priorities(np.array([replay.oldest, replay.total - 1]), np.array([500.0, 500.0]))
    replay.update_priorities(np.array([5]), np.array([1e6]))  # long gone: ignored
    batch = replay.sample(4000, np.random.default_rng(2))
    assert batch.ids.min() >= replay.oldest and batch.ids.max() < replay.total
    # each of the two heavy ids holds 500 / 1998 of the mass
    for heavy in (replay.oldest, replay.total - 1):
        assert abs((batch.ids == heavy).mean() - 500 / 1998) < 0.03
    np.testing.assert_array_equal(batch.rows, replay.rows[batch.ids % replay.capacity])
    # importance weights (n·p)^-β over the batch's largest: 1 for the light ids, 1/500 heavy
    heavy = (batch.ids == replay.oldest) | (batch.ids == replay.total - 1)
    np.testing.assert_allclose(batch.weights[~heavy], 1.0, rtol=1e-6)
    np.testing.assert_allclose(batch.weights[heavy], 1 / 500, rtol=1e-6)
