"""A trained policy, read back from a run directory: observations in, actions in the environment's units out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddpgx import checkpoint as ckpt
from ddpgx.config import Config
from ddpgx.envs import ActionScaler, ObsLayout
from ddpgx.networks import actor_from_config, as_network
from ddpgx.normalization import MeanStd, ObsNormalizer
from ddpgx.rundir import seed_dirs

ACTOR = ".agent.actor"
"""Where a checkpoint's state.npz keeps the actor's parameters (the path of `learner.SeedState.agent.actor`)."""
OBS_STATS = ".obs_stats"
"""Where it keeps the observation statistics (`learner.SeedState.obs_stats`), when the run normalizes observations."""


class Policy:
    """The deterministic policy pi(s) of a run, with the rescaling to the action space's bounds.

    `policy(obs)` takes one observation or a batch and returns the action(s) in environment units.
    A run that normalized observations gives its `normalizer`, which the policy applies first.
    A run on a Dict observation has a `layout` (`envs.ObsLayout`): the policy then takes the
    environment's dictionary (one, or a batch: every value with a leading batch axis) or the
    flattened vector(s) of shape `obs_shape`, (size,), in the layout's order.
    """

    def __init__(self, actor: Any, params: Any, scaler: ActionScaler, obs_shape: tuple[int, ...],
                 config: Config | None = None, step: int | None = None, normalizer: ObsNormalizer | None = None,
                 layout: ObsLayout | None = None):
        self.actor, self.params, self.scaler = actor, params, scaler
        self.obs_shape, self.config, self.step = tuple(obs_shape), config, step
        self.normalizer, self.layout = normalizer, layout
        self._apply = jax.jit(as_network(actor, "actor").apply)

    def flat(self, obs: Any) -> np.ndarray:
        """The observation(s) as the flat float32 array the actor takes: a Dict observation flattened."""
        if hasattr(obs, "keys"):
            if self.layout is None:
                raise ValueError(f"this policy takes observations of shape {self.obs_shape}, not a dictionary")
            return self.layout.flatten(obs)
        return np.asarray(obs, np.float32)

    def act_unit(self, obs: np.ndarray) -> np.ndarray:
        """Actions in the agent's [-1, 1] for a batch of (raw) observations."""
        obs = np.asarray(obs, np.float32)
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        return np.asarray(self._apply(self.params, jnp.asarray(obs, jnp.float32)))

    def __call__(self, obs: Any) -> np.ndarray:
        obs = self.flat(obs)
        single = obs.shape == self.obs_shape
        if not single and obs.shape[1:] != self.obs_shape:
            raise ValueError(
                f"the policy takes observations of shape {self.obs_shape} (or a batch of them), got {obs.shape}"
            )
        action = self.scaler.to_env(self.act_unit(obs[None] if single else obs))
        return action[0] if single else action


def load_policy(run_dir: str | Path, checkpoint: str | Path | None = None, actor: Any = None) -> Policy:
    """The policy of a run's latest checkpoint (or of `checkpoint`).

    Pass `actor` when the run was trained with a custom actor network.
    """
    run_dir = Path(run_dir)
    path = Path(checkpoint) if checkpoint is not None else ckpt.latest_checkpoint(run_dir)
    if path is None:
        if not run_dir.exists():
            raise ckpt.CheckpointError(f"{run_dir} does not exist")
        seeds = list(seed_dirs(run_dir).values())
        hint = f" (it holds several seeds: pass one of {', '.join(str(s) for s in seeds)})" if seeds else ""
        raise ckpt.CheckpointError(f"{run_dir} has no checkpoint{hint}")
    c = ckpt.Checkpoint(path)
    config = Config.from_dict(c.meta["config"])
    low, high = np.asarray(c.meta["action_low"]), np.asarray(c.meta["action_high"])
    obs_shape = tuple(c.meta["obs_shape"])
    network = actor if actor is not None else actor_from_config(config, len(low))
    template = as_network(network, "actor").init(jax.random.PRNGKey(0), jnp.zeros((1, *obs_shape), jnp.float32))
    params = ckpt.unflatten(template, c.subtree(ACTOR), path / "state.npz")
    normalizer = None
    if config.obs_norm:
        size = int(np.prod(obs_shape))
        stats = ckpt.unflatten(MeanStd(np.zeros(()), np.zeros(size), np.zeros(size)), c.subtree(OBS_STATS),
                               path / "state.npz")
        normalizer = ObsNormalizer.from_stats(stats, config.obs_norm_clip)
    layout = ObsLayout.from_json(c.meta["obs_layout"]) if "obs_layout" in c.meta else None
    return Policy(network, params, ActionScaler(low, high), obs_shape, config, c.step, normalizer, layout)
