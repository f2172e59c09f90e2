"""Environments: action rescaling, space checks, id errors, true final observations, exact state restore."""

import gymnasium as gym
import numpy as np
import pytest

from ddpgx.envs import SUPPORTED, ActionScaler, EnvError, Envs, check_spaces, env_factory, env_seeds

BOX_OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
BOX_ACTION = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

# ----------------------------------------------------------------------------- ActionScaler


@pytest.fixture
def scaler():
    return ActionScaler.from_space(gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([1.0, 4.0], np.float32)))


def test_action_scaler_maps_the_unit_box_onto_asymmetric_bounds(scaler):
    np.testing.assert_allclose(scaler.to_env(np.array([-1.0, -1.0])), [-2.0, 0.0])
    np.testing.assert_allclose(scaler.to_env(np.array([1.0, 1.0])), [1.0, 4.0])
    np.testing.assert_allclose(scaler.to_env(np.array([0.0, 0.0])), [-0.5, 2.0])
    np.testing.assert_allclose(scaler.to_env(np.array([[-1.0, 1.0], [0.5, -0.5]])), [[-2.0, 4.0], [0.25, 1.0]])


# ----------------------------------------------------------------------------- check_spaces


@pytest.mark.parametrize(
    "obs_space,action_space,bad,extra",
    [
        (gym.spaces.Discrete(4), BOX_ACTION, "observation space Discrete(4)", "FlattenObservation"),
        (gym.spaces.MultiDiscrete([2, 3]), BOX_ACTION, "observation space MultiDiscrete([2 3])", "FlattenObservation"),
        (gym.spaces.Dict({"pos": BOX_OBS, "mode": gym.spaces.Discrete(3)}), BOX_ACTION, "observation space Dict(",
         "whose key 'mode' is Discrete(3)"),
        (BOX_OBS, gym.spaces.Discrete(3), "action space Discrete(3)", "continuous actions"),
        (BOX_OBS, gym.spaces.MultiDiscrete([2, 2]), "action space MultiDiscrete([2 2])", "continuous actions"),
        (BOX_OBS, gym.spaces.Box(-np.inf, np.inf, (2,), np.float32), "action space Box(-inf, inf, (2,), float32)",
         "infinite bounds"),
        (BOX_OBS, gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32), "action space Box(-1.0, 1.0, (2, 2), float32)",
         "of shape (2, 2)"),
    ],
    ids=["discrete-obs", "multidiscrete-obs", "dict-obs", "discrete-action", "multidiscrete-action",
         "unbounded-action", "2d-action"],
)
def test_check_spaces_names_the_space_and_what_is_supported(obs_space, action_space, bad, extra):
    with pytest.raises(EnvError) as error:
        check_spaces(obs_space, action_space, "MyEnv-v0")
    message = str(error.value)
    assert message.startswith(f"MyEnv-v0 has {bad}"), message
    assert SUPPORTED in message
    assert extra in message


def test_check_spaces_accepts_box_spaces():
    check_spaces(BOX_OBS, BOX_ACTION, "ok")  # no error
    check_spaces(gym.spaces.Box(0, 255, (4, 4), np.uint8), BOX_ACTION, "image")  # any Box observation
    check_spaces(gym.spaces.Dict({"pos": BOX_OBS, "arm": gym.spaces.Dict({"angle": BOX_OBS})}), BOX_ACTION, "dict")


def test_unbounded_action_message_says_how_to_bound_it():
    with pytest.raises(EnvError, match="ClipAction or RescaleAction"):
        check_spaces(BOX_OBS, gym.spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, np.inf]), dtype=np.float64), "e")


# ----------------------------------------------------------------------------- env_factory


def test_unknown_env_id_suggests_the_close_one():
    make = env_factory("Pendulm-v1")  # lazy: the error comes when the env is made
    with pytest.raises(EnvError) as error:
        make()
    message = str(error.value)
    assert "unknown environment 'Pendulm-v1'" in message
    assert "Did you mean Pendulum-v1" in message


def test_env_factory_passes_keyword_arguments():
    env = env_factory("Pendulum-v1", g=5.0)()
    try:
        assert env.unwrapped.g == 5.0
    finally:
        env.close()


# ----------------------------------------------------------------------------- truncation: the true final observation


def test_step_returns_the_true_final_observation_at_a_truncation():
    """Pendulum-v1 truncates at 200 steps; next_obs must be the 200th step's observation, obs the reset one.

    A reference env per sub-env, seeded as Envs seeds them and stepped with the same actions, gives
    the true observations independently of the vector env's info dict.
    """
    envs = Envs(env_factory("Pendulum-v1"), num_seeds=1, num_envs=2, name="Pendulum-v1")
    refs = [gym.make("Pendulum-v1") for _ in range(2)]
    try:
        obs = envs.reset([3])
        ref_obs = [ref.reset(seed=s)[0] for ref, s in zip(refs, env_seeds(3, 2, stream=0))]
        np.testing.assert_array_equal(obs[0], np.stack(ref_obs))
        rng = np.random.default_rng(0)
        for t in range(1, 201):
            action = rng.uniform(-1, 1, (1, 2, 1)).astype(np.float32)
            step = envs.step(action)
            env_action = envs.scaler.to_env(action.reshape(2, 1)).astype(np.float32)
            ref_steps = [ref.step(a) for ref, a in zip(refs, env_action)]
            true_next = np.stack([r[0] for r in ref_steps]).astype(np.float32)
            np.testing.assert_array_equal(step.next_obs[0], true_next, err_msg=f"step {t}")
            assert not step.terminated.any()
            if t < 200:
                assert not step.truncated.any()
                np.testing.assert_array_equal(step.obs, step.next_obs)
                assert all(not r[3] for r in ref_steps)
        # step 200: both truncated, none terminated; obs is the autoreset's first observation
        assert step.truncated.tolist() == [[True, True]] and step.terminated.tolist() == [[False, False]]
        assert all(r[3] and not r[2] for r in ref_steps)
        assert np.all(np.abs(step.obs - step.next_obs).max(axis=-1) > 1e-3)
        reset_obs = np.stack([ref.reset()[0] for ref in refs])  # the env's own RNG continues, as in autoreset
        np.testing.assert_array_equal(step.obs[0], reset_obs)
        assert step.obs.shape == step.next_obs.shape == (1, 2, 3) and step.obs.dtype == np.float32
        assert step.reward.shape == (1, 2) and step.reward.dtype == np.float32
    finally:
        envs.close()
        for ref in refs:
            ref.close()


# ----------------------------------------------------------------------------- exact state save and restore


@pytest.mark.parametrize("env_id,warmup", [("Pendulum-v1", 190), ("HalfCheetah-v5", 990)])
def test_restored_envs_continue_identically(env_id, warmup):
    """Restore into a freshly built, differently seeded Envs; 20 more steps cross the time limit, so
    the time-limit counter and the reset RNG must be restored too, not only the physics."""
    make = env_factory(env_id)
    source = Envs(make, num_seeds=2, num_envs=2, name=env_id)
    copy = Envs(make, num_seeds=2, num_envs=2, name=env_id)
    try:
        rng = np.random.default_rng(1)
        source.reset([0, 1])
        for _ in range(warmup):
            source.step(rng.uniform(-1, 1, (2, 2, source.action_dim)).astype(np.float32))
        copy.reset([10, 11])
        for _ in range(5):
            copy.step(rng.uniform(-1, 1, (2, 2, copy.action_dim)).astype(np.float32))
        for seed in range(2):
            copy.set_state(seed, source.get_state(seed))
        truncations = 0
        for t in range(20):
            action = rng.uniform(-1, 1, (2, 2, source.action_dim)).astype(np.float32)
            a, b = source.step(action), copy.step(action)
            for name in ("obs", "next_obs", "reward", "terminated", "truncated"):
                np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=f"{name} at step {t}")
            truncations += int(a.truncated.sum())
        assert truncations == 4  # every env crossed its time limit after the restore
    finally:
        source.close()
        copy.close()


def test_state_of_one_seed_restores_only_that_seed():
    make = env_factory("Pendulum-v1")
    source, copy = Envs(make, 2, 1, "Pendulum-v1"), Envs(make, 2, 1, "Pendulum-v1")
    try:
        source.reset([0, 1])
        copy.reset([5, 6])
        copy.set_state(1, source.get_state(1))
        action = np.zeros((2, 1, 1), np.float32)
        a, b = source.step(action), copy.step(action)
        np.testing.assert_array_equal(b.obs[1], a.obs[1])
        assert not np.array_equal(b.obs[0], a.obs[0])
    finally:
        source.close()
        copy.close()
