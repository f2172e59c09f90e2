"""The one configuration of a ddpgx run.

Every field has a docstring; the command line takes its `--help` text from it (see `cli.py`), so
the documentation of a flag and of the Python API is written once. Each default says where it
comes from; `docs/algorithm.md` lists them with their sources.
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

NOISE_KINDS = ("gaussian", "ou")
INITS = ("lecun_normal", "fan_in_uniform")


class ConfigError(ValueError):
    """A configuration value is invalid; the message says which one and what to do."""


@dataclass(frozen=True)
class Config:
    """Hyperparameters and run settings of DDPG training."""

    env_id: str = "Pendulum-v1"
    """Gymnasium environment id (a registered id, or 'module:EnvName' to import one)."""
    total_steps: int = 20_000
    """Environment steps to train for, counted per seed over all parallel environments."""
    seed: int = 0
    """Seed of everything random in the run: same seed, same machine, same result bit for bit."""
    num_envs: int = 1
    """Environments stepping together (a Gymnasium vector env with SAME_STEP autoreset)."""

    # --- the seed's algorithm ---
    gamma: float = 0.99
    """Discount factor of the Bellman target (Lillicrap et al. 2016, section 7)."""
    tau: float = 0.005
    """Polyak rate of the target networks: target <- tau * online + (1 - tau) * target (Fujimoto et al. 2018)."""
    batch_size: int = 256
    """Transitions per gradient step (Haarnoja et al. 2018; Stable-Baselines3's default)."""
    buffer_size: int = 1_000_000
    """Capacity of the replay buffer, in transitions per seed (Lillicrap et al. 2016)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor (CleanRL's DDPG default; Haarnoja et al. 2018 for SAC)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic (CleanRL's DDPG default; Haarnoja et al. 2018 for SAC)."""
    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor MLP (ReLU)."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the critic MLP (ReLU)."""
    critic_action_layer: int = 0
    """Hidden layer of the critic that the action joins: 0 the input (Fujimoto et al. 2018), 1 the second layer (Lillicrap et al. 2016)."""
    critic_weight_decay: float = 0.0
    """L2 weight decay of the critic's weight matrices, added to the gradient before Adam (Lillicrap et al. 2016 used 1e-2)."""
    hidden_init: Literal["lecun_normal", "fan_in_uniform"] = "fan_in_uniform"
    """Initial weights of the layers: 'lecun_normal' (flax's default, zero biases) or 'fan_in_uniform' (weights and biases uniform in +-1/sqrt(fan_in): PyTorch's nn.Linear default, and Lillicrap et al. 2016's hidden layers)."""
    final_init: float = 0.0
    """If positive, the last layers' weights and biases start uniform in [-final_init, final_init] (Lillicrap et al. 2016: 3e-3); 0 initializes them as the other layers (hidden_init)."""
    batch_norm: bool = False
    """Batch normalization as Lillicrap et al. 2016 used it: on the state input and every hidden layer of the actor, and on the critic's state input and its layers before the action."""

    # --- schedule ---
    learning_starts: int = 10_000
    """Steps of uniformly random actions before learning starts (10,000: Fujimoto et al. 2018 on HalfCheetah and Ant; the default preset uses 1,000 on Pendulum-v1)."""
    train_freq: int = 1
    """Update every this many vector-env steps (the seed: after each new transition)."""
    gradient_steps: int = 1
    """Gradient steps per update, per environment (the seed: one per transition)."""

    # --- exploration ---
    noise: Literal["gaussian", "ou"] = "gaussian"
    """Exploration noise added in the [-1, 1] action space: 'gaussian' or 'ou' (Ornstein-Uhlenbeck)."""
    noise_sigma: float = 0.1
    """Scale of the exploration noise (0.1 Gaussian: Fujimoto et al. 2018; the paper's OU used 0.2)."""
    ou_theta: float = 0.15
    """Mean-reversion rate of the Ornstein-Uhlenbeck noise (Lillicrap et al. 2016)."""
    ou_dt: float = 1e-2
    """Time step of the Ornstein-Uhlenbeck process (as in OpenAI Baselines)."""

    # --- evaluation, logging, checkpoints ---
    eval_every: int = 5_000
    """Noise-free evaluation every this many steps (0 disables periodic evaluation; the final one always runs)."""
    eval_episodes: int = 10
    """Episodes per noise-free evaluation."""
    log_every: int = 1_000
    """Write training metrics every this many steps."""
    checkpoint_every: int = 10_000
    """Save a checkpoint every this many steps (0: only the final one)."""
    keep_checkpoints: int = 2
    """How many of the latest checkpoints to keep on disk."""
    save_buffer: bool = True
    """Store the replay buffer in checkpoints; needed for an exact resume."""
    tensorboard: bool = True
    """Also write training metrics as TensorBoard event files."""

    def __post_init__(self) -> None:
        # tuples arrive as lists from JSON and from the command line
        for name in ("actor_hidden", "critic_hidden"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""

        def fail(field: str, why: str) -> None:
            value = getattr(self, field)
            raise ConfigError(f"invalid {field}={value!r}: {why}")

        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value, hint = getattr(self, field.name), hints[field.name]
            expected = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint)
            if not isinstance(value, bool) and (hint is float and isinstance(value, numbers.Real)
                                                or hint is int and isinstance(value, numbers.Integral)):
                value = hint(value)  # numpy scalars and ints given for floats become the plain type
                object.__setattr__(self, field.name, value)
            if expected and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
                fail(field.name, f"must be {expected}, not {type(value).__name__}")
            if typing.get_origin(hint) is tuple and not all(isinstance(w, int) and not isinstance(w, bool) for w in value):
                fail(field.name, "must be a sequence of integers")
            if isinstance(value, float) and not math.isfinite(value):
                fail(field.name, "must be a finite number")
        if not isinstance(self.env_id, str) or not self.env_id:
            fail("env_id", "give a Gymnasium environment id such as 'Pendulum-v1'")
        if not 0.0 < self.tau <= 1.0:
            fail("tau", "must be in (0, 1]; 1 copies the online networks into the targets")
        if not 0.0 <= self.gamma <= 1.0:
            fail("gamma", "must be in [0, 1]")
        for name in ("total_steps", "learning_starts", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                fail(name, "must be zero or positive")
        for name in ("num_envs", "batch_size", "buffer_size", "train_freq", "gradient_steps",
                     "eval_episodes", "log_every", "keep_checkpoints"):
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
            if any(int(w) < 1 for w in getattr(self, name)):
                fail(name, "layer widths must be at least 1")
        if self.critic_action_layer < 0 or self.critic_action_layer > max(len(self.critic_hidden) - 1, 0):
            fail("critic_action_layer", f"must be between 0 and {max(len(self.critic_hidden) - 1, 0)} "
                 f"(the critic has {len(self.critic_hidden)} hidden layers)")
        if self.critic_weight_decay < 0 or self.final_init < 0:
            fail("critic_weight_decay" if self.critic_weight_decay < 0 else "final_init", "must be zero or positive")
        if self.hidden_init not in INITS:
            fail("hidden_init", f"choose one of {', '.join(INITS)}")
        if self.noise not in NOISE_KINDS:
            fail("noise", f"choose one of {', '.join(NOISE_KINDS)}")
        if self.noise_sigma < 0:
            fail("noise_sigma", "must be zero or positive")
        if self.ou_theta < 0 or self.ou_dt <= 0:
            fail("ou_theta" if self.ou_theta < 0 else "ou_dt", "must be positive")

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated again)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
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
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

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
