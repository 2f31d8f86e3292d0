"""The plain reference search: one environment at a time, Python node objects, batch-1 calls.

Slow on purpose and written to be read: it follows the rules in `search.py`'s docstring with
nothing shared but the game's legality (`micro.env.actions`) and the sequential-halving
schedule. Tests hold the batched search equal to it; the benchmark measures the speed-up.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from micro.config import MctsConfig
from micro.env.actions import NUM_ACTIONS, NUM_OUTCOMES, is_legal, next_side
from micro.mcts.policies import considered_visits
from micro.mcts.search import SearchResult, model_dtype_device, root_legal
from micro.model.inference import SearchModel


class DecisionNode:
    """A position: the agent picks an action."""

    def __init__(
        self,
        state: torch.Tensor,  # [1, H]
        side: int,
        legal: list[bool],  # [4]
        logits: list[float],  # [4]
        raw_value: float,  # pips
        reward: float,  # pips on the chance -> state edge into this node
    ) -> None:
        self.state = state
        self.side = side
        self.legal = legal
        self.logits = logits
        self.prior = softmax_over_legal(logits, legal)
        self.raw_value = raw_value
        self.reward = reward
        self.visits = 0
        self.value_sum = 0.0
        self.children: dict[int, AfterstateNode] = {}
        self.network_prior = self.prior  # the root keeps the prior before noise here
        self.gumbel = [0.0] * NUM_ACTIONS  # root Gumbel noise (zeros elsewhere)

    def value(self) -> float:
        """Mean return backed up through this node (pips)."""
        return self.value_sum / self.visits

    def child_visits(self) -> list[int]:
        """[4] visits of each action's afterstate (0 where not created)."""
        return [self.children[a].visits if a in self.children else 0 for a in range(NUM_ACTIONS)]

    def child_q(self) -> list[float]:
        """[4] Q of each action's afterstate (0.0 where not created; callers check visits)."""
        return [self.children[a].value() if a in self.children else 0.0 for a in range(4)]


class AfterstateNode:
    """The position after the action, before the bar: a chance node over DOWN, NEUTRAL, UP."""

    def __init__(
        self, afterstate: torch.Tensor, action: int, sigma: list[float], raw_q: float
    ) -> None:
        self.afterstate = afterstate  # [1, H]
        self.action = action
        self.sigma = sigma  # [3]
        self.raw_q = raw_q  # pips
        self.visits = 0
        self.value_sum = 0.0
        self.children: dict[int, DecisionNode] = {}

    def value(self) -> float:
        """Q(s, a): mean return backed up through this afterstate (pips)."""
        return self.value_sum / self.visits


def reference_search(
    model: SearchModel,
    window: np.ndarray,
    static: np.ndarray,
    legal: np.ndarray,
    side: np.ndarray,
    config: MctsConfig,
    num_simulations: int,
    dirichlet: np.ndarray | None = None,
    gumbel: np.ndarray | None = None,
) -> SearchResult:
    """Search each of the B roots on its own; same arguments and result as `search.search`."""
    if num_simulations < 1:
        raise ValueError(f"num_simulations must be >= 1, got {num_simulations}")
    legal = root_legal(legal, side)
    batch = legal.shape[0]
    result = SearchResult(
        visit_counts=np.zeros((batch, NUM_ACTIONS), np.int32),
        q=np.full((batch, NUM_ACTIONS), np.nan),
        prior=np.zeros((batch, NUM_ACTIONS)),
        chance_probs=np.full((batch, NUM_ACTIONS, NUM_OUTCOMES), np.nan),
        value=np.zeros(batch),
        network_value=np.zeros(batch),
        policy_target=np.zeros((batch, NUM_ACTIONS)),
        best_action=np.zeros(batch, np.int64),
    )
    for b in range(batch):
        root = reference_tree(
            model,
            window[b : b + 1],
            static[b : b + 1],
            legal[b],
            int(side[b]),
            config,
            num_simulations,
            None if dirichlet is None else dirichlet[b],
            None if gumbel is None else gumbel[b],
        )
        _summarise(root, config, result, b)
    return result


def reference_tree(
    model: SearchModel,
    window: np.ndarray,  # [1, W, 9]
    static: np.ndarray,  # [1, 6]
    legal: np.ndarray,  # [4] bool
    side: int,
    config: MctsConfig,
    num_simulations: int,
    dirichlet: np.ndarray | None = None,  # [4]
    gumbel: np.ndarray | None = None,  # [4]
) -> DecisionNode:
    """The search tree of one environment, grown by `num_simulations` simulations."""
    dtype, device = model_dtype_device(model, window)
    with torch.inference_mode():
        out = model.initial_inference(
            torch.as_tensor(window, dtype=dtype, device=device),
            torch.as_tensor(static, dtype=dtype, device=device),
        )
        root = DecisionNode(
            state=out.state,
            side=side,
            legal=[bool(x) for x in legal],
            logits=[float(x) for x in out.policy_logits[0]],
            raw_value=float(out.value[0]),
            reward=0.0,
        )
        root.network_prior = list(root.prior)
        if dirichlet is not None and sum(float(n) for n in dirichlet) > 0.0:
            f = config.exploration_fraction
            root.prior = [
                (1.0 - f) * p + f * float(n) if ok else 0.0
                for p, n, ok in zip(root.prior, dirichlet, root.legal, strict=True)
            ]
        root.gumbel = [0.0] * NUM_ACTIONS if gumbel is None else [float(g) for g in gumbel]
        root.visits, root.value_sum = 1, root.raw_value
        for _ in range(num_simulations):
            _simulate(model, root, config, num_simulations)
    return root


def _simulate(
    model: SearchModel,
    root: DecisionNode,
    config: MctsConfig,
    num_simulations: int,
) -> None:
    """One simulation: walk down, create one node with a batch-1 call, back up along the path."""
    path: list[DecisionNode | AfterstateNode] = [root]
    node = root
    while True:
        action = select_action(node, node is root, config, num_simulations)
        if action not in node.children:
            out = model.afterstate_inference(node.state, _index(action, node.state))
            child = AfterstateNode(
                out.afterstate, action, [float(x) for x in out.chance_probs[0]], float(out.q[0])
            )
            node.children[action] = child
            path.append(child)
            _backup(path, child.raw_q, config.discount)
            return
        afterstate = node.children[action]
        path.append(afterstate)
        outcome = _select_outcome(afterstate)
        if outcome not in afterstate.children:
            step = model.recurrent_inference(
                afterstate.afterstate, _index(outcome, afterstate.afterstate)
            )
            new_side = int(next_side(node.side, action))
            decision = DecisionNode(
                state=step.state,
                side=new_side,
                legal=[bool(is_legal(new_side, a)) for a in range(NUM_ACTIONS)],
                logits=[float(x) for x in step.policy_logits[0]],
                raw_value=float(step.value[0]),
                reward=float(step.reward[0]),
            )
            afterstate.children[outcome] = decision
            path.append(decision)
            _backup(path, decision.raw_value, config.discount)
            return
        node = afterstate.children[outcome]
        path.append(node)


def _backup(path: list[DecisionNode | AfterstateNode], g: float, discount: float) -> None:
    """Add g from the leaf up; crossing a chance -> state edge upwards makes it r + γ·g."""
    for node in reversed(path):
        node.visits += 1
        node.value_sum += g
        if isinstance(node, DecisionNode):
            g = node.reward + discount * g


def _select_outcome(afterstate: AfterstateNode) -> int:
    """argmax σ(c) / (N(c) + 1), ties → lowest outcome."""
    scores = [
        afterstate.sigma[c]
        / ((afterstate.children[c].visits if c in afterstate.children else 0) + 1.0)
        for c in range(NUM_OUTCOMES)
    ]
    return scores.index(max(scores))


def select_action(
    node: DecisionNode,
    is_root: bool,
    config: MctsConfig,
    num_simulations: int,
) -> int:
    """pUCT, or under Gumbel: sequential halving at the root, improved policy inside."""
    visits, q = node.child_visits(), node.child_q()
    legal = [a for a in range(NUM_ACTIONS) if node.legal[a]]
    if config.root_selection == "puct":
        value = node.value()
        seen = [q[a] for a in legal if visits[a] > 0]
        low, high = min([value, *seen]), max([value, *seen])
        scale = max(high - low, config.q_floor_pips)
        pb_c = config.pb_c_init + math.log(
            (node.visits + config.pb_c_base + 1.0) / config.pb_c_base
        )
        scores = {
            a: ((q[a] if visits[a] > 0 else value) - low) / scale
            + node.prior[a] * math.sqrt(node.visits) / (1.0 + visits[a]) * pb_c
            for a in legal
        }
        return first_argmax(scores)
    sigma_q = completed_q(node, visits, q, config)
    if is_root:
        considered = considered_visits(len(legal), num_simulations)[sum(visits)]
        return first_argmax(gumbel_scores(node, visits, sigma_q, considered))
    improved = softmax_over_legal([node.logits[a] + sigma_q[a] for a in range(4)], node.legal)
    total = sum(visits[a] for a in legal)
    return first_argmax({a: improved[a] - visits[a] / (1.0 + total) for a in legal})


def completed_q(
    node: DecisionNode, visits: list[int], q: list[float], config: MctsConfig
) -> list[float]:
    """[4] σ(completed q̂) of Gumbel MuZero (0 on illegal actions)."""
    legal = [a for a in range(NUM_ACTIONS) if node.legal[a]]
    prior = [max(p, 1e-300) for p in softmax_over_legal(node.logits, node.legal)]
    seen = [a for a in legal if visits[a] > 0]
    total = sum(visits[a] for a in legal)
    sum_probs = sum(prior[a] for a in seen)
    weighted_q = sum(prior[a] * q[a] / sum_probs for a in seen)
    mixed = (node.raw_value + total * weighted_q) / (total + 1)
    completed = {a: q[a] if visits[a] > 0 else mixed for a in legal}
    low, high = min(completed.values()), max(completed.values())
    scale = max(high - low, config.q_floor_pips)
    weight = (config.gumbel_c_visit + max(visits[a] for a in legal)) * config.gumbel_c_scale
    return [weight * (completed[a] - low) / scale if a in completed else 0.0 for a in range(4)]


def gumbel_scores(
    node: DecisionNode,
    visits: list[int],
    sigma_q: list[float],
    considered: int,
) -> dict[int, float]:
    """g + logits + σ(q̂) (floored at −1e9) for legal actions with `considered` visits, else −inf."""
    legal = [a for a in range(NUM_ACTIONS) if node.legal[a]]
    top = max(node.logits[a] for a in legal)
    return {
        a: max(-1e9, node.gumbel[a] + (node.logits[a] - top) + sigma_q[a])
        if visits[a] == considered
        else -math.inf
        for a in legal
    }


def _summarise(
    root: DecisionNode,
    config: MctsConfig,
    result: SearchResult,
    b: int,
) -> None:
    """Write environment b's root statistics, policy target and best action into `result`."""
    visits, q = root.child_visits(), root.child_q()
    result.value[b] = root.value()
    result.network_value[b] = root.raw_value
    result.prior[b] = root.network_prior
    for a, child in root.children.items():
        result.visit_counts[b, a] = child.visits
        result.q[b, a] = child.value()
        result.chance_probs[b, a] = child.sigma
    visited = [a for a in range(NUM_ACTIONS) if visits[a] > 0]
    if config.root_selection == "puct":
        result.policy_target[b] = [v / sum(visits) for v in visits]
        result.best_action[b] = max(visited, key=lambda a: (visits[a], q[a], -a))
        return
    sigma_q = completed_q(root, visits, q, config)
    result.policy_target[b] = softmax_over_legal(
        [root.logits[a] + sigma_q[a] for a in range(NUM_ACTIONS)], root.legal
    )
    most = max(visits[a] for a in range(NUM_ACTIONS) if root.legal[a])
    result.best_action[b] = first_argmax(gumbel_scores(root, visits, sigma_q, most))


def softmax_over_legal(logits: list[float], legal: list[bool]) -> list[float]:
    """[4] softmax of logits over the legal actions; 0 on illegal ones."""
    top = max(x for x, ok in zip(logits, legal, strict=True) if ok)
    weights = [math.exp(x - top) if ok else 0.0 for x, ok in zip(logits, legal, strict=True)]
    total = sum(weights)
    return [w / total for w in weights]


def _index(value: int, like: torch.Tensor) -> torch.Tensor:
    """[1] int64 tensor holding an action or outcome, on the device of `like`."""
    return torch.tensor([value], dtype=torch.int64, device=like.device)


def first_argmax(scores: dict[int, float]) -> int:
    """The key with the highest score; ties → the lowest key (keys come in ascending order)."""
    best = min(scores)
    for a in sorted(scores):
        if scores[a] > scores[best]:
            best = a
    return best
