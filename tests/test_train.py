"""The training loop: reproducibility, exact resume, multi-seed equivalence, run directory, errors."""

import csv
import math

import jax
import numpy as np
import pytest

import ddpgx
from ddpgx import checkpoint as ckpt
from ddpgx.config import ConfigError
from tests.conftest import quiet, small_config


def final_arrays(run_dir):
    return ckpt.Checkpoint(ckpt.latest_checkpoint(run_dir)).arrays


def train(config, run_dir, **kwargs):
    return ddpgx.train(config, run_dir, progress=False, print_fn=quiet, **kwargs)


def test_same_seed_gives_identical_parameters_and_other_seeds_differ(tmp_path):
    config = small_config()
    train(config, tmp_path / "a")
    train(config, tmp_path / "b")
    train(config.replace(seed=1), tmp_path / "c")
    a, b, c = (final_arrays(tmp_path / n) for n in "abc")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    actor_keys = [k for k in a if k.startswith("agent/.actor[")]
    assert actor_keys
    for key in actor_keys:
        assert not np.allclose(a[key], c[key]), key


@pytest.mark.parametrize("env_id, noise", [("Pendulum-v1", "ou"), ("HalfCheetah-v5", "gaussian")])
def test_resume_is_exact(tmp_path, env_id, noise):
    """train(N) then resume to N+M gives the same parameters, buffer and counters as train(N+M)."""
    config = small_config(env_id=env_id, noise=noise, total_steps=500, learning_starts=150)
    train(config, tmp_path / "straight")
    train(config.replace(total_steps=300), tmp_path / "resumed")
    result = train(config, tmp_path / "resumed", resume=True)
    assert result.step == 500
    straight = ckpt.Checkpoint(ckpt.latest_checkpoint(tmp_path / "straight"))
    resumed = ckpt.Checkpoint(ckpt.latest_checkpoint(tmp_path / "resumed"))
    assert straight.step == resumed.step == 500
    for key in straight.arrays:
        np.testing.assert_array_equal(straight.arrays[key], resumed.arrays[key], err_msg=key)
    replay_a, replay_b = straight.replay(), resumed.replay()
    for key in replay_a:
        np.testing.assert_array_equal(replay_a[key], replay_b[key], err_msg=key)
    assert straight.meta["sampler_rng"] == resumed.meta["sampler_rng"]
    # the logs read as one run: episodes logged once each
    episodes = list(csv.DictReader(open(tmp_path / "resumed" / "episodes.csv")))
    assert [r["step"] for r in episodes] == [r["step"] for r in csv.DictReader(open(tmp_path / "straight" / "episodes.csv"))]


def test_multi_seed_matches_single_seed_runs(tmp_path):
    config = small_config(total_steps=400, learning_starts=200)  # 200 updates
    multi = train(config, tmp_path / "multi", num_seeds=2)
    assert [d.name for d in multi.run_dirs] == ["seed_0", "seed_1"]
    assert multi.final_returns.shape == (2, config.eval_episodes)
    for seed in (0, 1):
        single_dir = tmp_path / f"single{seed}"
        train(config.replace(seed=seed), single_dir)
        single = final_arrays(single_dir)
        batched = final_arrays(tmp_path / "multi" / f"seed_{seed}")
        for key in single:
            if key.startswith("agent/"):
                np.testing.assert_allclose(batched[key], single[key], rtol=1e-4, atol=1e-5, err_msg=key)
    seed0, seed1 = (final_arrays(tmp_path / "multi" / f"seed_{s}") for s in (0, 1))
    assert not np.allclose(seed0["agent/.actor['params']['Dense_0']['kernel']"],
                           seed1["agent/.actor['params']['Dense_0']['kernel']"])


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
    result = train(small_config(total_steps=400, checkpoint_every=100), run, resume=True)
    assert result.step == 400 and not broken.exists()


def test_corrupted_checkpoint_gives_a_clear_error(tmp_path):
    run = tmp_path / "run"
    train(small_config(total_steps=250), run)
    state = ckpt.latest_checkpoint(run) / "state.npz"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(ckpt.CheckpointError, match="state.npz is truncated or corrupted"):
        train(small_config(total_steps=300), run, resume=True)


def test_keys_are_independent_per_seed():
    from ddpgx.train import seed_keys

    init0, explore0 = seed_keys(0)
    init1, _ = seed_keys(1)
    assert not np.array_equal(np.asarray(init0), np.asarray(explore0))
    assert not np.array_equal(np.asarray(init0), np.asarray(init1))
    assert jax.random.PRNGKey(0).shape == init0.shape


def test_multi_seed_resume_is_exact_even_when_a_kill_left_the_seeds_at_different_steps(tmp_path):
    import shutil

    config = small_config(total_steps=500, learning_starts=150, checkpoint_every=100)
    train(config, tmp_path / "straight", num_seeds=2)
    train(config.replace(total_steps=300), tmp_path / "resumed", num_seeds=2)
    # as if killed between the two seeds' saves at step 300: seed 1 has only step 200
    shutil.rmtree(tmp_path / "resumed" / "seed_1" / "checkpoints" / "step_0000000300")
    result = train(config, tmp_path / "resumed", num_seeds=2, resume=True)
    assert result.step == 500
    for seed in (0, 1):
        straight = final_arrays(tmp_path / "straight" / f"seed_{seed}")
        resumed = final_arrays(tmp_path / "resumed" / f"seed_{seed}")
        for key in straight:
            np.testing.assert_array_equal(straight[key], resumed[key], err_msg=f"seed {seed}: {key}")
        assert (tmp_path / "straight" / f"seed_{seed}" / "eval.csv").read_text() == \
            (tmp_path / "resumed" / f"seed_{seed}" / "eval.csv").read_text()


def test_resume_without_a_common_checkpoint_step_is_a_clear_error(tmp_path):
    import shutil

    config = small_config(total_steps=300, checkpoint_every=100, keep_checkpoints=1)
    train(config, tmp_path / "run", num_seeds=2)
    shutil.rmtree(tmp_path / "run" / "seed_1" / "checkpoints")
    with pytest.raises(ckpt.CheckpointError, match="seed_1: it has no checkpoint"):
        train(config.replace(total_steps=400), tmp_path / "run", num_seeds=2, resume=True)


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
    assert not (tmp_path / "run").exists()
    assert train(small_config(total_steps=250), tmp_path / "run").step == 250  # the retry is not refused
