"""The training loop: reproducibility, exact resume, multi-seed streams, run directory, schedule, errors."""

import csv
import math
import shutil

import numpy as np
import pytest

import ddpgx
from ddpgx import checkpoint as ckpt
from ddpgx.config import ConfigError
from ddpgx.replay import BufferTooLarge
from tests.conftest import quiet, small_config
from tests.logs import assert_same_logs, csv_rows

ACTOR_KERNEL = ".agent.actor['params']['Dense_0']['kernel']"


def final_checkpoint(run_dir):
    return ckpt.Checkpoint(ckpt.latest_checkpoint(run_dir))


def train(config, run_dir, **kwargs):
    return ddpgx.train(config, run_dir, progress=False, print_fn=quiet, **kwargs)


def resume(run_dir, **changes):
    return ddpgx.resume(run_dir, progress=False, print_fn=quiet, **changes)


def assert_same_checkpoint(a, b):
    assert a.step == b.step and a.arrays.keys() == b.arrays.keys()
    for key in a.arrays:
        np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)
    replay_a, replay_b = a.replay(), b.replay()
    for key in replay_a:
        np.testing.assert_array_equal(replay_a[key], replay_b[key], err_msg=key)


@pytest.mark.slow
def test_same_seed_gives_identical_parameters_and_other_seeds_differ(tmp_path):
    config = small_config()
    train(config, tmp_path / "a")
    train(config, tmp_path / "b")
    train(config.replace(seed=1), tmp_path / "c")
    a, b, c = (final_checkpoint(tmp_path / n) for n in "abc")
    assert_same_checkpoint(a, b)
    actor_keys = [k for k in a.arrays if k.startswith(".agent.actor[")]
    assert actor_keys
    for key in actor_keys:
        assert not np.allclose(a.arrays[key], c.arrays[key]), key
    # the seeds explored differently from the first step: other random actions, other environments
    assert not np.allclose(a.replay()["data"][:10], c.replay()["data"][:10])


def test_equal_inputs_share_the_agent_and_its_jitted_functions_and_any_difference_does_not():
    from ddpgx.learner import build_agent, step_functions
    from typing import NamedTuple

    from ddpgx.noise import GaussianNoise, ParamNoise, Schedule

    class OtherNoise(NamedTuple):  # equal to GaussianNoise(0.1) as a tuple
        sigma: float

    config = small_config()
    agent = build_agent(config, 2)
    assert build_agent(small_config(total_steps=900, seed=3, eval_every=300), 2) is agent  # the loop's settings
    for change in [dict(actor_lr=2e-4), dict(critic_lr=2e-4), dict(critic_weight_decay=0.01), dict(gamma=0.98),
                   dict(tau=0.01), dict(actor_hidden=(32, 16)), dict(critic_hidden=(16, 32)),
                   dict(critic_layer_norm=True), dict(hidden_init="lecun_normal")]:
        assert build_agent(config.replace(**change), 2) is not agent, change
    assert build_agent(config, 3) is not agent

    def apply(params, obs):
        return obs

    pair = (lambda key, obs: {}, apply)
    assert build_agent(config, 2, actor=pair) is build_agent(config, 2, actor=pair)  # the same functions
    assert build_agent(config, 2, actor=pair) is not build_agent(config, 2, actor=(pair[0], lambda p, o: o))

    args = dict(agent=agent, noise=GaussianNoise(0.1), num_envs=2, action_dim=2, obs_shape=(3,),
                schedule=Schedule("constant", 0.1), extra=(), prioritized=False)
    fns = step_functions(**args)
    assert step_functions(**args) is fns
    for change in [dict(agent=build_agent(config.replace(tau=0.01), 2)), dict(noise=GaussianNoise(0.2)),
                   dict(noise=ParamNoise(0.1)), dict(noise=OtherNoise(0.1)), dict(num_envs=3),
                   dict(obs_shape=(4,)), dict(schedule=Schedule("linear", 0.1, 0.0, 100)),
                   dict(extra=("discount",)), dict(prioritized=True)]:
        assert step_functions(**{**args, **change}) is not fns, change


@pytest.mark.slow
def test_a_second_run_in_one_process_traces_nothing_and_a_changed_config_learns_as_in_a_fresh_process(tmp_path):
    from ddpgx import learner

    config = small_config(total_steps=400)
    train(config, tmp_path / "a")
    fns = learner.step_functions(learner.build_agent(config, 1), learner.make_noise(
        config.noise, config.noise_sigma, config.ou_theta, config.ou_dt), config.num_envs, 1, (3,),
        learner.schedule_from_config(config), learner.minibatch_columns(config), config.prioritized)
    traced = {name: f._cache_size() for name, f in fns._asdict().items()}
    assert traced["learn"] >= 1 and traced["act"] >= 1 and traced["init"] >= 1
    train(config.replace(seed=1), tmp_path / "b")
    assert {name: f._cache_size() for name, f in fns._asdict().items()} == traced

    changed = config.replace(critic_lr=3e-3)
    train(changed, tmp_path / "c")  # after `config`'s run in this process
    learner._shared_agent.cache_clear()
    learner._shared_step_functions.cache_clear()
    train(changed, tmp_path / "d")  # as in a fresh process
    assert_same_checkpoint(final_checkpoint(tmp_path / "c"), final_checkpoint(tmp_path / "d"))


@pytest.mark.slow
@pytest.mark.parametrize("env_id, noise", [("Pendulum-v1", "ou"), ("HalfCheetah-v5", "gaussian")])
def test_resume_is_exact(tmp_path, env_id, noise):
    """train(N) then resume to N+M gives the same parameters, buffer, environments and logs as train(N+M)."""
    config = small_config(env_id=env_id, noise=noise, total_steps=500, learning_starts=150, eval_every=200,
                          log_every=100)
    train(config, tmp_path / "straight")
    train(config.replace(total_steps=300), tmp_path / "resumed")
    result = resume(tmp_path / "resumed", total_steps=500)
    assert result.step == 500
    assert_same_checkpoint(final_checkpoint(tmp_path / "straight"), final_checkpoint(tmp_path / "resumed"))
    assert_same_logs(tmp_path / "resumed", tmp_path / "straight", tensorboard=False)


@pytest.mark.slow
def test_logs_after_interruptions_read_as_one_run_csv_and_tensorboard(tmp_path):
    """Stopped at 170 (a normal end, with its final evaluation), 200 (an evaluation step) and 330, each
    resumed; then resumed again with the same total_steps, which changes nothing."""
    config = small_config(total_steps=400, learning_starts=100, eval_every=100, log_every=50, checkpoint_every=0,
                          tensorboard=True)
    train(config, tmp_path / "straight")
    train(config.replace(total_steps=170), tmp_path / "resumed")
    assert [r["step"] for r in csv_rows(tmp_path / "resumed", "eval")] == ["100", "170"]  # the final evaluation
    for stop in (200, 330, 400):
        resume(tmp_path / "resumed", total_steps=stop)
    assert_same_logs(tmp_path / "resumed", tmp_path / "straight")
    checkpoint = ckpt.latest_checkpoint(tmp_path / "resumed")
    written = (checkpoint / "meta.json").stat().st_mtime_ns
    result = resume(tmp_path / "resumed", total_steps=400)  # already there: evaluates, writes nothing new
    assert result.step == 400 and result.final_returns.shape == (1, 2)
    assert (checkpoint / "meta.json").stat().st_mtime_ns == written
    assert_same_logs(tmp_path / "resumed", tmp_path / "straight")
    with pytest.raises(ConfigError, match="its checkpoint is at step 400; give a total_steps of at least 400"):
        resume(tmp_path / "resumed", total_steps=300)


@pytest.mark.slow
def test_multi_seed_runs_share_each_seeds_random_streams_with_single_runs(tmp_path):
    """Seed k of a multi-seed run draws what a single run of seed k draws: initial parameters,
    random warm-up actions, environment states (and, by construction, replay indices: test_replay).
    Batched arithmetic may round differently, so after updates the parameters are only close."""
    config = small_config(seed=9, total_steps=300, learning_starts=301)  # no update: every stream bit for bit
    multi = train(config, tmp_path / "multi", num_seeds=2)
    assert [d.name for d in multi.run_dirs] == ["seed_9", "seed_10"]
    assert multi.final_returns.shape == (2, config.eval_episodes)
    for seed in (9, 10):
        train(config.replace(seed=seed), tmp_path / f"single{seed}")
        assert_same_checkpoint(final_checkpoint(tmp_path / "multi" / f"seed_{seed}"),
                               final_checkpoint(tmp_path / f"single{seed}"))
    np.testing.assert_array_equal(multi.final_returns[1], train(config.replace(seed=10), tmp_path / "again").final_returns[0])


@pytest.mark.slow
def test_multi_seed_resume_across_a_digit_boundary(tmp_path):
    """Seeds 9 and 10, and 5 to 10: the seeds are read back from the directory in numeric order."""
    for first, count in ((9, 2), (5, 6)):
        run = tmp_path / f"run{first}"
        config = small_config(seed=first, total_steps=250, learning_starts=200, batch_size=8)
        train(config, run, num_seeds=count)
        assert ddpgx.find_run(run) == (config, count)
        result = resume(run, total_steps=300)
        assert result.seeds == list(range(first, first + count)) and result.step == 300
        result = ddpgx.train(None, run, resume=True, progress=False, print_fn=quiet)  # the config from the directory
        assert result.step == 300
    with pytest.raises(ConfigError, match="holds 6 seed"):
        train(None, tmp_path / "run5", resume=True, num_seeds=2)


def test_a_live_tensorboard_reads_the_scalars_within_the_flush_interval(tmp_path, monkeypatch):
    """Between checkpoints (or in a run without them), events reach the file once FLUSH_SECONDS have passed."""
    from ddpgx import logging as run_logging
    from tests.logs import tb_scalars

    monkeypatch.setattr(run_logging, "FLUSH_SECONDS", 3600.0)
    logger = run_logging.RunLogger(tmp_path, True)
    try:
        logger.write("episodes", {"step": 200, "env": 0, "return": -1200.0, "length": 200})
        assert "train/episode_return" not in tb_scalars(tmp_path)  # buffered, the interval not yet over
        monkeypatch.setattr(run_logging, "FLUSH_SECONDS", 0.0)
        logger.write("episodes", {"step": 400, "env": 0, "return": -900.0, "length": 200})
        assert tb_scalars(tmp_path)["train/episode_return"] == [(200, -1200.0), (400, -900.0)]
    finally:
        logger.close()


@pytest.mark.slow
def test_run_directory_layout_and_logs(tmp_path):
    config = small_config(total_steps=600, learning_starts=300, eval_every=300, checkpoint_every=300, keep_checkpoints=1,
                          tensorboard=True)
    result = train(config, tmp_path / "run")
    run = tmp_path / "run"
    assert ddpgx.Config.load(run / "config.json") == config
    rows = list(csv.DictReader(open(run / "eval.csv")))
    assert [int(r["step"]) for r in rows] == [300, 600]
    assert {"step", "mean_return", "std_return", "episodes"} <= set(rows[0])
    assert all(int(r["episodes"]) == config.eval_episodes for r in rows)
    assert math.isclose(float(rows[-1]["mean_return"]), result.mean_return, rel_tol=1e-9)
    metrics = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["step"]) for r in metrics] == [200, 400, 600]
    assert metrics[0]["critic_loss"] == ""  # no update before learning_starts
    assert all(math.isfinite(float(r[k])) for r in metrics[1:] for k in ("critic_loss", "actor_loss", "q", "steps_per_s"))
    episodes = list(csv.DictReader(open(run / "episodes.csv")))
    assert len(episodes) == 3 and all(int(r["length"]) == 200 for r in episodes)  # Pendulum's time limit
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_0000000600"]  # keep_checkpoints=1
    assert not list((run / "checkpoints").glob(".tmp-*"))


@pytest.mark.slow
@pytest.mark.parametrize("num_envs, train_freq, gradient_steps", [(3, 1, 1), (1, 4, 1), (1, 1, 3), (2, 3, 2)])
def test_the_schedule_of_updates(tmp_path, num_envs, train_freq, gradient_steps):
    """gradient_steps * num_envs updates every train_freq iterations, from learning_starts on."""
    config = small_config(total_steps=360, learning_starts=120, num_envs=num_envs, train_freq=train_freq,
                          gradient_steps=gradient_steps, batch_size=8)
    train(config, tmp_path / "run")
    checkpoint = final_checkpoint(tmp_path / "run")
    learning_iterations = [i for i in range(1, 360 // num_envs + 1)
                           if i * num_envs >= 120 and i % train_freq == 0]
    assert int(checkpoint.arrays[".agent.updates"]) == len(learning_iterations) * gradient_steps * num_envs
    replay = checkpoint.replay()["data"]
    assert len(replay) == 360  # every environment's every step is stored


@pytest.mark.slow
def test_several_environments_keep_their_own_episodes(tmp_path):
    config = small_config(num_envs=2, total_steps=420, learning_starts=100, max_episode_steps=35)
    train(config, tmp_path / "run")
    episodes = csv_rows(tmp_path / "run", "episodes")
    assert [(r["step"], r["env"], r["length"]) for r in episodes[:4]] == [("70", "0", "35"), ("70", "1", "35"),
                                                                          ("140", "0", "35"), ("140", "1", "35")]
    assert len(episodes) == 12


@pytest.mark.slow
def test_the_noise_process_restarts_with_each_episode(tmp_path):
    """OU noise with theta 0 is a random walk: without restarts its spread would grow with every step of
    the run. The actor barely moves (learning rates 1e-30), so the noise is the executed action minus
    pi(s): at an episode's first step one shock, sigma; at its second, two."""
    from tests.probe_envs import TwoStep

    sigma = 0.01
    config = small_config(env_id="probe", num_envs=2, total_steps=400, learning_starts=0, batch_size=8, noise="ou",
                          noise_sigma=sigma, ou_theta=0.0, ou_dt=1.0, actor_lr=1e-30, critic_lr=1e-30, eval_episodes=1)
    train(config, tmp_path / "run", make_env=TwoStep)
    data = final_checkpoint(tmp_path / "run").replay()["data"]  # rows of (obs, action, reward, next_obs, terminated)
    policy = ddpgx.load_policy(tmp_path / "run")
    obs, action = data[:, 0], data[:, 1]
    noise = action - policy(obs[:, None])[:, 0]
    first, second = noise[obs == 0.0], noise[obs == 1.0]  # TwoStep's observations: 0, then 1
    assert len(first) == len(second) == 200
    assert np.std(first) == pytest.approx(sigma, rel=0.2)
    assert np.std(second) == pytest.approx(sigma * np.sqrt(2), rel=0.2)


def test_the_stored_action_is_the_executed_clipped_one(tmp_path):
    """Noise pushes actions past the bounds; the buffer holds exactly what the environment received."""
    from ddpgx.envs import ActionScaler
    from tests.probe_envs import TwoStep

    seen = []

    class Recording(TwoStep):
        def step(self, action):
            seen.append(np.array(action, np.float64))
            return super().step(action)

    config = small_config(env_id="probe", total_steps=260, learning_starts=200, noise_sigma=5.0, batch_size=8,
                          eval_episodes=1)
    train(config, tmp_path / "run", make_env=Recording)
    stored = final_checkpoint(tmp_path / "run").replay()["data"][:, 1]  # the action column
    executed = np.array(seen[:260])[:, 0]  # training steps come first; evaluation after
    assert stored.min() == -1.0 and stored.max() == 1.0  # sigma 5 saturates often
    scaler = ActionScaler(np.array([-1.0]), np.array([1.0]))
    np.testing.assert_allclose(scaler.to_env(stored[:, None])[:, 0], executed, atol=1e-6)


def test_policy_loads_and_acts_in_env_units(tmp_path):
    train(small_config(), tmp_path / "run")
    policy = ddpgx.load_policy(tmp_path / "run")
    obs = np.array([1.0, 0.0, 0.5], np.float32)
    action = policy(obs)
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0  # Pendulum's torque bounds
    batch = policy(np.stack([obs, -obs]))
    assert batch.shape == (2, 1)
    np.testing.assert_allclose(batch[0], action, rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        policy(np.zeros(4))


def test_custom_networks(tmp_path):
    import flax.linen as nn
    import jax.numpy as jnp

    class TinyActor(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return jnp.tanh(nn.Dense(1)(obs))

    class TinyCritic(nn.Module):
        @nn.compact
        def __call__(self, obs, action):
            return nn.Dense(1)(jnp.concatenate([obs, action], -1))

    result = train(small_config(total_steps=300), tmp_path / "run", actor=TinyActor(), critic=TinyCritic())
    assert np.isfinite(result.final_returns).all()
    policy = ddpgx.load_policy(tmp_path / "run", actor=TinyActor())
    assert policy(np.zeros(3)).shape == (1,)

    class WrongActor(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(3)(obs)

    with pytest.raises(ValueError, match="actor maps observations"):
        train(small_config(), tmp_path / "wrong", actor=WrongActor())


def test_existing_run_dir_is_refused_and_resume_needs_a_run(tmp_path):
    train(small_config(total_steps=250), tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume.*--overwrite"):
        train(small_config(), tmp_path / "run")
    train(small_config(total_steps=250), tmp_path / "run", overwrite=True)
    with pytest.raises(ConfigError, match="no ddpgx run"):
        train(small_config(), tmp_path / "empty", resume=True)
    with pytest.raises(ConfigError, match="tau"):
        train(small_config(total_steps=250, tau=0.5), tmp_path / "run", resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="does not look like a ddpgx run"):
        train(small_config(), tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_interrupted_checkpoint_leaves_previous_one_readable(tmp_path):
    """A temporary directory left by a killed save is ignored; the last complete checkpoint loads."""
    run = tmp_path / "run"
    train(small_config(total_steps=300, checkpoint_every=100), run)
    broken = run / "checkpoints" / ".tmp-step_0000000400-999"
    broken.mkdir()
    (broken / "state.npz").write_bytes(b"partial")
    assert ckpt.latest_checkpoint(run).name == "step_0000000300"
    result = resume(run, total_steps=400)
    assert result.step == 400 and not broken.exists()


def test_corrupted_checkpoint_gives_a_clear_error(tmp_path):
    run = tmp_path / "run"
    train(small_config(total_steps=250), run)
    state = ckpt.latest_checkpoint(run) / "state.npz"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(ckpt.CheckpointError, match="state.npz is truncated or corrupted"):
        resume(run, total_steps=300)


@pytest.mark.slow
def test_multi_seed_resume_is_exact_even_when_a_kill_left_the_seeds_at_different_steps(tmp_path):
    config = small_config(total_steps=500, learning_starts=150, checkpoint_every=100)
    train(config, tmp_path / "straight", num_seeds=2)
    train(config.replace(total_steps=300), tmp_path / "resumed", num_seeds=2)
    # as if killed between the two seeds' saves at step 300: seed 1 has step 200 only
    shutil.rmtree(tmp_path / "resumed" / "seed_1" / "checkpoints" / "step_0000000300")
    result = resume(tmp_path / "resumed", total_steps=500)
    assert result.step == 500
    for seed in (0, 1):
        assert_same_checkpoint(final_checkpoint(tmp_path / "straight" / f"seed_{seed}"),
                               final_checkpoint(tmp_path / "resumed" / f"seed_{seed}"))
        assert_same_logs(tmp_path / "resumed" / f"seed_{seed}", tmp_path / "straight" / f"seed_{seed}", tensorboard=False)


@pytest.mark.slow
def test_a_kill_between_two_seeds_saves_keeps_a_common_step(tmp_path, monkeypatch):
    """keep_checkpoints=1: the older checkpoints are pruned only after every seed saved the new one."""
    calls = []
    real_save = ckpt.save

    def save(run_dir, step, *args):
        calls.append((run_dir.name, step))
        if step == 200 and run_dir.name == "seed_1":
            raise KeyboardInterrupt  # killed before seed 1's checkpoint of step 200
        return real_save(run_dir, step, *args)

    monkeypatch.setattr(ckpt, "save", save)
    with pytest.raises(KeyboardInterrupt):
        train(small_config(total_steps=300, checkpoint_every=100, keep_checkpoints=1), tmp_path / "run", num_seeds=2)
    monkeypatch.undo()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run" / "seed_1")] == ["step_0000000100"]
    assert resume(tmp_path / "run", total_steps=300).step == 300


def test_resume_without_a_common_checkpoint_step_is_a_clear_error(tmp_path):
    config = small_config(total_steps=300, checkpoint_every=100, keep_checkpoints=1)
    train(config, tmp_path / "run", num_seeds=2)
    shutil.rmtree(tmp_path / "run" / "seed_1" / "checkpoints")
    with pytest.raises(ckpt.CheckpointError, match="seed_1: it has no checkpoint"):
        resume(tmp_path / "run", total_steps=400)


def test_a_run_that_cannot_start_leaves_no_directory_behind(tmp_path):
    import flax.linen as nn

    class WrongActor(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(3)(obs)

    with pytest.raises(ddpgx.EnvError, match="Discrete"):
        train(small_config(env_id="CartPole-v1"), tmp_path / "run")
    with pytest.raises(ValueError, match="actor maps observations"):
        train(small_config(), tmp_path / "run", actor=WrongActor())
    with pytest.raises(BufferTooLarge, match="the replay buffer needs"):
        train(small_config(buffer_size=10**13, total_steps=10**12), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"invalid seed=4294967295 \(and seed \+ num_seeds - 1 = 4294967296\)"):
        train(small_config(seed=2**32 - 1), tmp_path / "run", num_seeds=2)
    assert not (tmp_path / "run").exists()
    assert train(small_config(total_steps=250), tmp_path / "run").step == 250  # the retry is not refused


def test_seeds_must_lie_in_32_bits():
    for seed in (-1, 2**32, 2**32 + 7):
        with pytest.raises(ConfigError, match=rf"invalid seed={seed}: must lie in \[0, 2\*\*32 - 1\]"):
            ddpgx.Config(seed=seed)
    assert ddpgx.Config(seed=2**32 - 1).seed == 2**32 - 1


def test_notes_for_schedules_that_do_not_do_what_they_seem(tmp_path):
    notes = []
    result = ddpgx.train(small_config(num_envs=3, total_steps=50, learning_starts=60), tmp_path / "run",
                         progress=False, print_fn=notes.append)
    assert result.step == 51
    assert "note: total_steps=50 is not a multiple of num_envs=3: every iteration steps all 3 environments, so " \
           "the run ends at step 51" in notes
    assert "note: learning_starts=60 > total_steps=50: the run acts randomly throughout and makes no gradient " \
           "step" in notes


@pytest.mark.slow
def test_an_evaluation_without_a_time_limit_stops_early_with_what_to_do(tmp_path):
    from ddpgx.evaluate import UNLIMITED_EPISODE_STEPS
    from tests.probe_envs import TruncatedOnly

    endless = lambda: TruncatedOnly(limit=10**9)  # noqa: E731  (never truncates: no time limit)
    with pytest.raises(ddpgx.EnvError, match=r"has no time limit and an evaluation episode ran 10,000 steps without "
                                             r"ending: give its episodes a limit with --max-episode-steps"):
        train(small_config(env_id="endless", total_steps=50, learning_starts=50), tmp_path / "run", make_env=endless)
    assert UNLIMITED_EPISODE_STEPS == 10_000
    result = train(small_config(env_id="endless", total_steps=50, learning_starts=50, max_episode_steps=20),
                   tmp_path / "limited", make_env=endless)
    assert [r["length"] for r in csv_rows(tmp_path / "limited", "episodes")] == ["20", "20"]
    assert result.final_returns.shape == (1, 2)


# ----------------------------------------------------------------------------- the extensions

EXTENSIONS = {
    "obs_norm": dict(obs_norm=True, obs_norm_until=350),
    "reward_scaling": dict(reward_norm=True, reward_scale=0.5),
    "n_step": dict(n_step=3),
    "prioritized": dict(prioritized=True, priority_beta_steps=400),
    "layer_norm": dict(actor_layer_norm=True, critic_layer_norm=True),
    "noise_schedule": dict(noise_schedule="exponential", noise_sigma_final=0.02, noise_decay_steps=400),
    "param_noise": dict(noise="param", param_noise_adapt_every=20, max_episode_steps=60),
    "all_together": dict(obs_norm=True, reward_norm=True, reward_scale=0.5, n_step=3, prioritized=True,
                         priority_beta_steps=400, actor_layer_norm=True, critic_layer_norm=True, noise="param",
                         noise_schedule="linear", noise_sigma_final=0.05, noise_decay_steps=400,
                         param_noise_adapt_every=20, max_episode_steps=60),
}


def engaged(name, checkpoint, config):
    """Evidence in a final checkpoint that the extension ran."""
    arrays, replay = checkpoint.arrays, checkpoint.replay()
    if name == "obs_norm":  # 350 steps of 2 environments, then frozen
        return arrays[".obs_stats.count"] == 350 and np.all(arrays[".obs_stats.var"] > 0)
    if name == "reward_scaling":
        return arrays[".return_stats.count"] == config.total_steps and arrays[".return_stats.var"] > 0
    if name == "n_step":  # one more column: truncated
        return replay["data"].shape[1] == 2 * 3 + 1 + 3
    if name == "prioritized":
        return len(np.unique(replay["priorities"])) > 100 and replay["max_priority"] > 0
    if name == "layer_norm":
        return any("LayerNorm" in k for k in arrays if k.startswith(".agent.actor[")) and \
            any("LayerNorm" in k for k in arrays if k.startswith(".agent.critic["))
    if name == "noise_schedule":
        return True  # its effect is on the actions: test_the_noise_schedule_reaches_the_actions
    if name == "param_noise":  # adapted from its initial 0.1, and every environment has its own actor
        sigma = float(arrays[".param_sigma"])
        kernel = arrays[".perturbed['params']['Dense_0']['kernel']"]
        return sigma != pytest.approx(0.1) and kernel.shape[0] == 2 and not np.allclose(kernel[0], kernel[1])
    if name == "all_together":
        return all(engaged(part, checkpoint, config) for part in EXTENSIONS if part not in ("all_together", "obs_norm"))
    raise AssertionError(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXTENSIONS)
def test_each_extension_resumes_exactly_with_several_seeds_and_environments(tmp_path, name):
    """train(500) and train(300) + resume(500), 2 seeds of 2 environments: the same parameters, buffers,
    priorities, statistics, perturbed actors and logs."""
    config = small_config(**EXTENSIONS[name], num_envs=2, total_steps=500, learning_starts=150, eval_every=200,
                          log_every=100, batch_size=16)
    train(config, tmp_path / "straight", num_seeds=2)
    train(config.replace(total_steps=300), tmp_path / "resumed", num_seeds=2)
    result = resume(tmp_path / "resumed", total_steps=500)
    assert result.step == 500 and np.isfinite(result.final_returns).all()
    for seed in (0, 1):
        straight = final_checkpoint(tmp_path / "straight" / f"seed_{seed}")
        assert_same_checkpoint(straight, final_checkpoint(tmp_path / "resumed" / f"seed_{seed}"))
        assert_same_logs(tmp_path / "resumed" / f"seed_{seed}", tmp_path / "straight" / f"seed_{seed}",
                         tensorboard=False)
        assert engaged(name, straight, config), name
    # the seeds differ
    a, b = (final_checkpoint(tmp_path / "straight" / f"seed_{s}").arrays for s in (0, 1))
    assert not np.array_equal(a[ACTOR_KERNEL], b[ACTOR_KERNEL])


def test_the_default_checkpoint_holds_none_of_the_extensions_state(tmp_path):
    train(small_config(total_steps=250), tmp_path / "run")
    checkpoint = final_checkpoint(tmp_path / "run")
    for prefix in (".obs_stats", ".return_stats", ".returns", ".perturbed", ".param_sigma", ".adapt_pending"):
        assert not any(k.startswith(prefix) for k in checkpoint.arrays), prefix
    assert set(checkpoint.replay()) == {"data", "pos", "capacity"}
    assert checkpoint.replay()["data"].shape[1] == 2 * 3 + 1 + 2


def test_the_noise_schedule_reaches_the_actions(tmp_path):
    """The executed actions' spread around pi(s) shrinks from sigma 0.5 to the floor 0.05 (linear over
    the first 400 steps): measured on a probe whose policy barely moves (no updates)."""
    from tests.probe_envs import OneStepReward

    config = small_config(env_id="probe", total_steps=800, learning_starts=0, train_freq=10**6, noise_sigma=0.5,
                          noise_schedule="linear", noise_sigma_final=0.05, noise_decay_steps=400, eval_episodes=1)
    train(config, tmp_path / "run", make_env=OneStepReward)
    actions = final_checkpoint(tmp_path / "run").replay()["data"][:, 1]  # one state: pi(s) is one value
    early, late = actions[:100], actions[500:]
    assert np.std(early) == pytest.approx(0.45, abs=0.06)  # sigma from 0.5 to 0.39 over the first 100 steps
    assert np.std(late) == pytest.approx(0.05, rel=0.15)


@pytest.mark.slow
def test_parameter_noise_keeps_one_perturbed_actor_per_episode(tmp_path):
    """Each environment's actions come from its perturbed actor, which changes only when its episode
    ends: with no update, two steps of one episode from the same observation get the same action."""
    from tests.probe_envs import TruncatedOnly

    config = small_config(env_id="probe", noise="param", total_steps=40, learning_starts=0, train_freq=10**6,
                          num_envs=2, eval_episodes=1, noise_sigma=0.3)
    train(config, tmp_path / "run", make_env=lambda: TruncatedOnly(limit=10))
    data = final_checkpoint(tmp_path / "run").replay()["data"]  # slots alternate env 0, env 1
    obs, action = data[:, 0].reshape(20, 2), data[:, 1].reshape(20, 2)
    for env in (0, 1):
        for episode in range(2):
            steps = slice(10 * episode + 1, 10 * episode + 10)  # state B: the same observation 9 times
            assert np.all(obs[steps, env] == 1.0)
            assert np.unique(action[steps, env]).size == 1, (env, episode)
        assert action[5, env] != action[15, env]  # a new episode, a new perturbation
    assert action[5, 0] != action[5, 1]  # each environment its own perturbed actor


@pytest.mark.slow
def test_parameter_noise_adapts_at_the_first_learning_step_after_each_adaptation_step(tmp_path, monkeypatch):
    """Learning every 3 steps, adapting every 50: the scale adapts at 51, 102, 150, 201, 252 and 300,
    once per multiple of 50; a run stopped at 200, between a multiple and its adaptation, resumes
    exactly (the adaptation pending at its checkpoint comes at 201)."""
    from ddpgx.learner import Training
    from tests.probe_envs import TruncatedOnly

    sigmas, after_step = {}, Training.after_step

    def recorded(self, previous, step, state):
        sigmas.setdefault(self.run.root.name, []).append((step, float(state.param_sigma[0])))
        return after_step(self, previous, step, state)

    monkeypatch.setattr(Training, "after_step", recorded)
    config = small_config(env_id="probe", noise="param", total_steps=300, learning_starts=0, train_freq=3,
                          param_noise_adapt_every=50, eval_episodes=1)
    make_env = lambda: TruncatedOnly(limit=10)  # noqa: E731
    train(config, tmp_path / "straight", make_env=make_env)
    steps, values = zip(*sigmas["straight"])
    assert [s for s, before, after in zip(steps[1:], values, values[1:]) if after != before] == [51, 102, 150, 201,
                                                                                                   252, 300]
    train(config.replace(total_steps=200), tmp_path / "resumed", make_env=make_env)
    assert final_checkpoint(tmp_path / "resumed").arrays[".adapt_pending"]
    ddpgx.resume(tmp_path / "resumed", progress=False, print_fn=quiet, make_env=make_env, total_steps=300)
    assert_same_checkpoint(final_checkpoint(tmp_path / "straight"), final_checkpoint(tmp_path / "resumed"))
