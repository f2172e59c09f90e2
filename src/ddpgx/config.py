"""The one configuration of a ddpgx run.

Every field carries its help text as metadata; the command line shows it under `--help`, so the
documentation of a flag and of the Python API is written once. Each default says where it comes
from; `docs/algorithm.md` lists them with their sources.

A field whose default depends on the task (today only `learning_starts`) is given as None and
resolved from `TASK_DEFAULTS` for `env_id`: `Config(env_id="Hopper-v5")` is exactly what
`ddpgx train --env Hopper-v5` runs. The lengths of the schedules (`noise_decay_steps`,
`priority_beta_steps`) are given as None and resolved to `total_steps`; the resolved value is saved
with the run, so a resumed run keeps its schedule when its `total_steps` grows.

The extensions of the seed's algorithm (observation normalization, reward scaling, n-step returns,
prioritized replay, layer normalization, noise schedules, parameter-space noise) are off by default.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ddpgx.files import write_json

NoiseKind = Literal["gaussian", "ou", "param"]
HerStrategy = Literal["future", "final", "episode"]
NoiseSchedule = Literal["constant", "linear", "exponential"]
Init = Literal["lecun_normal", "fan_in_uniform"]
NOISE_KINDS = typing.get_args(NoiseKind)
NOISE_SCHEDULES = typing.get_args(NoiseSchedule)
INITS = typing.get_args(Init)
HER_STRATEGIES = typing.get_args(HerStrategy)

SEED_LIMIT = 2**32
"""Seeds are in [0, 2**32): JAX's PRNGKey keeps 32 bits of a seed, so larger ones would repeat smaller ones."""

# Fujimoto et al. 2018 start with 10,000 uniformly random steps on HalfCheetah and Ant and with 1,000
# on their other tasks (the authors' run_experiments.sh). Pendulum-v1 is not one of their tasks; it
# gets the value of their smaller ones.
SHORT_RANDOM_START = ("Pendulum-v1", "Hopper-v5", "Walker2d-v5", "InvertedPendulum-v5",
                      "InvertedDoublePendulum-v5", "Reacher-v5",
                      "gymnax/Pendulum-v1", "brax/hopper", "brax/walker2d")  # the same tasks written in JAX
TASK_DEFAULTS: dict[str, dict[str, Any]] = {env_id: {"learning_starts": 1_000} for env_id in SHORT_RANDOM_START}
GENERAL_DEFAULTS: dict[str, Any] = {"learning_starts": 10_000}
"""The values of the task-dependent fields for a task that TASK_DEFAULTS does not name."""
RUN_LENGTH_DEFAULTS = ("noise_decay_steps", "priority_beta_steps")
"""Fields whose default (None) is the run's total_steps."""


WORKERS_WITHOUT = (("reward_norm", False), ("n_step", 1), ("noise_schedule", "constant"))
"""Extensions the rollout workers do not support, with their plain values; nor parameter noise.
Observation normalization, prioritized replay, hindsight relabeling, a fixed reward scale and both
networks' layer norms work with them."""


JAX_SIMULATORS = ("gymnax/", "brax/")
"""The prefixes of the tasks written in JAX, which the on-device loop trains (`jax_envs.py`)."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message says which one and what to do."""


def option(default: Any, help: str) -> Any:
    """A Config field with its help text."""
    return dataclasses.field(default=default, metadata={"help": help})


def task_default(name: str, env_id: str) -> Any:
    """The default of a task-dependent field for `env_id`."""
    return TASK_DEFAULTS.get(env_id, {}).get(name, GENERAL_DEFAULTS[name])


def check_seed(seed: Any, what: str = "seed", count: int = 1) -> None:
    """Seeds seed .. seed + count - 1 must be integers in [0, 2**32)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"invalid {what}={seed!r}: must be an integer")
    if seed < 0 or seed + count > SEED_LIMIT:
        last = f" (and seed + num_seeds - 1 = {seed + count - 1})" if count > 1 else ""
        raise ConfigError(f"invalid {what}={seed}{last}: seeds must lie in [0, 2**32 - 1] "
                          f"(JAX keeps 32 bits of a seed, so larger ones would repeat smaller ones)")


@dataclass(frozen=True)
class Config:
    """Hyperparameters and run settings of DDPG training."""

    env_id: str = option("Pendulum-v1", "Gymnasium environment id (a registered id, or 'module:EnvName' to import one); "
                                         "or a task written in JAX, trained on the device: gymnax/NAME or brax/NAME.")
    total_steps: int = option(20_000, "Environment steps to train for, counted per seed over all parallel environments "
                                      "(RL Zoo's Pendulum-v1 budget).")
    seed: int = option(0, "Seed of everything random in the run, in [0, 2**32): same seed, same machine, same result "
                          "bit for bit.")
    num_envs: int = option(1, "Environments stepping together (a Gymnasium vector env with SAME_STEP autoreset).")
    max_episode_steps: int = option(0, "Time limit of an episode in steps, in training and evaluation (a truncation, "
                                       "which bootstraps); 0 keeps the environment's own limit.")

    # --- the seed's algorithm ---
    gamma: float = option(0.99, "Discount factor of the Bellman target (Lillicrap et al. 2016, section 7).")
    tau: float = option(0.005, "Polyak rate of the target networks: target <- tau * online + (1 - tau) * target "
                               "(Fujimoto et al. 2018).")
    batch_size: int = option(256, "Transitions per gradient step (Haarnoja et al. 2018; Stable-Baselines3's default).")
    buffer_size: int = option(1_000_000, "Capacity of the replay buffer, in transitions per seed (Lillicrap et al. 2016).")
    actor_lr: float = option(3e-4, "Adam learning rate of the actor (CleanRL's DDPG default).")
    critic_lr: float = option(3e-4, "Adam learning rate of the critic (CleanRL's DDPG default).")
    actor_hidden: tuple[int, ...] = option((256, 256), "Hidden layer widths of the actor MLP (ReLU; CleanRL's DDPG).")
    critic_hidden: tuple[int, ...] = option((256, 256), "Hidden layer widths of the critic MLP (ReLU; CleanRL's DDPG).")
    critic_action_layer: int = option(0, "Hidden layer of the critic that the action joins: 0 the input (Fujimoto et "
                                         "al. 2018), 1 the second layer (Lillicrap et al. 2016).")
    critic_weight_decay: float = option(0.0, "L2 weight decay of the critic's weight matrices, added to the gradient "
                                             "before Adam (Lillicrap et al. 2016 used 1e-2).")
    hidden_init: Init = option("fan_in_uniform", "Initial weights of the layers: fan_in_uniform (weights and biases "
                                                 "uniform in +-1/sqrt(fan_in), PyTorch's nn.Linear default, as CleanRL "
                                                 "and SB3) or lecun_normal (flax's default, zero biases).")
    final_init: float = option(0.0, "If positive, the last layers' weights and biases start uniform in "
                                    "[-final_init, final_init] (Lillicrap et al. 2016: 3e-3); 0 initializes them as the "
                                    "other layers.")
    batch_norm: bool = option(False, "Batch normalization as Lillicrap et al. 2016 used it: on the state input and "
                                     "every hidden layer of the actor, and on the critic's layers before the action.")
    actor_layer_norm: bool = option(False, "Layer normalization (Ba et al. 2016) after every hidden Dense layer of the "
                                           "actor, before the ReLU, as OpenAI Baselines' DDPG.")
    critic_layer_norm: bool = option(False, "Layer normalization (Ba et al. 2016) after every hidden Dense layer of the "
                                            "critic, before the ReLU (Ball et al. 2023 for off-policy critics).")

    # --- observations, rewards, targets, replay ---
    obs_norm: bool = option(False, "Normalize observations by their running mean and standard deviation, wherever the "
                                   "networks see one (OpenAI Baselines' DDPG); the statistics are saved with the run "
                                   "and folded into an exported policy.")
    obs_norm_until: int = option(0, "Stop updating the observation statistics after this many steps (0: never).")
    obs_norm_clip: float = option(5.0, "Clip normalized observations to [-obs_norm_clip, obs_norm_clip] (OpenAI "
                                       "Baselines' DDPG: 5).")
    reward_scale: float = option(1.0, "Multiply the rewards the critic learns from by this constant (evaluation and "
                                      "the logged returns stay in the environment's units).")
    reward_norm: bool = option(False, "Also divide the rewards the critic learns from by the running standard "
                                      "deviation of the discounted return (SB3's VecNormalize; Engstrom et al. 2020).")
    n_step: int = option(1, "Steps of reward summed in the TD target, which then bootstraps with gamma^n_step "
                            "(Mnih et al. 2016; Barth-Maron et al. 2018); 1 is the seed's one-step target.")
    prioritized: bool = option(False, "Proportional prioritized replay (Schaul et al. 2016): sample transitions in "
                                      "proportion to |TD error|^priority_alpha, weight the critic loss by importance.")
    priority_alpha: float = option(0.6, "Exponent of the priorities (Schaul et al. 2016, proportional variant: 0.6).")
    priority_beta: float = option(0.4, "Initial exponent of the importance-sampling weights, annealed linearly to 1 "
                                       "(Schaul et al. 2016: 0.4).")
    priority_beta_steps: int | None = option(None, "Steps over which priority_beta is annealed to 1 (None: the run's "
                                                   "total_steps).")
    priority_eps: float = option(1e-6, "Added to |TD error| so that every transition keeps a chance to be sampled "
                                       "(Schaul et al. 2016).")
    her: bool = option(False, "Hindsight experience replay (Andrychowicz et al. 2017) for goal environments (a Dict "
                              "observation with achieved_goal and desired_goal, and compute_reward): minibatches "
                              "replay transitions with goals achieved later, relabeled when sampled.")
    her_strategy: HerStrategy = option("future", "Which achieved goal replaces the desired one: future (one achieved "
                                                 "later in the same episode), final (the episode's last) or episode "
                                                 "(any of the episode's); Andrychowicz et al. 2017, section 4.5.")
    her_k: int = option(4, "Relabeled transitions per real one: a minibatch holds k / (k + 1) relabeled transitions "
                           "(Andrychowicz et al. 2017: k = 4 with the future strategy).")

    # --- schedule ---
    learning_starts: int | None = option(None, "Steps of uniformly random actions before learning starts; its default "
                                               "depends on the task, as in Fujimoto et al. 2018 (None: the task's "
                                               "value from TASK_DEFAULTS).")
    train_freq: int = option(1, "Update every this many vector-env steps (the seed: after each new transition).")
    gradient_steps: int = option(1, "Gradient steps per update, per environment (the seed: one per transition).")
    updates_per_iteration: int = option(0, "On-device loop (gymnax/..., brax/... tasks): gradient steps per update "
                                           "whatever num_envs, as FastTD3's num_updates (0: gradient_steps x num_envs, "
                                           "one per new transition).")

    # --- exploration ---
    noise: NoiseKind = option("gaussian", "Exploration noise: gaussian or ou (Ornstein-Uhlenbeck), added in the "
                                          "[-1, 1] action space; or param, adaptive parameter-space noise (Plappert "
                                          "et al. 2018).")
    noise_sigma: float = option(0.1, "Scale of the exploration noise (0.1 Gaussian: Fujimoto et al. 2018; the paper's "
                                     "OU used 0.2); for param noise, the target distance in action space, and the "
                                     "parameter noise's initial standard deviation.")
    noise_schedule: NoiseSchedule = option("constant", "How noise_sigma changes: constant, or a linear or exponential "
                                                       "decay to noise_sigma_final over noise_decay_steps steps.")
    noise_sigma_final: float = option(0.0, "The floor a decaying noise_sigma reaches (positive for the exponential "
                                           "schedule).")
    noise_decay_steps: int | None = option(None, "Steps over which noise_sigma decays (None: the run's total_steps).")
    param_noise_adapt_every: int = option(50, "Adapt the parameter noise's scale every this many steps (OpenAI "
                                              "Baselines' DDPG: 50).")
    ou_theta: float = option(0.15, "Mean-reversion rate of the Ornstein-Uhlenbeck noise (Lillicrap et al. 2016).")
    ou_dt: float = option(1e-2, "Time step of the Ornstein-Uhlenbeck process (as in OpenAI Baselines).")

    # --- rollout workers (Ape-X, Horgan et al. 2018; D4PG, Barth-Maron et al. 2018) ---
    workers: int = option(0, "Rollout workers on Ray that collect transitions for one learner (0: the single-process "
                             "loop). Each steps num_envs environments per seed.")
    replay_ratio: float = option(1.0, "With workers: gradient steps per inserted transition, enforced whatever the "
                                      "workers' speed (the seed: 1).")
    sync_every: int = option(1, "With workers: the actor goes to the workers once this many gradient steps have "
                                "passed since it last went; a chunk is collected with the latest actor sent.")
    sync: bool = option(False, "With workers: collect in lockstep rounds, so that the same seed gives the same "
                               "parameters (the default, asynchronous collection does not).")
    chunk_steps: int = option(64, "With workers: steps of each environment in one chunk of transitions a worker sends.")
    worker_noise_spread: float = option(0.0, "With workers: worker i of N explores with noise_sigma * 0.4 ** (spread "
                                             "* i / (N - 1)), as Ape-X spreads epsilon (Horgan et al. 2018: 0.4 ** (1 "
                                             "+ 7 i / (N - 1))); 0: every worker uses noise_sigma.")

    # --- evaluation, logging, checkpoints ---
    eval_every: int = option(5_000, "Noise-free evaluation every this many steps (0: only the final one; Fujimoto et "
                                    "al. 2018).")
    eval_episodes: int = option(10, "Episodes per noise-free evaluation (Fujimoto et al. 2018).")
    log_every: int = option(1_000, "Write training metrics every this many steps.")
    checkpoint_every: int = option(10_000, "Save a checkpoint every this many steps (0: only the final one).")
    keep_checkpoints: int = option(2, "How many of the latest checkpoints to keep on disk.")
    save_buffer: bool = option(True, "Store the replay buffer in checkpoints; needed for an exact resume.")
    tensorboard: bool = option(True, "Also write training metrics as TensorBoard event files.")

    def __post_init__(self) -> None:
        # tuples arrive as lists from JSON and from the command line
        for name in ("actor_hidden", "critic_hidden"):
            if isinstance(getattr(self, name), (list, tuple)):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        derived = []
        for name in GENERAL_DEFAULTS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, task_default(name, self.env_id if isinstance(self.env_id, str) else ""))
                derived.append(name)
        for name in RUN_LENGTH_DEFAULTS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.total_steps)
                derived.append(name)
        object.__setattr__(self, "_derived", tuple(derived))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""

        def fail(field: str, why: str) -> None:
            value = getattr(self, field)
            raise ConfigError(f"invalid {field}={value!r}: {why}")

        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value, hint = getattr(self, field.name), hints[field.name]
            if hint == int | None:
                hint = int
            expected = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint)
            if not isinstance(value, bool) and (hint is float and isinstance(value, numbers.Real)
                                                or hint is int and isinstance(value, numbers.Integral)):
                value = hint(value)  # numpy scalars and ints given for floats become the plain type
                object.__setattr__(self, field.name, value)
            if expected and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
                fail(field.name, f"must be {expected}, not {type(value).__name__}")
            if typing.get_origin(hint) is tuple and not (
                    isinstance(value, tuple) and all(isinstance(w, int) and not isinstance(w, bool) for w in value)):
                fail(field.name, "must be a sequence of integers")
            if typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
                fail(field.name, f"choose one of {', '.join(typing.get_args(hint))}")
            if isinstance(value, float) and not math.isfinite(value):
                fail(field.name, "must be a finite number")
        if not self.env_id:
            fail("env_id", "give a Gymnasium environment id such as 'Pendulum-v1'")
        if not 0 <= self.seed < SEED_LIMIT:
            fail("seed", "must lie in [0, 2**32 - 1] (JAX keeps 32 bits of a seed, so larger ones would repeat "
                         "smaller ones)")
        if not 0.0 < self.tau <= 1.0:
            fail("tau", "must be in (0, 1]; 1 copies the online networks into the targets")
        if not 0.0 <= self.gamma <= 1.0:
            fail("gamma", "must be in [0, 1]")
        for name in ("total_steps", "learning_starts", "eval_every", "checkpoint_every", "max_episode_steps", "workers"):
            if getattr(self, name) < 0:
                fail(name, "must be zero or positive")
        for name in ("num_envs", "batch_size", "buffer_size", "train_freq", "gradient_steps",
                     "eval_episodes", "log_every", "keep_checkpoints", "sync_every", "chunk_steps"):
            if getattr(self, name) < 1:
                fail(name, "must be at least 1")
        if self.batch_size > self.buffer_size:
            fail("batch_size", f"is larger than buffer_size={self.buffer_size}; lower it or enlarge the buffer")
        if self.buffer_size < self.num_envs:
            fail("buffer_size", f"must hold at least one step of the {self.num_envs} environments")
        for name in ("actor_lr", "critic_lr"):
            if getattr(self, name) <= 0:
                fail(name, "must be positive")
        for name in ("actor_hidden", "critic_hidden"):
            if any(w < 1 for w in getattr(self, name)):
                fail(name, "layer widths must be at least 1")
        if self.critic_action_layer < 0 or self.critic_action_layer > max(len(self.critic_hidden) - 1, 0):
            fail("critic_action_layer", f"must be between 0 and {max(len(self.critic_hidden) - 1, 0)} "
                 f"(the critic has {len(self.critic_hidden)} hidden layers)")
        if self.updates_per_iteration < 0:
            fail("updates_per_iteration", "must be zero (one update per transition) or positive")
        if self.updates_per_iteration and not self.env_id.startswith(JAX_SIMULATORS):
            fail("updates_per_iteration", f"is for the on-device loop of tasks written in JAX (gymnax/..., brax/...), "
                                          f"not {self.env_id}: use gradient_steps and train_freq")
        if self.replay_ratio <= 0:
            fail("replay_ratio", "must be positive")
        if self.workers and self.buffer_size < self.chunk_steps * self.num_envs:
            fail("buffer_size", f"must hold a worker's chunk of {self.chunk_steps * self.num_envs} transitions")
        for name in ("critic_weight_decay", "final_init", "noise_sigma", "ou_theta", "worker_noise_spread",
                     "noise_sigma_final", "noise_decay_steps", "priority_beta_steps", "obs_norm_until"):
            if getattr(self, name) < 0:
                fail(name, "must be zero or positive")
        for name in ("ou_dt", "obs_norm_clip", "reward_scale", "priority_eps"):
            if getattr(self, name) <= 0:
                fail(name, "must be positive")
        for name in ("n_step", "param_noise_adapt_every", "her_k"):
            if getattr(self, name) < 1:
                fail(name, "must be at least 1")
        if not 0.0 <= self.priority_alpha <= 1.0:
            fail("priority_alpha", "must be in [0, 1]; 0 samples uniformly")
        if not 0.0 <= self.priority_beta <= 1.0:
            fail("priority_beta", "must be in [0, 1]; it is annealed to 1")
        if self.batch_norm and (self.actor_layer_norm or self.critic_layer_norm):
            which = "actor_layer_norm" if self.actor_layer_norm else "critic_layer_norm"
            fail(which, "cannot be combined with batch_norm: choose one normalization of the hidden layers")
        if self.noise_schedule == "exponential" and self.noise_sigma_final <= 0:
            fail("noise_sigma_final", "must be positive for the exponential schedule (it decays toward it by a "
                                      "constant factor per step)")
        if self.noise_schedule != "constant" and self.noise_sigma_final > self.noise_sigma:
            fail("noise_sigma_final", f"is above noise_sigma={self.noise_sigma}: a schedule decays the noise")
        if self.noise == "param" and self.noise_sigma <= 0:
            fail("noise_sigma", "must be positive with param noise: it is the target distance in action space")
        if self.her:  # hindsight relabeling rewrites one-step transitions, sampled uniformly
            for name, plain, why in (("n_step", 1, "the relabeled reward is one step's"),
                                     ("prioritized", False, "a slot's priority is for its stored goal, not for "
                                                            "the relabeled ones")):
                if getattr(self, name) != plain:
                    fail(name, f"is not supported with her ({why}): leave it at {plain!r}, or train without her")
        if self.workers:  # what the rollout workers' numpy acting and chunked collection do not carry
            for name, plain in WORKERS_WITHOUT:
                if getattr(self, name) != plain:
                    fail(name, f"is not supported with rollout workers (workers={self.workers}): train it with "
                               f"workers=0, or leave it at {plain!r}")
            if self.noise == "param":
                fail("noise", f"param is not supported with rollout workers (workers={self.workers}): choose "
                              f"gaussian or ou, or train with workers=0")

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated again). A task-dependent field that was not set
        explicitly follows a change of `env_id`."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        if "env_id" in changes:
            changes = {**{name: None for name in self._derived if name in GENERAL_DEFAULTS}, **changes}
        if "total_steps" in changes:
            changes = {**{name: None for name in self._derived if name in RUN_LENGTH_DEFAULTS}, **changes}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown config field(s): {', '.join(unknown)}; known fields are {', '.join(sorted(known))}"
            )
        return cls(**values)

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically: a crash leaves the old file or the new one."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Config:
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read the config {path}: {error}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} does not hold a config object")
        return cls.from_dict(values)
