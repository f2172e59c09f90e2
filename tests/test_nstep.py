"""n-step transitions assembled from the replay buffer (`ReplayBuffer.nstep_rows`), with known values:
mid-episode, at a termination, at a truncation (from the true final observation), with several
environments interleaved in the slots, across the ring's wrap-around, and for the newest slots."""

import numpy as np
import pytest

from ddpgx.replay import ReplayBuffer, columns, unpack

GAMMA = 0.5  # far from 0 and 1: a wrong power of gamma shows


def episode_steps(rewards, end):
    """(obs, reward, next_obs, terminated, truncated) of one episode whose step t has obs t and reward
    rewards[t]; `end` is "terminated", "truncated" or None (the episode goes on)."""
    steps = []
    for t, r in enumerate(rewards):
        last = t == len(rewards) - 1
        next_obs = 100.0 + t if last and end == "truncated" else t + 1.0  # a true final obs apart from the rest
        steps.append((float(t), r, next_obs, last and end == "terminated", last and end == "truncated"))
    return steps


def store(buffer, steps, env_offset=0.0):
    """Store a sequence of single-environment steps (one seed)."""
    for obs, r, next_obs, terminated, truncated in steps:
        buffer.add(np.full((1, 1, 1), obs + env_offset, np.float32), np.zeros((1, 1, 1), np.float32),
                   np.full((1, 1), r, np.float32), np.full((1, 1, 1), next_obs + env_offset, np.float32),
                   np.full((1, 1), terminated), np.full((1, 1), truncated))


def nstep(buffer, slots, n, num_envs=1):
    rows = buffer.nstep_rows(np.asarray(slots).reshape(1, -1), n, GAMMA, num_envs)
    batch = unpack(rows, buffer.obs_shape, buffer.action_dim, ("discount",))
    return {name: np.asarray(getattr(batch, name))[0] for name in ("obs", "reward", "next_obs", "terminated",
                                                                    "discount")}


def test_mid_episode_termination_and_truncation_with_known_values():
    """Rewards 1, 2, 4, 8, 16 then terminated (episode A); rewards 3, 5 then truncated (episode B)."""
    buffer = ReplayBuffer(50, (1,), 1, truncated=True)
    store(buffer, episode_steps([1.0, 2.0, 4.0, 8.0, 16.0], "terminated"))
    store(buffer, episode_steps([3.0, 5.0], "truncated"))
    out = nstep(buffer, range(7), n=3)
    # mid-episode, three steps: r0 + g r1 + g^2 r2, from s3 with g^3
    assert out["reward"][0] == pytest.approx(1 + GAMMA * 2 + GAMMA**2 * 4)
    assert out["next_obs"][0, 0] == 3.0 and out["discount"][0] == pytest.approx(GAMMA**3)
    assert out["terminated"][0] == 0.0
    assert out["reward"][2] == pytest.approx(4 + GAMMA * 8 + GAMMA**2 * 16)
    assert out["terminated"][2] == 1.0  # ends with the termination: no bootstrap whatever the discount
    # two steps before the termination: the sum stops there, terminated
    assert out["reward"][3] == pytest.approx(8 + GAMMA * 16)
    assert out["terminated"][3] == 1.0 and out["discount"][3] == pytest.approx(GAMMA**2)
    assert out["reward"][4] == pytest.approx(16.0) and out["terminated"][4] == 1.0
    # episode B does not reach into episode A, nor A into B: slot 3's sum did not include B's 3
    # truncation: bootstraps from the true final observation (100 + 1) with gamma^m, not terminated
    assert out["reward"][5] == pytest.approx(3 + GAMMA * 5)
    assert out["next_obs"][5, 0] == 101.0 and out["terminated"][5] == 0.0
    assert out["discount"][5] == pytest.approx(GAMMA**2)
    assert out["reward"][6] == pytest.approx(5.0) and out["next_obs"][6, 0] == 101.0
    assert out["discount"][6] == pytest.approx(GAMMA)
    # the start of each transition is its own slot's
    np.testing.assert_array_equal(out["obs"][:, 0], [0, 1, 2, 3, 4, 0, 1])


def test_n_equal_one_is_the_stored_transition():
    buffer = ReplayBuffer(20, (1,), 1, truncated=True)
    store(buffer, episode_steps([1.0, 2.0, 4.0], "terminated"))
    out = nstep(buffer, range(3), n=1)
    np.testing.assert_allclose(out["reward"], [1.0, 2.0, 4.0])
    np.testing.assert_allclose(out["next_obs"][:, 0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(out["terminated"], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(out["discount"], GAMMA)
    rows = buffer.sample_rows(np.arange(3).reshape(1, -1))[0]  # the same fields as the one-step rows
    cols = columns((1,), 1)
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(buffer.nstep_rows(np.arange(3).reshape(1, -1), 1, GAMMA, 1)[0][:, cols[name]],
                                      rows[:, cols[name]], err_msg=name)


def test_the_newest_slots_sum_the_steps_stored_so_far():
    """The episode goes on past the buffer's newest slot: the last slots have fewer later transitions,
    so they sum those and bootstrap from the newest next observation."""
    buffer = ReplayBuffer(20, (1,), 1, truncated=True)
    store(buffer, episode_steps([1.0, 2.0, 4.0, 8.0], None))
    out = nstep(buffer, [1, 2, 3], n=3)
    assert out["reward"][0] == pytest.approx(2 + GAMMA * 4 + GAMMA**2 * 8)
    assert out["reward"][1] == pytest.approx(4 + GAMMA * 8) and out["discount"][1] == pytest.approx(GAMMA**2)
    assert out["reward"][2] == pytest.approx(8.0) and out["discount"][2] == pytest.approx(GAMMA)
    np.testing.assert_array_equal(out["next_obs"][:, 0], [4.0, 4.0, 4.0])
    np.testing.assert_array_equal(out["terminated"], 0.0)


def test_vector_environments_interleaved_in_the_slots():
    """Two environments: env 0 has rewards 1, 2, 4, 8 (terminated at the end), env 1 has 10, 20, 40 and
    is truncated at its 2nd step; each n-step transition sums its own environment's rewards only."""
    buffer = ReplayBuffer(30, (1,), 1, truncated=True)
    env0 = episode_steps([1.0, 2.0, 4.0, 8.0], "terminated")
    env1 = episode_steps([10.0, 20.0], "truncated") + episode_steps([40.0, 80.0], None)
    for a, b in zip(env0, env1):
        both = list(zip(a, b))
        buffer.add(np.array(both[0], np.float32).reshape(1, 2, 1) + [[[0.0], [1000.0]]], np.zeros((1, 2, 1)),
                   np.array(both[1], np.float32).reshape(1, 2), np.array(both[2], np.float32).reshape(1, 2, 1),
                   np.array(both[3]).reshape(1, 2), np.array(both[4]).reshape(1, 2))
    # slots: env 0 at 0, 2, 4, 6; env 1 at 1, 3, 5, 7
    out = nstep(buffer, [0, 1, 2, 3, 5], n=3, num_envs=2)
    assert out["reward"][0] == pytest.approx(1 + GAMMA * 2 + GAMMA**2 * 4)  # env 0, not env 1's 10
    assert out["obs"][0, 0] == 0.0 and out["next_obs"][0, 0] == 3.0
    assert out["reward"][1] == pytest.approx(10 + GAMMA * 20)  # env 1: truncated after its 2nd step
    assert out["obs"][1, 0] == 1000.0 and out["next_obs"][1, 0] == 101.0 and out["terminated"][1] == 0.0
    assert out["discount"][1] == pytest.approx(GAMMA**2)
    assert out["reward"][2] == pytest.approx(2 + GAMMA * 4 + GAMMA**2 * 8) and out["terminated"][2] == 1.0
    assert out["reward"][3] == pytest.approx(20.0) and out["next_obs"][3, 0] == 101.0  # the truncation alone
    assert out["reward"][4] == pytest.approx(40 + GAMMA * 80)  # env 1's new episode, as far as stored
    assert out["discount"][4] == pytest.approx(GAMMA**2)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_across_the_wrap_around_and_never_into_overwritten_slots(num_envs):
    """A capacity that is not a multiple of num_envs, filled past its end: the n-step transitions of
    the oldest slots read later slots across the wrap, and the newest ones never read the oldest."""
    capacity, n = 10, 3
    buffer = ReplayBuffer(capacity, (1,), 1, truncated=True)
    steps = 13 if num_envs == 1 else 7  # 13 or 21 transitions: the 10 slots wrap
    rewards = np.arange(1.0, steps * num_envs + 1).reshape(steps, num_envs)  # reward of env j at step t
    for t in range(steps):
        buffer.add(np.full((1, num_envs, 1), t, np.float32), np.zeros((1, num_envs, 1)),
                   rewards[t].reshape(1, num_envs), np.full((1, num_envs, 1), t + 1.0, np.float32),
                   np.zeros((1, num_envs), bool), np.zeros((1, num_envs), bool))
    slot_of = {}  # (t, env) -> slot, for the transitions still held
    for t in range(steps):
        for j in range(num_envs):
            index = t * num_envs + j
            if index >= steps * num_envs - capacity:
                slot_of[(t, j)] = index % capacity
    for (t, j), slot in slot_of.items():
        out = nstep(buffer, [slot], n=n, num_envs=num_envs)
        m = min(n, steps - t)  # later steps of this environment that exist
        expected = sum(GAMMA**k * rewards[t + k, j] for k in range(m))
        assert out["obs"][0, 0] == t
        assert out["reward"][0] == pytest.approx(expected), (t, j)
        assert out["next_obs"][0, 0] == t + m and out["discount"][0] == pytest.approx(GAMMA**m)


def test_each_seed_reads_its_own_slots():
    buffer = ReplayBuffer(10, (1,), 1, num_seeds=2, truncated=True)
    for t, r in enumerate([1.0, 2.0, 4.0]):
        buffer.add(np.full((2, 1, 1), t, np.float32), np.zeros((2, 1, 1)), np.array([[r], [10 * r]], np.float32),
                   np.full((2, 1, 1), t + 1, np.float32), np.zeros((2, 1), bool), np.zeros((2, 1), bool))
    rows = buffer.nstep_rows(np.array([[0], [0]]), 3, GAMMA, 1)
    reward = unpack(rows, (1,), 1, ("discount",)).reward
    np.testing.assert_allclose(np.asarray(reward)[:, 0], [1 + GAMMA * 2 + GAMMA**2 * 4,
                                                          10 * (1 + GAMMA * 2 + GAMMA**2 * 4)], rtol=1e-6)


def test_the_truncated_column_costs_four_bytes_and_is_required():
    assert ReplayBuffer(10, (3,), 2, truncated=True).data.shape[-1] == ReplayBuffer(10, (3,), 2).data.shape[-1] + 1
    assert ReplayBuffer.transition_bytes(3, 2, extra=1) == ReplayBuffer.transition_bytes(3, 2) + 4
    with pytest.raises(ValueError, match="pass it to add"):
        ReplayBuffer(10, (1,), 1, truncated=True).add(np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), np.zeros((1, 1)),
                                                       np.zeros((1, 1, 1)), np.zeros((1, 1)))
