"""Proportional prioritized replay (Schaul et al. 2016, "Prioritized Experience Replay", ICLR 2016).

Slot i of a seed's replay buffer has a priority p_i and is sampled with probability

    P(i) = p_i^alpha / sum_k p_k^alpha,

where p_i = |delta_i| + eps, delta_i the TD error Q(s, a) - y of the transition's last update (the
jitted update returns it). A new transition gets the largest priority seen so far (1 before any
update), so it is sampled at least once with high probability. The bias of the non-uniform
sampling is corrected by importance-sampling weights on the squared errors of the critic loss,

    w_i = (N * P(i))^-beta / max_j w_j,

N the filled slots and the maximum over the minibatch (Schaul et al.'s Algorithm 1); beta rises
linearly from `priority_beta` to 1 over `priority_beta_steps` steps (`beta_at`).

The sums live in a sum tree per seed, in vectorized numpy (`SumTree`): setting K priorities and
drawing K slots each cost O(K log capacity), done level by level for all K (and all seeds) at once.
A minibatch is drawn stratified, as in Schaul et al.: the total is cut into batch_size equal
segments and one slot is drawn in each. The uniform numbers come from the same (seed, step)
generator as uniform replay's indices, so the draws are reproducible and resume exactly; the
priorities are saved with the replay buffer, and the tree is rebuilt from them bit for bit.
"""

from __future__ import annotations

import numpy as np

from ddpgx.replay import sampler

SCALAR_SET = 8
"""Up to this many leaves, `SumTree.set` walks each one's ancestors in plain Python."""


class SumTree:
    """One binary sum tree per seed in a (seeds, 2 * leaves) float64 array: node 1 is the root, node
    k's children are 2k and 2k + 1, and slot i is the leaf node `leaves + i`. Every inner node is
    always the sum of its two children, recomputed (never incremented), so the tree is a function
    of its leaves alone. The operations index the array flattened (seed s's node k at
    s * 2 * leaves + k), one gather or scatter per tree level for all seeds at once."""

    def __init__(self, num_seeds: int, capacity: int):
        self.num_seeds, self.capacity = int(num_seeds), int(capacity)
        self.leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self.depth = self.leaves.bit_length() - 1
        self.nodes = np.zeros((self.num_seeds, 2 * self.leaves))
        self._flat = self.nodes.reshape(-1)  # a view
        self._base = (np.arange(self.num_seeds) * 2 * self.leaves)[:, None]

    @property
    def total(self) -> np.ndarray:
        """(seeds,) the sum of every leaf."""
        return self.nodes[:, 1]

    def _offsets(self, ndim: int) -> np.ndarray:
        return self._base.reshape(-1, *([1] * (ndim - 1)))

    def values(self, slots: np.ndarray) -> np.ndarray:
        """The leaves at `slots` (seeds, ...)."""
        return self._flat[self._offsets(slots.ndim) + self.leaves + slots]

    def set(self, slots: np.ndarray, values: np.ndarray, distinct: bool = False) -> None:
        """Set the leaves `slots` (seeds, K) to `values` (seeds, K); where a seed's slot appears more than
        once, the last value counts (`distinct` says that no slot repeats, which saves finding them).
        Then recompute every ancestor of the changed leaves."""
        flat = (self._offsets(2) + self.leaves + slots).ravel()
        values = np.asarray(values, np.float64).ravel()
        if not distinct:
            last = flat.size - 1 - np.unique(flat[::-1], return_index=True)[1]  # each key's last occurrence
            flat, values = flat[last], values[last]
        self._flat[flat] = values
        if flat.size <= SCALAR_SET:  # a few slots (each step's new transitions): plain Python is faster
            tree = self._flat
            for key in flat.tolist():
                base, node = key - key % (2 * self.leaves), key % (2 * self.leaves)
                for _ in range(self.depth):
                    node >>= 1
                    tree[base + node] = tree[base + 2 * node] + tree[base + 2 * node + 1]
            return
        base = flat - flat % (2 * self.leaves)
        node = flat - base
        for _ in range(self.depth):
            node >>= 1  # a parent met twice gets the same sum twice
            left = base + 2 * node
            self._flat[base + node] = self._flat[left] + self._flat[left + 1]

    def rebuild(self) -> None:
        """Recompute every inner node from the leaves, level by level."""
        for level in range(self.depth - 1, -1, -1):
            node = np.arange(1 << level, 2 << level)
            self.nodes[:, node] = self.nodes[:, 2 * node] + self.nodes[:, 2 * node + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each value of `mass` (seeds, ...) in [0, total), the slot i whose leaf covers it: the
        leaves before i sum to at most mass, and the leaves up to i to more. A subtree of zero sum
        is never entered, so a slot of zero priority is never returned."""
        base = self._offsets(mass.ndim)
        node = np.ones(mass.shape, np.int64)
        mass = np.array(mass, np.float64)
        for _ in range(self.depth):
            left = base + 2 * node
            left_sum = self._flat[left]
            right = (mass >= left_sum) & (self._flat[left + 1] > 0)
            mass -= np.where(right, left_sum, 0.0)
            node = 2 * node + right
        return node - self.leaves


class Priorities:
    """The priorities of a replay buffer's slots, one sum tree per seed; the tree holds p_i^alpha."""

    def __init__(self, num_seeds: int, capacity: int, alpha: float, eps: float):
        self.alpha, self.eps = float(alpha), float(eps)
        self.tree = SumTree(num_seeds, capacity)
        self.max_priority = np.ones(num_seeds)

    def add(self, slots: np.ndarray) -> None:
        """New transitions in `slots` (the same for every seed) get the largest priority so far."""
        slots = np.broadcast_to(slots, (self.tree.num_seeds, len(slots)))
        self.tree.set(slots, np.broadcast_to((self.max_priority ** self.alpha)[:, None], slots.shape), distinct=True)

    def update(self, indices: np.ndarray, td_error: np.ndarray) -> None:
        """p_i = |delta_i| + eps for the sampled slots `indices` (seeds, ...), in the order of the
        updates (a slot sampled twice keeps its later error)."""
        priority = np.abs(np.asarray(td_error, np.float64)) + self.eps
        flat = priority.reshape(self.tree.num_seeds, -1)
        self.max_priority = np.maximum(self.max_priority, flat.max(axis=1))
        self.tree.set(np.asarray(indices).reshape(self.tree.num_seeds, -1), flat ** self.alpha)

    def sample(self, seeds: list[int], step: int, size: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Indices (seeds, *shape), each minibatch (the last axis) stratified over the total, and their
        probabilities P(i). The uniform numbers come from seed k's (seed, step) generator."""
        if size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        batch = shape[-1]
        u = np.stack([sampler(seed, step).random(shape) for seed in seeds])
        total = self.tree.total.reshape(-1, *([1] * len(shape)))
        mass = (np.arange(batch) + u) / batch * total
        indices = np.minimum(self.tree.find(mass), size - 1)
        return indices, self.tree.values(indices) / total

    def state_dict(self, seed: int, size: int) -> dict[str, np.ndarray]:
        return {"priorities": self.tree.nodes[seed, self.tree.leaves: self.tree.leaves + size].copy(),
                "max_priority": np.float64(self.max_priority[seed])}

    def load_state_dict(self, seed: int, state: dict[str, np.ndarray]) -> None:
        if "priorities" not in state:
            raise ValueError("the saved replay buffer has no priorities: it was written without prioritized replay")
        priorities = state["priorities"]
        self.tree.nodes[seed, self.tree.leaves: self.tree.leaves + len(priorities)] = priorities
        self.max_priority[seed] = float(state["max_priority"])
        self.tree.rebuild()


def importance_weights(probabilities: np.ndarray, size: int, beta: float) -> np.ndarray:
    """w = (N P(i))^-beta, divided by the largest weight of its minibatch (the last axis)."""
    w = (size * probabilities) ** -beta
    return w / w.max(axis=-1, keepdims=True)


def beta_at(step: int, beta0: float, steps: int) -> float:
    """beta rises linearly from beta0 at step 0 to 1 at `steps`, and stays at 1."""
    return 1.0 if steps == 0 else beta0 + (1.0 - beta0) * min(step / steps, 1.0)
