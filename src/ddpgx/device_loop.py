"""The on-device loop: for tasks written in JAX (`jax_envs.py`), the whole training step in one
compiled function, scanned over many steps per call and vmapped over seeds.

One iteration is a pure function of the carry (`DeviceState`: agent, environments, replay, noise,
keys, episode counters) and the step, the same iteration as the host loop's (`loop.py`):
    1. step every environment with the actions chosen at the end of the previous iteration, store
       (s, a, r, s', terminated) in the replay ring buffer, which lives in device memory;
    2. every `train_freq` iterations after `learning_starts`, `agent.update_many` on minibatches
       sampled uniformly from the buffer (agent.py's update, called as it is);
    3. choose the next actions: uniformly random before `learning_starts`, then
       clip(pi(s) + noise, -1, 1), the noise restarting with each episode.
The host calls `CHUNK_TRANSITIONS / num_envs` iterations at a time (`lax.scan`) and reads back
only the per-iteration metrics and finished episodes between calls; it logs them, evaluates and
checkpoints at the chunks' ends, which fall on the evaluation and checkpoint steps.

One update per new transition is the default (`gradient_steps` x `num_envs` per iteration);
`updates_per_iteration` decouples the updates from the number of environments, as FastTD3 does
with thousands of environments and large batches.

Keys, per seed: the networks' initial parameters and the exploration noise use the host loop's
keys (`seed_keys`), and the noise of the iteration at step t is `fold_in(explore_key, t)`, as on
the host. The environments, the minibatch indices and the evaluation have keys of their own,
from `device_keys`: the environments are JAX's, not Gymnasium's, and the indices are drawn on the
device. A run resumed from a checkpoint continues exactly: every iteration depends only on the
carry and the step, and the carry is saved whole.

The extensions that the host loop builds around the replay on the host (observation
normalization, reward normalization, n-step returns, prioritized replay) and parameter-space
noise are refused with a message; a fixed reward scale, Gaussian and Ornstein-Uhlenbeck noise,
noise schedules, layer and batch normalization work.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddpgx import checkpoint as ckpt
from ddpgx import jax_envs
from ddpgx.agent import DDPG, AgentState, Batch, Metrics
from ddpgx.config import Config, ConfigError
from ddpgx.jax_envs import EnvState, JaxEnv
from ddpgx.learner import (RECENT_EPISODES, Evaluation, TrainResult, build_agent, check_finite, crossed, eval_row,
                            network_name, over_seeds, progress_bar, schedule_notes, seed_keys, version)
from ddpgx.logging import RunLogger
from ddpgx.noise import make_noise, reset as reset_noise, schedule_from_config
from ddpgx.replay import available_memory, pack, unpack
from ddpgx.rundir import RunDir, default_run_dir

"""Finished episodes whose mean is logged as recent_return (as the host loop)."""
CHUNK_TRANSITIONS = 4_096
"""Transitions per seed in one call of the compiled loop, at most: the host reads the metrics back,
updates the progress bar and checks for Ctrl-C this often."""
DEVICE_STREAM = 3
"""The seed's sub-stream of the device's own keys (environments, minibatches, evaluation)."""

UNSUPPORTED = (("obs_norm", False), ("reward_norm", False), ("n_step", 1), ("prioritized", False),
               ("workers", 0), ("her", False))
"""Config fields the on-device loop does not support, with their plain values (nor parameter noise)."""


class Replay(NamedTuple):
    """A ring buffer of transitions in device memory, one seed's: arrays of `capacity` rows."""

    data: Batch
    pos: jax.Array
    size: jax.Array


class DeviceState(NamedTuple):
    """Everything one seed's training continues from; the loop holds one per seed stacked on a leading axis."""

    agent: AgentState
    explore_key: jax.Array
    noise: jax.Array
    """Exploration noise state, (envs, action_dim)."""
    env: EnvState
    """The environments' states, (envs, ...); `env.obs` is what the next actions are taken from."""
    action: jax.Array
    """The actions the next step executes, in [-1, 1], (envs, action_dim)."""
    done: jax.Array
    """(envs,): the episode ended at the last step, so its noise restarts."""
    episode_return: jax.Array
    episode_length: jax.Array
    episodes: jax.Array
    """Finished training episodes."""
    recent: jax.Array
    """The returns of the last RECENT_EPISODES finished episodes, oldest first; NaN before."""
    metrics: Metrics
    """The last update's losses and mean Q; NaN before the first update."""
    replay: Replay


class Record(NamedTuple):
    """What one iteration reports to the host, per seed."""

    metrics: Metrics
    recent: jax.Array
    episodes: jax.Array
    done: jax.Array
    """(envs,) the episodes that ended at this step, with their `episode_return` and `episode_length`."""
    episode_return: jax.Array
    episode_length: jax.Array
    updates: jax.Array
    """The agent's gradient steps so far (its metrics are NaN before the first)."""


def device_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The seed's keys of the environments' resets, their steps, the minibatch indices and the evaluation."""
    reset_key, env_key, sample_key, eval_key = jax.random.split(
        jax.random.fold_in(jax.random.PRNGKey(seed), DEVICE_STREAM), 4)
    return reset_key, env_key, sample_key, eval_key


def check_config(config: Config, make_env: Any) -> None:
    """Refuse, in one line, what the on-device loop cannot run."""
    where = f"on the device (env_id={config.env_id!r})"
    if make_env is not None:
        raise ConfigError("make_env builds a Gymnasium environment; a task written in JAX is named by env_id "
                          "(gymnax/NAME, brax/NAME): leave make_env out")
    for name, plain in UNSUPPORTED:
        if getattr(config, name) != plain:
            raise ConfigError(f"invalid {name}={getattr(config, name)!r}: not supported {where}; leave it at "
                              f"{plain!r}, or train a Gymnasium task on the host")
    if config.noise == "param":
        raise ConfigError(f"invalid noise='param': parameter-space noise is not supported {where}; choose "
                          f"gaussian or ou, or train a Gymnasium task on the host")


def updates_per_iteration(config: Config) -> int:
    """Gradient steps of a learning iteration: `updates_per_iteration`, else one per new transition."""
    return config.updates_per_iteration or config.gradient_steps * config.num_envs


class Program(NamedTuple):
    """The compiled functions of a run."""

    init: Callable
    """(seed keys...) -> DeviceState, vmapped over seeds."""
    chunk: Callable
    """(state, step, count) -> (state, Record stacked over CHUNK iterations): `count` iterations from
    environment step `step`, the others skipped; the state is donated."""
    evaluate: Callable
    """(actor, eval_key) -> noise-free returns (seeds, episodes)."""
    iterations: int
    """Iterations in one call of `chunk`."""


def build(agent: DDPG, env: JaxEnv, config: Config) -> Program:
    """The run's compiled functions: single-agent code, vmapped over the leading seed axis."""
    E, A, B, C = config.num_envs, env.action_dim, config.batch_size, config.buffer_size
    U = updates_per_iteration(config)
    noise = make_noise(config.noise, config.noise_sigma, config.ou_theta, config.ou_dt)
    schedule = schedule_from_config(config)
    obs_zeros = jnp.zeros((1, *env.obs_shape), jnp.float32)

    def act(actor, noise_state, obs, done, explore_key, step):
        """The host loop's `act`: the same key, noise and clipping."""
        key = jax.random.fold_in(explore_key, step)
        noise_state = reset_noise(noise_state, done)

        def uniform(noise_state):
            return jax.random.uniform(key, (E, A), minval=-1.0, maxval=1.0), noise_state

        def policy(noise_state):
            eps, noise_state = noise.sample(noise_state, key, schedule(step))
            return jnp.clip(agent.act(actor, obs) + eps, -1.0, 1.0), noise_state

        return jax.lax.cond(step < config.learning_starts, uniform, policy, noise_state)

    def init(init_key, explore_key, reset_key):
        agent_state = agent.init(init_key, obs_zeros, jnp.zeros((1, A), jnp.float32))
        env_state = jax.vmap(env.reset)(jax.random.split(reset_key, E))
        noise_state = jnp.asarray(noise.init((E, A)))
        done = jnp.zeros(E, bool)
        action, noise_state = act(agent_state.actor, noise_state, env_state.obs, done, explore_key, 0)
        data = Batch(obs=jnp.zeros((C, *env.obs_shape)), action=jnp.zeros((C, A)), reward=jnp.zeros(C),
                     next_obs=jnp.zeros((C, *env.obs_shape)), terminated=jnp.zeros(C))
        nan = jnp.full((), jnp.nan)
        return DeviceState(
            agent=agent_state, explore_key=explore_key, noise=noise_state, env=env_state, action=action, done=done,
            episode_return=jnp.zeros(E), episode_length=jnp.zeros(E, jnp.int32), episodes=jnp.zeros((), jnp.int32),
            recent=jnp.full(RECENT_EPISODES, jnp.nan), metrics=Metrics(nan, nan, nan),
            replay=Replay(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)))

    def learn(state, env_key, sample_key, step):
        """One iteration from environment step `step` (before it) to step + E."""
        # 1. step the environments, store the transitions
        env_state, out = jax.vmap(env.step)(jax.random.split(jax.random.fold_in(env_key, step), E), state.env,
                                            state.action)
        replay = insert(state.replay, Batch(state.env.obs, state.action, out.reward, out.next_obs,
                                            out.terminated.astype(jnp.float32)))
        done = out.terminated | out.truncated
        episode_return, episode_length = state.episode_return + out.reward, state.episode_length + 1
        recent = latest(state.recent, episode_return, done)
        step = step + E
        # 2. learn
        agent_state, metrics = state.agent, state.metrics
        learning = (step >= config.learning_starts) & ((step // E) % config.train_freq == 0)

        def update(agent_state):
            index = jax.random.randint(jax.random.fold_in(sample_key, step), (U, B), 0, replay.size)
            batches = jax.tree.map(lambda column: column[index], replay.data)
            batches = batches._replace(reward=batches.reward * config.reward_scale)
            agent_state, metrics, _ = agent.update_many(agent_state, batches)
            return agent_state, metrics

        agent_state, metrics = jax.lax.cond(learning, update, lambda a: (a, metrics), agent_state)
        # 3. the next actions
        action, noise_state = act(agent_state.actor, state.noise, env_state.obs, done, state.explore_key, step)
        record = Record(metrics, recent, state.episodes + done.sum(), done, episode_return, episode_length,
                        agent_state.updates)
        return state._replace(
            agent=agent_state, noise=noise_state, env=env_state, action=action, done=done,
            episode_return=jnp.where(done, 0.0, episode_return), episode_length=jnp.where(done, 0, episode_length),
            episodes=record.episodes, recent=recent, metrics=metrics, replay=replay), record

    def chunk(state, env_keys, sample_keys, start, count):
        def body(state, i):
            step = start + i * E

            def skip(state):
                return state, empty_record(state)

            return jax.lax.cond(i < count, lambda s: over_seeds(learn, (0, 0, 0, None))(s, env_keys, sample_keys,
                                                                                       step), skip, state)

        return jax.lax.scan(body, state, jnp.arange(iterations))

    def empty_record(state):
        zeros = jnp.zeros_like(state.done)
        return Record(state.metrics, state.recent, state.episodes, zeros, state.episode_return, state.episode_length,
                      state.agent.updates)

    def evaluate(actor, eval_key):
        return rollout_returns(env, lambda obs: agent.act(actor, obs), eval_key, config.eval_episodes)

    iterations = max(1, CHUNK_TRANSITIONS // E)
    return Program(
        init=jax.jit(jax.vmap(init)),
        chunk=jax.jit(chunk, donate_argnums=0),
        evaluate=jax.jit(jax.vmap(evaluate)),
        iterations=iterations,
    )


def rollout_returns(env: JaxEnv, policy: Callable[[jax.Array], jax.Array], key: jax.Array,
                    episodes: int) -> jax.Array:
    """Returns of `episodes` noise-free episodes run side by side, each to its end (its time limit at
    most); `policy` maps observations (episodes, *obs_shape) to actions in [-1, 1]. The same key
    gives the same initial states: every evaluation of a run starts from the same episodes."""
    env_state = jax.vmap(env.reset)(jax.random.split(key, episodes))

    def body(carry, t):
        env_state, returns, running = carry
        step_keys = jax.random.split(jax.random.fold_in(key, t), episodes)
        env_state, out = jax.vmap(env.step)(step_keys, env_state, policy(env_state.obs))
        returns = returns + jnp.where(running, out.reward, 0.0)
        return (env_state, returns, running & ~(out.terminated | out.truncated)), None

    start = (env_state, jnp.zeros(episodes), jnp.ones(episodes, bool))
    (_, returns, _), _ = jax.lax.scan(body, start, jnp.arange(env.max_episode_steps))
    return returns


def evaluate_policy(apply: Callable, params: Any, env_id: str, max_episode_steps: int, seed: int,
                    episodes: int) -> np.ndarray:
    """`ddpgx eval` of a run on a task written in JAX: noise-free returns of `episodes` episodes of
    the actor `apply(params, obs)`, from the evaluation key of `seed` (the run's own evaluations,
    if `episodes` is the run's eval_episodes)."""
    env = jax_envs.make(env_id, max_episode_steps)
    *_, eval_key = device_keys(seed)
    run = jax.jit(lambda p, k: rollout_returns(env, lambda obs: apply(p, obs), k, episodes))
    return np.asarray(run(params, eval_key), np.float64)


def insert(replay: Replay, rows: Batch) -> Replay:
    """Store one step of every environment, in order, overwriting the oldest slots when full."""
    capacity, count = replay.data.reward.shape[0], rows.reward.shape[0]
    slots = (replay.pos + jnp.arange(count)) % capacity
    data = jax.tree.map(lambda column, new: column.at[slots].set(new.astype(column.dtype)), replay.data, rows)
    return Replay(data, (replay.pos + count) % capacity, jnp.minimum(replay.size + count, capacity))


def latest(recent: jax.Array, returns: jax.Array, done: jax.Array) -> jax.Array:
    """The last len(recent) of the returns `recent` followed by the finished episodes' (in environment order)."""
    R = recent.shape[0]
    values = jnp.concatenate([recent, returns])
    valid = jnp.concatenate([jnp.ones(R, bool), done])
    after = jnp.cumsum(valid[::-1])[::-1] - valid  # valid entries after each one
    slot = jnp.where(valid & (after < R), R - 1 - after, R)
    return jnp.zeros(R, recent.dtype).at[slot].set(values, mode="drop")


# ----------------------------------------------------------------------------- the run


def train(config: Config, run_dir: str | Path | None, num_seeds: int, resume: bool, overwrite: bool,
          actor: Any, critic: Any, make_env: Any, progress: bool, print_fn: Callable[[str], None],
          on_evaluation: Callable[[Evaluation], None] | None, stop: Callable[[], bool]) -> TrainResult:
    """Train `num_seeds` agents on a task written in JAX; `loop.train` calls it with its own
    arguments. The agent and the seeds' initial and exploration keys are the host loop's
    (`learner.build_agent`, `learner.seed_keys`); `stop()` says that Ctrl-C was pressed."""
    check_config(config, make_env)
    seeds = [config.seed + k for k in range(num_seeds)]
    run = RunDir(run_dir if run_dir is not None else default_run_dir(config), seeds)
    run.check(resume, overwrite)
    E = config.num_envs
    schedule_notes(config, -(-config.total_steps // E) * E, print_fn)
    env = jax_envs.make(config.env_id, config.max_episode_steps)
    agent = build_agent(config, env.action_dim, actor, critic)
    check_memory(config, env, num_seeds)
    program = build(agent, env, config)
    keys = [seed_keys(seed) + device_keys(seed) for seed in seeds]
    init_key, explore_key, reset_key, env_key, sample_key, eval_key = (jnp.stack(k) for k in zip(*keys))
    state = program.init(init_key, explore_key, reset_key)
    meta = {"obs_shape": list(env.obs_shape), "action_low": env.low.tolist(), "action_high": env.high.tolist(),
            "actor": network_name(actor), "critic": network_name(critic)}

    with contextlib.ExitStack() as cleanup:
        run.open(resume, overwrite, print_fn)
        cleanup.callback(run.close)
        step, log_rows = 0, [None] * num_seeds
        if resume:
            state, step, log_rows = restore(run, state, config, print_fn)
        run.write_configs([config.replace(seed=seed) for seed in seeds])
        loggers = [RunLogger(d, config.tensorboard, rows, step) for d, rows in zip(run.seed_dirs, log_rows)]
        for logger in loggers:
            cleanup.callback(logger.close)
        bar = progress_bar(config, step) if progress else None
        if bar is not None:
            cleanup.callback(bar.close)
        saved_step, reported = step, -1
        evaluation: tuple[int, np.ndarray | None] = (-1, None)

        def evaluate() -> np.ndarray:
            nonlocal evaluation
            if evaluation[0] != step:
                evaluation = (step, np.asarray(program.evaluate(state.agent.actor, eval_key), np.float64))
            for s, logger in enumerate(loggers):
                if logger.last_step["eval"] != step:
                    logger.write("eval", eval_row(step, evaluation[1][s]))
            return evaluation[1]

        def save() -> None:
            nonlocal saved_step
            host = jax.device_get(state)
            check_finite(host.agent, step)
            for logger in loggers:
                logger.flush()
            for s, seed_dir in enumerate(run.seed_dirs):
                seed_state = jax.tree.map(lambda x: np.asarray(x[s]), host)
                replay = seed_state.replay
                arrays = ckpt.flatten(seed_state._replace(replay=None))
                buffer = replay_dict(replay) if config.save_buffer else None
                ckpt.save(seed_dir, step, {"step": step, "ddpgx_version": version(),
                                           "config": config.replace(seed=seeds[s]).to_dict(),
                                           "log_rows": loggers[s].rows, **meta}, arrays, None, buffer)
            ckpt.prune(run.seed_dirs, config.keep_checkpoints)
            saved_step = step

        clock = (time.perf_counter(), step)
        while step < config.total_steps and not stop():
            count = min(program.iterations, -(-(next_boundary(step, config) - step) // E))
            state, record = program.chunk(state, env_key, sample_key, jnp.int32(step), jnp.int32(count))
            record = jax.device_get(record)
            previous = step
            now = time.perf_counter()
            rate = (previous + count * E - clock[1]) / max(now - clock[0], 1e-9)
            write_chunk(loggers, record, count, previous, config, rate, seeds)
            step = previous + count * E
            if crossed(previous, step, config.log_every):
                clock = (now, step)
            if bar is not None:
                recent = record.recent[count - 1]
                bar.set_postfix(recent_return=round(float(np.nanmean(recent)), 1) if np.isfinite(recent).any()
                                else None, refresh=False)
                bar.update(step - previous)
            evaluated = crossed(previous, step, config.eval_every)
            if evaluated:
                evaluate()
            if crossed(previous, step, config.checkpoint_every):
                save()
            if evaluated and on_evaluation is not None:
                on_evaluation(Evaluation(step, evaluation[1], saved_step == step))
                reported = step
        if bar is not None:
            bar.close()
        if step != saved_step:
            save()
        if step < config.total_steps:
            print_fn(f"interrupted at step {step}; checkpoint saved in {run.seed_dirs[0] / 'checkpoints'}")
            return TrainResult(config, run.seed_dirs, seeds, np.zeros((num_seeds, 0)), step, interrupted=True)
        returns = evaluate()
        if on_evaluation is not None and reported != step:
            on_evaluation(Evaluation(step, returns, True))
        for seed, r in zip(seeds, returns):
            print_fn(f"final evaluation, seed {seed}, {len(r)} noise-free episodes: "
                     f"mean return {r.mean():.1f} +- {r.std():.1f} (min {r.min():.1f}, max {r.max():.1f})")
        return TrainResult(config, run.seed_dirs, seeds, returns, step)


def next_boundary(step: int, config: Config) -> int:
    """The next step at which the host must act between chunks: an evaluation, a checkpoint, the end."""
    ends = [config.total_steps]
    for every in (config.eval_every, config.checkpoint_every):
        if every > 0:
            ends.append((step // every + 1) * every)
    return min(ends)


def write_chunk(loggers: list[RunLogger], record: Record, count: int, previous: int, config: Config, rate: float,
                seeds: list[int]) -> None:
    """The log rows of a chunk's `count` iterations from step `previous`: every finished episode, and a
    metrics row at each iteration whose step crosses a multiple of `log_every` (as the host loop)."""
    E = config.num_envs
    after = previous + E * (np.arange(count) + 1)
    check_finite_metrics(record, count, after, seeds)
    for i, s, j in zip(*np.nonzero(record.done[:count])):
        loggers[s].write("episodes", {"step": int(after[i]), "env": int(j),
                                      "return": float(record.episode_return[i, s, j]),
                                      "length": int(record.episode_length[i, s, j])})
    for i in np.flatnonzero(after // config.log_every > (after - E) // config.log_every):
        for s, logger in enumerate(loggers):
            recent = record.recent[i, s]
            row = {"step": int(after[i]), "steps_per_s": rate, "episodes": int(record.episodes[i, s]),
                   "recent_return": float(np.nanmean(recent)) if np.isfinite(recent).any() else float("nan")}
            if np.isfinite(record.metrics.critic_loss[i, s]):
                row.update({name: float(value[i, s]) for name, value in record.metrics._asdict().items()})
            logger.write("metrics", row)


def check_finite_metrics(record: Record, count: int, after: np.ndarray, seeds: list[int]) -> None:
    """Stop at the first iteration whose losses are not finite, once the agent has been updated."""
    values = np.stack([np.asarray(v[:count]) for v in record.metrics])  # (3, count, seeds)
    bad = (record.updates[:count] > 0)[None] & ~np.isfinite(values)
    if not bad.any():
        return
    i = int(np.argmax(bad.any(axis=(0, 2))))
    names = [f"{name} of seed {seed}" for k, name in enumerate(Metrics._fields) for s, seed in enumerate(seeds)
             if bad[k, i, s]]
    raise FloatingPointError(
        f"step {int(after[i])}: {', '.join(names)} became non-finite; training stopped and the last good checkpoint "
        f"is kept (lower the learning rates, or check the rewards' scale)")



def check_memory(config: Config, env: JaxEnv, num_seeds: int) -> None:
    """On a CPU, fail early when the replay buffers would not fit in the available memory."""
    if jax.default_backend() != "cpu":
        return
    row = 4 * (2 * int(np.prod(env.obs_shape)) + env.action_dim + 2)
    needed, available = num_seeds * config.buffer_size * row, available_memory()
    if available is not None and needed > available:
        raise ConfigError(f"the replay buffers need {needed / 2**30:.1f} GiB ({num_seeds} seed(s) x "
                          f"{config.buffer_size:,} transitions x {row} bytes) but this machine has "
                          f"{available / 2**30:.1f} GiB available: lower buffer_size (or num_seeds)")


def replay_dict(replay: Replay) -> dict[str, np.ndarray]:
    """One seed's replay as a checkpoint stores it: the filled rows, packed as the host's buffer packs them."""
    size = int(replay.size)
    data = jax.tree.map(lambda x: x[:size], replay.data)
    return {"data": pack(data.obs, data.action, data.reward, data.next_obs, data.terminated),
            "pos": np.int64(replay.pos), "capacity": np.int64(replay.data.reward.shape[0])}


def restore(run: RunDir, template: DeviceState, config: Config,
            print_fn: Callable[[str], None]) -> tuple[DeviceState, int, list[dict[str, int]]]:
    """Every seed's state and replay from the latest checkpoint all seeds have."""
    host = jax.device_get(template)
    paths = ckpt.common_checkpoints(run.seed_dirs)
    states, log_rows, step = [], [], 0
    for s, path in enumerate(paths):
        c = ckpt.Checkpoint(path)
        step = c.step
        if step > config.total_steps:
            raise ConfigError(f"cannot resume {run.root} to total_steps={config.total_steps}: its checkpoint is at "
                              f"step {step}; give a total_steps of at least {step}")
        seed_state = jax.tree.map(lambda x: np.asarray(x[s]), host)
        restored = ckpt.unflatten(seed_state._replace(replay=None), c.arrays, path / "state.npz")
        replay = seed_state.replay
        if c.has_replay:
            saved = c.replay()
            capacity = replay.data.reward.shape[0]
            if int(saved["capacity"]) != capacity:
                raise ckpt.CheckpointError(f"{path} holds a replay buffer of capacity {int(saved['capacity'])}, "
                                           f"this run {capacity}")
            rows = unpack(saved["data"], tuple(replay.data.obs.shape[1:]), replay.data.action.shape[1])
            size = len(saved["data"])
            replay = Replay(jax.tree.map(lambda column, new: _filled(column, new, size), replay.data, rows),
                            np.int32(saved["pos"]), np.int32(size))
        else:
            print_fn(f"warning: {path} has no replay buffer; training continues with an empty one (not an exact "
                     f"resume)")
        states.append(restored._replace(replay=replay))
        log_rows.append(c.meta["log_rows"])
    stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *states)
    return stacked, step, log_rows


def _filled(column: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    column = np.array(column)
    column[:size] = np.reshape(rows, (size, *column.shape[1:]))
    return column
