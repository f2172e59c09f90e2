"""The training loop, top to bottom.

One loop trains one or several independent agents (seeds) at once: the agent state has a leading
seed axis and the jitted functions are `jax.vmap`s of the single-agent functions in `agent.py`.
Each seed has its own environments, exploration noise, replay contents, random streams and run
directory, and matches a run trained alone with that seed.

Per iteration (every environment of every seed steps once):
    1. act: uniformly random actions for the first `learning_starts` steps, then
       clip(pi(s) + noise, -1, 1); the noise state of an environment restarts with its episode;
    2. step the environments; store (s, a, r, s', terminated) in the replay buffer;
    3. every `train_freq` iterations, `gradient_steps` gradient steps per environment, all in one
       jitted call on minibatches sampled at once; the same call computes the next action (step 1
       of the next iteration) with the updated actor, so a learning iteration costs one dispatch,
       one large host-to-device copy (the packed minibatches) and one wait (for the action);
    4. log, evaluate, checkpoint when their step comes.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddpgx import checkpoint as ckpt
from ddpgx.agent import DDPG, AgentState, Metrics, weight_matrices
from ddpgx.config import Config, ConfigError
from ddpgx.envs import EnvError, EnvFactory, Envs, env_factory
from ddpgx.evaluate import Evaluator
from ddpgx.logging import RunLogger
from ddpgx.networks import actor_from_config, as_network, critic_from_config
from ddpgx.noise import make_noise, reset as reset_noise
from ddpgx.replay import ReplayBuffer, unpack

# Fields that may differ when a run is resumed: they change what is logged or saved, not what is learned.
RESUMABLE_CHANGES = {"total_steps", "eval_every", "eval_episodes", "log_every", "checkpoint_every",
                     "keep_checkpoints", "save_buffer", "tensorboard"}
RECENT_EPISODES = 10


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
    def mean_return(self) -> float:
        return float(np.mean(self.final_returns))


def build_agent(config: Config, action_dim: int, actor: Any = None, critic: Any = None) -> DDPG:
    """DDPG with the config's MLPs and Adam optimizers, or the given networks."""
    critic_optimizer = optax.adam(config.critic_lr)
    if config.critic_weight_decay > 0:  # L2 on the critic's weight matrices, added to the gradient before Adam
        critic_optimizer = optax.chain(optax.add_decayed_weights(config.critic_weight_decay, mask=weight_matrices),
                                       critic_optimizer)
    return DDPG(
        actor=as_network(actor, "actor") if actor is not None else actor_from_config(config, action_dim),
        critic=as_network(critic, "critic") if critic is not None else critic_from_config(config),
        actor_optimizer=optax.adam(config.actor_lr),
        critic_optimizer=critic_optimizer,
        gamma=config.gamma,
        tau=config.tau,
    )


class StepFunctions(NamedTuple):
    """The jitted functions of the loop: single-agent code, vmapped over the leading seed axis."""

    act: Callable
    """(actor, noise_state, obs, done, key, step, random) -> (action, noise_state): uniformly random
    actions if `random` (static), else clip(pi(s) + noise, -1, 1); noise restarts where done."""
    learn: Callable
    """(state, rows, noise_state, obs, done, key, step) -> (state, metrics, action, noise_state):
    gradient steps on packed minibatch rows (split on the device), then the next action with the
    updated actor. The state is donated: XLA updates parameters and optimizer states in place."""
    policy: Callable
    """(actor, obs) -> pi(s), without noise."""


def step_functions(agent: DDPG, noise: Any, num_envs: int, action_dim: int,
                   obs_shape: tuple[int, ...]) -> StepFunctions:
    def explore_one(actor_params, noise_state, obs, done, key, step, random):
        key = jax.random.fold_in(key, step)
        noise_state = reset_noise(noise_state, done)
        if random:
            return jax.random.uniform(key, (num_envs, action_dim), minval=-1.0, maxval=1.0), noise_state
        eps, noise_state = noise.sample(noise_state, key)
        return jnp.clip(agent.act(actor_params, obs) + eps, -1.0, 1.0), noise_state

    def learn_one(state, rows, noise_state, obs, done, key, step):
        state, metrics = agent.update_many(state, unpack(rows, obs_shape, action_dim))
        action, noise_state = explore_one(state.actor, noise_state, obs, done, key, step, False)
        return state, metrics, action, noise_state

    return StepFunctions(
        act=jax.jit(jax.vmap(explore_one, in_axes=(0, 0, 0, 0, 0, None, None)), static_argnums=6),
        learn=jax.jit(jax.vmap(learn_one, in_axes=(0, 0, 0, 0, 0, 0, None)), donate_argnums=0),
        policy=jax.jit(jax.vmap(agent.act)),
    )


def network_name(network: Any) -> str:
    """How a checkpoint records a network: 'default' (the config's MLP) or the custom network's type."""
    return "default" if network is None else f"{type(network).__module__}.{type(network).__qualname__}"


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """The named keys of a seed: one initializes the networks, one drives exploration."""
    init_key, explore_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, explore_key


def sampler_rng(seed: int) -> np.random.Generator:
    """The replay sampler's generator, its own stream of the seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, 2]))


def stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def take(tree: Any, index: int) -> Any:
    return jax.tree.map(lambda x: np.asarray(x[index]), tree)


def default_run_dir(config: Config) -> Path:
    name = config.env_id.replace(":", "_").replace("/", "_")
    return Path("runs") / f"{name}__seed{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to write over an existing run unless asked to resume it or overwrite it (writes nothing)."""
    is_run = (run_dir / "config.json").exists() or any(run_dir.glob("seed_*/config.json"))
    if resume:
        if not is_run:
            raise ConfigError(f"cannot resume {run_dir}: it holds no ddpgx run (no config.json)")
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"the run directory {run_dir} exists and is not empty: pass --resume to continue that run, "
                f"--overwrite to replace it, or choose another --run-dir"
            )
        if not is_run:
            raise ConfigError(f"refusing to overwrite {run_dir}: it does not look like a ddpgx run directory")


def create_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Make (or, with `overwrite`, empty) the run directory and check that it can be written."""
    if not resume and overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"cannot write to the run directory {run_dir}: {error.strerror or error}") from None


def check_resumable(saved: Config, given: Config, run_dir: Path) -> None:
    changed = [f.name for f in dataclasses.fields(Config)
               if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(given, f.name)]
    if changed:
        details = ", ".join(f"{n}: {getattr(saved, n)!r} -> {getattr(given, n)!r}" for n in changed)
        raise ConfigError(
            f"cannot resume {run_dir} with a different config ({details}); only "
            f"{', '.join(sorted(RESUMABLE_CHANGES))} may change on resume"
        )


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


def train(
    config: Config,
    run_dir: str | Path | None = None,
    *,
    num_seeds: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    actor: Any = None,
    critic: Any = None,
    make_env: EnvFactory | None = None,
    progress: bool = True,
    print_fn: Callable[[str], None] = print,
) -> TrainResult:
    """Train `num_seeds` agents (seeds config.seed, config.seed + 1, ...) and evaluate them.

    `run_dir` receives the run (with several seeds, one `seed_<k>/` directory per seed).
    `actor`/`critic` replace the default MLPs (a flax module or an (init, apply) pair);
    `make_env` replaces `gymnasium.make(config.env_id)` (for example a custom simulator).
    """
    if num_seeds < 1:
        raise ConfigError(f"invalid num_seeds={num_seeds}: must be at least 1")
    root = Path(run_dir) if run_dir is not None else default_run_dir(config)
    check_run_dir(root, resume, overwrite)
    seeds = [config.seed + k for k in range(num_seeds)]
    run_dirs = [root] if num_seeds == 1 else [root / f"seed_{seed}" for seed in seeds]
    configs = [config.replace(seed=seed) for seed in seeds]
    if resume:
        for seed_dir, seed_config in zip(run_dirs, configs):
            check_resumable(Config.load(seed_dir / "config.json"), seed_config, seed_dir)

    # the environments and the networks are checked before anything is written: a run that cannot
    # start leaves no directory behind
    make_env = make_env or env_factory(config.env_id)
    envs = Envs(make_env, num_seeds, config.num_envs, config.env_id)
    S, E, A = num_seeds, config.num_envs, envs.action_dim
    keys = [seed_keys(seed) for seed in seeds]
    try:
        agent = build_agent(config, A, actor, critic)
        init = jax.jit(agent.init)
        example_obs = jnp.zeros((1, *envs.obs_shape), jnp.float32)
        example_action = jnp.zeros((1, A), jnp.float32)
        state = stack([init(init_key, example_obs, example_action) for init_key, _ in keys])
        create_run_dir(root, resume, overwrite)
        for seed_dir, seed_config in zip(run_dirs, configs):
            seed_dir.mkdir(parents=True, exist_ok=True)
            seed_config.save(seed_dir / "config.json")
    except BaseException:
        envs.close()
        raise
    noise = make_noise(config.noise, config.noise_sigma, config.ou_theta, config.ou_dt)
    buffer = ReplayBuffer(config.buffer_size, envs.obs_shape, A, S)
    loggers = [RunLogger(d, config.tensorboard) for d in run_dirs]

    # --- the state of the loop: initial, or read back from each seed's latest checkpoint ---
    rngs = [sampler_rng(seed) for seed in seeds]
    explore_key = np.stack([np.asarray(k) for _, k in keys])
    noise_state = np.stack([np.asarray(noise.init((E, A)))] * S)
    obs = envs.reset(seeds)
    done = np.zeros((S, E), bool)
    episode_return = np.zeros((S, E))
    episode_length = np.zeros((S, E), np.int64)
    recent = [deque(maxlen=RECENT_EPISODES) for _ in seeds]
    episodes = np.zeros(S, np.int64)
    step = 0
    action = None  # the next action, when the last learning call has already computed it
    if resume:
        # the latest step every seed has a checkpoint of (a kill while saving can leave some seeds one ahead)
        paths = ckpt.common_checkpoints(run_dirs)
        restored = [_restore(p, s, take(state, s), buffer, envs, rngs[s]) for s, p in enumerate(paths)]
        step = restored[0]["step"]
        state = stack([r["agent"] for r in restored])
        explore_key = np.stack([r["explore_key"] for r in restored])
        noise_state = np.stack([r["noise"] for r in restored])
        obs = np.stack([r["obs"] for r in restored])
        done = np.stack([r["done"] for r in restored])
        episode_return = np.stack([r["episode_return"] for r in restored])
        episode_length = np.stack([r["episode_length"] for r in restored])
        episodes = np.array([r["episodes"] for r in restored])
        if "next_action" in restored[0]:
            action = np.stack([r["next_action"] for r in restored])
        for s, r in enumerate(restored):
            recent[s].extend(r["recent"])
        for logger in loggers:
            logger.truncate(step)

    act, learn, policy = step_functions(agent, noise, E, A, envs.obs_shape)
    state = jax.device_put(state)

    last_eval: dict[str, Any] = {"step": -1, "returns": None}

    evaluator = Evaluator(make_env, seeds, config.eval_episodes, config.env_id)

    def run_eval() -> np.ndarray:
        returns = evaluator(lambda o: policy(state.actor, o))
        for s, logger in enumerate(loggers):
            logger.log_eval({"step": step, "mean_return": float(returns[s].mean()),
                             "std_return": float(returns[s].std()), "episodes": config.eval_episodes,
                             "min_return": float(returns[s].min()), "max_return": float(returns[s].max())})
        last_eval.update(step=step, returns=returns)
        return returns

    def save_checkpoint() -> None:
        _check_finite(state, step)
        for s, seed_dir in enumerate(run_dirs):
            arrays = {f"agent/{k}": v for k, v in ckpt.flatten(take(state, s)).items()}
            arrays.update(explore_key=np.asarray(explore_key[s]), noise=np.asarray(noise_state[s]), obs=obs[s],
                          done=done[s], episode_return=episode_return[s], episode_length=episode_length[s],
                          recent=np.array(recent[s], np.float64))
            if action is not None:
                arrays["next_action"] = np.asarray(action[s])
            meta = {"step": step, "ddpgx_version": _version(), "config": configs[s].to_dict(),
                    "episodes": int(episodes[s]), "sampler_rng": rngs[s].bit_generator.state,
                    "actor": network_name(actor), "critic": network_name(critic),
                    "obs_shape": list(envs.obs_shape), "action_low": envs.scaler.low.tolist(),
                    "action_high": envs.scaler.high.tolist()}
            replay = buffer.state_dict(s) if config.save_buffer else None
            ckpt.save(seed_dir, step, meta, arrays, envs.get_state(s), replay, config.keep_checkpoints)

    metrics, unchecked = None, 0  # unchecked: the step of an update whose losses are not yet checked
    last_log_time, last_log_step = time.perf_counter(), step
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.total_steps, initial=min(step, config.total_steps), unit="step",
                   dynamic_ncols=True, desc=config.env_id, mininterval=0.5 if sys.stderr.isatty() else 30)
    interrupted = False
    try:
        with _Interrupt() as interrupt:
            while step < config.total_steps:
                # 1. act (unless the last learning call already did)
                if action is None:
                    random_phase = step < config.learning_starts
                    action, noise_state = act(state.actor, noise_state, obs, done, explore_key, np.uint32(step),
                                              random_phase)
                action = np.asarray(action)
                if unchecked:
                    _check_finite_metrics(metrics, unchecked, seeds)
                    unchecked = 0
                # 2. step the environments and store the transitions
                try:
                    out = envs.step(action)
                except (EnvError, FloatingPointError) as error:
                    raise type(error)(f"step {step + E}: {error}; training stopped, the last good checkpoint is kept") from None
                buffer.add(obs, action, out.reward, out.next_obs, out.terminated)
                done = out.terminated | out.truncated
                episode_return += out.reward
                episode_length += 1
                previous, step = step, step + E
                for s, j in zip(*np.nonzero(done)):
                    recent[s].append(float(episode_return[s, j]))
                    episodes[s] += 1
                    loggers[s].log_episode(step, int(j), float(episode_return[s, j]), int(episode_length[s, j]))
                episode_return[done], episode_length[done] = 0.0, 0
                obs, action = out.obs, None
                # 3. learn, and compute the next action with the updated actor
                if step >= config.learning_starts and (step // E) % config.train_freq == 0:
                    rows = buffer.sample_rows(rngs, config.batch_size, config.gradient_steps * E)
                    state, metrics, action, noise_state = learn(state, rows, noise_state, obs, done, explore_key,
                                                                np.uint32(step))
                    unchecked = step  # checked once the next action is back, so no extra wait
                # 4. log, evaluate, checkpoint
                if bar is not None:
                    bar.update(step - previous)
                if _crossed(previous, step, config.log_every):
                    now = time.perf_counter()
                    rate = (step - last_log_step) / max(now - last_log_time, 1e-9)
                    last_log_time, last_log_step = now, step
                    _log_metrics(loggers, metrics, recent, episodes, step, rate)
                    if bar is not None:
                        bar.set_postfix(recent_return=_recent_mean(recent), refresh=False)
                if _crossed(previous, step, config.eval_every):
                    run_eval()
                if _crossed(previous, step, config.checkpoint_every):
                    save_checkpoint()
                if interrupt.requested:
                    interrupted = True
                    break
        if unchecked:
            _check_finite_metrics(metrics, unchecked, seeds)
        if bar is not None:
            bar.close()
        save_checkpoint()
        final_returns = np.zeros((S, 0))
        if interrupted:
            print_fn(f"interrupted at step {step}; checkpoint saved in {run_dirs[0] / 'checkpoints'}")
        else:
            final_returns = last_eval["returns"] if last_eval["step"] == step else run_eval()
            for s, seed in enumerate(seeds):
                r = final_returns[s]
                print_fn(f"final evaluation, seed {seed}, {len(r)} noise-free episodes: "
                         f"mean return {r.mean():.1f} +- {r.std():.1f} (min {r.min():.1f}, max {r.max():.1f})")
    finally:
        if bar is not None:
            bar.close()
        envs.close()
        evaluator.close()
        for logger in loggers:
            logger.close()
    return TrainResult(config, run_dirs, seeds, final_returns, step, interrupted)


def _crossed(previous: int, step: int, every: int) -> bool:
    return every > 0 and step // every > previous // every


def _recent_mean(recent: list[deque]) -> float:
    values = [v for r in recent for v in r]
    return round(float(np.mean(values)), 1) if values else float("nan")


def _log_metrics(loggers, metrics, recent, episodes, step: int, rate: float) -> None:
    values = jax.tree.map(np.asarray, metrics) if metrics is not None else None
    for s, logger in enumerate(loggers):
        row = {"step": step, "steps_per_s": rate, "episodes": int(episodes[s]),
               "recent_return": float(np.mean(recent[s])) if recent[s] else float("nan")}
        if values is not None:
            row.update(critic_loss=float(values.critic_loss[s]), actor_loss=float(values.actor_loss[s]),
                       q=float(values.q[s]))
        logger.log_metrics(row)


def _check_finite_metrics(metrics: Metrics, step: int, seeds: list[int]) -> None:
    """Stop at the first update whose losses are not finite (the parameters would be next)."""
    values = np.stack([np.asarray(m) for m in metrics])  # (3, seeds)
    if np.isfinite(values).all():
        return
    bad = [f"{name} of seed {seed}" for name, row in zip(Metrics._fields, values) for seed, v in zip(seeds, row)
           if not np.isfinite(v)]
    raise FloatingPointError(
        f"step {step}: {', '.join(bad)} became non-finite; training stopped and the last good checkpoint "
        f"is kept (lower the learning rates, or check the rewards' scale)"
    )


def _check_finite(state: AgentState, step: int) -> None:
    for name in ("actor", "critic", "actor_target", "critic_target"):
        leaves = jax.tree.leaves(getattr(state, name))
        if not all(np.isfinite(np.asarray(x)).all() for x in leaves):
            raise FloatingPointError(
                f"step {step}: the {name} parameters became non-finite; training stopped and the "
                f"checkpoint was not written, the last good one is kept"
            )


def _restore(path: Path, seed_index: int, template: AgentState, buffer, envs: Envs,
             rng: np.random.Generator) -> dict[str, Any]:
    c = ckpt.Checkpoint(path)
    restored = {
        "step": c.step,
        "agent": ckpt.unflatten(template, c.subtree("agent"), path / "state.npz"),
        "episodes": int(c.meta.get("episodes", 0)),
    }
    for name in ("explore_key", "noise", "obs", "done", "episode_return", "episode_length", "recent"):
        if name not in c.arrays:
            raise ckpt.CheckpointError(f"{path / 'state.npz'} has no {name}: it is not a ddpgx checkpoint")
        restored[name] = c.arrays[name]
    if restored["obs"].shape[1:] != envs.obs_shape or restored["noise"].shape != (envs.num_envs, envs.action_dim):
        raise ckpt.CheckpointError(f"{path} was written for other environments (shapes differ)")
    rng.bit_generator.state = c.meta["sampler_rng"]
    if c.env_state is not None:
        envs.set_state(seed_index, c.env_state)
    if "next_action" in c.arrays:
        restored["next_action"] = c.arrays["next_action"]
    if c.has_replay:
        buffer.load_state_dict(seed_index, c.replay())
    else:
        print(f"warning: {path} has no replay buffer; training continues with an empty one (not an exact resume)")
    return restored


def _version() -> str:
    from ddpgx import __version__

    return __version__
