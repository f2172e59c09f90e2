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

Environment j's transitions lie num_envs slots apart (every add writes one slot per environment,
in order), so the transition at step t' of the episode of slot i is in slot
(i + (t' - t) * num_envs) mod capacity, and relabeling never leaves the episode. When the ring
overwrites the first transition of an episode, the whole episode stops being sampled (as SB3), and
an episode longer than the ring holds is never sampled. `terminated` is kept as stored: goal tasks
end by a time limit (truncation, which bootstraps), and an environment that terminates on success
terminates for its own goal. The draws of step 1 are `replay.sample_indices`' stream restricted to
valid slots; those of step 2 have a stream of their own, keyed by (seed, step), so a resumed run
relabels exactly as an uninterrupted one.
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
    `state_dict` with its contents."""

    def __init__(self, num_seeds: int, capacity: int, num_envs: int, goals: Goals, strategy: str = "future",
                 k: int = 4):
        if strategy not in ("future", "final", "episode"):
            raise ConfigError(f"unknown her_strategy {strategy!r}: choose future, final or episode")
        self.capacity, self.num_envs, self.goals, self.strategy, self.k = int(capacity), int(num_envs), goals, strategy, k
        self.t = np.zeros((num_seeds, self.capacity), np.int64)
        """The step of each slot's transition within its episode."""
        self.length = np.zeros((num_seeds, self.capacity), np.int64)
        """The length of each slot's episode once it ended, 0 before, and 0 once the ring overwrote part of it."""
        self.running = np.zeros((num_seeds, self.num_envs), np.int64)
        """Each environment's steps so far in its current episode: the `t` of its next transition."""
        self.valid = np.zeros(num_seeds, np.int64)
        """How many slots hold a transition of a finished, whole episode (the slots that may be drawn)."""
        self.filled = 0
        """How many slots have been written (the first `filled`, as the ring fills in order)."""

    def add(self, slots: np.ndarray, ended: np.ndarray) -> None:
        """Record transitions written to `slots` (count,), step by step and environment by
        environment; `ended` (seeds, count): the episode ended there (terminated or truncated)."""
        E, C = self.num_envs, self.capacity
        if len(slots) % E:
            raise ValueError(f"hindsight bookkeeping takes whole steps of {E} environments, not {len(slots)} transitions")
        for first in range(0, len(slots), E):
            step_slots, step_ended = slots[first:first + E], ended[:, first:first + E]
            for s, slot in zip(*np.nonzero(self.length[:, step_slots])):  # overwritten episodes leave
                slot = step_slots[slot]
                episode = (slot + (np.arange(self.length[s, slot]) - self.t[s, slot]) * E) % C
                self.valid[s] -= len(episode)
                self.length[s, episode] = 0
            self.t[:, step_slots] = self.running
            self.length[:, step_slots] = 0
            for s, j in zip(*np.nonzero(step_ended)):
                length = self.running[s, j] + 1
                if length * E <= C:  # else its first transitions were overwritten while it ran
                    self.length[s, (step_slots[j] - np.arange(length) * E) % C] = length
                    self.valid[s] += length
            self.running = np.where(step_ended, 0, self.running + 1)
        self.filled = min(self.filled + len(slots), C)

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
        E, C = self.num_envs, self.capacity
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
            goal_slot = (slot + (t_goal - t) * E) % C
            goals[s] = data[s, goal_slot, next_obs + achieved.start: next_obs + achieved.stop]
        part = rows[..., :virtual, :]
        part[..., obs + desired.start: obs + desired.stop] = goals
        part[..., next_obs + desired.start: next_obs + desired.stop] = goals
        reached = part[..., next_obs + achieved.start: next_obs + achieved.stop]
        reward = self.goals.compute_reward(reached.reshape(-1, goal_size), goals.reshape(-1, goal_size))
        part[..., columns["reward"].start] = np.asarray(reward, np.float32).reshape(part.shape[:-1])
        return rows

    def state_dict(self, seed: int, size: int) -> dict[str, np.ndarray]:
        return {"her_t": self.t[seed, :size], "her_length": self.length[seed, :size], "her_running": self.running[seed]}

    def load_state_dict(self, seed: int, state: dict[str, np.ndarray]) -> None:
        if "her_t" not in state:
            raise ValueError("the saved replay buffer has no hindsight bookkeeping: it was written by a run without her")
        size = len(state["her_t"])
        self.t[seed, :size], self.length[seed, :size] = state["her_t"], state["her_length"]
        self.running[seed] = state["her_running"]
        self.valid[seed], self.filled = np.count_nonzero(self.length[seed]), size


def from_config(config: Config, envs: Envs, num_seeds: int) -> Hindsight:
    """The run's Hindsight, for the goal environment `envs`. Learning must start once the first
    episodes have ended (no transition can be drawn before): with a time limit of T steps and
    num_envs environments, at step T * num_envs; a config that starts earlier is refused here."""
    limit = envs.episode_limit()
    if limit is not None and config.learning_starts < limit * config.num_envs:
        raise ConfigError(
            f"invalid learning_starts={config.learning_starts}: hindsight experience replay draws from finished "
            f"episodes only, and the first ones end at step {limit * config.num_envs} ({limit} steps x "
            f"{config.num_envs} environment(s)): set learning_starts to at least that")
    return Hindsight(num_seeds, config.buffer_size, config.num_envs, envs.goals(), config.her_strategy, config.her_k)


@functools.lru_cache(maxsize=1024)
def _her_key(seed: int) -> int:
    return int(np.random.SeedSequence([seed, HER_STREAM]).generate_state(1, np.uint64)[0])
