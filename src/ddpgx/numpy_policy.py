"""Run a policy written by `ddpgx export --format numpy` with numpy alone.

    from ddpgx import numpy_policy
    policy = numpy_policy.load("runs/pendulum/policy.npz")
    action = policy(obs)          # one observation, or a batch of them

This module imports nothing but numpy (no JAX, no other part of ddpgx), so it can also be copied
next to the .npz file and used where ddpgx is not installed.

The .npz file (format 1) holds the default actor with its batch norms folded into the dense layers:
    kernel_<i>, bias_<i>     layer i of `num_layers`: x = x @ kernel + bias, then ReLU
                             (the last layer: tanh, an action in [-1, 1])
    action_low, action_high  the environment's action bounds; the action is
                             low + (a + 1) * 0.5 * (high - low), as envs.ActionScaler.to_env computes it
    obs_shape                the shape of one observation (flattened before the first layer)
    hidden_activation, output_activation, batch_norm (folded in), env_id, ddpgx_version, step, format
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FORMAT = 1
ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh}


class NumpyPolicy:
    """pi(s) in environment units: `policy(obs)` takes one observation or a batch, returns float32 actions."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], action_low: np.ndarray,
                 action_high: np.ndarray, obs_shape: tuple[int, ...], hidden_activation: str = "relu",
                 output_activation: str = "tanh", metadata: dict | None = None):
        self.layers = [(np.asarray(k, np.float32), np.asarray(b, np.float32)) for k, b in layers]
        self.action_low = np.asarray(action_low, np.float32)
        self.half_range = (0.5 * (np.asarray(action_high, np.float64) - np.asarray(action_low, np.float64))).astype(
            np.float32)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.hidden = ACTIVATIONS[hidden_activation]
        self.output = ACTIVATIONS[output_activation]
        self.metadata = dict(metadata or {})

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        single = obs.shape == self.obs_shape
        if not single and obs.shape[1:] != self.obs_shape:
            raise ValueError(
                f"the policy takes observations of shape {self.obs_shape} (or a batch of them), got {obs.shape}"
            )
        action = self.action_low + (self.unit(obs[None] if single else obs) + np.float32(1.0)) * self.half_range
        return action[0] if single else action

    def unit(self, obs: np.ndarray) -> np.ndarray:
        """The actor's output in [-1, 1] for a batch of observations, before the rescale."""
        x = np.asarray(obs, np.float32).reshape(len(obs), -1)
        last = len(self.layers) - 1
        for i, (kernel, bias) in enumerate(self.layers):
            x = x @ kernel + bias
            x = self.output(x) if i == last else self.hidden(x)
        return x


def load(path: str | Path) -> NumpyPolicy:
    """The policy in an .npz file written by `ddpgx export --format numpy` (ddpgx.export.export_numpy)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    found = int(arrays["format"]) if "format" in arrays else None
    if found != FORMAT:
        raise ValueError(f"{path} is not a ddpgx numpy policy of format {FORMAT} (its format: {found}); "
                         f"export it again with this ddpgx: ddpgx export RUN_DIR --format numpy")
    activations = str(arrays["hidden_activation"]), str(arrays["output_activation"])
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if unknown:
        raise ValueError(f"{path} uses the activation {unknown[0]!r}; this loader knows {', '.join(ACTIVATIONS)}")
    layers = [(arrays[f"kernel_{i}"], arrays[f"bias_{i}"]) for i in range(int(arrays["num_layers"]))]
    metadata = {"env_id": str(arrays["env_id"]), "ddpgx_version": str(arrays["ddpgx_version"]),
                "step": int(arrays["step"]), "batch_norm": bool(arrays["batch_norm"]), "format": found}
    return NumpyPolicy(layers, arrays["action_low"], arrays["action_high"], tuple(arrays["obs_shape"]),
                       *activations, metadata)
