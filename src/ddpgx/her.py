"""Hindsight experience replay (Andrychowicz et al. 2017): replay a transition as if the goal had
been one that the episode achieved, so that a sparse reward is met where the agent actually went.

The buffer stores each transition once, with the goal the environment gave; what relabeling needs
is kept beside it (`Hindsight`): for every slot, the transition's step `t` within its episode and
the episode's `length` once it has ended. A minibatch is relabeled when it is sampled, in the
manner of SB3's HerReplayBuffer:

    1. its slots are drawn uniformly among the transitions of finished episodes (an episode still
       running has no future yet, and its final transition is unknown), by rejection where most
       slots are such transitions;
    2. the first int(k / (k + 1) * batch) transitions of each minibatch get a new goal g, the
       achieved goal (of the next observation) of the transition at step t' of the same episode:
           future    t' uniform in [t, length - 1]   (the transition's own outcome included, as in
                                                      Andrychowicz et al.'s code and SB3)
           final     t' = length - 1
           episode   t' uniform in [0, length - 1]
       g replaces the desired goal in s and s';
    3. their rewards are recomputed by the environment's compute_reward(achieved goal of s', g), in
       one vectorized call for the whole learning call.

Transitions arrive source by source (a source is one environment: of the single-process loop, or
of a rollout worker, whose chunks interleave with the other workers' in the buffer), so the slots
of an episode are found by following its source: each slot records the slot its source wrote
before it, and when an episode ends whole its slots are listed in step order (`order`), so the
transition at step t' of the episode of slot i is a lookup, and relabeling never leaves the
episode. When the ring overwrites a transition of a finished episode, the whole episode stops
being sampled (as SB3), and an episode longer than the ring holds is never sampled. `terminated`
is kept as stored: goal tasks end by a time limit (truncation, which bootstraps), and an
environment that terminates on success terminates for its own goal. The draws of step 1 are
`replay.sample_indices`' stream restricted to valid slots; those of step 2 have a stream of their
own, keyed by (seed, step), so a resumed run relabels exactly as an uninterrupted one.
"""

from __future__ import annotations

import functools

import numpy as np

from ddpgx.config import Config, ConfigError
from ddpgx.envs import Envs, Goals
from ddpgx.replay import sampler

HER_STREAM = 4
"""The stream of the goal draws: SeedSequence([seed, HER_STREAM]) (0 trains, 1 evaluates, 2 samples
the replay buffer, 3 the rollout workers)."""


class Hindsight:
    """Episode bookkeeping of a replay buffer's slots (leading seed axis) and the relabeling of its
    minibatches. A `replay.ReplayBuffer` made with one calls `add` on every insertion and saves
    `state_dict` with its contents.

    A source is one environment whose transitions arrive in order: environment j of the
    single-process loop, or environment j of rollout worker w (source w * num_envs + j)."""

    def __init__(self, num_seeds: int, capacity: int, sources: int, goals: Goals, strategy: str = "future",
                 k: int = 4):
        if strategy not in ("future", "final", "episode"):
            raise ConfigError(f"unknown her_strategy {strategy!r}: choose future, final or episode")
        self.capacity, self.sources, self.goals, self.strategy, self.k = int(capacity), int(sources), goals, strategy, k
        S, C, J = num_seeds, self.capacity, self.sources
        self.t = np.zeros((S, C), np.int32)
        """The step of each slot's transition within its episode."""
        self.length = np.zeros((S, C), np.int32)
        """The length of each slot's episode once it ended whole, 0 before, and 0 once the ring overwrote part of it."""
        self.start = np.zeros((S, C), np.int32)
        """Where each finished episode's slots begin in `order`."""
        self.order = np.zeros((S, 2 * C), np.int32)
        """The slots of the finished episodes, in step order, episode after episode. A ring of 2C
        entries: those listed after an episode that may still be drawn are of other transitions,
        none inserted more than C before it ended, so fewer than 2C, and its own are never overwritten."""
        self.cursor = np.zeros(S, np.int64)
        """The next entry of `order`."""
        self.prev = np.full(C, -1, np.int32)
        """The slot its source wrote before each slot (the same for every seed)."""
        self.last = np.full(J, -1, np.int64)
        """Each source's last slot."""
        self.running = np.zeros((S, J), np.int64)
        """Each source's steps so far in its current episode: the `t` of its next transition."""
        self.began = np.zeros((S, J), np.int64)
        """The insertion number of each source's current episode's first transition."""
        self.inserted = 0
        """Transitions inserted so far: transition n went to slot n mod capacity."""
        self.valid = np.zeros(S, np.int64)
        """How many slots hold a transition of a finished, whole episode (the slots that may be drawn)."""

    @property
    def filled(self) -> int:
        """How many slots have been written (the first `filled`, as the ring fills in order)."""
        return min(self.inserted, self.capacity)

    def add(self, slots: np.ndarray, ended: np.ndarray, sources: np.ndarray | None = None) -> None:
        """Record transitions written to `slots` (count,) in order; `ended` (seeds, count): the
        episode ended there (terminated or truncated); `sources` (count,): each one's source, by
        default step by step, source by source (0, 1, ..., sources - 1, 0, 1, ...)."""
        if sources is None:
            if len(slots) % self.sources:
                raise ValueError(f"hindsight bookkeeping takes whole steps of {self.sources} environments, "
                                 f"not {len(slots)} transitions, unless their sources are given")
            sources = np.arange(len(slots)) % self.sources
        C = self.capacity
        for i, (slot, j) in enumerate(zip(np.asarray(slots).tolist(), np.asarray(sources).tolist())):
            for s in np.flatnonzero(self.length[:, slot]):  # the ring overwrites a finished episode: it leaves
                episode = self._episode(s, slot)
                self.valid[s] -= len(episode)
                self.length[s, episode] = 0
            fresh = self.running[:, j] == 0
            self.began[fresh, j] = self.inserted
            self.t[:, slot] = self.running[:, j]
            self.prev[slot], self.last[j] = self.last[j], slot
            self.inserted += 1
            for s in np.flatnonzero(ended[:, i]):
                length = int(self.running[s, j]) + 1
                if self.inserted - self.began[s, j] <= C:  # else its first transitions were overwritten while it ran
                    self._finish(s, slot, length)
            self.running[:, j] = np.where(ended[:, i], 0, self.running[:, j] + 1)

    def restart(self, sources: np.ndarray) -> None:
        """The environments of `sources` start new episodes (a rollout worker started afresh): the
        episodes they were running never end, and are never drawn."""
        self.running[:, sources], self.last[sources] = 0, -1

    def _episode(self, s: int, slot: int) -> np.ndarray:
        """The slots of the finished episode of `slot`, in step order."""
        R = self.order.shape[1]
        return self.order[s, (self.start[s, slot] + np.arange(self.length[s, slot])) % R]

    def _finish(self, s: int, slot: int, length: int) -> None:
        """Seed s's episode ending at `slot`, of `length` steps, all still in the ring, may be drawn."""
        episode = np.empty(length, np.int32)
        for u in range(length - 1, -1, -1):  # back along the source
            episode[u], slot = slot, self.prev[slot]
        R = self.order.shape[1]
        self.order[s, (self.cursor[s] + np.arange(length)) % R] = episode
        self.start[s, episode], self.length[s, episode] = self.cursor[s], length
        self.cursor[s] = (self.cursor[s] + length) % R
        self.valid[s] += length

    def sample_indices(self, seeds: list[int], step: int, shape: tuple[int, ...]) -> np.ndarray:
        """Slots (seeds, *shape) drawn uniformly among the finished episodes' transitions: by
        rejection among the filled slots when at least half of them may be drawn (the usual case:
        only the running episodes' and partly overwritten ones' may not), so a draw costs the
        minibatch's size and not the buffer's; else from the list of valid slots."""
        index, count = [], int(np.prod(shape))
        for s, seed in enumerate(seeds):
            if self.valid[s] == 0:
                raise ConfigError(
                    f"step {step}: hindsight experience replay samples finished episodes only, and no episode of "
                    f"seed {seed} has ended yet: set learning_starts above the episode length")
            rng = sampler(seed, step)
            if 2 * self.valid[s] >= self.filled:
                drawn, found = [], 0
                while found < count:
                    candidates = rng.integers(0, self.filled, count)
                    candidates = candidates[self.length[s, candidates] > 0]
                    drawn.append(candidates)
                    found += len(candidates)
                index.append(np.concatenate(drawn)[:count].reshape(shape))
            else:
                valid = np.flatnonzero(self.length[s, : self.filled])
                index.append(valid[rng.integers(0, len(valid), shape)])
        return np.stack(index)

    def relabel(self, rows: np.ndarray, index: np.ndarray, seeds: list[int], step: int, data: np.ndarray,
                columns: dict[str, slice]) -> np.ndarray:
        """The one-step rows (seeds, *shape, width) of the slots `index`, the first k / (k + 1) of
        each minibatch (the last axis of `shape`) with new goals and rewards; `data` is the buffer's
        storage, `columns` its layout. Returns rows without the stored `truncated` column."""
        R = self.order.shape[1]
        rows = rows[..., : columns["terminated"].stop].copy()
        virtual = int(self.k / (self.k + 1) * rows.shape[-2])
        obs, next_obs = columns["obs"].start, columns["next_obs"].start
        achieved, desired = self.goals.achieved, self.goals.desired
        goal_size = desired.stop - desired.start
        goals = np.empty((*rows.shape[:-2], virtual, goal_size), np.float32)
        for s, seed in enumerate(seeds):
            slot = index[s, ..., :virtual]
            t, length = self.t[s, slot], self.length[s, slot]
            rng = np.random.Generator(np.random.Philox(key=[_her_key(seed), step]))
            if self.strategy == "future":
                t_goal = rng.integers(t, length)
            elif self.strategy == "final":
                t_goal = length - 1
            else:
                t_goal = rng.integers(0, length)
            goal_slot = self.order[s, (self.start[s, slot] + t_goal) % R]
            goals[s] = data[s, goal_slot, next_obs + achieved.start: next_obs + achieved.stop]
        part = rows[..., :virtual, :]
        part[..., obs + desired.start: obs + desired.stop] = goals
        part[..., next_obs + desired.start: next_obs + desired.stop] = goals
        reached = part[..., next_obs + achieved.start: next_obs + achieved.stop]
        reward = self.goals.compute_reward(reached.reshape(-1, goal_size), goals.reshape(-1, goal_size))
        part[..., columns["reward"].start] = np.asarray(reward, np.float32).reshape(part.shape[:-1])
        return rows

    def state_dict(self, seed: int, size: int) -> dict[str, np.ndarray]:
        """Seed `seed`'s bookkeeping of the first `size` slots, with what every seed shares."""
        return {"her_t": self.t[seed, :size], "her_length": self.length[seed, :size],
                "her_start": self.start[seed, :size], "her_order": self.order[seed], "her_cursor": self.cursor[seed],
                "her_running": self.running[seed], "her_began": self.began[seed], "her_prev": self.prev[:size],
                "her_last": self.last, "her_inserted": np.int64(self.inserted)}

    def load_state_dict(self, seed: int, state: dict[str, np.ndarray]) -> None:
        if "her_t" not in state:
            raise ValueError("the saved replay buffer has no hindsight bookkeeping: it was written by a run without her")
        if "her_order" not in state:
            raise ValueError("the saved replay buffer's hindsight bookkeeping is of an earlier ddpgx (before rollout "
                             "workers could relabel): resume the run with that version, or start it again")
        if len(state["her_running"]) != self.sources or len(state["her_order"]) != self.order.shape[1]:
            raise ValueError(f"the saved hindsight bookkeeping has {len(state['her_running'])} environment source(s) "
                             f"and room for {len(state['her_order']) // 2} slots, this run {self.sources} and "
                             f"{self.capacity}")
        size = len(state["her_t"])
        self.t[seed, :size], self.length[seed, :size] = state["her_t"], state["her_length"]
        self.start[seed, :size], self.order[seed] = state["her_start"], state["her_order"]
        self.cursor[seed], self.running[seed], self.began[seed] = state["her_cursor"], state["her_running"], state["her_began"]
        self.prev[:size], self.last[:] = state["her_prev"], state["her_last"]
        self.inserted = int(state["her_inserted"])
        self.valid[seed] = np.count_nonzero(self.length[seed])


def from_config(config: Config, envs: Envs, num_seeds: int) -> Hindsight:
    """The run's Hindsight, for the goal environment `envs`. Learning must start once the first
    episodes have ended (no transition can be drawn before): with a time limit of T steps and
    num_envs environments (per rollout worker, if there are workers), at step T * num_envs (times
    the workers); a config that starts earlier is refused here."""
    sources = config.num_envs * max(config.workers, 1)
    limit = envs.episode_limit()
    if limit is not None and config.learning_starts < limit * sources:
        where = f"{config.num_envs} environment(s)" + (f" x {config.workers} workers" if config.workers else "")
        raise ConfigError(
            f"invalid learning_starts={config.learning_starts}: hindsight experience replay draws from finished "
            f"episodes only, and the first ones end at step {limit * sources} ({limit} steps x {where}): set "
            f"learning_starts to at least that")
    return Hindsight(num_seeds, config.buffer_size, sources, envs.goals(), config.her_strategy, config.her_k)


@functools.lru_cache(maxsize=1024)
def _her_key(seed: int) -> int:
    return int(np.random.SeedSequence([seed, HER_STREAM]).generate_state(1, np.uint64)[0])
