"""Hindsight experience replay: relabeling at sample time, checked transition by transition.

The buffer is filled with transitions whose achieved goal is a code naming where it comes from
(seed, environment, episode, step), so every relabeled goal says which transition it was taken
from: the tests check the strategies' choice of t', that no goal crosses an episode boundary, and
that episodes still running or partly overwritten by the ring are never sampled; with several
environments, several seeds, a ring whose capacity is not a multiple of the environments, and
episodes that end by termination or by truncation.
"""

import numpy as np
import pytest

from ddpgx.config import ConfigError
from ddpgx.envs import Goals
from ddpgx.her import Hindsight
from ddpgx.replay import ReplayBuffer, pack

# the flat observation: [achieved_goal | desired_goal | observation]
ACHIEVED, DESIRED = slice(0, 1), slice(1, 2)
ORIGINAL_GOAL = -1.0


def code(seed, env, episode, t):
    return seed * 100_000 + env * 10_000 + episode * 100 + t


def decode(value):
    value = int(round(float(value)))
    return value // 100_000, value // 10_000 % 10, value // 100 % 100, value % 100


def compute_reward(achieved, desired):
    """0 where the goal is the transition's own achieved goal, else -1 (the codes differ by >= 1)."""
    return -(np.abs(achieved - desired)[:, 0] > 0.5).astype(np.float32)


GOALS = Goals(ACHIEVED, DESIRED, compute_reward)


class Filler:
    """Steps S seeds x E environments of episodes of random lengths (3 to 9 steps) into a buffer;
    an episode ends by termination or truncation at random. Records every episode's length."""

    def __init__(self, buffer, num_seeds, num_envs, seed=0):
        self.buffer, self.S, self.E = buffer, num_seeds, num_envs
        self.rng = np.random.default_rng(seed)
        self.t = np.zeros((num_seeds, num_envs), int)
        self.episode = np.zeros((num_seeds, num_envs), int)
        self.limit = self.rng.integers(3, 10, (num_seeds, num_envs))
        self.lengths = {}  # (seed, env, episode) -> length, once it ended

    def step(self):
        S, E = self.S, self.E
        obs = np.zeros((S, E, 3), np.float32)
        next_obs = np.zeros((S, E, 3), np.float32)
        for s in range(S):
            for j in range(E):
                obs[s, j] = [code(s, j, self.episode[s, j], self.t[s, j]) - 0.25, ORIGINAL_GOAL, 0.0]
                next_obs[s, j] = [code(s, j, self.episode[s, j], self.t[s, j]), ORIGINAL_GOAL, 0.0]
        ended = self.t + 1 == self.limit
        by_termination = self.rng.random((S, E)) < 0.5
        terminated, truncated = ended & by_termination, ended & ~by_termination
        self.insert(pack(obs, np.zeros((S, E, 1)), np.full((S, E), -1.0), next_obs, terminated, truncated))
        for s, j in zip(*np.nonzero(ended)):
            self.lengths[(s, j, self.episode[s, j])] = self.limit[s, j]
        self.episode = np.where(ended, self.episode + 1, self.episode)
        self.t = np.where(ended, 0, self.t + 1)
        self.limit = np.where(ended, self.rng.integers(3, 10, (S, E)), self.limit)

    def insert(self, rows):
        """One step of every environment, (seeds, envs, width): in order, as the single-process loop."""
        self.buffer.add_rows(rows)

    def flush(self):
        pass


class ChunkFiller(Filler):
    """The environments as `workers` rollout workers of E // workers environments each: every step
    is queued per worker, and now and then one worker's queue (its chunk) is inserted, cut into
    pieces at random rows (as the learner cuts chunks at its logging steps), in random worker order."""

    def __init__(self, buffer, num_seeds, num_envs, seed=0, workers=3):
        super().__init__(buffer, num_seeds, num_envs, seed)
        self.workers, self.per_worker = workers, num_envs // workers
        self.queued = [[] for _ in range(workers)]

    def insert(self, rows):
        for w in range(self.workers):
            self.queued[w].append(rows[:, w * self.per_worker: (w + 1) * self.per_worker])
        for w in self.rng.permutation(self.workers):
            if self.rng.random() < 0.3:
                self.insert_chunk(w)

    def insert_chunk(self, w):
        if not self.queued[w]:
            return
        chunk = np.concatenate(self.queued[w], axis=1)  # step by step, environment by environment
        self.queued[w] = []
        sources = w * self.per_worker + np.arange(chunk.shape[1]) % self.per_worker
        cuts = sorted(set(self.rng.integers(0, chunk.shape[1] + 1, 2)) | {0, chunk.shape[1]})
        for a, b in zip(cuts, cuts[1:]):
            self.buffer.add_rows(chunk[:, a:b], sources[a:b])

    def flush(self):
        for w in range(self.workers):
            self.insert_chunk(w)


def make(capacity, num_seeds, num_envs, strategy="future", k=4):
    hindsight = Hindsight(num_seeds, capacity, num_envs, GOALS, strategy, k)
    buffer = ReplayBuffer(capacity, (3,), 1, num_seeds, truncated=True, hindsight=hindsight)
    return buffer, hindsight


def sample(buffer, hindsight, seeds, step, shape):
    index = hindsight.sample_indices(seeds, step, shape)
    return hindsight.relabel(buffer.sample_rows(index), index, seeds, step, buffer.data, buffer.columns), index


def stored_codes(buffer, s):
    return {decode(v) for v in buffer.data[s, : buffer.size, buffer.columns["next_obs"].start]}


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
@pytest.mark.parametrize("num_seeds, num_envs, capacity, filler_type", [
    (1, 1, 500, Filler), (2, 3, 37, Filler), (1, 4, 30, Filler), (2, 6, 500, ChunkFiller), (1, 9, 53, ChunkFiller)])
def test_relabeled_goals_come_from_the_same_episode_as_the_strategy_says(strategy, num_seeds, num_envs, capacity,
                                                                        filler_type):
    """Every relabeled goal is the achieved goal of a transition of the transition's own episode, at
    the step the strategy allows; the sampled episodes ended and are whole in the buffer (a small
    ring wraps many times: capacities 37 and 30 hold 12 and 7 steps of their environments). With
    rollout workers (`ChunkFiller`), the chunks of three workers interleave in the buffer, cut into
    pieces mid-step."""
    buffer, hindsight = make(capacity, num_seeds, num_envs, strategy)
    filler = filler_type(buffer, num_seeds, num_envs)
    seeds = list(range(10, 10 + num_seeds))
    batch, k = 40, 4
    virtual = int(k / (k + 1) * batch)
    seen_t = set()
    for step in range(60):
        filler.step()
        if not hindsight.length.any(axis=1).all():
            continue
        rows, index = sample(buffer, hindsight, seeds, step, (3, batch))
        cols = buffer.columns
        for s in range(num_seeds):
            present = stored_codes(buffer, s)
            for m in range(3):
                for b in range(batch):
                    row = rows[s, m, b]
                    seed, env, episode, t = decode(row[cols["next_obs"].start])
                    assert seed == s
                    length = filler.lengths.get((seed, env, episode))
                    assert length is not None, "a transition of a running episode was sampled"
                    assert {(seed, env, episode, u) for u in range(length)} <= present, "a partly overwritten episode"
                    goal = row[cols["obs"].start + DESIRED.start]
                    assert goal == row[cols["next_obs"].start + DESIRED.start]
                    if b >= virtual:  # a real transition keeps its goal and reward
                        assert goal == ORIGINAL_GOAL and row[cols["reward"].start] == -1.0
                        continue
                    g_seed, g_env, g_episode, t_goal = decode(goal)
                    assert (g_seed, g_env, g_episode) == (seed, env, episode), "the goal crossed an episode boundary"
                    if strategy == "future":
                        assert t <= t_goal < length
                    elif strategy == "final":
                        assert t_goal == length - 1
                    else:
                        assert 0 <= t_goal < length
                    seen_t.add((t_goal == t, t_goal > t, t_goal < t))
                    assert row[cols["reward"].start] == (0.0 if t_goal == t else -1.0)
    # the draws cover the strategy's range: the transition itself, later ones, and (episode) earlier ones
    expected = {"future": {(True, False, False), (False, True, False)},
                "final": {(True, False, False), (False, True, False)},
                "episode": {(True, False, False), (False, True, False), (False, False, True)}}[strategy]
    assert seen_t == expected


def test_rows_keep_terminated_and_drop_the_stored_truncated_column():
    """A truncated transition bootstraps after relabeling too (its terminated stays 0), and the rows
    have the one-step width the update unpacks."""
    buffer, hindsight = make(200, 1, 2)
    filler = Filler(buffer, 1, 2, seed=3)
    for _ in range(40):
        filler.step()
    index = hindsight.sample_indices([0], 7, (1, 64))
    rows = hindsight.relabel(buffer.sample_rows(index), index, [0], 7, buffer.data, buffer.columns)
    stored = buffer.sample_rows(index)
    cols = buffer.columns
    assert rows.shape[-1] == cols["terminated"].stop == stored.shape[-1] - 1
    np.testing.assert_array_equal(rows[..., cols["terminated"]], stored[..., cols["terminated"]])
    assert (stored[..., cols["truncated"]] == 1).any() and (stored[..., cols["terminated"]] == 1).any()


def test_sampling_is_a_function_of_seed_and_step_and_survives_a_state_dict_round_trip():
    buffer, hindsight = make(37, 2, 3)
    filler = Filler(buffer, 2, 3)
    for _ in range(30):
        filler.step()
    rows, index = sample(buffer, hindsight, [5, 6], 11, (2, 32))
    again, _ = sample(buffer, hindsight, [5, 6], 11, (2, 32))
    np.testing.assert_array_equal(rows, again)
    other, _ = sample(buffer, hindsight, [5, 6], 12, (2, 32))
    assert not np.array_equal(rows, other)
    restored, restored_hindsight = make(37, 2, 3)
    for s in range(2):
        restored.load_state_dict(s, buffer.state_dict(s))
    np.testing.assert_array_equal(sample(restored, restored_hindsight, [5, 6], 11, (2, 32))[0], rows)
    # the bookkeeping goes on from the restored counters: the next steps record the same episodes
    filler.buffer = restored
    state = (filler.t.copy(), filler.episode.copy(), filler.limit.copy(), filler.rng.bit_generator.state)
    for _ in range(10):
        filler.step()
    filler.buffer = buffer
    filler.t, filler.episode, filler.limit = state[0], state[1], state[2]
    filler.rng.bit_generator.state = state[3]
    for _ in range(10):
        filler.step()
    np.testing.assert_array_equal(restored_hindsight.length, hindsight.length)
    np.testing.assert_array_equal(restored_hindsight.t, hindsight.t)


def test_a_seed_samples_what_it_samples_alone():
    """Seed k of a two-seed buffer draws the slots and goals a one-seed buffer with seed k draws."""
    pair, pair_hindsight = make(60, 2, 2)
    alone, alone_hindsight = make(60, 1, 2)
    filler = Filler(pair, 2, 2)
    for _ in range(25):
        filler.step()
    for s in range(2):  # the same contents for seed s alone
        alone.load_state_dict(0, pair.state_dict(s))
        rows, _ = sample(pair, pair_hindsight, [3, 4], 9, (1, 50))
        rows_alone, _ = sample(alone, alone_hindsight, [[3, 4][s]], 9, (1, 50))
        np.testing.assert_array_equal(rows[s], rows_alone[0])


def test_no_finished_episode_is_a_clear_error():
    buffer, hindsight = make(100, 1, 1)
    filler = Filler(buffer, 1, 1)
    filler.limit[:] = 50
    filler.step()
    with pytest.raises(ConfigError, match="no episode of seed 0 has ended yet: set learning_starts above"):
        hindsight.sample_indices([0], 1, (1, 8))


def test_an_episode_longer_than_the_ring_is_never_sampled():
    buffer, hindsight = make(5, 1, 1)
    filler = Filler(buffer, 1, 1)
    filler.limit[:] = 7  # 7 transitions in a ring of 5: its first ones are gone when it ends
    for _ in range(7):
        filler.step()
    assert not hindsight.length.any()
    filler.limit[:] = 3
    for _ in range(3):
        filler.step()
    assert sorted(hindsight.length[0]) == [0, 0, 3, 3, 3]


def test_both_ways_of_drawing_slots_are_uniform_over_the_valid_ones():
    """Few valid slots (one episode ended among long running ones): the list of valid slots; most
    slots valid: rejection among the filled slots. Either way only valid slots, each about as often."""
    for limits, steps in (([[3, 50, 50, 50]], 3), ([[3, 3, 3, 3]], 40)):
        buffer, hindsight = make(400, 1, 4)
        filler = Filler(buffer, 1, 4)
        filler.limit[:] = limits
        for _ in range(steps):
            filler.step()
        valid = np.flatnonzero(hindsight.length[0])
        assert hindsight.valid[0] == len(valid) and hindsight.filled == 4 * steps
        assert (2 * len(valid) >= hindsight.filled) == (steps == 40)  # which way each case draws
        index = hindsight.sample_indices([0], 5, (200, 100))[0].ravel()
        assert set(index) <= set(valid)
        counts = np.bincount(index, minlength=400)[valid]
        expected = len(index) / len(valid)
        assert np.abs(counts - expected).max() < 6 * np.sqrt(expected), (counts.min(), counts.max(), expected)


def test_a_restarted_environment_never_finishes_the_episode_it_was_running():
    """A rollout worker started again starts new episodes: the one its environment was running is
    never drawn, and the episodes after it are, whole."""
    buffer, hindsight = make(500, 1, 2)
    filler = Filler(buffer, 1, 2)
    filler.limit[:] = [[3, 8]]
    for _ in range(4):
        filler.step()
    hindsight.restart(np.array([1]))
    filler.t[0, 1], filler.episode[0, 1], filler.limit[0, 1] = 0, 1, 5  # episode 0 of environment 1 left at t = 4
    for _ in range(20):
        filler.step()
    valid = {decode(buffer.data[0, slot, buffer.columns["next_obs"].start]) for slot in np.flatnonzero(hindsight.length[0])}
    assert not {code for code in valid if code[1:3] == (1, 0)}
    expected = {(0, env, episode, u) for (_, env, episode), length in filler.lengths.items() for u in range(length)}
    assert valid == expected and (0, 1, 1, 0) in valid
