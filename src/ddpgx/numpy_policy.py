"""Run a policy written by `ddpgx export --format numpy` with numpy alone.

    from ddpgx import numpy_policy
    policy = numpy_policy.load("runs/pendulum/policy.npz")
    action = policy(obs)          # one observation, or a batch of them

This module imports nothing but numpy (no JAX, no other part of ddpgx), so it can also be copied
next to the .npz file and used where ddpgx is not installed.

The .npz file (format 2) holds the default actor with its batch norms and its observation
normalization folded into the dense layers:
    obs_low, obs_high        (only with observation normalization) the flattened observation is
                             clipped to [obs_low, obs_high] first
    kernel_<i>, bias_<i>     layer i of `num_layers`: x = x @ kernel + bias, then (hidden layers, only
                             with layer norm) x = (x - mean(x)) / sqrt(var(x) + layer_norm_epsilon)
                             * layer_norm_scale_<i> + layer_norm_bias_<i> over the layer's units,
                             then ReLU (the last layer: tanh, an action in [-1, 1])
    action_low, action_high  the environment's action bounds; the action is
                             low + (a + 1) * 0.5 * (high - low), as envs.ActionScaler.to_env computes it
    obs_shape                the shape of one observation (flattened before the first layer)
    obs_keys, obs_key_shape_<i>   (format 3, a Dict observation) the keys, nested ones joined with
                             "/", and their shapes, in the order their flattened values are
                             concatenated; obs_shape is then (their total size,)
    hidden_activation, output_activation, batch_norm (folded in), env_id, ddpgx_version, step, format
Format 1 files (no observation normalization, no layer norm) and format 2 files (no Dict
observation) load too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FORMAT = 3
READS = (1, 2, 3)
ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh}


class NumpyPolicy:
    """pi(s) in environment units: `policy(obs)` takes one observation or a batch, returns float32 actions."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], action_low: np.ndarray,
                 action_high: np.ndarray, obs_shape: tuple[int, ...], hidden_activation: str = "relu",
                 output_activation: str = "tanh", metadata: dict | None = None,
                 layer_norms: list | None = None, layer_norm_epsilon: float = 1e-6,
                 obs_clip: tuple[np.ndarray, np.ndarray] | None = None,
                 obs_keys: list[tuple[str, tuple[int, ...]]] | None = None):
        self.layers = [(np.asarray(k, np.float32), np.asarray(b, np.float32)) for k, b in layers]
        self.layer_norms = [None if n is None else (np.asarray(n[0], np.float32), np.asarray(n[1], np.float32))
                            for n in (layer_norms or [None] * (len(self.layers) - 1))]
        self.layer_norm_epsilon = np.float32(layer_norm_epsilon)
        self.obs_clip = None if obs_clip is None else tuple(np.asarray(b, np.float32) for b in obs_clip)
        self.action_low = np.asarray(action_low, np.float32)
        self.half_range = (0.5 * (np.asarray(action_high, np.float64) - np.asarray(action_low, np.float64))).astype(
            np.float32)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.hidden = ACTIVATIONS[hidden_activation]
        self.output = ACTIVATIONS[output_activation]
        self.metadata = dict(metadata or {})
        self.obs_keys = [(str(key), tuple(int(d) for d in shape)) for key, shape in obs_keys or []]

    def flatten(self, obs: dict) -> np.ndarray:
        """A Dict observation (one, or a batch) as the flat float32 vector(s) the first layer takes."""
        if not self.obs_keys:
            raise ValueError(f"this policy takes observations of shape {self.obs_shape}, not a dictionary")
        parts, lead = [], None
        for key, shape in self.obs_keys:
            value = obs
            for part in key.split("/"):
                if not hasattr(value, "keys") or part not in value:
                    raise ValueError(f"the observation has no key {key!r}; it needs {', '.join(k for k, _ in self.obs_keys)}")
                value = value[part]
            value = np.asarray(value, np.float32)
            this_lead = value.shape[: value.ndim - len(shape)]
            if value.shape[len(this_lead):] != shape or (lead is not None and this_lead != lead):
                raise ValueError(f"the observation's {key!r} has shape {value.shape}; it must be {shape} (or a batch)")
            lead = this_lead
            parts.append(value.reshape(*lead, -1))
        return np.concatenate(parts, axis=-1)

    def __call__(self, obs) -> np.ndarray:
        obs = self.flatten(obs) if hasattr(obs, "keys") else np.asarray(obs, np.float32)
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
        if self.obs_clip is not None:
            x = np.clip(x, *self.obs_clip)
        last = len(self.layers) - 1
        for i, (kernel, bias) in enumerate(self.layers):
            x = x @ kernel + bias
            if i != last and self.layer_norms[i] is not None:
                mean = x.mean(axis=-1, keepdims=True)
                var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
                x = (x - mean) / np.sqrt(var + self.layer_norm_epsilon) * self.layer_norms[i][0] + self.layer_norms[i][1]
            x = self.output(x) if i == last else self.hidden(x)
        return x


def load(path: str | Path) -> NumpyPolicy:
    """The policy in an .npz file written by `ddpgx export --format numpy` (ddpgx.export.export_numpy)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    found = int(arrays["format"]) if "format" in arrays else None
    if found not in READS:
        raise ValueError(f"{path} is not a ddpgx numpy policy of format {' or '.join(map(str, READS))} (its format: {found}); "
                         f"export it again with this ddpgx: ddpgx export RUN_DIR --format numpy")
    activations = str(arrays["hidden_activation"]), str(arrays["output_activation"])
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if unknown:
        raise ValueError(f"{path} uses the activation {unknown[0]!r}; this loader knows {', '.join(ACTIVATIONS)}")
    count = int(arrays["num_layers"])
    layers = [(arrays[f"kernel_{i}"], arrays[f"bias_{i}"]) for i in range(count)]
    layer_norms = [(arrays[f"layer_norm_scale_{i}"], arrays[f"layer_norm_bias_{i}"])
                   if f"layer_norm_scale_{i}" in arrays else None for i in range(count - 1)]
    obs_clip = (arrays["obs_low"], arrays["obs_high"]) if "obs_low" in arrays else None
    obs_keys = [(str(key), tuple(arrays[f"obs_key_shape_{i}"])) for i, key in enumerate(arrays["obs_keys"])] \
        if "obs_keys" in arrays else None
    metadata = {"env_id": str(arrays["env_id"]), "ddpgx_version": str(arrays["ddpgx_version"]),
                "step": int(arrays["step"]), "batch_norm": bool(arrays["batch_norm"]), "format": found,
                "layer_norm": any(n is not None for n in layer_norms), "obs_norm": obs_clip is not None}
    return NumpyPolicy(layers, arrays["action_low"], arrays["action_high"], tuple(arrays["obs_shape"]),
                       *activations, metadata, layer_norms, float(arrays.get("layer_norm_epsilon", 1e-6)), obs_clip,
                       obs_keys)
