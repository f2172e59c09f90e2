"""Dict observations and goal tasks end to end: the flattening order, training with several seeds
and environments, exact resume with hindsight relabeling, the policy and both exports taking the
environment's dictionary, success rates in the logs, and the goal probes' known answers."""

from collections import OrderedDict

import gymnasium as gym
import numpy as np
import onnxruntime as ort
import pytest

import ddpgx
from ddpgx import her, numpy_policy
from ddpgx.config import ConfigError
from ddpgx.envs import EnvError, Envs, ObsLayout
from ddpgx.export import export_numpy, export_onnx
from tests.conftest import quiet, small_config
from tests.logs import assert_same_logs, csv_rows
from tests.probe_envs import GoalChoice, GoalTruncated, PointGoal, factory
from tests.test_export import TOLERANCE
from tests.test_train import assert_same_checkpoint, final_checkpoint
from tests.test_workers import InProcessRay, train_on


class NestedDictEnv(gym.Env):
    """A nested Dict observation given in unsorted order, with a scalar Box, a 2-D Box and a
    float64 Box; the reward asks for the action to follow a sum of the observation."""

    observation_space = gym.spaces.Dict(OrderedDict([
        ("velocity", gym.spaces.Box(-np.inf, np.inf, (2, 3), np.float32)),
        ("arm", gym.spaces.Dict(OrderedDict([("joint", gym.spaces.Box(-1.0, 1.0, (), np.float64)),
                                             ("angle", gym.spaces.Box(-2.0, 2.0, (2,), np.float32))]))),
    ]))
    action_space = gym.spaces.Box(-2.0, 3.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        target = np.tanh(self.obs["velocity"].sum()) + self.obs["arm"]["angle"]
        reward = -float(np.sum((np.asarray(action) - target) ** 2))
        return self._obs(), reward, False, self.t >= 20, {}

    def _obs(self):
        self.obs = {"velocity": self.np_random.normal(1.0, 2.0, (2, 3)).astype(np.float32),
                    "arm": {"joint": np.array(self.np_random.uniform(-1, 1), np.float64),
                            "angle": self.np_random.uniform(-2, 2, 2).astype(np.float32)}}
        return self.obs


def dict_observations(count, seed=0):
    """`count` observations of NestedDictEnv as a batched dictionary."""
    rng = np.random.default_rng(seed)
    return {"velocity": rng.normal(1.0, 2.0, (count, 2, 3)).astype(np.float32),
            "arm": {"joint": rng.uniform(-1, 1, count).astype(np.float32),
                    "angle": rng.uniform(-2, 2, (count, 2)).astype(np.float32)}}


def test_the_layout_sorts_keys_at_every_level_and_matches_gymnasiums_flatten():
    layout = ObsLayout.from_space(NestedDictEnv.observation_space)
    assert layout.keys == ("arm/angle", "arm/joint", "velocity")
    assert layout.shapes == ((2,), (), (2, 3)) and layout.size == 9
    assert layout.slices() == {"arm/angle": slice(0, 2), "arm/joint": slice(2, 3), "velocity": slice(3, 9)}
    obs = NestedDictEnv().reset(seed=1)[0]
    # Gymnasium sorts the keys of a Dict made from a plain dict: its flatten then agrees with ours
    space = gym.spaces.Dict({"velocity": NestedDictEnv.observation_space["velocity"],
                             "arm": gym.spaces.Dict({"joint": NestedDictEnv.observation_space["arm"]["joint"],
                                                     "angle": NestedDictEnv.observation_space["arm"]["angle"]})})
    np.testing.assert_array_equal(layout.flatten(obs), gym.spaces.flatten(space, obs).astype(np.float32))
    batch = dict_observations(5)
    flat = layout.flatten(batch)
    assert flat.shape == (5, 9) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat[:, 3:], batch["velocity"].reshape(5, 6))
    with pytest.raises(ValueError, match="no key 'arm/joint'"):
        layout.flatten({"velocity": batch["velocity"], "arm": {"angle": batch["arm"]["angle"]}})
    with pytest.raises(ValueError, match="'velocity' has shape"):
        layout.flatten({**batch, "velocity": batch["velocity"][:3]})


def test_a_dict_with_a_non_box_value_is_refused_with_what_is_supported():
    space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,)), "mode": gym.spaces.Discrete(3)})
    with pytest.raises(EnvError, match=r"key 'mode' is Discrete\(3\); ddpgx supports a Box observation space \(or a "
                                       r"Dict, possibly nested, of Boxes\)"):
        ObsLayout.from_space(space, "MyEnv")


@pytest.fixture(scope="module")
def dict_run(tmp_path_factory):
    """Two seeds, two environments each, observation normalization, on the nested Dict."""
    run = tmp_path_factory.mktemp("dict") / "run"
    config = small_config(env_id="NestedDictEnv", total_steps=400, learning_starts=100, num_envs=2, obs_norm=True,
                          eval_episodes=2)
    result = ddpgx.train(config, run, num_seeds=2, make_env=NestedDictEnv, progress=False, print_fn=quiet)
    return result


@pytest.mark.slow
def test_a_nested_dict_trains_with_several_seeds_and_environments(dict_run):
    assert dict_run.step == 400 and dict_run.final_returns.shape == (2, 2)
    checkpoint = final_checkpoint(dict_run.run_dirs[0])
    assert checkpoint.meta["obs_shape"] == [9]
    assert checkpoint.meta["obs_layout"] == [{"key": "arm/angle", "shape": [2]}, {"key": "arm/joint", "shape": []},
                                             {"key": "velocity", "shape": [2, 3]}]
    # the replay rows hold the flat observations, in the layout's order: velocity's mean is 1
    data = checkpoint.replay()["data"]
    assert data.shape == (400, 2 * 9 + 2 + 2)
    assert abs(data[:, 3:9].mean() - 1.0) < 0.3 and abs(data[:, 0:3].mean()) < 0.3


def test_the_policy_and_both_exports_take_the_environments_dictionary(dict_run, tmp_path):
    run = dict_run.run_dirs[0]
    policy = ddpgx.load_policy(run)
    assert policy.normalizer is not None and policy.layout.keys == ("arm/angle", "arm/joint", "velocity")
    obs = dict_observations(1000)
    expected = policy(obs)
    flat = policy.layout.flatten(obs)
    np.testing.assert_array_equal(policy(flat), expected)  # the flat vector, in the layout's order
    one = {"velocity": obs["velocity"][3], "arm": {"joint": obs["arm"]["joint"][3], "angle": obs["arm"]["angle"][3]}}
    np.testing.assert_allclose(policy(one), expected[3], atol=1e-6)
    loaded = numpy_policy.load(export_numpy(run, tmp_path / "policy.npz"))
    assert loaded.metadata["format"] == 3 and loaded.obs_keys == [("arm/angle", (2,)), ("arm/joint", ()),
                                                                  ("velocity", (2, 3))]
    assert np.abs(loaded(obs) - expected).max() <= TOLERANCE
    assert np.abs(loaded(flat) - expected).max() <= TOLERANCE
    np.testing.assert_allclose(loaded(one), expected[3], atol=TOLERANCE)
    session = ort.InferenceSession(str(export_onnx(run, tmp_path / "policy.onnx")), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["arm/angle", "arm/joint", "velocity"]
    feed = {"arm/angle": obs["arm"]["angle"], "arm/joint": obs["arm"]["joint"], "velocity": obs["velocity"]}
    assert np.abs(session.run(["action"], feed)[0] - expected).max() <= TOLERANCE
    assert np.ptp(expected, axis=0).min() > 0.05  # the actions differ: the observations are really compared


def test_a_box_policy_is_still_written_in_format_2(tmp_path):
    run = tmp_path / "run"
    ddpgx.train(small_config(total_steps=250, learning_starts=100), run, progress=False, print_fn=quiet)
    assert numpy_policy.load(export_numpy(run, tmp_path / "policy.npz")).metadata["format"] == 2


def goal_config(**changes):
    values = dict(env_id="PointGoal", total_steps=2000, learning_starts=300, batch_size=128, buffer_size=100_000,
                  actor_hidden=(32, 32), critic_hidden=(32, 32), actor_lr=1e-3, critic_lr=1e-3, gamma=0.95,
                  tau=0.05, noise_sigma=0.2, eval_every=0, eval_episodes=20, checkpoint_every=0, log_every=1000,
                  tensorboard=False)
    values.update(changes)
    return ddpgx.Config(**values)


@pytest.mark.slow
def test_her_resumes_exactly_with_several_environments_and_a_wrapping_ring(tmp_path):
    """train(N) then resume to N + M equals train(N + M): the parameters, the buffer with its
    episode bookkeeping, the environments and the logs (success included); the ring of 150 slots
    wraps many times, and the checkpoint falls inside episodes."""
    config = goal_config(total_steps=600, learning_starts=90, buffer_size=150, num_envs=3, batch_size=32,
                         actor_hidden=(16,), critic_hidden=(16,), her=True, obs_norm=True, eval_every=300,
                         eval_episodes=3, checkpoint_every=300, log_every=150, tensorboard=True)
    make_env = factory(PointGoal, limit=7)
    ddpgx.train(config, tmp_path / "full", make_env=make_env, progress=False, print_fn=quiet)
    ddpgx.train(config.replace(total_steps=300), tmp_path / "split", make_env=make_env, progress=False,
                print_fn=quiet)
    ddpgx.resume(tmp_path / "split", total_steps=600, make_env=make_env, progress=False, print_fn=quiet)
    full, split = final_checkpoint(tmp_path / "full"), final_checkpoint(tmp_path / "split")
    assert_same_checkpoint(full, split)
    replay = full.replay()
    assert {"her_t", "her_length", "her_running"} <= set(replay) and replay["her_length"].max() == 7
    assert_same_logs(tmp_path / "split", tmp_path / "full")
    # observation normalization: both goals get the statistics of the two pooled (the reward compares
    # them), the position its own (here the same values as the achieved goal: PointGoal observes it twice)
    mean, var = full.arrays[".obs_stats.mean"], full.arrays[".obs_stats.var"]
    np.testing.assert_allclose(mean[0:2], mean[2:4], rtol=1e-12)  # summed in another order
    np.testing.assert_allclose(var[0:2], var[2:4], rtol=1e-12)
    assert np.abs(mean[4:6] - mean[0:2]).max() > 0.01  # the goals' statistics are not the position's
    episodes = csv_rows(tmp_path / "full", "episodes")
    assert len(episodes) == 3 * (200 // 7) and {r["success"] for r in episodes} <= {"0.0", "1.0"}
    assert all(r["success_rate"] != "" for r in csv_rows(tmp_path / "full", "eval"))


def test_her_on_an_environment_without_goals_says_what_it_needs(tmp_path):
    with pytest.raises(EnvError, match="has no achieved_goal and no desired_goal in its observation; hindsight"):
        ddpgx.train(small_config(her=True), tmp_path / "run", progress=False, print_fn=quiet)
    assert not (tmp_path / "run").exists()


def test_her_refuses_what_it_cannot_relabel():
    for change, message in [({"n_step": 3}, "n_step=3: is not supported with her"),
                            ({"prioritized": True}, "prioritized=True: is not supported with her")]:
        with pytest.raises(ConfigError, match=message):
            goal_config(her=True, **change)


@pytest.mark.slow
def test_goal_choice_learns_to_choose_the_goal(tmp_path):
    """One step, the action is the achieved goal: with relabeled goals the critic sees successes for
    every action it took, and the actor learns pi(g) = g (success needs |a - g| <= 0.1)."""
    config = goal_config(env_id="GoalChoice", total_steps=1500, learning_starts=200, her=True, gamma=0.9)
    result = ddpgx.train(config, tmp_path / "run", make_env=GoalChoice, progress=False, print_fn=quiet)
    policy = ddpgx.load_policy(result.run_dirs[0])
    goals = np.linspace(-0.9, 0.9, 19, dtype=np.float32)[:, None]
    obs = {"observation": np.zeros_like(goals), "achieved_goal": np.zeros_like(goals), "desired_goal": goals}
    np.testing.assert_allclose(policy(obs), goals, atol=0.1)


@pytest.mark.slow
def test_point_goal_is_solved_with_her_and_not_without(tmp_path):
    """The same budget and seed: plain DDPG sees almost only the reward -1 and does not learn to
    reach the goal; with hindsight relabeling (future, k = 4) the success rate passes 0.8 (it reaches 1.0
    by step 1,500 on this seed; plain DDPG's stays at 0.05 or below)."""
    with_her = ddpgx.train(goal_config(her=True), tmp_path / "her", make_env=PointGoal, progress=False,
                           print_fn=quiet)
    without = ddpgx.train(goal_config(), tmp_path / "plain", make_env=PointGoal, progress=False, print_fn=quiet)
    success = {name: float(csv_rows(result.run_dirs[0], "eval")[-1]["success_rate"])
               for name, result in (("her", with_her), ("plain", without))}
    assert success["her"] >= 0.8 and success["plain"] <= 0.3, success


@pytest.mark.slow
def test_point_goal_is_solved_with_her_by_rollout_workers(monkeypatch, tmp_path):
    """Two rollout workers (on an in-process stand-in for Ray) whose chunks of 20 steps interleave in
    the buffer, cut at the logging steps: relabeling finds each episode's transitions, observation
    normalization is counted by the learner and sent with the actor, and the workers' episodes log
    their success. The same threshold as the single-process test."""
    config = goal_config(her=True, obs_norm=True, workers=2, chunk_steps=20, log_every=250)
    train_on(InProcessRay(die_at_chunk=0), config, tmp_path / "run", monkeypatch, make_env=PointGoal)
    assert float(csv_rows(tmp_path / "run", "eval")[-1]["success_rate"]) >= 0.8
    episodes = csv_rows(tmp_path / "run", "episodes")
    assert {r["env"] for r in episodes} == {"0", "1"} and all(r["success"] in ("0.0", "1.0") for r in episodes)


def test_her_with_workers_starts_learning_once_every_workers_first_episodes_can_have_ended():
    with pytest.raises(ConfigError, match=r"the first ones end at step 120 \(30 steps x 2 environment\(s\) x 2 "
                                          r"workers\)"):
        her.from_config(goal_config(her=True, workers=2, num_envs=2, learning_starts=100),
                        Envs(lambda: gym.wrappers.TimeLimit(PointGoal(), 30), 1, 1, "PointGoal"), 1)


@pytest.mark.slow
def test_fetch_reach_trains_with_her_and_resumes_exactly(tmp_path):
    """The newest FetchReach (gymnasium-robotics, under MuJoCo 4): float64 Dict observations, episodes of
    50 steps ended by truncation, is_success in the logs; its physics is saved and restored exactly."""
    pytest.importorskip("gymnasium_robotics")
    config = small_config(env_id="FetchReach-v4", total_steps=240, learning_starts=110, her=True, obs_norm=True,
                          checkpoint_every=120, eval_every=120, eval_episodes=2)
    ddpgx.train(config, tmp_path / "full", progress=False, print_fn=quiet)
    ddpgx.train(config.replace(total_steps=120), tmp_path / "split", progress=False, print_fn=quiet)
    ddpgx.resume(tmp_path / "split", total_steps=240, progress=False, print_fn=quiet)
    assert_same_checkpoint(final_checkpoint(tmp_path / "full"), final_checkpoint(tmp_path / "split"))
    assert_same_logs(tmp_path / "split", tmp_path / "full", tensorboard=False)
    assert [r["success_rate"] != "" for r in csv_rows(tmp_path / "full", "eval")] == [True, True]
    assert [r["length"] for r in csv_rows(tmp_path / "full", "episodes")] == ["50"] * 4


@pytest.mark.slow
def test_dm_control_trains_through_shimmy_and_resumes_exactly(tmp_path):
    """`dm_control/cartpole-swingup-v0`: a Dict observation (position, velocity) flattened, episodes of
    1,000 steps truncated by the suite; the physics and the task's random state resume exactly."""
    pytest.importorskip("shimmy")
    config = small_config(env_id="dm_control/cartpole-swingup-v0", total_steps=300, learning_starts=100,
                          checkpoint_every=150, eval_episodes=1)
    ddpgx.train(config, tmp_path / "full", progress=False, print_fn=quiet)
    ddpgx.train(config.replace(total_steps=150), tmp_path / "split", progress=False, print_fn=quiet)
    ddpgx.resume(tmp_path / "split", total_steps=300, progress=False, print_fn=quiet)
    full = final_checkpoint(tmp_path / "full")
    assert_same_checkpoint(full, final_checkpoint(tmp_path / "split"))
    assert full.meta["obs_layout"] == [{"key": "position", "shape": [3]}, {"key": "velocity", "shape": [2]}]


def test_a_missing_extra_is_named(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def without_shimmy(name, *args, **kwargs):
        if name == "shimmy":
            raise ImportError("No module named 'shimmy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_shimmy)
    monkeypatch.setattr("importlib.import_module", lambda name: without_shimmy(name))
    env_id = "dm_control/not-registered-v0"
    with pytest.raises(EnvError, match=r"needs the shimmy package, which is not installed .*pip install 'ddpgx\[dmc\]'"):
        ddpgx.train(small_config(env_id=env_id), tmp_path / "run", progress=False, print_fn=quiet)


def test_rollout_workers_collect_dict_observations_as_flat_rows():
    """A rollout worker (the part without Ray) steps a Dict environment and sends packed rows of the
    flat observations; it acts with the numpy actor on them."""
    from ddpgx.workers import Rollout, WorkerActor

    config = small_config(env_id="NestedDictEnv", num_envs=2, workers=1, chunk_steps=8)
    rollout = Rollout(config, NestedDictEnv, [0, 1], worker=0, workers=1, start=0)
    chunk = rollout.collect(8, random=True)
    assert chunk.rows.shape == (2, 16, 2 * 9 + 2 + 2)
    rollout.set_actor([WorkerActor([(np.ones((9, 2), np.float32), np.zeros(2, np.float32))])] * 2, 1)
    assert rollout.collect(4, random=False).rows.shape == (2, 8, 22)
    rollout.close()


def test_the_goal_swap_exchanges_the_two_goals():
    envs = Envs(factory(PointGoal), 1, 1, "PointGoal")
    np.testing.assert_array_equal(envs.goal_swap(), [2, 3, 0, 1, 4, 5])
    assert Envs(NestedDictEnv, 1, 1, "NestedDictEnv").goal_swap() is None


@pytest.mark.slow
def test_relabeled_transitions_bootstrap_across_truncation(tmp_path):
    """GoalTruncated (never terminated, truncated after 2 steps, gamma 0.9): the real goal is never
    reached, Q(s, g=1) = -10; the relabeled goal is always reached, Q(s, g=0) = 0. Masking the
    truncation would give -1 and -1.9; rewards computed for the stored goal would give -10 for both."""
    import jax
    import jax.numpy as jnp

    from ddpgx import checkpoint as ckpt
    from ddpgx.learner import build_agent

    config = goal_config(env_id="GoalTruncated", total_steps=4000, learning_starts=200, batch_size=64, gamma=0.9,
                         her=True)
    result = ddpgx.train(config, tmp_path / "run", make_env=GoalTruncated, progress=False, print_fn=quiet)
    agent = build_agent(config, action_dim=1)
    template = agent.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 1)))
    path = ckpt.latest_checkpoint(result.run_dirs[0])
    state = ckpt.unflatten(template, ckpt.Checkpoint(path).subtree(".agent"), path / "state.npz")
    for goal, expected, tolerance in ((1.0, -10.0, 1.0), (0.0, 0.0, 0.5)):
        obs = jnp.array([[0.0, goal, 0.0]] * 3)  # [achieved_goal | desired_goal | observation]
        q = np.asarray(agent.critic.apply(state.critic, obs, jnp.array([[-0.5], [0.0], [0.5]]))).reshape(-1)
        np.testing.assert_allclose(q, expected, atol=tolerance, err_msg=f"Q(g={goal})")


def test_her_refuses_to_start_learning_before_the_first_episodes_end(tmp_path):
    config = goal_config(her=True, max_episode_steps=10, num_envs=2, learning_starts=19)
    with pytest.raises(ConfigError, match=r"learning_starts=19: .* the first ones end at step 20 \(10 steps x 2 "):
        ddpgx.train(config, tmp_path / "run", make_env=PointGoal, progress=False, print_fn=quiet)
    assert not (tmp_path / "run").exists()
