"""Returns benchmark: S seeds x environments x presets, noise-free evaluation, ddpgx beside SB3 DDPG.

    python benchmarks/returns.py --envs Pendulum-v1 --presets default td3-paper --seeds 10 \\
        [--first-seed 1] [--steps Pendulum-v1=20000] [--eval-every 2000] [--eval-episodes 10] \\
        [--sb3] [--out benchmarks/results/returns]
    python benchmarks/returns.py --suite issue4 [--no-sb3]     # the whole list of issue 4
    python benchmarks/returns.py ... --list                    # the plan and what is already done
    python benchmarks/returns.py ... --report-only             # tables and plots from what is on disk

The protocol, the same for both libraries:
  - train for the environment's budget of environment steps, one environment per seed;
  - every N steps (and at the last step) evaluate the policy without noise on K episodes, episode i
    in an environment reset with seed `ddpgx.envs.env_seeds(seed, K, stream=1)[i]`, so both
    libraries see the same K initial states at every evaluation;
  - the final return of a seed is the mean over the K episodes of its evaluation at the last step.
For each (library, preset, environment) the report gives the final mean over seeds, a 95%
percentile-bootstrap interval of that mean (numpy, fixed seed), the interquartile mean, the median,
the worst and the best seed, and the wall time; each environment gets a PNG of the learning curves
(mean over seeds and its 95% bootstrap band).

ddpgx trains all seeds of a row in one process (the vmapped seed axis) through `ddpgx.train`.
Stable-Baselines3 DDPG (`--sb3`, from the `bench` extra: pip install -e '.[bench]') trains one
seed per process, seeds one after the other, with the ddpgx preset's hyperparameters mapped field
by field; presets with options SB3 lacks get no SB3 row and the table says why.

Every run is a subprocess, so a crash or Ctrl-C loses at most the run in progress. Rerunning the
same command resumes: finished runs are skipped, a ddpgx run with a checkpoint continues from it
exactly (`ddpgx.train(resume=True)`), an SB3 seed that did not finish starts again.

Writes to --out: results.md, results.json, curves_<env>.png, and runs/ (run directories and
checkpoints, git-ignored), jobs/ (per-run logs and wall times).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import json
import math
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from host import machine

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
LOG_EVERY = 1_000  # steps between progress rows of a run (ddpgx's metrics.csv; the SB3 worker's too)
INTERRUPT_GRACE_S = 300  # how long a run may take to save its checkpoint after Ctrl-C

# Budgets and evaluation periods of issue 4 (used when --steps / --eval-every do not name the task).
DEFAULT_STEPS = {"Pendulum-v1": 20_000, "InvertedPendulum-v5": 30_000, "HalfCheetah-v5": 100_000}
DEFAULT_EVAL_EVERY = {"Pendulum-v1": 2_000}
MUJOCO_EVAL_EVERY = 5_000


# ----------------------------------------------------------------------------- statistics (pure)

def iqm(values: Any) -> float:
    """Interquartile mean: the mean of the middle 50% of the values, exactly.

    The values are sorted and each one stands for 1/n of the probability mass; the IQM is the mean
    of the empirical quantile function over [0.25, 0.75]. A value whose 1/n straddles a quartile
    counts with the part of it inside. With n a multiple of 4 this drops n/4 values at each end
    (the same as scipy.stats.trim_mean(x, 0.25)); with 10 seeds it drops 2 at each end and
    half-weights the 3rd and 8th; with 5 seeds it weights the sorted values 0, 0.75, 1, 0.75, 0;
    with 3 seeds 0.25, 1, 0.25; with 1 or 2 seeds it is the mean.
    """
    x = np.sort(np.asarray(values, np.float64).ravel())
    n = len(x)
    if n == 0:
        raise ValueError("iqm of no values")
    edges = np.arange(n + 1) / n
    weights = np.clip(np.minimum(edges[1:], 0.75) - np.maximum(edges[:-1], 0.25), 0.0, None)
    return float(np.dot(weights, x) / weights.sum())


def bootstrap_ci(values: Any, confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[Any, Any]:
    """Percentile-bootstrap interval of the mean over the first axis (the seeds).

    `values` is (seeds,) or (seeds, points); the interval is per point. Each resample draws the
    seeds with replacement (multinomial counts), so one matrix product gives every resample's mean.
    With few seeds the interval is too narrow (3 seeds have only 10 distinct resamples).
    """
    x = np.asarray(values, np.float64)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    n = len(x)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)  # (resamples, seeds)
    means = counts @ x.reshape(n, -1) / n  # (resamples, points)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=0)
    if x.ndim == 1:
        return float(low[0]), float(high[0])
    return low.reshape(x.shape[1:]), high.reshape(x.shape[1:])


def summarize(finals: Any) -> dict[str, Any]:
    """The row statistics of the seeds' final returns (no interval from a single seed)."""
    x = np.asarray(finals, np.float64)
    low, high = bootstrap_ci(x) if len(x) > 1 else (None, None)
    return {"mean": float(x.mean()), "ci95": [low, high], "iqm": iqm(x), "median": float(np.median(x)),
            "worst": float(x.min()), "best": float(x.max())}


# ----------------------------------------------------------------------------- the plan

@dataclasses.dataclass(frozen=True)
class Entry:
    """One environment of a suite: its presets, seeds, budget and evaluation period."""

    env_id: str
    presets: tuple[str, ...]
    seeds: int
    steps: int
    eval_every: int


FUSED8 = "default+train_freq=8+gradient_steps=8"
LECUN = "default+hidden_init=lecun_normal"
SUITES: dict[str, dict[str, Any]] = {
    "issue4": {
        "entries": [
            # default+hidden_init=lecun_normal: flax's own initialization, the default until PyTorch's
            # (SB3's, CleanRL's) was measured to learn HalfCheetah-v5 faster
            Entry("Pendulum-v1", ("default", LECUN, "paper", "td3-paper"), 10, 20_000, 2_000),
            # with the default preset's first random start (10,000 steps) too, the run that led to 1,000
            Entry("InvertedPendulum-v5", ("default", "default+learning_starts=10000"), 5, 30_000, 5_000),
            Entry("HalfCheetah-v5", ("default", LECUN, "paper", "td3-paper"), 3, 100_000, 5_000),
        ],
        "first_seed": 1, "eval_episodes": 10, "sb3": True,
        # (library, preset, env, seeds, steps): what each target needs of its row
        "targets": [
            {"name": "Pendulum-v1, default, 10 seeds, 20,000 steps: median >= -150 and every seed >= -200",
             "row": ("ddpgx", "default", "Pendulum-v1", 10, 20_000), "median_at_least": -150.0,
             "worst_at_least": -200.0},
            {"name": "InvertedPendulum-v5, default, 5 seeds, 30,000 steps: median 1000",
             "row": ("ddpgx", "default", "InvertedPendulum-v5", 5, 30_000), "median_at_least": 1000.0},
            {"name": "HalfCheetah-v5, default, 3 seeds, 100,000 steps: ddpgx mean >= SB3 DDPG mean",
             "row": ("ddpgx", "default", "HalfCheetah-v5", 3, 100_000),
             "mean_at_least_row": ("sb3", "default", "HalfCheetah-v5", 3, 100_000)},
            {"name": "paper and td3-paper on Pendulum-v1 and HalfCheetah-v5 are in the table",
             "rows_present": [("ddpgx", p, e) for e in ("Pendulum-v1", "HalfCheetah-v5")
                              for p in ("paper", "td3-paper")]},
        ],
    },
    # issue 3: 8 gradient steps every 8 transitions in one jitted call (the same update-per-transition
    # ratio) against one per transition; same seeds, so the curves can be compared
    "fused": {
        "entries": [
            Entry("Pendulum-v1", ("default", FUSED8), 10, 20_000, 2_000),
            Entry("HalfCheetah-v5", ("default", FUSED8), 3, 100_000, 5_000),
        ],
        "first_seed": 1, "eval_episodes": 10, "sb3": False, "targets": [],
    },
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table: a library, a preset, an environment and the protocol."""

    library: str  # "ddpgx" or "sb3"
    preset: str
    env_id: str
    seeds: tuple[int, ...]
    steps: int
    eval_every: int
    eval_episodes: int

    @property
    def key(self) -> tuple:
        return (self.library, self.preset, self.env_id, len(self.seeds), self.steps)


@dataclasses.dataclass(frozen=True)
class Job:
    """One subprocess: all seeds of a ddpgx row, or one seed of an SB3 row."""

    row: Row
    seeds: tuple[int, ...]
    run_dir: Path  # the directory passed to ddpgx.train, or the SB3 seed's directory
    name: str

    @property
    def seed_dirs(self) -> list[Path]:
        """Where each seed's eval.csv is (ddpgx.train puts several seeds in seed_<k>/)."""
        if self.row.library == "ddpgx" and len(self.seeds) > 1:
            return [self.run_dir / f"seed_{s}" for s in self.seeds]
        return [self.run_dir]


@dataclasses.dataclass
class RowPlan:
    row: Row
    jobs: list[Job]
    config: dict[str, Any]  # ddpgx's resolved Config, or the SB3 keyword arguments
    skip: str | None = None  # why there is no run (an SB3 row a preset cannot map to)


def safe(name: str) -> str:
    return name.replace("/", "_").replace(":", "_")


def parse_preset(spec: str) -> tuple[str, dict[str, Any]]:
    """'default' or a variant 'default+train_freq=8+gradient_steps=8': a preset and fields it overrides."""
    name, *changes = spec.split("+")
    overrides: dict[str, Any] = {}
    for change in changes:
        field, sep, text = change.partition("=")
        if not sep or not field:
            raise SystemExit(f"error: preset variant {spec!r}: write PRESET+FIELD=VALUE[+FIELD=VALUE...]")
        value: Any = {"true": True, "false": False}.get(text.lower(), text)
        if isinstance(value, str):
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    pass
        overrides[field] = value
    return name, overrides


def ddpgx_config(row: Row, checkpoint_every: int):
    """The ddpgx Config of a row, from its preset or preset variant (seed = the row's first seed)."""
    import ddpgx

    name, overrides = parse_preset(row.preset)
    try:
        return ddpgx.from_preset(name, row.env_id, total_steps=row.steps, eval_every=row.eval_every,
                                 eval_episodes=row.eval_episodes, seed=row.seeds[0],
                                 checkpoint_every=checkpoint_every, log_every=LOG_EVERY, tensorboard=False,
                                 **overrides)
    except ddpgx.ConfigError as error:
        raise SystemExit(f"error: preset {row.preset!r}: {error}") from None


def sb3_hyperparameters(config) -> tuple[dict[str, Any] | None, list[str]]:
    """Stable-Baselines3 DDPG keyword arguments equal to a ddpgx Config, or the reasons there are none."""
    reasons = []
    if config.actor_lr != config.critic_lr:
        reasons.append(f"SB3 has one learning rate for actor and critic; the preset uses "
                       f"actor_lr={config.actor_lr:g}, critic_lr={config.critic_lr:g}")
    if config.batch_norm:
        reasons.append("SB3 DDPG has no batch normalization")
    if config.critic_action_layer != 0:
        reasons.append(f"SB3's critic takes the action at its input, the preset at hidden layer "
                       f"{config.critic_action_layer}")
    if config.critic_weight_decay > 0:
        reasons.append("SB3 has no weight decay for the critic alone (its optimizer_kwargs apply to the actor too)")
    if config.final_init > 0:
        reasons.append("SB3 has no option for the final layers' initialization")
    if config.num_envs != 1:
        reasons.append(f"this benchmark runs SB3 with one environment, the config has num_envs={config.num_envs}")
    if config.hidden_init != "fan_in_uniform":
        reasons.append(f"SB3 always initializes as PyTorch does (ddpgx's fan_in_uniform), the preset uses "
                       f"hidden_init={config.hidden_init}")
    if reasons:
        return None, reasons
    return {
        "learning_rate": config.actor_lr, "buffer_size": config.buffer_size,
        "learning_starts": config.learning_starts, "batch_size": config.batch_size, "tau": config.tau,
        "gamma": config.gamma, "train_freq": config.train_freq, "gradient_steps": config.gradient_steps,
        "policy_kwargs": {"net_arch": {"pi": list(config.actor_hidden), "qf": list(config.critic_hidden)}},
        "action_noise": ({"kind": "normal", "mean": 0.0, "sigma": config.noise_sigma} if config.noise == "gaussian"
                         else {"kind": "ornstein_uhlenbeck", "mean": 0.0, "sigma": config.noise_sigma,
                               "theta": config.ou_theta, "dt": config.ou_dt}),
        "device": "cpu",
    }, []


def parse_per_env(values: list[str] | None, envs: list[str], defaults: dict[str, int], fallback: int | None,
                  flag: str) -> dict[str, int]:
    """`--steps 20000` (every env) or `--steps Pendulum-v1=20000 HalfCheetah-v5=1e5`."""
    given: dict[str, int] = {}
    for value in values or []:
        env, sep, number = value.rpartition("=")
        try:
            amount = int(float(number))
        except ValueError:
            raise SystemExit(f"error: {flag} {value!r}: give a number, or ENV=NUMBER") from None
        if amount < 1:
            raise SystemExit(f"error: {flag} {value!r} must be at least 1")
        if sep and env not in envs:
            raise SystemExit(f"error: {flag} {value!r} names {env}, which is not in --envs {' '.join(envs)}")
        for e in ([env] if sep else envs):
            given[e] = amount
    out = {}
    for env in envs:
        if env in given:
            out[env] = given[env]
        elif env in defaults:
            out[env] = defaults[env]
        elif fallback is not None:
            out[env] = fallback
        else:
            raise SystemExit(f"error: no budget for {env}: give {flag} {env}=NUMBER")
    return out


def entries_from_args(args: argparse.Namespace) -> tuple[list[Entry], int, int, bool, dict | None]:
    """(entries, first seed, eval episodes, sb3, suite) from the command line."""
    if args.suite:
        given = [f"--{n.replace('_', '-')}" for n in ("envs", "presets", "seeds", "first_seed", "steps",
                                                       "eval_every", "eval_episodes", "sb3")
                 if getattr(args, n) not in (None, False)]
        if given:
            raise SystemExit(f"error: --suite {args.suite} fixes the tasks, presets, seeds and budgets; "
                             f"drop {' '.join(given)} (or leave out --suite)")
        suite = SUITES[args.suite]
        return suite["entries"], suite["first_seed"], suite["eval_episodes"], suite["sb3"] and not args.no_sb3, suite
    envs = args.envs or ["Pendulum-v1"]
    presets = args.presets or ["default"]
    steps = parse_per_env(args.steps, envs, DEFAULT_STEPS, None, "--steps")
    every = parse_per_env(args.eval_every, envs, DEFAULT_EVAL_EVERY, MUJOCO_EVAL_EVERY, "--eval-every")
    seeds = args.seeds if args.seeds is not None else 10
    if seeds < 1:
        raise SystemExit("error: --seeds must be at least 1")
    entries = [Entry(env, tuple(presets), seeds, steps[env], every[env]) for env in envs]
    first = args.first_seed if args.first_seed is not None else 1
    episodes = args.eval_episodes if args.eval_episodes is not None else 10
    return entries, first, episodes, bool(args.sb3) and not args.no_sb3, None


def build_plan(entries: list[Entry], first_seed: int, eval_episodes: int, sb3: bool, out: Path,
               checkpoint_every: int) -> list[RowPlan]:
    from ddpgx import PRESETS

    from ddpgx.envs import EnvError, env_factory

    plans = []
    for entry in entries:
        try:  # a wrong id or a missing MuJoCo fails here, not in a worker an hour in
            env_factory(entry.env_id)().close()
        except EnvError as error:
            raise SystemExit(f"error: {error}") from None
        for preset in entry.presets:
            if parse_preset(preset)[0] not in PRESETS:
                raise SystemExit(f"error: unknown preset {preset!r}: choose from {', '.join(PRESETS)}")
            seeds = tuple(range(first_seed, first_seed + entry.seeds))
            row = Row("ddpgx", preset, entry.env_id, seeds, entry.steps, entry.eval_every, eval_episodes)
            config = ddpgx_config(row, checkpoint_every)
            seed_range = f"seeds_{seeds[0]}-{seeds[-1]}"
            run_dir = out / "runs" / "ddpgx" / preset / safe(entry.env_id) / seed_range
            name = f"ddpgx__{preset}__{safe(entry.env_id)}__{seed_range}"
            plans.append(RowPlan(row, [Job(row, seeds, run_dir, name)], config.to_dict()))
            if not sb3:
                continue
            sb3_row = dataclasses.replace(row, library="sb3")
            kwargs, reasons = sb3_hyperparameters(config)
            if kwargs is None:
                plans.append(RowPlan(sb3_row, [], {}, skip="no SB3 row: " + "; ".join(reasons)))
                continue
            jobs = [Job(sb3_row, (s,), out / "runs" / "sb3" / preset / safe(entry.env_id) / f"seed_{s}",
                        f"sb3__{preset}__{safe(entry.env_id)}__seed_{s}") for s in seeds]
            plans.append(RowPlan(sb3_row, jobs, kwargs))
    return plans


# ----------------------------------------------------------------------------- run directories

def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV log; a last line cut short by a killed process is left out."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if None not in r.values() and r.get("step")]


def eval_curve(seed_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean returns and episode counts of a seed's evaluations."""
    rows = []
    for r in read_rows(seed_dir / "eval.csv"):
        try:
            rows.append((int(float(r["step"])), float(r["mean_return"]), int(float(r["episodes"]))))
        except (KeyError, ValueError):
            continue
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    steps, returns, episodes = map(np.array, zip(*rows))
    return steps, returns, episodes


def final_return(seed_dir: Path, row: Row) -> float | None:
    """The seed's final return: the mean over K episodes of its evaluation at the last step, if done."""
    steps, returns, episodes = eval_curve(seed_dir)
    if len(steps) and steps[-1] == row.steps and episodes[-1] == row.eval_episodes:
        return float(returns[-1])
    return None


def steps_done(seed_dir: Path) -> int:
    rows = read_rows(seed_dir / "metrics.csv")
    try:
        return int(float(rows[-1]["step"])) if rows else 0
    except (KeyError, ValueError):
        return 0


def checkpoint_steps(seed_dir: Path) -> list[int]:
    from ddpgx.checkpoint import list_checkpoints

    return [int(p.name.split("_")[-1]) for p in list_checkpoints(seed_dir)]


def job_status(job: Job) -> tuple[str, int]:
    """("finished" | "resume" | "new", the step it starts from)."""
    if all(final_return(d, job.row) is not None for d in job.seed_dirs):
        return "finished", job.row.steps
    if job.row.library == "ddpgx":
        common = set.intersection(*(set(checkpoint_steps(d)) for d in job.seed_dirs))
        if common and max(common) > job.row.steps:
            raise SystemExit(f"error: {job.run_dir} has trained {max(common):,} steps, past this budget of "
                             f"{job.row.steps:,}: choose another --out, or delete it")
        if common:
            return "resume", max(common)
    return "new", 0


def check_saved_config(job: Job, config: dict[str, Any]) -> None:
    """A run on disk must have been made with the same hyperparameters; otherwise say what to do."""
    if job.row.library == "ddpgx":
        import ddpgx
        from ddpgx.rundir import check_resumable

        for seed, seed_dir in zip(job.seeds, job.seed_dirs):
            if (seed_dir / "config.json").exists():
                given = ddpgx.Config.from_dict({**config, "seed": seed})
                try:
                    check_resumable(ddpgx.Config.load(seed_dir / "config.json"), given, seed_dir)
                except ddpgx.ConfigError as error:
                    raise SystemExit(f"error: {error}\nthe preset changed since this run: delete {job.run_dir} "
                                     f"or choose another --out") from None
    else:
        saved = job.run_dir / "sb3.json"
        if saved.exists():
            previous = json.loads(saved.read_text()).get("hyperparameters")
            if previous != json.loads(json.dumps(config)):
                raise SystemExit(f"error: {saved} holds other SB3 hyperparameters than this preset maps to; "
                                 f"delete {job.run_dir} or choose another --out")


# ----------------------------------------------------------------------------- workers (subprocesses)

def worker_ddpgx(spec: dict[str, Any]) -> int:
    import ddpgx

    config = ddpgx.Config.from_dict(spec["config"])
    root, resume = Path(spec["run_dir"]), spec["mode"] == "resume"
    result = ddpgx.train(config, root, num_seeds=len(spec["seeds"]), resume=resume, overwrite=spec["mode"] == "new",
                         progress=False)
    return 130 if result.interrupted else 0


def worker_sb3(spec: dict[str, Any]) -> int:
    import gymnasium as gym
    import stable_baselines3
    import torch
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    from ddpgx.envs import env_seeds

    seed, env_id = spec["seeds"][0], spec["env_id"]
    total, every, episodes = spec["steps"], spec["eval_every"], spec["eval_episodes"]
    run_dir = Path(spec["run_dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    hyper = spec["hyperparameters"]
    (run_dir / "sb3.json").write_text(json.dumps({
        "hyperparameters": hyper, "seed": seed, "env_id": env_id, "total_steps": total, "eval_every": every,
        "eval_episodes": episodes, "torch_num_threads": torch.get_num_threads(),
        "stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__}, indent=2) + "\n")

    env = gym.make(env_id)
    action_dim = env.action_space.shape[0]
    noise = hyper["action_noise"]
    mean, sigma = np.full(action_dim, noise["mean"]), np.full(action_dim, noise["sigma"])
    action_noise = (NormalActionNoise(mean, sigma) if noise["kind"] == "normal" else
                    OrnsteinUhlenbeckActionNoise(mean, sigma, theta=noise["theta"], dt=noise["dt"]))
    kwargs = {k: v for k, v in hyper.items() if k != "action_noise"}
    model = DDPG("MlpPolicy", env, action_noise=action_noise, seed=seed, verbose=0, **kwargs)

    eval_envs = [gym.make(env_id) for _ in range(episodes)]
    reset_seeds = env_seeds(seed, episodes, stream=1)  # the initial states ddpgx's Evaluator uses

    def evaluate() -> np.ndarray:
        """One noise-free episode per evaluation environment, all stepped together."""
        obs = np.stack([e.reset(seed=s)[0] for e, s in zip(eval_envs, reset_seeds)])
        returns = np.zeros(episodes)
        running = np.ones(episodes, bool)
        while running.any():
            actions, _ = model.predict(obs, deterministic=True)
            for i in np.flatnonzero(running):
                obs[i], reward, terminated, truncated, _ = eval_envs[i].step(actions[i])
                returns[i] += reward
                running[i] = not (terminated or truncated)
        return returns

    eval_log = open(run_dir / "eval.csv", "w", newline="")
    metrics_log = open(run_dir / "metrics.csv", "w", newline="")
    eval_csv, metrics_csv = csv.writer(eval_log), csv.writer(metrics_log)
    eval_csv.writerow(["step", "mean_return", "std_return", "episodes", "min_return", "max_return"])
    metrics_csv.writerow(["step", "recent_return", "episodes", "steps_per_s"])

    class Protocol(BaseCallback):
        """ddpgx's schedule: evaluate after the updates of step t, when t crosses a multiple of
        eval_every and at the last step; a progress row every LOG_EVERY steps."""

        def _on_training_start(self) -> None:
            self.evaluated, self.episodes, self.recent = 0, 0, []
            self.clock, self.clock_step = time.perf_counter(), 0

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.episodes += 1
                    self.recent = (self.recent + [float(info["episode"]["r"])])[-10:]
            t = self.num_timesteps
            if t % LOG_EVERY == 0:
                now = time.perf_counter()
                rate = (t - self.clock_step) / max(now - self.clock, 1e-9)
                self.clock, self.clock_step = now, t
                recent = float(np.mean(self.recent)) if self.recent else float("nan")
                metrics_csv.writerow([t, recent, self.episodes, rate])
                metrics_log.flush()
            return True

        def _on_rollout_start(self) -> None:  # the updates of the previous step are done
            t = self.num_timesteps
            if every > 0 and t // every > self.evaluated // every:
                self._evaluate(t)

        def _on_training_end(self) -> None:
            t = self.num_timesteps
            if t != self.evaluated:
                self._evaluate(t)

        def _evaluate(self, t: int) -> None:
            r = evaluate()
            eval_csv.writerow([t, float(r.mean()), float(r.std()), episodes, float(r.min()), float(r.max())])
            eval_log.flush()
            self.evaluated = t

    try:
        model.learn(total_timesteps=total, callback=Protocol())
    finally:
        eval_log.close()
        metrics_log.close()
        env.close()
        for e in eval_envs:
            e.close()
    print(f"final evaluation, seed {seed}: mean return {final_return(run_dir, Row('sb3', '', env_id, (seed,), total, every, episodes))}")
    return 0


WORKERS = {"ddpgx": worker_ddpgx, "sb3": worker_sb3}


# ----------------------------------------------------------------------------- the driver

def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def job_record(out: Path, job: Job) -> dict[str, Any]:
    path = out / "jobs" / f"{job.name}.json"
    return json.loads(path.read_text()) if path.exists() else {"sessions": []}


def job_wall_seconds(record: dict[str, Any]) -> float:
    """Wall time of the run as it stands: the sessions since its last fresh start."""
    total = 0.0
    for session in record["sessions"]:
        if session["mode"] == "new":
            total = 0.0
        total += session["seconds"]
    return total


def _child_setup() -> None:
    """In the child: receive SIGINT when the driver dies (Linux), so a killed sweep's run saves and stops."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Sweep:
    """Runs the pending jobs one at a time, each in a subprocess, and prints progress lines."""

    def __init__(self, out: Path, plans: list[RowPlan], progress_every: float):
        self.out, self.plans, self.progress_every = out, plans, progress_every
        self.rates: dict[tuple, float] = {}  # (library, preset, env) -> seed-steps per second, this session
        self.failed: list[str] = []

    def run(self) -> bool:
        """Run every unfinished job; False if interrupted."""
        jobs = [(plan, job) for plan in self.plans for job in plan.jobs]
        status = {job.name: job_status(job) for _, job in jobs}
        for plan, job in jobs:
            if status[job.name][0] != "new":
                check_saved_config(job, plan.config)
        finished = sum(s == "finished" for s, _ in status.values())
        resumed = [(n, st) for n, (s, st) in status.items() if s == "resume"]
        print(f"{len(jobs)} runs: {finished} finished (skipped), {len(resumed)} resume from a checkpoint, "
              f"{len(jobs) - finished - len(resumed)} start", flush=True)
        self.remaining = {job.name: (job, (job.row.steps - status[job.name][1]) * len(job.seeds))
                          for _, job in jobs if status[job.name][0] != "finished"}
        for k, (plan, job) in enumerate(jobs, 1):
            mode, start = status[job.name]
            if mode == "finished":
                continue
            if not self._run_job(k, len(jobs), plan, job, mode, start):
                return False
        return True

    def _describe(self, job: Job) -> str:
        seeds = f"seed {job.seeds[0]}" if len(job.seeds) == 1 else f"seeds {job.seeds[0]}-{job.seeds[-1]}"
        return f"{job.row.library} {job.row.preset} {job.row.env_id} {seeds}"

    def _sweep_eta(self, current: Job) -> str:
        known, unknown = 0.0, 0
        for name, (job, work) in self.remaining.items():
            rate = self.rates.get((job.row.library, job.row.preset, job.row.env_id))
            if name == current.name:
                continue
            if rate:
                known += work / rate
            else:
                unknown += 1
        if not known and not unknown:
            return "last run of the sweep"
        timed = f"~{duration(known)}" if known else ""
        untimed = f"{unknown} runs not yet timed" if unknown else ""
        return "rest of the sweep " + " + ".join(x for x in (timed, untimed) if x)

    def _run_job(self, k: int, n: int, plan: RowPlan, job: Job, mode: str, start: int) -> bool:
        label = f"[{k}/{n}] {self._describe(job)}"
        spec = {"run_dir": str(job.run_dir), "seeds": list(job.seeds), "mode": mode, "env_id": job.row.env_id,
                "steps": job.row.steps, "eval_every": job.row.eval_every, "eval_episodes": job.row.eval_episodes}
        if job.row.library == "ddpgx":
            spec["config"] = plan.config
            if mode == "new" and job.run_dir.exists() and not (job.run_dir / "config.json").exists() \
                    and not any(job.run_dir.glob("seed_*/config.json")):
                shutil.rmtree(job.run_dir)  # killed before ddpgx wrote anything: not yet a run directory
        else:
            spec["hyperparameters"] = plan.config
        print(f"{label}: {'resumes from step ' + format(start, ',') if mode == 'resume' else 'starts'} "
              f"({job.row.steps:,} steps per seed)", flush=True)
        logs = self.out / "jobs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{job.name}.log"
        started, began = time.time(), time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", job.row.library, json.dumps(spec)]
        with open(log_path, "a") as log:
            log.write(f"\n=== {datetime.datetime.now().isoformat(timespec='seconds')} {mode} from step {start}\n")
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=_child_setup)
        interrupted = False
        first_seen: tuple[float, int] | None = None
        try:
            while True:
                try:
                    rc = proc.wait(timeout=self.progress_every)
                    break
                except subprocess.TimeoutExpired:
                    pass
                done = steps_done(job.seed_dirs[0])
                now = time.perf_counter()
                if first_seen is None and done > start:
                    first_seen = (now, done)
                eta = (job.row.steps - done) * (now - began) / (done - start) if done > start else None
                if first_seen is not None and done > first_seen[1]:  # the steady rate, without startup
                    eta = (job.row.steps - done) / ((done - first_seen[1]) / (now - first_seen[0]))
                    self.rates[(job.row.library, job.row.preset, job.row.env_id)] = \
                        len(job.seeds) * (done - first_seen[1]) / (now - first_seen[0])
                print(f"{label}: {done:,}/{job.row.steps:,} steps ({done / job.row.steps:.0%}), "
                      f"{duration(now - began)} elapsed, ETA {duration(eta)}; {self._sweep_eta(job)}", flush=True)
        except KeyboardInterrupt:
            interrupted = True
            print(f"{label}: interrupted; letting the run save a checkpoint (Ctrl-C again stops it at once)", flush=True)
            proc.send_signal(signal.SIGINT)
            try:
                rc = proc.wait(timeout=INTERRUPT_GRACE_S)
            except (KeyboardInterrupt, subprocess.TimeoutExpired):
                proc.kill()
                rc = proc.wait()
        seconds = time.perf_counter() - began
        record = job_record(self.out, job)
        record["sessions"].append({"started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
                                   "mode": mode, "from_step": start, "seconds": seconds, "exit_code": rc})
        (logs / f"{job.name}.json").write_text(json.dumps(record, indent=2) + "\n")
        self.remaining.pop(job.name, None)
        if rc == 0 and not interrupted:
            self.rates[(job.row.library, job.row.preset, job.row.env_id)] = \
                len(job.seeds) * (job.row.steps - start) / seconds
        if interrupted or rc == 130:
            print(f"{label}: stopped after {duration(seconds)}; rerun the same command to resume", flush=True)
            return False
        if rc != 0:
            tail = log_path.read_text().splitlines()[-15:]
            print(f"{label}: FAILED (exit code {rc}) after {duration(seconds)}; log {log_path}:\n    "
                  + "\n    ".join(tail), flush=True)
            self.failed.append(job.name)
            return True
        finals = [final_return(d, job.row) for d in job.seed_dirs]
        shown = ", ".join(f"{f:.1f}" if f is not None else "?" for f in finals)
        print(f"{label}: done in {duration(seconds)}; final returns {shown}", flush=True)
        return True


# ----------------------------------------------------------------------------- report


def row_result(out: Path, plan: RowPlan) -> dict[str, Any]:
    row = plan.row
    result: dict[str, Any] = {"library": row.library, "preset": row.preset, "env_id": row.env_id,
                              "seeds": list(row.seeds), "steps": row.steps, "eval_every": row.eval_every,
                              "eval_episodes": row.eval_episodes}
    if plan.skip:
        return {**result, "status": "skipped", "reason": plan.skip}
    result["hyperparameters" if row.library == "sb3" else "config"] = plan.config
    seed_dirs = [d for job in plan.jobs for d in job.seed_dirs]
    finals = {seed: final_return(d, row) for seed, d in zip(row.seeds, seed_dirs)}
    done = {s: f for s, f in finals.items() if f is not None}
    records = [job_record(out, job) for job in plan.jobs]
    result["wall_seconds"] = sum(job_wall_seconds(r) for r in records)
    result["wall_seconds_per_run"] = {job.name: job_wall_seconds(r) for job, r in zip(plan.jobs, records)}
    if row.library == "sb3":
        threads = {json.loads((d / "sb3.json").read_text()).get("torch_num_threads")
                   for d in seed_dirs if (d / "sb3.json").exists()}
        result["torch_num_threads"] = sorted(t for t in threads if t is not None)
    result["final_returns"] = {str(s): f for s, f in finals.items()}
    result["status"] = "finished" if len(done) == len(row.seeds) else f"incomplete ({len(done)} of {len(row.seeds)} seeds)"
    if done:
        result.update(summarize(list(done.values())))
    curves = [eval_curve(d)[:2] for d in seed_dirs]
    curves = [c for c in curves if len(c[0])]
    if curves:
        length = min(len(steps) for steps, _ in curves)
        returns = np.stack([r[:length] for _, r in curves])
        low, high = bootstrap_ci(returns)
        result["curve"] = {"steps": curves[0][0][:length].tolist(), "seeds": len(curves),
                           "mean": returns.mean(0).tolist(), "ci95_low": low.tolist(), "ci95_high": high.tolist()}
    return result


def check_targets(suite: dict | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not suite:
        return []

    def find(key: tuple) -> dict[str, Any] | None:
        for r in rows:
            if (r["library"], r["preset"], r["env_id"], len(r["seeds"]), r["steps"])[:len(key)] == key:
                return r
        return None

    checks = []
    for target in suite.get("targets", []):
        verdict, detail = "pending", ""
        if "rows_present" in target:
            missing = [" ".join(k[1:]) for k in target["rows_present"]
                       if not (find(k) or {}).get("status") == "finished"]
            verdict = "pass" if not missing else "pending"
            detail = "all finished" if not missing else "not finished: " + ", ".join(missing)
        else:
            r = find(target["row"])
            if r and r.get("status") == "finished":
                ok = []
                if "median_at_least" in target:
                    ok.append(r["median"] >= target["median_at_least"])
                    detail += f"median {r['median']:.1f}; "
                if "worst_at_least" in target:
                    ok.append(r["worst"] >= target["worst_at_least"])
                    detail += f"worst seed {r['worst']:.1f}; "
                if "mean_at_least_row" in target:
                    other = find(target["mean_at_least_row"])
                    if other and other.get("status") == "finished":
                        ok.append(r["mean"] >= other["mean"])
                        detail += f"ddpgx mean {r['mean']:.1f} vs SB3 mean {other['mean']:.1f}; "
                    else:
                        ok.append(None)
                        detail += "the SB3 row is not finished (run with SB3); "
                verdict = "pending" if None in ok else "pass" if all(ok) else "FAIL"
            else:
                detail = "the row is not finished"
        checks.append({"target": target["name"], "verdict": verdict, "detail": detail.strip("; ")})
    return checks


def plot_env(env_id: str, rows: list[dict[str, Any]], path: Path) -> Path | None:
    rows = [r for r in rows if r["env_id"] == env_id and "curve" in r]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = list(dict.fromkeys(r["preset"] for r in rows))
    colors = {p: plt.get_cmap("tab10")(i) for i, p in enumerate(presets)}
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for r in rows:
        c = r["curve"]
        steps = np.array(c["steps"])
        library = "ddpgx" if r["library"] == "ddpgx" else "SB3 DDPG"
        extra = "" if r["status"] == "finished" else ", incomplete"
        ax.plot(steps, c["mean"], color=colors[r["preset"]], linestyle="-" if r["library"] == "ddpgx" else "--",
                marker="o" if r["library"] == "ddpgx" else "s", markersize=3,
                label=f"{library} {r['preset']} ({c['seeds']} seeds{extra})")
        ax.fill_between(steps, c["ci95_low"], c["ci95_high"], color=colors[r["preset"]],
                        alpha=0.2 if r["library"] == "ddpgx" else 0.12)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel(f"noise-free return (mean of {rows[0]['eval_episodes']} episodes)")
    ax.set_title(f"{env_id}: mean over seeds, 95% bootstrap interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["# Returns: ddpgx and Stable-Baselines3 DDPG", "",
             f"Command: `{results['command']}`  ",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; {m['date']}; ddpgx commit {m['git']}  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()), "",
             "| task | preset | library | seeds | steps | final mean | 95% CI of the mean | IQM | median | "
             "worst seed | best seed | wall time | note |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["rows"]:
        seeds = f"{r['seeds'][0]}-{r['seeds'][-1]}" if len(r["seeds"]) > 1 else str(r["seeds"][0])
        library = "ddpgx" if r["library"] == "ddpgx" else "SB3 DDPG"
        head = f"| {r['env_id']} | {r['preset']} | {library} | {len(r['seeds'])} ({seeds}) | {r['steps']:,} |"
        if r["status"] == "skipped":
            lines.append(head + " - | - | - | - | - | - | - | " + r["reason"] + " |")
            continue
        note = "" if r["status"] == "finished" else r["status"]
        if r["library"] == "sb3":
            threads = f"torch threads {', '.join(map(str, r['torch_num_threads']))}" if r.get("torch_num_threads") else ""
            note = "; ".join(x for x in (note, "same hyperparameters", threads) if x)
        if "mean" not in r:
            lines.append(head + f" - | - | - | - | - | - | {duration(r['wall_seconds'])} | {note} |")
            continue
        ci = "-" if r["ci95"][0] is None else f"[{fmt(r['ci95'][0])}, {fmt(r['ci95'][1])}]"
        lines.append(head + f" {fmt(r['mean'])} | {ci} | {fmt(r['iqm'])} | "
                     f"{fmt(r['median'])} | {fmt(r['worst'])} | {fmt(r['best'])} | {duration(r['wall_seconds'])} | "
                     f"{note} |")
    lines += ["", "Final return of a seed: the mean of its noise-free evaluation episodes at the last step, "
              f"each episode from the initial state `ddpgx.envs.env_seeds(seed, {results['protocol']['eval_episodes']}, "
              "stream=1)[i]` for both libraries. Final mean: the mean over seeds. 95% CI: percentile bootstrap of "
              f"that mean over seeds ({results['protocol']['bootstrap_resamples']:,} resamples, numpy seed "
              f"{results['protocol']['bootstrap_seed']}); with 3 to 5 seeds it is too narrow, read it as a spread. "
              f"IQM: {results['protocol']['iqm']} Wall time: all seeds of the row (ddpgx trains them in one process, "
              "SB3 one process per seed, one after the other), evaluation included. SB3 DDPG rows take the "
              "ddpgx preset's values field by field (results.json lists them) and differ only where the note "
              "says; SB3 makes its first update one transition later than ddpgx (after learning_starts + 1)."]
    if results["targets"]:
        lines += ["", "| target | verdict | detail |", "| --- | --- | --- |"]
        lines += [f"| {t['target']} | {t['verdict']} | {t['detail']} |" for t in results["targets"]]
    for env_id, png in results["plots"].items():
        lines += ["", f"![{env_id}]({png})"]
    return "\n".join(lines) + "\n"


IQM_TEXT = ("the mean of the middle 50% of the seeds' final returns, exactly: sorted, each seed weighs 1/n, "
            "and a seed that straddles a quartile counts with its part inside (10 seeds: drop 2 at each end "
            "and half-weight the next ones; 5 seeds: weights 0, 0.75, 1, 0.75, 0; 3 seeds: 0.25, 1, 0.25).")


def write_report(out: Path, plans: list[RowPlan], command: str, suite: dict | None) -> dict[str, Any]:
    rows = [row_result(out, plan) for plan in plans]
    results: dict[str, Any] = {
        "command": command, "machine": machine(),
        "protocol": {"eval_episodes": sorted({p.row.eval_episodes for p in plans}),
                     "bootstrap_resamples": BOOTSTRAP_RESAMPLES, "bootstrap_seed": BOOTSTRAP_SEED,
                     "confidence": CONFIDENCE, "iqm": IQM_TEXT,
                     "final_return": "mean over the evaluation episodes of the evaluation at step == steps"},
        "rows": rows, "targets": check_targets(suite, rows), "plots": {},
    }
    results["protocol"]["eval_episodes"] = results["protocol"]["eval_episodes"][0] \
        if len(results["protocol"]["eval_episodes"]) == 1 else results["protocol"]["eval_episodes"]
    for env_id in dict.fromkeys(p.row.env_id for p in plans):
        png = plot_env(env_id, rows, out / f"curves_{safe(env_id)}.png")
        if png is not None:
            results["plots"][env_id] = png.name
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    return results


# ----------------------------------------------------------------------------- main

def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the sweep as Ctrl-C does: the run in progress saves and stops


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), help="a named list of runs (issue4: the whole issue; fused: 8 updates per call against 1)")
    parser.add_argument("--envs", nargs="+", help="Gymnasium ids (default Pendulum-v1)")
    parser.add_argument("--presets", nargs="+", help="ddpgx presets (default: default); a variant overrides fields: "
                        "default+train_freq=8+gradient_steps=8")
    parser.add_argument("--seeds", type=int, help="seeds per row (default 10)")
    parser.add_argument("--first-seed", type=int, help="seeds are first-seed, first-seed + 1, ... (default 1)")
    parser.add_argument("--steps", nargs="+", metavar="[ENV=]N",
                        help=f"budget in environment steps per seed, for every env or per env "
                             f"(default {', '.join(f'{k}={v}' for k, v in DEFAULT_STEPS.items())})")
    parser.add_argument("--eval-every", nargs="+", metavar="[ENV=]N",
                        help=f"steps between evaluations (default 2000 on Pendulum-v1, {MUJOCO_EVAL_EVERY} otherwise)")
    parser.add_argument("--eval-episodes", type=int, help="noise-free episodes per evaluation (default 10)")
    parser.add_argument("--sb3", action="store_true", help="also run Stable-Baselines3 DDPG with the same hyperparameters")
    parser.add_argument("--no-sb3", action="store_true", help="leave SB3 out (of a --suite)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "returns")
    parser.add_argument("--checkpoint-every", type=int, default=10_000,
                        help="steps between ddpgx checkpoints (an interrupted run resumes from the last one)")
    parser.add_argument("--progress-every", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument("--list", action="store_true", help="print the plan and each run's state, run nothing")
    parser.add_argument("--report-only", action="store_true", help="write the report from the runs on disk, run nothing")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return WORKERS[args.worker](json.loads(args.spec))
    if args.eval_episodes is not None and args.eval_episodes < 1:
        raise SystemExit("error: --eval-episodes must be at least 1")
    if args.checkpoint_every < 0:
        raise SystemExit("error: --checkpoint-every must be zero or positive")
    entries, first_seed, episodes, sb3, suite = entries_from_args(args)
    out = args.out.resolve()
    plans = build_plan(entries, first_seed, episodes, sb3, out, args.checkpoint_every)
    command = shlex.join(["python", *sys.argv] if argv is None else ["python", "benchmarks/returns.py", *argv])
    if args.list:
        for plan in plans:
            print(f"{plan.row.library} {plan.row.preset} {plan.row.env_id}: {len(plan.row.seeds)} seeds x "
                  f"{plan.row.steps:,} steps, eval every {plan.row.eval_every:,}" + (f" -- {plan.skip}" if plan.skip else ""))
            for job in plan.jobs:
                state, step = job_status(job)
                print(f"    {job.name}: {state}" + (f" from step {step:,}" if state == "resume" else ""))
        return 0
    if sb3 and not args.report_only:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            raise SystemExit("error: --sb3 needs Stable-Baselines3: pip install -e '.[bench]'") from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    (out / "runs" / ".gitignore").write_text("# checkpoints and logs of the returns benchmark\n*\n")
    complete, sweep = True, Sweep(out, plans, args.progress_every)
    if not args.report_only:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            complete = sweep.run()
        except KeyboardInterrupt:
            complete = False
        finally:
            signal.signal(signal.SIGTERM, previous)
    results = write_report(out, plans, command, suite)
    print((out / "results.md").read_text())
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}"
          + "".join(f", {out / png}" for png in results["plots"].values()))
    if not complete:
        print(f"the sweep is not finished: rerun `{command}` to resume it", flush=True)
        return 130
    if sweep.failed:
        print(f"{len(sweep.failed)} runs failed: {', '.join(sweep.failed)} (logs in {out / 'jobs'}); "
              f"rerun to retry them", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
