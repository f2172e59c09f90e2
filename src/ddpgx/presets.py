"""Named, cited hyperparameter sets: `--preset NAME`; flags still override single fields.

A preset is a set of Config values, and may give single tasks their own values over them (a task
named by its full id, `HalfCheetah-v5`); the fields it does not set keep their `Config` defaults
(task-dependent ones included), so `default` is the `Config` defaults themselves.
`docs/presets.md` cites each value and lists where ddpgx cannot follow a source.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from ddpgx.config import JAX_SIMULATORS, Config, ConfigError


class Preset(NamedTuple):
    values: dict[str, Any]
    source: str
    jax_only: bool = False
    """For the on-device loop only (tasks written in JAX, gymnax/... or brax/...)."""
    tasks: Mapping[str, Mapping[str, Any]] = MappingProxyType({})
    """Values for single tasks (by full id, as `Hopper-v5`), applied over `values`."""


PRESETS: dict[str, Preset] = {
    "default": Preset(
        values={},
        source="the Config defaults: CleanRL's DDPG network and optimizer (256-256, Adam 3e-4), batch 256 as "
               "Haarnoja et al. 2018, Fujimoto et al. 2018 for tau, noise and the random start "
               "(10,000 steps; 1,000 on the smaller tasks, Pendulum-v1 included)",
    ),
    "paper": Preset(
        values=dict(actor_hidden=(400, 300), critic_hidden=(400, 300), actor_lr=1e-4, critic_lr=1e-3,
                    critic_weight_decay=1e-2, gamma=0.99, tau=0.001, batch_size=64, buffer_size=1_000_000,
                    noise="ou", noise_sigma=0.2, ou_theta=0.15, ou_dt=1.0, final_init=3e-3,
                    hidden_init="fan_in_uniform", critic_action_layer=1, batch_norm=True, learning_starts=0),
        source="Lillicrap et al. 2016, 'Continuous control with deep reinforcement learning', section 7",
    ),
    "td3-paper": Preset(
        values=dict(actor_hidden=(400, 300), critic_hidden=(400, 300), actor_lr=1e-3, critic_lr=1e-3,
                    batch_size=100, noise="gaussian", noise_sigma=0.1, tau=0.005, gamma=0.99,
                    critic_action_layer=0, critic_weight_decay=0.0, final_init=0.0, batch_norm=False,
                    hidden_init="fan_in_uniform",  # PyTorch's nn.Linear default, as the authors' OurDDPG.py
                    buffer_size=1_000_000),  # the random start is Config's task-dependent default, from this paper
        source="Fujimoto et al. 2018, 'Addressing Function Approximation Error in Actor-Critic Methods', "
               "'Our DDPG' (section 6.1 and appendix)",
    ),
    "extended": Preset(
        values=dict(obs_norm=True, n_step=3),
        source="default with the extensions that measurably helped on Hopper-v5: observation normalization "
               "(OpenAI Baselines' DDPG, Plappert et al. 2018) and 3-step returns (Hessel et al. 2018's n; "
               "Barth-Maron et al. 2018 for n-step returns with a deterministic policy gradient)",
    ),
    "modern": Preset(
        values=dict(obs_norm=True, n_step=3, actor_lr=1e-3, critic_lr=1e-3, critic_layer_norm=True),
        source="extended with Adam 1e-3 for both networks (the DDPG of Fujimoto et al. 2018 and Tianshou) and "
               "layer norm in the critic's hidden layers (Ball et al. 2023, Nauman et al. 2024), the candidate "
               "that led the screen on HalfCheetah-v5, where extended trailed the best published DDPG curve; for "
               "MuJoCo tasks",
    ),
    "mujoco": Preset(
        values=dict(obs_norm=True, n_step=3, actor_lr=1e-4, critic_lr=1e-3, critic_layer_norm=True),
        tasks={"HalfCheetah-v5": dict(obs_norm=False, n_step=1, actor_lr=1e-3, critic_layer_norm=False,
                                      learning_starts=25_000, gradient_steps=2)},
        source="per task, for the MuJoCo locomotion tasks: modern with the actor's Adam at 1e-4 (the rate pair of "
               "Lillicrap et al. 2016), which led on Hopper-v5, Walker2d-v5 and Ant-v5 over 1,000,000 steps; on "
               "HalfCheetah-v5, Tianshou's DDPG settings (256-256, Adam 1e-3, 25,000 random steps, no extension) with "
               "two gradient steps per environment step, the one setting measured that reaches Tianshou's curve "
               "there at 100,000, 300,000 and 1,000,000 steps",
    ),
    "multigoal": Preset(
        values=dict(her=True, her_strategy="future", her_k=4, actor_hidden=(256, 256, 256),
                    critic_hidden=(256, 256, 256), actor_lr=1e-3, critic_lr=1e-3, buffer_size=1_000_000, tau=0.05,
                    batch_size=256, gamma=0.98, noise="gaussian", noise_sigma=0.2, obs_norm=True, obs_norm_clip=5.0,
                    learning_starts=1_000),
        source="Plappert et al. 2018, 'Multi-Goal Reinforcement Learning: Challenging Robotics Environments and "
               "Request for Research', the HER settings of OpenAI Baselines (baselines/her/experiment/config.py, "
               "DEFAULT_PARAMS): 3 x 256, Adam 1e-3, polyak 0.95, batch 256, Gaussian noise 0.2, future with k = 4, "
               "gamma 1 - 1/T for T = 50, normalized observations clipped at 5; for goal tasks",
    ),
    "fasttd3": Preset(
        values=dict(num_envs=1024, batch_size=32768, actor_hidden=(512, 256, 128), critic_hidden=(1024, 512, 256),
                    actor_lr=3e-4, critic_lr=3e-4, tau=0.1, gamma=0.99, updates_per_iteration=2,
                    buffer_size=10_240 * 1024, learning_starts=10 * 1024, noise="gaussian", noise_sigma=0.2),
        source="Seo et al. 2025, 'FastTD3: Simple, Fast, and Capable Reinforcement Learning for Humanoid Control' "
               "(fast_td3/hyperparams.py, MuJoCoPlaygroundArgs): 1024 environments, batch 32768, 2 updates per "
               "iteration, the critic 1024-512-256 and the actor 512-256-128, tau 0.1, 10,240 transitions per "
               "environment; for accelerators",
        jax_only=True,
    ),
}


def preset_values(name: str, env_id: str | None = None) -> dict[str, Any]:
    """The Config values that preset `name` sets, for task `env_id` (without it: its values for any task)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return {**preset.values, **preset.tasks.get(env_id or "", {})}


def from_preset(name: str = "default", env_id: str = "Pendulum-v1", **changes: Any) -> Config:
    """A Config from a preset for a task, with single fields overridden by `changes`."""
    values = preset_values(name, env_id)
    if PRESETS[name].jax_only and not env_id.startswith(JAX_SIMULATORS):
        raise ConfigError(f"the {name} preset is for the on-device loop, with thousands of environments written in "
                          f"JAX (gymnax/NAME, brax/NAME), not {env_id}: choose such a task or another preset")
    return Config(**{**values, "env_id": env_id, **changes})
