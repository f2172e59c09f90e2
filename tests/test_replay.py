"""The replay buffer: ring order, uniform sampling of filled slots only, seeds kept apart, state round trips,
the memory check."""

import numpy as np
import pytest

from ddpgx.replay import BufferTooLarge, ReplayBuffer, sample_indices, unpack

OBS_SHAPE, ACTION_DIM = (3,), 2


def step_arrays(value, num_seeds=1, num_envs=1):
    """One step of every env of every seed, each field a distinctive function of `value` (and seed, env)."""
    seed = np.arange(num_seeds).reshape(-1, 1)
    env = np.arange(num_envs).reshape(1, -1)
    v = (value + 1000.0 * seed + 100.0 * env).astype(np.float32)  # (seeds, envs)
    obs = v[..., None] + np.array([0.0, 0.1, 0.2], np.float32)
    action = np.stack([np.full_like(v, 0.5), np.full_like(v, -0.5)], -1)
    reward = -v
    next_obs = obs + 0.5
    terminated = (v.astype(int) % 2 == 1)
    return obs, action, reward, next_obs, terminated


def fill(buffer, values, num_envs=1):
    for value in values:
        buffer.add(*step_arrays(value, buffer.num_seeds, num_envs))


def stored(buffer, seed=0):
    """The first obs coordinate of every slot of one seed."""
    return np.asarray(buffer.field("obs")[seed, :, 0])


def sample(buffer, seeds, step, batch_size, count=1):
    """Minibatches as the loop draws them at `step`, split into fields: (seeds, count, batch_size, ...)."""
    rows = buffer.sample_rows(sample_indices(seeds, step, buffer.size, (count, batch_size)))
    return unpack(rows, buffer.obs_shape, buffer.action_dim)


def test_ring_wraps_around_overwriting_the_oldest_in_order():
    buffer = ReplayBuffer(5, OBS_SHAPE, ACTION_DIM)
    fill(buffer, range(3))
    assert (buffer.pos, buffer.size) == (3, 3)
    np.testing.assert_array_equal(stored(buffer), [0, 1, 2, 0, 0])
    fill(buffer, range(3, 7))
    # steps 5 and 6 overwrote slots 0 and 1 (steps 0 and 1); steps 2, 3, 4 remain in slots 2..4
    np.testing.assert_array_equal(stored(buffer), [5, 6, 2, 3, 4])
    assert (buffer.pos, buffer.size) == (2, 5)
    # every field of a slot belongs to the same step
    np.testing.assert_array_equal(buffer.field("reward")[0], -np.array([5, 6, 2, 3, 4], np.float32))
    np.testing.assert_array_equal(buffer.field("next_obs")[0, :, 0], np.array([5, 6, 2, 3, 4], np.float32) + 0.5)
    np.testing.assert_array_equal(np.asarray(buffer.field("terminated")[0]).astype(bool), [True, False, False, True, False])
    np.testing.assert_array_equal(buffer.field("action")[0], np.tile([0.5, -0.5], (5, 1)))


def test_ring_wraps_inside_one_add_of_several_envs():
    buffer = ReplayBuffer(5, OBS_SHAPE, ACTION_DIM)
    fill(buffer, [0, 1, 2, 3], num_envs=2)  # 8 transitions: env 0 is value, env 1 is value + 100
    # slots written: (0, 1), (2, 3), (4, 0), (1, 2)
    np.testing.assert_array_equal(stored(buffer), [102, 3, 103, 101, 2])
    assert (buffer.pos, buffer.size) == (3, 5)


def test_sampling_draws_only_filled_slots_uniformly():
    buffer = ReplayBuffer(100, OBS_SHAPE, ACTION_DIM)
    fill(buffer, [7, 8, 9])
    batch = sample(buffer, [0], step=5, batch_size=300, count=10)
    assert batch.obs.shape == (1, 10, 300, 3)
    assert batch.action.shape == (1, 10, 300, 2)
    assert batch.reward.shape == batch.terminated.shape == (1, 10, 300)
    values = np.asarray(batch.obs[..., 0]).ravel()
    assert set(np.unique(values)) == {7.0, 8.0, 9.0}
    counts = np.array([(values == v).sum() for v in (7, 8, 9)])
    assert np.all(np.abs(counts / values.size - 1 / 3) < 0.03), counts
    # rows stay whole: each sampled reward and next obs belong to its obs
    np.testing.assert_array_equal(batch.reward, -batch.obs[..., 0])
    np.testing.assert_array_equal(batch.next_obs, batch.obs + 0.5)


def test_sampling_an_empty_buffer_fails_clearly():
    buffer = ReplayBuffer(10, OBS_SHAPE, ACTION_DIM)
    with pytest.raises(ValueError, match="empty replay buffer"):
        sample(buffer, [0], step=0, batch_size=4)


def test_multi_seed_buffer_keeps_seeds_apart():
    buffer = ReplayBuffer(10, OBS_SHAPE, ACTION_DIM, num_seeds=3)
    fill(buffer, range(4), num_envs=2)
    for seed in range(3):
        values = stored(buffer, seed)[:8]
        np.testing.assert_array_equal(values, 1000 * seed + np.array([0, 100, 1, 101, 2, 102, 3, 103]))
    batch = sample(buffer, [0, 1, 2], step=8, batch_size=64, count=2)
    for seed in range(3):
        seed_of_row = np.asarray(batch.obs[seed, ..., 0]) // 1000
        assert np.all(seed_of_row == seed)


def test_a_seed_samples_what_a_single_seed_buffer_samples():
    multi = ReplayBuffer(20, OBS_SHAPE, ACTION_DIM, num_seeds=3)
    fill(multi, range(13))
    single = ReplayBuffer(20, OBS_SHAPE, ACTION_DIM, num_seeds=1)
    for value in range(13):
        obs, action, reward, next_obs, terminated = step_arrays(value, 3)
        single.add(obs[1:2], action[1:2], reward[1:2], next_obs[1:2], terminated[1:2])  # seed 1's data only
    np.testing.assert_array_equal(single.field("obs")[0], multi.field("obs")[1])
    got = sample(multi, [40, 41, 42], step=13, batch_size=16, count=3)
    want = sample(single, [41], step=13, batch_size=16, count=3)
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(getattr(got, name)[1], getattr(want, name)[0], err_msg=name)
    # seed 40's own stream drew other slots than seed 41's
    assert not np.array_equal(got.obs[0, ..., 0], got.obs[1, ..., 0] - 1000)


def test_indices_are_a_function_of_seed_and_step_and_uniform():
    a = sample_indices([3, 4], step=100, size=50, shape=(2, 1000))
    np.testing.assert_array_equal(a, sample_indices([3, 4], step=100, size=50, shape=(2, 1000)))
    np.testing.assert_array_equal(a[1], sample_indices([4], step=100, size=50, shape=(2, 1000))[0])
    assert not np.array_equal(a, sample_indices([3, 4], step=101, size=50, shape=(2, 1000)))  # steps differ
    assert not np.array_equal(a[0], a[1])  # seeds differ
    assert a.min() == 0 and a.max() == 49
    counts = np.bincount(a.ravel(), minlength=50)  # 4,000 draws, 80 per slot expected
    assert counts.min() > 40 and counts.max() < 125, counts


@pytest.mark.parametrize("steps", [4, 13], ids=["partly-filled", "wrapped"])
def test_state_round_trip_is_exact(steps):
    buffer = ReplayBuffer(10, OBS_SHAPE, ACTION_DIM, num_seeds=2)
    fill(buffer, range(steps))
    restored = ReplayBuffer(10, OBS_SHAPE, ACTION_DIM, num_seeds=2)
    for seed in range(2):
        restored.load_state_dict(seed, buffer.state_dict(seed))
    assert (restored.pos, restored.size) == (buffer.pos, buffer.size) == (steps % 10, min(steps, 10))
    np.testing.assert_array_equal(restored.data, buffer.data)
    # the restored buffer continues the ring where the saved one would have
    fill(buffer, [50])
    fill(restored, [50])
    np.testing.assert_array_equal(restored.data, buffer.data)
    np.testing.assert_array_equal(sample(restored, [3, 4], 14, 8).obs, sample(buffer, [3, 4], 14, 8).obs)


def test_loading_into_a_buffer_of_another_capacity_fails():
    buffer = ReplayBuffer(10, OBS_SHAPE, ACTION_DIM)
    fill(buffer, range(3))
    with pytest.raises(ValueError, match="capacity 10, this run 20"):
        ReplayBuffer(20, OBS_SHAPE, ACTION_DIM).load_state_dict(0, buffer.state_dict(0))


def test_a_buffer_that_cannot_fit_says_what_it_needs_and_what_the_machine_has(monkeypatch):
    with pytest.raises(BufferTooLarge) as error:
        ReplayBuffer(10**13, (3,), 1)  # 36 bytes per transition: 327 TiB
    message = str(error.value)
    assert "the replay buffer needs 327.4 TiB" in message and "10,000,000,000,000 transitions x 36 bytes" in message
    assert "available: lower buffer_size" in message
    # what counts is what the run will store (pages are touched as the buffer fills)
    monkeypatch.setattr("ddpgx.replay.available_memory", lambda: 2**20)
    assert ReplayBuffer(100_000, (3,), 1, num_seeds=2, fills=1_000).capacity == 100_000
    with pytest.raises(BufferTooLarge, match=r"needs 6.9 MiB \(2 seed\(s\) x 100,000 transitions x 36 bytes\) but "
                                             r"this machine has 1.0 MiB available"):
        ReplayBuffer(100_000, (3,), 1, num_seeds=2, fills=200_000)


@pytest.mark.parametrize("obs_shape,action_dim,seeds", [((3,), 2, 1), ((17,), 6, 2), ((2, 4), 1, 3)])
def test_transition_bytes_and_nbytes_agree_with_the_arrays(obs_shape, action_dim, seeds):
    capacity = 50
    buffer = ReplayBuffer(capacity, obs_shape, action_dim, num_seeds=seeds)
    obs_size = int(np.prod(obs_shape))
    per_transition = ReplayBuffer.transition_bytes(obs_size, action_dim)
    assert buffer.nbytes == seeds * capacity * per_transition
    # obs and next obs, action, reward at 4 bytes each, and terminated
    assert 4 * (2 * obs_size + action_dim + 1) < per_transition <= 4 * (2 * obs_size + action_dim + 2)
    assert buffer.field("obs").shape == buffer.field("next_obs").shape == (seeds, capacity, *obs_shape)
    assert buffer.field("action").shape == (seeds, capacity, action_dim)
    assert buffer.field("reward").shape == buffer.field("terminated").shape == (seeds, capacity)
