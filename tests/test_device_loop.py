"""The on-device loop (tasks written in JAX): it learns what the host loop learns from the same
transitions, it learns known values on probe tasks, it resumes exactly, and it runs from the
command line; and the JAX environments keep termination apart from truncation."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ddpgx
from ddpgx import checkpoint as ckpt
from ddpgx import device_loop, jax_envs
from ddpgx.config import ConfigError
from ddpgx.envs import EnvError
from ddpgx.jax_envs import JaxEnv
from ddpgx.learner import build_agent, seed_keys, stack, step_functions
from ddpgx.noise import make_noise
from ddpgx.replay import unpack
from tests.conftest import quiet
from tests.logs import assert_same_logs

pytest.importorskip("gymnax")

PENDULUM = "gymnax/Pendulum-v1"


def device_config(**changes) -> ddpgx.Config:
    """A config of the on-device loop that trains in seconds."""
    values = dict(env_id=PENDULUM, total_steps=120, learning_starts=40, batch_size=16, buffer_size=1_000,
                  actor_hidden=(16, 16), critic_hidden=(16, 16), eval_every=0, eval_episodes=2,
                  checkpoint_every=0, log_every=40, tensorboard=False, max_episode_steps=50)
    values.update(changes)
    return ddpgx.Config(**values)


def train(config, run_dir, **kwargs):
    return ddpgx.train(config, run_dir, progress=False, print_fn=quiet, **kwargs)


def final_checkpoint(run_dir):
    return ckpt.Checkpoint(ckpt.latest_checkpoint(run_dir))


# ----------------------------------------------------------------------------- JAX environments


def test_pendulum_truncates_at_its_time_limit_never_terminates_and_resets_in_the_same_step():
    env = jax_envs.make(PENDULUM, max_episode_steps=5)
    assert (env.obs_shape, env.action_dim, env.low.tolist(), env.high.tolist()) == ((3,), 1, [-2.0], [2.0])
    state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for t in range(1, 11):
        previous = state
        state, out = step(jax.random.PRNGKey(t), state, jnp.array([1.0]))
        assert not bool(out.terminated)
        assert bool(out.truncated) == (t % 5 == 0)
        if t % 5 == 0:  # next_obs is the final observation; the state holds the next episode's first one
            assert int(state.time) == 0 and not np.allclose(out.next_obs, state.obs)
        else:
            np.testing.assert_array_equal(out.next_obs, state.obs)
    # the action is rescaled once: +1 is the maximum torque, 2 (gymnax's Pendulum clips at its bounds)
    full = env.sim_step(jax.random.PRNGKey(0), previous.inner, jnp.array([2.0]))
    mine = env.step(jax.random.PRNGKey(0), previous, jnp.array([1.0]))
    np.testing.assert_allclose(mine[1].reward, full[2])


def test_an_unknown_or_uninstalled_task_is_named_with_the_fix():
    with pytest.raises(EnvError, match="did you mean gymnax/Pendulum-v1"):
        jax_envs.make("gymnax/Pendulum-v0")
    with pytest.raises(EnvError, match="brax/halfcheetah"):
        jax_envs.make("brax/half_cheetah")


def test_what_the_device_loop_cannot_run_is_refused_in_one_line(tmp_path):
    for changes in (dict(obs_norm=True), dict(n_step=3), dict(prioritized=True), dict(noise="param"),
                    dict(reward_norm=True)):
        with pytest.raises(ConfigError, match="on the device"):
            train(device_config(**changes), tmp_path / "run")
    with pytest.raises(ConfigError, match="updates_per_iteration"):
        ddpgx.Config(env_id="Pendulum-v1", updates_per_iteration=2)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- the same learning as the host


@pytest.mark.slow
def test_the_host_update_fed_the_device_loops_transitions_gives_the_same_parameters(tmp_path):
    """The device loop's transitions (its replay, in order) and minibatch indices, replayed through
    the host loop's jitted functions (`step_functions`: the actions, then the learning calls) from the
    same initial parameters, reproduce every action it took and its final parameters."""
    E, steps, starts, freq = 2, 240, 20, 2
    config = device_config(num_envs=E, total_steps=steps, learning_starts=starts, train_freq=freq, gradient_steps=2,
                           noise="ou", max_episode_steps=50)
    train(config, tmp_path / "run")
    c = final_checkpoint(tmp_path / "run")
    env = jax_envs.make(PENDULUM, config.max_episode_steps)
    agent = build_agent(config, env.action_dim)
    rows = c.replay()["data"]  # slot order is time order: the buffer never wrapped
    assert len(rows) == steps
    obs_shape, A = env.obs_shape, env.action_dim
    data = unpack(rows, obs_shape, A)
    fns = step_functions(agent, make_noise("ou", config.noise_sigma, config.ou_theta, config.ou_dt), E, A, obs_shape)
    init_key, explore_key = seed_keys(config.seed)
    _, _, sample_key, _ = device_loop.device_keys(config.seed)
    state = stack([jax.jit(agent.init)(init_key, jnp.zeros((1, *obs_shape)), jnp.zeros((1, A)))])
    state = jax.device_put(state)
    noise, keys = np.zeros((1, E, A), np.float32), np.asarray(explore_key)[None]
    done = np.zeros((1, E), bool)
    learned = 0
    for step in range(0, steps + E, E):  # the last iteration learns and chooses the actions the run stopped with
        obs = (data.obs[step : step + E] if step < steps else c.arrays[".env.obs"])[None]
        # every environment's episode is truncated at once, every max_episode_steps iterations
        done = np.full((1, E), step > 0 and (step // E) % config.max_episode_steps == 0)
        if step >= starts and (step // E) % freq == 0:
            index = np.asarray(jax.random.randint(jax.random.fold_in(sample_key, step), (2 * E, config.batch_size),
                                                  0, step))
            state, _, action, noise, _, _ = fns.learn(state, rows[index][None], noise, None, None, obs, done,
                                                      keys, np.uint32(step), False)
            learned += 1
        else:
            action, noise = fns.act(state.actor, noise, None, obs, done, keys, np.uint32(step), step < starts)
        taken = data.action[step : step + E] if step < steps else c.arrays[".action"]
        np.testing.assert_allclose(np.asarray(action)[0], taken, atol=1e-5, err_msg=f"step {step}")
    assert learned == (steps - starts) // (E * freq) + 1
    for name in ("actor", "critic", "actor_target", "critic_target"):
        host = ckpt.flatten(jax.tree.map(lambda x: np.asarray(x)[0], getattr(state, name)))
        for key, value in host.items():
            np.testing.assert_allclose(c.arrays[f".agent.{name}{key}"], value, rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name}{key}")


def probe(reward: float, terminated: bool, limit: int) -> JaxEnv:
    """A one-observation task: reward `reward` every step, terminated after one step or truncated after `limit`."""
    zero = jnp.zeros(1, jnp.float32)
    return JaxEnv("probe", (1,), 1, np.array([-1.0], np.float32), np.array([1.0], np.float32), limit,
                  sim_reset=lambda key: ((), zero),
                  sim_step=lambda key, state, action: ((), zero, jnp.float32(reward), jnp.asarray(terminated)))


@pytest.mark.slow
@pytest.mark.parametrize("terminated, gamma, value", [(True, 0.99, 1.0), (False, 0.5, 2.0)])
def test_probe_tasks_reach_their_known_values(terminated, gamma, value):
    """Reward 1 then terminated: Q = 1. Reward 1 forever, truncated every 2 steps: a truncation
    bootstraps, so Q = 1 / (1 - gamma) = 2 (stopping there would give 1.5 or less)."""
    config = device_config(num_envs=4, total_steps=1_600, learning_starts=64, gamma=gamma, critic_lr=3e-3,
                           actor_lr=1e-4, buffer_size=2_000)
    env = probe(1.0, terminated, 2)
    agent = build_agent(config, env.action_dim)
    program = device_loop.build(agent, env, config)
    init_key, explore_key = (k[None] for k in seed_keys(0))
    reset_key, env_key, sample_key, _ = (k[None] for k in device_loop.device_keys(0))
    state = program.init(init_key, explore_key, reset_key)
    for start in range(0, config.total_steps, program.iterations * 4):
        state, _ = program.chunk(state, env_key, sample_key, jnp.int32(start), jnp.int32(program.iterations))
    actor = jax.tree.map(lambda x: x[0], state.agent.actor)
    critic = jax.tree.map(lambda x: x[0], state.agent.critic)
    obs = jnp.zeros((8, 1))
    q, _ = agent.q(critic, obs, jnp.linspace(-1, 1, 8)[:, None])
    np.testing.assert_allclose(q, value, atol=0.1 * value)
    assert np.isfinite(agent.act(actor, obs)).all()


# ----------------------------------------------------------------------------- the run


@pytest.mark.slow
def test_resume_is_exact_and_seeds_are_those_of_single_runs(tmp_path):
    """train(N) then resume to N+M equals train(N+M), parameters, replay, environments and logs; seed 1
    of a two-seed run is the run of seed 1 alone."""
    config = device_config(num_envs=2, total_steps=160, eval_every=60, log_every=20, checkpoint_every=40)
    train(config, tmp_path / "straight", num_seeds=2)
    train(config.replace(total_steps=80), tmp_path / "resumed", num_seeds=2)
    result = ddpgx.resume(tmp_path / "resumed", total_steps=160, progress=False, print_fn=quiet)
    assert result.step == 160 and result.final_returns.shape == (2, 2)
    train(config.replace(seed=1), tmp_path / "alone")
    for seed in ("seed_0", "seed_1"):
        a, b = final_checkpoint(tmp_path / "straight" / seed), final_checkpoint(tmp_path / "resumed" / seed)
        assert a.arrays.keys() == b.arrays.keys() and a.step == b.step == 160
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)
        np.testing.assert_array_equal(a.replay()["data"], b.replay()["data"])
        assert_same_logs(tmp_path / "resumed" / seed, tmp_path / "straight" / seed, tensorboard=False)
    one, alone = final_checkpoint(tmp_path / "straight" / "seed_1"), final_checkpoint(tmp_path / "alone")
    for key in one.arrays:
        np.testing.assert_allclose(one.arrays[key], alone.arrays[key], rtol=1e-5, atol=1e-6, err_msg=key)
    zero = final_checkpoint(tmp_path / "straight" / "seed_0")
    assert not np.allclose(zero.replay()["data"][:4], one.replay()["data"][:4])


@pytest.mark.slow
def test_a_device_run_exports_loads_and_evaluates_as_a_host_run_does(tmp_path, capsys):
    train(device_config(), tmp_path / "run")
    from ddpgx.cli import main

    # `ddpgx eval` with the run's evaluation episodes gives the run's final evaluation
    assert main(["eval", str(tmp_path / "run"), "--episodes", "2"]) == 0
    final = [float(x) for x in (tmp_path / "run" / "eval.csv").read_text().splitlines()[-1].split(",")[4:6]]
    shown = [float(x) for x in capsys.readouterr().out.split("returns: ")[1].split()]
    np.testing.assert_allclose(sorted(shown), final, rtol=1e-4, atol=0.006)  # printed to 2 decimals
    policy = ddpgx.load_policy(tmp_path / "run")
    action = policy(np.array([1.0, 0.0, 0.0], np.float32))
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    from ddpgx.numpy_policy import load

    ddpgx.export_numpy(tmp_path / "run", tmp_path / "policy.npz")
    np.testing.assert_allclose(load(tmp_path / "policy.npz")(np.array([1.0, 0.0, 0.0])), action, atol=1e-5)


@pytest.mark.slow
def test_cli_trains_gymnax_pendulum_with_64_environments_a_progress_bar_and_the_run_directory(tmp_path):
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", "--env", PENDULUM, "--num-envs", "64",
                           "--total-steps", "2048", "--learning-starts", "512", "--batch-size", "32",
                           "--actor-hidden", "16", "16", "--critic-hidden", "16", "16", "--buffer-size", "4096",
                           "--eval-every", "1024", "--eval-episodes", "2", "--max-episode-steps", "16",
                           "--run-dir", str(run)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2048/2048" in done.stderr  # tqdm's bar
    assert "final evaluation, seed 0, 2 noise-free episodes" in done.stdout
    assert {"config.json", "metrics.csv", "eval.csv", "episodes.csv", "checkpoints"} <= {p.name for p in run.iterdir()}
    assert [row.split(",")[0] for row in (run / "eval.csv").read_text().splitlines()[1:]] == ["1024", "2048"]
    # 64 environments x 2048 / 64 = 32 steps each, in episodes of 16 steps: 64 x 2 episodes
    episodes = [row.split(",") for row in (run / "episodes.csv").read_text().splitlines()[1:]]
    assert len(episodes) == 128 and {int(e[3]) for e in episodes} == {16}
    assert sorted(int(e[1]) for e in episodes if e[0] == "1024") == list(range(64))


def test_fasttd3_preset_is_for_tasks_written_in_jax_with_fasttd3s_values():
    with pytest.raises(ConfigError, match="fasttd3 preset is for the on-device loop"):
        ddpgx.from_preset("fasttd3", "HalfCheetah-v5")
    config = ddpgx.from_preset("fasttd3", "brax/halfcheetah")
    assert (config.num_envs, config.batch_size, config.updates_per_iteration) == (1024, 32768, 2)
    assert (config.critic_hidden, config.actor_hidden, config.tau) == ((1024, 512, 256), (512, 256, 128), 0.1)
    assert device_loop.updates_per_iteration(config) == 2
    assert device_loop.updates_per_iteration(device_config(num_envs=8, gradient_steps=2)) == 16  # one per transition


@pytest.mark.slow
def test_non_finite_losses_stop_the_run_naming_the_step_and_keep_the_last_good_checkpoint(tmp_path):
    config = device_config(reward_scale=1e38, checkpoint_every=40)  # rewards of -1e39: overflow in float32
    with pytest.raises(FloatingPointError, match=r"step 40: critic_loss of seed 0.* became non-finite"):
        train(config, tmp_path / "run")
    assert not ckpt.list_checkpoints(tmp_path / "run")  # the first checkpoint (step 40) was not written
