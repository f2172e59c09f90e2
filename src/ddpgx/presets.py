"""Named, cited hyperparameter sets: `--preset NAME`; flags still override single fields.

A preset is a set of Config values plus, where its source tunes a task separately, values for
that task. `docs/presets.md` cites each value and lists where ddpgx cannot follow a source.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ddpgx.config import Config, ConfigError


class Preset(NamedTuple):
    values: dict[str, Any]
    per_env: dict[str, dict[str, Any]]
    source: str


# Fujimoto et al. 2018 start with 10,000 uniformly random steps on HalfCheetah and Ant and with
# 1,000 on their other tasks (the authors' run_experiments.sh); Pendulum-v1 is not one of their tasks,
# and 1,000 is what presets for it usually use.
SHORT_RANDOM_START = {env_id: dict(learning_starts=1_000) for env_id in (
    "Pendulum-v1", "Hopper-v5", "Walker2d-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5")}

PRESETS: dict[str, Preset] = {
    "default": Preset(
        values=dict(actor_hidden=(256, 256), critic_hidden=(256, 256), actor_lr=3e-4, critic_lr=3e-4,
                    batch_size=256, tau=0.005, gamma=0.99, noise="gaussian", noise_sigma=0.1,
                    learning_starts=10_000, buffer_size=1_000_000, critic_action_layer=0,
                    critic_weight_decay=0.0, final_init=0.0, hidden_init="fan_in_uniform", batch_norm=False),
        per_env=SHORT_RANDOM_START,
        source="a modern setting: CleanRL's DDPG network and optimizer defaults (256-256, Adam 3e-4), "
               "batch 256 as Haarnoja et al. 2018, Fujimoto et al. 2018 for tau, noise and the random start "
               "(10,000 steps; 1,000 on the smaller tasks, Pendulum-v1 included)",
    ),
    "paper": Preset(
        values=dict(actor_hidden=(400, 300), critic_hidden=(400, 300), actor_lr=1e-4, critic_lr=1e-3,
                    critic_weight_decay=1e-2, gamma=0.99, tau=0.001, batch_size=64, buffer_size=1_000_000,
                    noise="ou", noise_sigma=0.2, ou_theta=0.15, ou_dt=1.0, final_init=3e-3,
                    hidden_init="fan_in_uniform", critic_action_layer=1, batch_norm=True, learning_starts=0),
        per_env={},
        source="Lillicrap et al. 2016, 'Continuous control with deep reinforcement learning', section 7",
    ),
    "td3-paper": Preset(
        values=dict(actor_hidden=(400, 300), critic_hidden=(400, 300), actor_lr=1e-3, critic_lr=1e-3,
                    batch_size=100, noise="gaussian", noise_sigma=0.1, tau=0.005, gamma=0.99,
                    critic_action_layer=0, critic_weight_decay=0.0, final_init=0.0, batch_norm=False,
                    hidden_init="fan_in_uniform",  # PyTorch's nn.Linear default, as the authors' OurDDPG.py
                    learning_starts=10_000, buffer_size=1_000_000),
        per_env=SHORT_RANDOM_START,
        source="Fujimoto et al. 2018, 'Addressing Function Approximation Error in Actor-Critic Methods', "
               "'Our DDPG' (section 6.1 and appendix)",
    ),
}


def preset_values(name: str, env_id: str) -> dict[str, Any]:
    """The Config values of preset `name` for task `env_id`."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return {**preset.values, **preset.per_env.get(env_id, {})}


def from_preset(name: str = "default", env_id: str = Config.env_id, **changes: Any) -> Config:
    """A Config from a preset for a task, with single fields overridden by `changes`."""
    return Config(**{**preset_values(name, env_id), "env_id": env_id, **changes})
