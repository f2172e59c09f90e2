"""The training loop, top to bottom.

One loop trains one or several independent agents (seeds) at once: every array of the loop's
state has a leading seed axis, and the jitted functions are `jax.vmap`s of the single-agent
functions in `agent.py`. Each seed has its own environments, exploration noise, replay contents,
random streams and run directory.

Per iteration (every environment of every seed steps once):
    1. step the environments with the actions chosen at the end of the previous iteration; store
       (s, a, r, s', terminated) in the replay buffer; update the running statistics of the
       observations and returns (when normalizing);
    2. every `train_freq` iterations, the learning step (`learner.learn_step`): `gradient_steps`
       gradient steps per environment on minibatches sampled at once (one copy to the device), and
       the next actions from the updated actor, in one jitted call; otherwise the next actions
       alone: uniformly random for the first `learning_starts` steps, then clip(pi(s) + noise, -1, 1);
       the noise of an environment restarts with its episode (with parameter noise: the action of
       the environment's perturbed actor, perturbed afresh at each of its episodes, and the
       noise's scale adapted at the first learning step on or after each multiple of
       `param_noise_adapt_every` steps);
    3. log, evaluate, checkpoint when their step comes.
Choosing the next actions in the learning call saves a dispatch per step: 9-10% more steps/s
(benchmarks/next_action.py).

The extensions are pieces around this loop, each off by default: `normalization.py` (the
observations the networks see, the rewards the critic learns from), `replay.py: nstep_rows` (n-step
transitions), `prioritized.py` (which slots a minibatch holds, and their weights), `noise.py` (the
noise schedule and parameter-space noise), the networks' layer normalization. `learner.py:
minibatches` puts the replay pieces together on the host; the jitted update sees only packed rows.

`train` runs this loop, or with `config.workers` the rollout workers' learner (`workers.py`): both
on the machinery of `learner.py` (`Training`, `learn_step`). A task written in JAX (`gymnax/...`,
`brax/...`) goes to the on-device loop (`device_loop.py`), which calls the same `agent.py` update.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ddpgx import learner, normalization, workers
from ddpgx.config import Config, ConfigError, check_seed
from ddpgx.envs import EnvError, EnvFactory, Step
from ddpgx.jax_envs import is_jax_env
from ddpgx.learner import Evaluation, SeedState, TrainResult, Training, count_episodes, crossed, network_obs
from ddpgx.rundir import check_resumable, find_run


def train(
    config: Config | None = None,
    run_dir: str | Path | None = None,
    *,
    num_seeds: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    actor: Any = None,
    critic: Any = None,
    make_env: EnvFactory | None = None,
    progress: bool = True,
    print_fn: Callable[[str], None] = print,
    on_evaluation: Callable[[Evaluation], None] | None = None,
    address: str | None = None,
) -> TrainResult:
    """Train `num_seeds` agents (seeds config.seed, config.seed + 1, ...) and evaluate them.

    `run_dir` receives the run (with several seeds, one `seed_<k>/` directory per seed). With
    `resume`, the run in `run_dir` continues from its latest checkpoint: its config and seeds are
    read from the directory, and `config`, if given, may change only the fields in
    `rundir.RESUMABLE_CHANGES` (see also `resume`). `actor`/`critic` replace the default MLPs (a
    flax module or an (init, apply) pair); `make_env` replaces `gymnasium.make(config.env_id)`.
    `on_evaluation` is called after each evaluation, once the step's checkpoint (if due) is written.
    With `config.workers` > 0, rollout workers on Ray collect the transitions (`workers.py`): on a Ray
    started on this machine, on 127.0.0.1, or on the cluster at `address` (HOST:PORT).

    Ctrl-C stops the run between two iterations, with a checkpoint of where it stopped; before the
    first iteration (while Ray starts, or the run is set up) it raises KeyboardInterrupt once what
    was started is stopped. A second Ctrl-C stops at once.
    """
    config, num_seeds = resolve(config, run_dir, num_seeds, resume)
    if is_jax_env(config.env_id):  # a task written in JAX: the whole step runs on the device
        from ddpgx import device_loop

        with _Interrupt() as interrupt:
            return device_loop.train(config, run_dir, num_seeds, resume, overwrite, actor, critic, make_env, progress,
                                     print_fn, on_evaluation, lambda: interrupt.requested)
    if config.workers and actor is not None:
        raise ConfigError("rollout workers act with the default MLP actor, in numpy; a custom actor needs workers=0")
    with _Interrupt() as interrupt:
        # Ray starts before JAX computes anything (it forks its services); a Ctrl-C meanwhile lets it
        # finish starting, and it is stopped below with everything it started
        ray_cluster = workers.start_ray(config, address) if config.workers else None
        try:
            if interrupt.requested:  # while Ray started: nothing was written yet
                raise KeyboardInterrupt
            with Training(config, run_dir, num_seeds, resume, overwrite, actor, critic, make_env, progress, print_fn,
                          on_evaluation) as t:
                if interrupt.requested:  # while the run was set up: no step to save
                    raise KeyboardInterrupt
                loop = workers.collect_and_learn if config.workers else step_and_learn
                loop(t, lambda: interrupt.requested)
                return t.finish()
        finally:
            if config.workers:
                workers.stop_ray(ray_cluster)


def step_and_learn(t: Training, stop_requested: Callable[[], bool]) -> None:
    """The single-process loop: step the environments, learn, and let `t` log, evaluate and
    checkpoint, until `total_steps` or `stop_requested()`."""
    config, seeds, fns, buffer = t.config, t.seeds, t.fns, t.buffer
    E = config.num_envs
    state, step = t.state, t.step
    while step < config.total_steps and not stop_requested():
        # 1. step the environments and store the transitions
        action = np.asarray(state.action)
        try:
            out = t.envs.step(action)
        except (EnvError, FloatingPointError) as error:
            raise type(error)(f"step {step + E}: {error}; training stopped, the last good checkpoint is "
                              f"kept") from None
        buffer.add(state.obs, action, out.reward, out.next_obs, out.terminated, out.truncated)
        state = observe(state, out, step, config, t.goal_swap)
        state, finished = end_step(state, out)
        previous, step = step, step + E
        success = None if out.success is None else [out.success[s, j] for s, j, _, _ in finished]
        t.log_episodes(step, finished, success)
        # 2. learn and choose the next actions, or only choose them
        key = np.uint32(step)
        if state.perturbed is not None:  # a new perturbed actor for each new episode, and when acting starts
            refresh = state.done | (previous < config.learning_starts <= step)
            if refresh.any():
                state = state._replace(perturbed=fns.perturb(state.agent.actor, state.perturbed,
                                                             state.param_sigma, refresh, state.explore_key, key))
            if crossed(previous, step, config.param_noise_adapt_every):  # the next learning step adapts
                state = state._replace(adapt_pending=np.ones_like(state.adapt_pending))
        if learns(step, config):
            state = learner.learn_step(fns, buffer, state, seeds, config, step, draw=step,
                                       updates=config.gradient_steps * E)
        else:
            action, noise_state = fns.act(state.agent.actor, state.noise, state.perturbed,
                                          network_obs(state, state.obs, config), state.done, state.explore_key, key,
                                          step < config.learning_starts)
            state = state._replace(action=action, noise=noise_state)
        # 3. log, evaluate, checkpoint
        t.after_step(previous, step, state)


def learns(step: int, config: Config) -> bool:
    """Whether the loop learns at the iteration that reaches `step`: every `train_freq` iterations,
    from the `learning_starts`-th step on."""
    return step >= config.learning_starts and (step // config.num_envs) % config.train_freq == 0


def resume(run_dir: str | Path, *, actor: Any = None, critic: Any = None, make_env: EnvFactory | None = None,
           progress: bool = True, print_fn: Callable[[str], None] = print,
           on_evaluation: Callable[[Evaluation], None] | None = None, address: str | None = None,
           **changes: Any) -> TrainResult:
    """Continue the run in `run_dir` from its latest checkpoint, exactly. `changes` may set the fields
    in `rundir.RESUMABLE_CHANGES`, such as a larger `total_steps`; the seeds come from the directory."""
    config, _ = find_run(run_dir)
    return train(config.replace(**changes), run_dir, resume=True, actor=actor, critic=critic, make_env=make_env,
                 progress=progress, print_fn=print_fn, on_evaluation=on_evaluation, address=address)


def resolve(config: Config | None, run_dir: str | Path | None, num_seeds: int | None,
            resume: bool) -> tuple[Config, int]:
    """The config and number of seeds of a run: given, or read back from the run directory to resume."""
    if resume:
        if run_dir is None:
            raise ConfigError("resuming needs the run directory")
        saved, saved_seeds = find_run(run_dir)
        if num_seeds not in (None, saved_seeds):
            raise ConfigError(f"{run_dir} holds {saved_seeds} seed(s), not {num_seeds}: leave num_seeds out to resume it")
        if config is not None:
            check_resumable(saved, config, Path(run_dir))
        config, num_seeds = config or saved, saved_seeds
    if config is None:
        raise ConfigError("give a Config (for example ddpgx.Config() or ddpgx.from_preset(...)), or resume a run")
    num_seeds = 1 if num_seeds is None else num_seeds
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ConfigError(f"invalid num_seeds={num_seeds!r}: must be an integer of at least 1")
    check_seed(config.seed, "seed", num_seeds)
    return config, num_seeds


def observe(state: SeedState, out: Step, step: int, config: Config, goal_swap: np.ndarray | None = None) -> SeedState:
    """The running statistics after a step whose transitions start from `state.obs`: the observation
    statistics take the stored observations (until `obs_norm_until`; `learner.count_observations`),
    the return statistics every environment's discounted return."""
    if config.obs_norm_until == 0 or step < config.obs_norm_until:
        state = learner.count_observations(state, state.obs, goal_swap)
    if state.return_stats is not None:
        returns, stats = normalization.update_returns(state.returns, state.return_stats, out.reward,
                                                      out.terminated | out.truncated, config.gamma)
        state = state._replace(returns=returns, return_stats=stats)
    return state


def end_step(state: SeedState, out: Step) -> tuple[SeedState, list[tuple[int, int, float, int]]]:
    """The episode bookkeeping after a step: returns the new state and the finished episodes as
    (seed index, env, return, length)."""
    done = out.terminated | out.truncated
    episode_return, episode_length = state.episode_return + out.reward, state.episode_length + 1
    finished = [(int(s), int(j), float(episode_return[s, j]), int(episode_length[s, j])) for s, j in zip(*np.nonzero(done))]
    state = count_episodes(state, finished)
    return state._replace(obs=out.obs, done=done, episode_return=np.where(done, 0.0, episode_return),
                          episode_length=np.where(done, 0, episode_length)), finished


class _Interrupt:
    """Turns Ctrl-C into a flag the loop checks between iterations, so the state saved is consistent."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self) -> _Interrupt:
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C stays Python's default
            self.previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

