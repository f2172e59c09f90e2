"""The learner: what the single-process loop (`loop.py`) and the rollout workers' learner
(`workers.py`) share.

- the per-seed state both loops carry (`SeedState`), its initial value and the jitted functions
  that act and learn on it (`step_functions`);
- the learning step, written once (`learn_step`): minibatches drawn from the replay buffer and put
  together on the host (`minibatches`), the jitted update with the next actions in the same call,
  the losses checked finite, the priorities updated;
- one training run's machinery (`Training`): environments, agent, buffer, the locked run directory,
  its logs, evaluations and checkpoints, the state restored on resume.

A loop steps environments (or takes the workers' chunks), calls `learn_step` when its schedule
says so, and hands the state to `Training.after_step`. Both loops count in environment steps: the
learning step anneals prioritized replay's exponent and the noise schedule by them. The equations
themselves are `agent.py`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddpgx import checkpoint as ckpt
from ddpgx import her
from ddpgx import noise as noises
from ddpgx import normalization
from ddpgx.agent import DDPG, AgentState, Metrics
from ddpgx.config import Config, ConfigError
from ddpgx.envs import EnvFactory, Envs, env_factory, with_time_limit
from ddpgx.evaluate import Evaluator
from ddpgx.logging import RunLogger
from ddpgx.networks import actor_from_config, as_network, critic_from_config, weight_matrices
from ddpgx.noise import ParamNoise, Schedule, make_noise, reset as reset_noise, schedule_from_config
from ddpgx.normalization import MeanStd
from ddpgx.prioritized import Priorities, beta_at, importance_weights
from ddpgx.replay import ReplayBuffer, columns, sample_indices, stores_truncated, unpack
from ddpgx.rundir import RunDir, default_run_dir

RECENT_EPISODES = 10


class SeedState(NamedTuple):
    """Everything one seed's training continues from, the replay buffer aside. The loop holds one
    per seed stacked on a leading axis; a checkpoint holds one, array by array."""

    agent: AgentState
    explore_key: jax.Array
    noise: jax.Array
    """Exploration noise state, (envs, action_dim)."""
    obs: np.ndarray
    """The observations the next actions are taken from, (envs, *obs_shape)."""
    action: jax.Array
    """The actions the next step executes, in [-1, 1], (envs, action_dim)."""
    done: np.ndarray
    """(envs,): the episode ended at the last step, so its noise restarts."""
    episode_return: np.ndarray
    episode_length: np.ndarray
    episodes: np.ndarray
    """Finished training episodes."""
    recent: np.ndarray
    """The returns of the last RECENT_EPISODES finished episodes, oldest first; NaN before."""
    metrics: Metrics
    """The last update's losses and mean Q; NaN before the first update."""
    obs_stats: MeanStd | None = None
    """Observation normalization: running count, mean and variance of the stored observations, flattened."""
    return_stats: MeanStd | None = None
    """Reward normalization: running count, mean and variance of the discounted returns."""
    returns: np.ndarray | None = None
    """Reward normalization: (envs,) each environment's discounted return so far."""
    perturbed: Any = None
    """Parameter noise: each environment's perturbed actor, a leading (envs,) axis on the actor's parameters."""
    param_sigma: Any = None
    """Parameter noise: the standard deviation of the parameter noise, ()."""
    adapt_pending: np.ndarray | None = None
    """Parameter noise: () bool, an adaptation step was crossed and the next learning call adapts."""


class Evaluation(NamedTuple):
    """What `train(on_evaluation=...)` receives after each noise-free evaluation."""

    step: int
    returns: np.ndarray
    """(seeds, eval_episodes) noise-free returns."""
    checkpointed: bool
    """Whether the run's checkpoint of this step is written (it resumes from here)."""
    success: np.ndarray | None = None
    """(seeds, eval_episodes) each episode's final `info["is_success"]`, NaN where the environment reports none."""


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: per seed, its run directory and final noise-free returns."""

    config: Config
    run_dirs: list[Path]
    seeds: list[int]
    final_returns: np.ndarray  # (seeds, eval_episodes); empty if interrupted
    step: int
    interrupted: bool = False

    @property
    def run_dir(self) -> Path:
        """The run's directory (with several seeds, the one holding `seed_<k>/`)."""
        return self.run_dirs[0] if len(self.run_dirs) == 1 else self.run_dirs[0].parent

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.final_returns))


def build_agent(config: Config, action_dim: int, actor: Any = None, critic: Any = None) -> DDPG:
    """DDPG with the config's MLPs and Adam optimizers, or the given networks.

    Equal networks (flax modules with equal fields, or the same functions) and equal constants give
    the same agent object, so that `step_functions` finds its jitted functions again: a second run
    in the same process (a notebook, a test) neither traces nor compiles them again. Networks that
    cannot be hashed give a new agent every time."""
    parts = (actor if actor is not None else actor_from_config(config, action_dim),
             critic if critic is not None else critic_from_config(config),
             config.actor_lr, config.critic_lr, config.critic_weight_decay, config.gamma, config.tau)
    return _shared_agent(*parts) if hashable(parts) else _new_agent(*parts)


def _new_agent(actor: Any, critic: Any, actor_lr: float, critic_lr: float, critic_weight_decay: float,
               gamma: float, tau: float) -> DDPG:
    critic_optimizer = optax.adam(critic_lr)
    if critic_weight_decay > 0:  # L2 on the critic's weight matrices, added to the gradient before Adam
        critic_optimizer = optax.chain(optax.add_decayed_weights(critic_weight_decay, mask=weight_matrices),
                                       critic_optimizer)
    return DDPG(actor=as_network(actor, "actor"), critic=as_network(critic, "critic"),
                actor_optimizer=optax.adam(actor_lr), critic_optimizer=critic_optimizer, gamma=gamma, tau=tau)


_shared_agent = functools.lru_cache(maxsize=8)(_new_agent)


def hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class StepFunctions(NamedTuple):
    """The jitted functions of the loop: single-agent code, vmapped over the leading seed axis (`learn`
    through `over_seeds`)."""

    act: Callable
    """(actor, noise_state, perturbed, obs, done, key, step, random) -> (action, noise_state): uniformly
    random actions if `random` (static), else clip(pi(s) + noise, -1, 1), the noise restarting where
    done; with parameter noise, each environment's perturbed actor's action (`perturbed`, else None)."""
    learn: Callable
    """(agent_state, rows, noise_state, perturbed, param_sigma, obs, done, key, step, adapt) ->
    (agent_state, metrics, action, noise_state, param_sigma, td_errors): gradient steps on packed
    minibatch rows, split on the device, then `act` with the updated actor; with parameter noise and
    `adapt` (static), the parameter noise's scale adapts first. `td_errors` (prioritized replay,
    else None) are every minibatch's Q(s, a) - y. The agent state is donated: XLA updates parameters
    and optimizer states in place."""
    policy: Callable
    """(actor, obs) -> pi(s), without noise."""
    perturb: Callable
    """(actor, perturbed, param_sigma, refresh, key, step) -> perturbed: the environments where
    `refresh` get a new perturbed copy of the actor (parameter noise)."""
    init: Callable
    """(key, obs, action) -> agent_state: one seed's networks, targets and optimizer states
    (`DDPG.init`), shaped by an example observation and action."""


def over_seeds(f: Callable, in_axes: tuple[int | None, ...]) -> Callable:
    """`jax.vmap(f, in_axes)` over the leading seed axis, except that with one seed `f` runs on that
    seed's values (the axis taken off, and put back on the results): XLA compiles an update mapped
    over an axis of size one into slower code than the update alone, 1.5 times as slow with a
    layer-normalized critic (benchmarks/seed_axis.py). The seed count is read from the shapes when
    the function is traced."""
    mapped = jax.vmap(f, in_axes=in_axes)

    def call(*args: Any) -> Any:
        seeded = [leaf for arg, axis in zip(args, in_axes) if axis == 0 for leaf in jax.tree.leaves(arg)]
        if seeded[0].shape[0] != 1:
            return mapped(*args)
        first = [jax.tree.map(lambda x: x[0], arg) if axis == 0 else arg for arg, axis in zip(args, in_axes)]
        return jax.tree.map(lambda x: x[None], f(*first))

    return call


PERTURB_STREAM, ADAPT_STREAM = 1, 2
"""Sub-streams of an iteration's exploration key: the perturbed actors, the adaptation's probe copy."""


def step_functions(agent: DDPG, noise: Any, num_envs: int, action_dim: int, obs_shape: tuple[int, ...],
                   schedule: Schedule | None = None, extra: tuple[str, ...] = (),
                   prioritized: bool = False) -> StepFunctions:
    """`extra` names the optional columns of the minibatch rows (`replay.columns`). The same agent
    object (`build_agent`) with the same noise and shapes gets the same functions, which JAX traced
    and compiled the first time."""
    schedule = schedule or Schedule("constant", getattr(noise, "sigma", 0.0))
    key = (agent, type(noise), noise, int(num_envs), int(action_dim), tuple(obs_shape), schedule, tuple(extra),
           bool(prioritized))
    return _shared_step_functions(*key) if hashable(key) else _new_step_functions(*key)


def _new_step_functions(agent: DDPG, noise_type: type, noise: Any, num_envs: int, action_dim: int,
                        obs_shape: tuple[int, ...], schedule: Schedule, extra: tuple[str, ...],
                        prioritized: bool) -> StepFunctions:
    """The noise's type is part of the key: noises are named tuples, equal to another type's with
    the same values."""
    param = isinstance(noise, ParamNoise)

    def act(actor, noise_state, perturbed, obs, done, key, step, random):
        if num_envs == 0:  # a learner fed by rollout workers acts in no environment
            return jnp.zeros((0, action_dim)), noise_state
        key = jax.random.fold_in(key, step)
        noise_state = reset_noise(noise_state, done)
        if random:
            return jax.random.uniform(key, (num_envs, action_dim), minval=-1.0, maxval=1.0), noise_state
        if param:
            action = jax.vmap(lambda p, o: agent.act(p, o[None])[0])(perturbed, obs)
            return jnp.clip(action, -1.0, 1.0), noise_state
        eps, noise_state = noise.sample(noise_state, key, schedule(step))
        return jnp.clip(agent.act(actor, obs) + eps, -1.0, 1.0), noise_state

    def perturb(actor, perturbed, sigma, refresh, key, step):
        keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, step), PERTURB_STREAM), num_envs)
        fresh = jax.vmap(lambda k: noises.perturb(actor, sigma, k))(keys)
        return jax.tree.map(lambda new, old: jnp.where(refresh.reshape(-1, *([1] * (old.ndim - 1))), new, old),
                            fresh, perturbed)

    def learn(state, rows, noise_state, perturbed, sigma, obs, done, key, step, adapt):
        batches = unpack(rows, obs_shape, action_dim, extra)
        state, metrics, td_errors = agent.update_many(state, batches)
        if param and adapt:
            probe_key = jax.random.fold_in(jax.random.fold_in(key, step), ADAPT_STREAM)
            probe = noises.perturb(state.actor, sigma, probe_key)
            measured = noises.distance(agent.act, state.actor, probe, batches.obs[-1])
            sigma = noises.adapt(sigma, measured, schedule(step), noise.factor)
        action, noise_state = act(state.actor, noise_state, perturbed, obs, done, key, step, False)
        return state, metrics, action, noise_state, sigma, td_errors if prioritized else None

    return StepFunctions(
        act=jax.jit(jax.vmap(act, in_axes=(0, 0, 0, 0, 0, 0, None, None)), static_argnums=7),
        learn=jax.jit(over_seeds(learn, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None, None)), donate_argnums=0,
                      static_argnums=9),
        policy=jax.jit(jax.vmap(agent.act)),
        perturb=jax.jit(jax.vmap(perturb, in_axes=(0, 0, 0, 0, 0, None))),
        init=jax.jit(agent.init),
    )


_shared_step_functions = functools.lru_cache(maxsize=8)(_new_step_functions)


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """The named keys of a seed: one initializes the networks, one drives exploration."""
    init_key, explore_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, explore_key


def initial_state(noise: Any, obs: np.ndarray, action_dim: int, seeds: list[int], fns: StepFunctions,
                  config: Config) -> SeedState:
    """Every seed's state before its first step, stacked on the seed axis (numpy), from the first
    observations (seeds, envs, *obs_shape), with the first actions chosen by `fns.act` (random ones,
    or the initial policy's with noise), and the extensions' state if the config turns them on."""
    S, E = obs.shape[:2]
    obs_example = np.zeros((1, *obs.shape[2:]), np.float32)
    action_example = np.zeros((1, action_dim), np.float32)
    keys = [seed_keys(seed) for seed in seeds]
    nan = np.full(S, np.nan, np.float32)
    state = SeedState(
        agent=stack([fns.init(init_key, obs_example, action_example) for init_key, _ in keys]),
        explore_key=np.stack([np.asarray(explore_key) for _, explore_key in keys]),
        noise=np.stack([noise.init((E, action_dim))] * S),
        obs=obs,
        action=np.zeros((S, E, action_dim), np.float32),
        done=np.zeros((S, E), bool),
        episode_return=np.zeros((S, E)),
        episode_length=np.zeros((S, E), np.int64),
        episodes=np.zeros(S, np.int64),
        recent=np.full((S, RECENT_EPISODES), np.nan),
        metrics=Metrics(nan, nan, nan),
    )
    if config.obs_norm:
        state = state._replace(obs_stats=normalization.init(S, (int(np.prod(obs.shape[2:])),)))
    if config.reward_norm:
        state = state._replace(return_stats=normalization.init(S), returns=np.zeros((S, E)))
    if isinstance(noise, ParamNoise):
        sigma = np.full(S, noise.sigma, np.float32)
        copies = jax.tree.map(lambda x: np.repeat(np.asarray(x)[:, None], E, axis=1), state.agent.actor)
        perturbed = fns.perturb(state.agent.actor, copies, sigma, np.ones((S, E), bool), state.explore_key,
                                np.uint32(0))
        state = state._replace(perturbed=jax.tree.map(np.asarray, perturbed), param_sigma=sigma,
                               adapt_pending=np.zeros(S, bool))
    action, noise_state = fns.act(state.agent.actor, state.noise, state.perturbed, network_obs(state, state.obs, config),
                                  state.done, state.explore_key, np.uint32(0), config.learning_starts > 0)
    return state._replace(action=np.asarray(action), noise=np.asarray(noise_state))


def network_obs(state: SeedState, obs: np.ndarray, config: Config) -> np.ndarray:
    """The observations (seeds, ..., *obs_shape) as the networks see them: normalized if the run
    normalizes observations."""
    if state.obs_stats is None:
        return obs
    flat = obs.reshape(*obs.shape[:2], int(np.prod(obs.shape[2:])))  # (seeds, 0, ...) with rollout workers
    return normalization.normalize_obs(state.obs_stats, flat, config.obs_norm_clip).reshape(obs.shape)


def count_observations(state: SeedState, obs: np.ndarray, goal_swap: np.ndarray | None = None) -> SeedState:
    """The observation statistics with stored observations (seeds, count, ...) added, if the run
    normalizes observations. With `goal_swap` (`Envs.goal_swap`), the observations also count with
    their achieved and desired goals exchanged, so that both goals get the same statistics."""
    if state.obs_stats is None or obs.shape[1] == 0:
        return state
    flat = obs.reshape(*obs.shape[:2], -1)
    if goal_swap is not None:  # the other coordinates count twice, which leaves their statistics as they are
        flat = np.concatenate([flat, flat[..., goal_swap]], axis=1)
    return state._replace(obs_stats=normalization.update(state.obs_stats, flat))


def minibatch_columns(config: Config) -> tuple[str, ...]:
    """The optional columns of the rows a learning call receives."""
    return ("discount",) * (config.n_step > 1) + ("weight",) * config.prioritized


def minibatches(buffer: ReplayBuffer, state: SeedState, seeds: list[int], draw: int, step: int,
                shape: tuple[int, ...], config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The packed rows of a learning call's minibatches (seeds, *shape, width), and their slots.

    Slots are drawn uniformly (`replay.sample_indices`) or by priority (`prioritized.Priorities`);
    the rows are one-step transitions or n-step ones (`ReplayBuffer.nstep_rows`); their observations
    are normalized and their rewards scaled as the run says; prioritized replay appends the
    importance weights, their exponent annealed over `step`, the environment steps so far. `draw`
    keys the draw: a different number for each learning call of a run."""
    if buffer.priorities is not None:
        index, probabilities = buffer.priorities.sample(seeds, draw, buffer.size, shape)
    elif buffer.hindsight is not None:  # finished episodes only
        index = buffer.hindsight.sample_indices(seeds, draw, shape)
    else:
        index = sample_indices(seeds, draw, buffer.size, shape)
    if config.n_step > 1:
        rows = buffer.nstep_rows(index, config.n_step, config.gamma, config.num_envs)
    else:
        rows = buffer.sample_rows(index)
    if buffer.hindsight is not None:
        rows = buffer.hindsight.relabel(rows, index, seeds, draw, buffer.data, buffer.columns)
    cols = columns(buffer.obs_shape, buffer.action_dim)
    if state.obs_stats is not None:
        for name in ("obs", "next_obs"):
            rows[..., cols[name]] = normalization.normalize_obs(state.obs_stats, rows[..., cols[name]],
                                                                config.obs_norm_clip)
    if config.reward_scale != 1.0 or state.return_stats is not None:
        factor = normalization.reward_factor(config.reward_scale, state.return_stats)
        rows[..., cols["reward"]] *= np.reshape(factor, (-1,) + (1,) * (rows.ndim - 1)).astype(np.float32)
    if buffer.priorities is not None:
        beta = beta_at(step, config.priority_beta, config.priority_beta_steps)
        weights = importance_weights(probabilities, buffer.size, beta)
        rows = np.concatenate([rows, weights[..., None].astype(np.float32)], axis=-1)
    return rows, index


def learn_step(fns: StepFunctions, buffer: ReplayBuffer, state: SeedState, seeds: list[int], config: Config,
               step: int, draw: int, updates: int) -> SeedState:
    """One learning call, the one both loops make: `updates` gradient steps per seed on minibatches
    of `batch_size` drawn at once (`minibatches`), then the next actions from the updated actor, in
    one jitted call (`StepFunctions.learn`); the losses checked finite; the sampled slots'
    priorities set to their new TD errors (prioritized replay).

    `step` is the environment steps so far: it anneals prioritized replay's exponent and the noise
    schedule, and keys the next actions. `draw` keys the minibatches: the single-process loop, which
    learns at most once per step, passes the step; the workers' learner, which learns many times
    after a chunk, the gradient steps made so far. With parameter noise, the call adapts its scale
    when an adaptation is pending (`adapt_pending`, set by the loop when it crosses a multiple of
    `param_noise_adapt_every`)."""
    rows, index = minibatches(buffer, state, seeds, draw, step, (updates, config.batch_size), config)
    adapt = state.adapt_pending is not None and bool(state.adapt_pending.any())
    agent_state, metrics, action, noise_state, param_sigma, td_errors = fns.learn(
        state.agent, rows, state.noise, state.perturbed, state.param_sigma, network_obs(state, state.obs, config),
        state.done, state.explore_key, np.uint32(step), adapt)
    state = state._replace(agent=agent_state, metrics=check_finite_metrics(metrics, step, seeds), action=action,
                           noise=noise_state, param_sigma=param_sigma)
    if adapt:
        state = state._replace(adapt_pending=np.zeros_like(state.adapt_pending))
    if buffer.priorities is not None:
        buffer.priorities.update(index, np.asarray(td_errors))
    return state


def count_episodes(state: SeedState, finished: list[tuple[int, int, float, int]]) -> SeedState:
    """The state with finished episodes (seed index, env, return, length) counted and their
    returns among the recent ones."""
    recent, episodes = state.recent.copy(), state.episodes.copy()
    for s, _, episode_return, _ in finished:
        recent[s] = np.append(recent[s, 1:], episode_return)
        episodes[s] += 1
    return state._replace(recent=recent, episodes=episodes)


def stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def take(tree: Any, index: int) -> Any:
    """Seed `index`'s slice of every leaf, on the host: indexed as a numpy array, because indexing a
    JAX array runs (and first compiles) a program per leaf shape."""
    return jax.tree.map(lambda x: np.asarray(x)[index], tree)


def network_name(network: Any) -> str:
    """How a checkpoint records a network: 'default' (the config's MLP) or the custom network's type."""
    return "default" if network is None else f"{type(network).__module__}.{type(network).__qualname__}"


class Training:
    """One training run's machinery, around the loop that drives it: the environments, agent,
    buffer and jitted functions (all made before the run directory is written, so that a run that
    cannot start leaves nothing behind), the locked run directory, its logs and checkpoints, the
    state restored on resume; `after_step` logs, evaluates and checkpoints when their step comes, and
    `finish` ends the run. The loop keeps `state` and `step` up to date through `after_step`.
    """

    def __init__(self, config: Config, run_dir: str | Path | None, num_seeds: int, resume: bool, overwrite: bool,
                 actor: Any, critic: Any, make_env: EnvFactory | None, progress: bool,
                 print_fn: Callable[[str], None], on_evaluation: Callable[[Evaluation], None] | None):
        self.config, self.print_fn, self.on_evaluation = config, print_fn, on_evaluation
        self.seeds = [config.seed + k for k in range(num_seeds)]
        self.run = RunDir(run_dir if run_dir is not None else default_run_dir(config), self.seeds)
        self.run.check(resume, overwrite)
        self.networks = {"actor": network_name(actor), "critic": network_name(critic)}
        S, E = num_seeds, config.num_envs
        # the single-process loop steps all environments at once; the workers' last chunk is cut at total_steps
        last_step = config.total_steps if config.workers else -(-config.total_steps // E) * E
        schedule_notes(config, last_step, print_fn)
        self.cleanup = contextlib.ExitStack()
        try:
            self.make_env = with_time_limit(make_env, config.max_episode_steps) if make_env else \
                env_factory(config.env_id, config.max_episode_steps)
            # with rollout workers, the learner steps no environment: its per-seed state has no environments
            self.envs = Envs(self.make_env, 1, 1, config.env_id) if config.workers else \
                Envs(self.make_env, S, E, config.env_id)
            self.cleanup.callback(self.envs.close)
            A, obs_shape = self.envs.action_dim, self.envs.obs_shape
            self.agent = build_agent(config, A, actor, critic)
            self.noise = make_noise(config.noise, config.noise_sigma, config.ou_theta, config.ou_dt)
            priorities = Priorities(S, config.buffer_size, config.priority_alpha, config.priority_eps) \
                if config.prioritized else None
            hindsight = her.from_config(config, self.envs, S) if config.her else None
            self.goal_swap = self.envs.goal_swap() if config.obs_norm else None
            self.buffer = ReplayBuffer(config.buffer_size, obs_shape, A, S, fills=config.total_steps + E,
                                       truncated=stores_truncated(config), priorities=priorities,
                                       hindsight=hindsight)
            learner_envs = 0 if config.workers else E
            self.fns = step_functions(self.agent, self.noise, learner_envs, A, obs_shape, schedule_from_config(config),
                                      minibatch_columns(config), config.prioritized)
            obs = np.zeros((S, 0, *obs_shape), np.float32) if config.workers else self.envs.reset(self.seeds)
            state = initial_state(self.noise, obs, A, self.seeds, self.fns, config)
            self.evaluator = Evaluator(self.make_env, self.seeds, config.eval_episodes, config.env_id)
            self.cleanup.callback(self.evaluator.close)

            self.run.open(resume, overwrite, print_fn)
            self.cleanup.callback(self.run.close)
            step, log_rows = 0, [None] * S
            if resume:
                state, step, log_rows = restore(self.run, state, self.buffer, self.envs, config, print_fn)
            self.run.write_configs([config.replace(seed=seed) for seed in self.seeds])
            self.loggers = [RunLogger(d, config.tensorboard, rows, step) for d, rows in zip(self.run.seed_dirs, log_rows)]
            for logger in self.loggers:
                self.cleanup.callback(logger.close)
            self.bar = progress_bar(config, step) if progress else None
            if self.bar is not None:
                self.cleanup.callback(self.bar.close)
        except BaseException:
            self.cleanup.close()
            raise
        self.state, self.step = state._replace(agent=jax.device_put(state.agent)), step
        self.saved_step, self.reported, self.clock = step, -1, (time.perf_counter(), step)
        self.evaluation: tuple[int, np.ndarray | None] = (-1, None)
        self.success: np.ndarray | None = None

    def __enter__(self) -> Training:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup.close()

    def log_episodes(self, step: int, finished: list[tuple[int, int, float, int]],
                     success: list[float] | None = None) -> None:
        """Finished episodes (seed index, env, return, length); `success`, one per episode, NaN where unknown."""
        for i, (s, env, episode_return, length) in enumerate(finished):
            row = {"step": step, "env": env, "return": episode_return, "length": length}
            if success is not None and np.isfinite(success[i]):
                row["success"] = float(success[i])
            self.loggers[s].write("episodes", row)

    def after_step(self, previous: int, step: int, state: SeedState) -> None:
        """Record the loop's new state, then log, evaluate and checkpoint if their step came."""
        self.state, self.step = state, step
        config = self.config
        if crossed(previous, step, config.log_every):
            now = time.perf_counter()
            rate, self.clock = (step - self.clock[1]) / max(now - self.clock[0], 1e-9), (now, step)
            for s, logger in enumerate(self.loggers):
                logger.write("metrics", metrics_row(state, s, step, rate))
            if self.bar is not None:
                self.bar.set_postfix(recent_return=round(float(np.nanmean(state.recent)), 1)
                                     if np.isfinite(state.recent).any() else None, refresh=False)
        evaluated = crossed(previous, step, config.eval_every)
        if evaluated:
            self.evaluate()
        if crossed(previous, step, config.checkpoint_every):
            self.save_checkpoint()
        if evaluated and self.on_evaluation is not None:
            self.on_evaluation(Evaluation(step, self.evaluation[1], self.saved_step == step, self.success))
            self.reported = step
        if self.bar is not None:
            self.bar.update(step - previous)

    def evaluate(self) -> np.ndarray:
        """Noise-free returns (seeds, episodes) at this step, logged once per step."""
        if self.evaluation[0] != self.step:
            state, config = self.state, self.config
            self.evaluation = (self.step, self.evaluator(
                lambda obs: self.fns.policy(state.agent.actor, network_obs(state, obs, config))))
            self.success = self.evaluator.success
        for s, logger in enumerate(self.loggers):
            if logger.last_step["eval"] != self.step:
                logger.write("eval", eval_row(self.step, self.evaluation[1][s], self.success[s]))
        return self.evaluation[1]

    def save_checkpoint(self) -> None:
        """Every seed's checkpoint of this step (then the older ones are pruned)."""
        state, step, config = self.state, self.step, self.config
        check_finite(state.agent, step)
        for logger in self.loggers:
            logger.flush()
        for s, seed_dir in enumerate(self.run.seed_dirs):
            meta = {"step": step, "ddpgx_version": version(), "config": config.replace(seed=self.seeds[s]).to_dict(),
                    "log_rows": self.loggers[s].rows, **self.networks, "obs_shape": list(self.envs.obs_shape),
                    "action_low": self.envs.scaler.low.tolist(), "action_high": self.envs.scaler.high.tolist(),
                    **({"obs_layout": self.envs.layout.to_json()} if self.envs.layout else {})}
            env_state = None if config.workers else self.envs.get_state(s)
            ckpt.save(seed_dir, step, meta, ckpt.flatten(take(state, s)), env_state,
                      self.buffer.state_dict(s) if config.save_buffer else None)
        ckpt.prune(self.run.seed_dirs, config.keep_checkpoints)
        self.saved_step = step

    def finish(self) -> TrainResult:
        """The last checkpoint and the final evaluation (none when interrupted)."""
        config, step, S = self.config, self.step, len(self.seeds)
        if self.bar is not None:
            self.bar.close()
        if step != self.saved_step:
            self.save_checkpoint()
        if step < config.total_steps:
            self.print_fn(f"interrupted at step {step}; checkpoint saved in {self.run.seed_dirs[0] / 'checkpoints'}")
            return TrainResult(config, self.run.seed_dirs, self.seeds, np.zeros((S, 0)), step, interrupted=True)
        returns = self.evaluate()
        if self.on_evaluation is not None and self.reported != step:
            self.on_evaluation(Evaluation(step, returns, True, self.success))
        for seed, r, success in zip(self.seeds, returns, self.success):
            rate = f", success rate {np.mean(success):.2f}" if np.isfinite(success).all() else ""
            self.print_fn(f"final evaluation, seed {seed}, {len(r)} noise-free episodes: "
                          f"mean return {r.mean():.1f} +- {r.std():.1f} (min {r.min():.1f}, max {r.max():.1f}){rate}")
        return TrainResult(config, self.run.seed_dirs, self.seeds, returns, step)


def restore(run: RunDir, template: SeedState, buffer: ReplayBuffer, envs: Envs, config: Config,
            print_fn: Callable[[str], None]) -> tuple[SeedState, int, list[dict[str, int]]]:
    """Every seed's state, the buffer and the environments from the latest checkpoint all seeds have."""
    paths = ckpt.common_checkpoints(run.seed_dirs)
    states, log_rows = [], []
    for s, path in enumerate(paths):
        c = ckpt.Checkpoint(path)
        step = c.step
        if c.step > config.total_steps:
            raise ConfigError(f"cannot resume {run.root} to total_steps={config.total_steps}: its checkpoint is at "
                              f"step {c.step}; give a total_steps of at least {c.step}")
        # parameter-noise checkpoints written before the pending flag existed: nothing is pending
        arrays = {".adapt_pending": np.zeros((), bool), **c.arrays}
        states.append(ckpt.unflatten(take(template, s), arrays, path / "state.npz"))
        log_rows.append(c.meta["log_rows"])
        if c.env_state is not None:
            envs.set_state(s, c.env_state)
        if c.has_replay:
            buffer.load_state_dict(s, c.replay())
        else:
            print_fn(f"warning: {path} has no replay buffer; training continues with an empty one (not an exact resume)")
    return stack(states), step, log_rows


def schedule_notes(config: Config, last_step: int, print_fn: Callable[[str], None]) -> None:
    """Notes on a schedule that does not end where the config seems to say: every loop prints them."""
    E = config.num_envs
    if last_step != config.total_steps:
        print_fn(f"note: total_steps={config.total_steps} is not a multiple of num_envs={E}: every iteration "
                 f"steps all {E} environments, so the run ends at step {last_step}")
    if config.learning_starts > last_step:
        print_fn(f"note: learning_starts={config.learning_starts} > total_steps={config.total_steps}: the run "
                 f"acts randomly throughout and makes no gradient step")


def progress_bar(config: Config, step: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=config.total_steps, initial=min(step, config.total_steps), unit="step", dynamic_ncols=True,
                desc=config.env_id, mininterval=0.5 if sys.stderr.isatty() else 30)


def metrics_row(state: SeedState, s: int, step: int, rate: float) -> dict[str, Any]:
    """Seed s's row of metrics.csv; the losses stay empty before the first update."""
    recent = state.recent[s]
    row = {"step": step, "steps_per_s": rate, "episodes": int(state.episodes[s]),
           "recent_return": float(np.nanmean(recent)) if np.isfinite(recent).any() else float("nan")}
    if np.isfinite(state.metrics.critic_loss[s]):
        row.update({name: float(value[s]) for name, value in state.metrics._asdict().items()})
    return row


def eval_row(step: int, returns: np.ndarray, success: np.ndarray | None = None) -> dict[str, Any]:
    """A row of eval.csv; the success rate is left empty unless every episode reported is_success."""
    row = {"step": step, "mean_return": float(returns.mean()), "std_return": float(returns.std()),
           "episodes": len(returns), "min_return": float(returns.min()), "max_return": float(returns.max())}
    if success is not None and np.isfinite(success).all():
        row["success_rate"] = float(np.mean(success))
    return row


def crossed(previous: int, step: int, every: int) -> bool:
    return every > 0 and step // every > previous // every


def check_finite_metrics(metrics: Metrics, step: int, seeds: list[int]) -> Metrics:
    """Stop at the first update whose losses are not finite (the parameters would be next)."""
    values = Metrics(*(np.asarray(m) for m in metrics))
    if all(np.isfinite(v).all() for v in values):
        return values
    bad = [f"{name} of seed {seed}" for name, row in values._asdict().items() for seed, v in zip(seeds, row)
           if not np.isfinite(v)]
    raise FloatingPointError(
        f"step {step}: {', '.join(bad)} became non-finite; training stopped and the last good checkpoint "
        f"is kept (lower the learning rates, or check the rewards' scale)"
    )


def check_finite(state: AgentState, step: int) -> None:
    for name in ("actor", "critic", "actor_target", "critic_target"):
        if not all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(getattr(state, name))):
            raise FloatingPointError(
                f"step {step}: the {name} parameters became non-finite; training stopped and the "
                f"checkpoint was not written, the last good one is kept"
            )


def version() -> str:
    """ddpgx's version, written into every checkpoint."""
    from ddpgx import __version__

    return __version__