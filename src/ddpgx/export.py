"""Export a run's deterministic policy to run without JAX: as an ONNX graph, or as numpy weights.

Both exports compute what `ddpgx.Policy` computes: observation (one, or a batch of any size, in the
observation space's shape) in, action in the environment's units out. They support the default
actor, `networks.Actor`, in inference mode, behind the run's observation normalization if it has one:

    x = flatten(obs)                            (a Dict observation: its keys' values flattened and
                                                 concatenated in `envs.ObsLayout`'s order)
    x = clip((x - m) / s, -c, c)                (with obs_norm: the running mean m, std s, clip c)
    x = BN(x)                                   (with batch_norm)
    x = relu(LN(BN(x @ W_i + b_i)))             for each hidden layer (BN with batch_norm, LN with
                                                 actor_layer_norm)
    a = tanh(x @ W_n + b_n)                     in [-1, 1]
    action = low + (a + 1) * 0.5 * (high - low)  (envs.ActionScaler.to_env)

In inference mode a batch norm uses its running averages, so it is an affine map
x * scale / sqrt(var + eps) + (bias - mean * scale / sqrt(var + eps)); `fold` merges each one into the
dense layer next to it. The observation normalization is an affine map after a clip, and
clip((x - m) / s, -c, c) = (clip(x, m - c s, m + c s) - m) / s: `fold` merges the affine map into the
first dense layer and keeps the clip, now of the raw observation, as bounds. That leaves the clip,
dense layers, layer norms (which depend on their input, so they stay), ReLU, tanh and the rescale. A network passed to
`train(actor=...)` is not known layer by layer and is refused with an `ExportError`: a run whose
checkpoint records a custom actor (meta.json "actor") or whose actor parameters differ in names or
shapes from the default actor's for its config; a Policy, when its actor is not `networks.Actor`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import numpy as np

from ddpgx import checkpoint as ckpt
from ddpgx import numpy_policy
from ddpgx.checkpoint import CheckpointError
from ddpgx.files import write_atomically
from ddpgx.networks import Actor
from ddpgx.policy import ACTOR, Policy, load_policy
from ddpgx.rundir import seed_dirs

# Opset 17 and IR version 8 came with onnx 1.12 (2022); onnxruntime 1.12 and later load them.
OPSET = 17
IR_VERSION = 8
FORMATS = {"onnx": "policy.onnx", "numpy": "policy.npz"}
BATCH_NORM_EPSILON = nn.BatchNorm.epsilon  # networks.Actor keeps flax's default (1e-5)


class ExportError(ValueError):
    """A policy cannot be exported; the message says why and what is supported."""


LAYER_NORM_EPSILON = nn.LayerNorm.epsilon  # networks.Actor keeps flax's default (1e-6)


class FoldedPolicy(NamedTuple):
    """The default actor with its batch norms and observation normalization folded in: the raw
    observation clipped to `obs_clip` (low, high) if given, then `layers` of (kernel, bias), each
    hidden one followed by its layer norm (scale, bias) if `layer_norms` gives one and by ReLU, tanh
    after the last, then the affine rescale to [action_low, action_high]."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    action_low: np.ndarray
    action_high: np.ndarray
    obs_shape: tuple[int, ...]
    batch_norm: bool
    env_id: str
    step: int
    layer_norms: list[tuple[np.ndarray, np.ndarray] | None] | None = None
    """Per hidden layer, its layer norm's scale and bias (epsilon LAYER_NORM_EPSILON), or None."""
    obs_clip: tuple[np.ndarray, np.ndarray] | None = None
    """The bounds (m - c s, m + c s) of the raw observation, flattened, with observation normalization."""
    obs_keys: list[tuple[str, tuple[int, ...]]] | None = None
    """A Dict observation's keys and shapes in the order they are flattened (`envs.ObsLayout`); None for a Box."""


def unsupported(what: str) -> ExportError:
    return ExportError(
        f"{what} was trained with a custom actor network; export supports only ddpgx's default MLP actor "
        f"(ddpgx.networks.Actor: Dense-ReLU layers, optional batch norm, tanh output). "
        f"Use ddpgx.load_policy(run_dir, actor=...) to run it, or export the network with your own tools"
    )


def resolve(source: str | Path | Policy) -> Policy:
    """A Policy, or the policy of a run directory (one seed's) or of one checkpoint directory."""
    if isinstance(source, Policy):
        if type(source.actor) is not Actor:
            raise unsupported("this policy")
        return source
    run_dir = Path(source)
    path = run_dir if (run_dir / "meta.json").exists() else ckpt.latest_checkpoint(run_dir)
    seeds = list(seed_dirs(run_dir).values())
    if path is None and seeds:
        raise CheckpointError(f"{run_dir} holds {len(seeds)} seeds: export one seed's directory, "
                              f"one of {', '.join(str(s) for s in seeds)}")
    if path is None:
        return load_policy(run_dir)  # raises load_policy's error for a missing run or checkpoint
    checkpoint = ckpt.Checkpoint(path)
    if checkpoint.meta.get("actor", "default") != "default":  # recorded since ddpgx 0.1.0's checkpoints
        raise unsupported(str(run_dir))
    saved = set(checkpoint.subtree(ACTOR))
    try:
        policy = load_policy(run_dir, path)
    except CheckpointError:  # the files are readable (read above) but do not fit the default actor
        raise unsupported(str(run_dir)) from None
    if saved != set(ckpt.flatten(policy.params)):
        raise unsupported(str(run_dir))
    return policy


def batch_norm_affine(params: dict[str, Any], stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A flax BatchNorm with running averages as x * scale + shift."""
    scale = np.asarray(params["scale"], np.float64) / np.sqrt(np.asarray(stats["var"], np.float64) + BATCH_NORM_EPSILON)
    return scale, np.asarray(params["bias"], np.float64) - np.asarray(stats["mean"], np.float64) * scale


def affine_then_dense(scale: np.ndarray, shift: np.ndarray, kernel: np.ndarray, bias: np.ndarray):
    """(x * scale + shift) @ kernel + bias as one dense layer."""
    return scale[:, None] * kernel, shift @ kernel + bias


def dense_then_affine(kernel: np.ndarray, bias: np.ndarray, scale: np.ndarray, shift: np.ndarray):
    """(x @ kernel + bias) * scale + shift as one dense layer."""
    return kernel * scale[None, :], bias * scale + shift


def fold(source: str | Path | Policy) -> FoldedPolicy:
    """The policy as plain dense layers (batch norms and the observation normalization's affine map
    folded in, computed in float64, stored as float32), the normalization's clip as bounds of the raw
    observation, and the layer norms."""
    policy = resolve(source)
    actor: Actor = policy.actor
    low, high = (np.asarray(bound, np.float64) for bound in policy.scaler)
    return FoldedPolicy(actor_layers(actor, policy.params, policy.normalizer), low, high, tuple(policy.obs_shape),
                        bool(actor.batch_norm), policy.config.env_id if policy.config else "",
                        -1 if policy.step is None else int(policy.step), layer_norms(actor, policy.params),
                        obs_clip(policy.normalizer),
                        list(zip(policy.layout.keys, policy.layout.shapes)) if policy.layout else None)


def layer_norms(actor: Actor, variables: Any) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Per hidden layer, the scale and bias of its layer norm (float32), or None without layer norm."""
    if not actor.layer_norm:
        return None
    params = variables["params"]
    return [tuple(np.asarray(params[f"LayerNorm_{i}"][name], np.float32) for name in ("scale", "bias"))
            for i in range(len(actor.hidden))]


def obs_clip(normalizer: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """clip((x - m) / s, -c, c) = (clip(x, m - c s, m + c s) - m) / s: the bounds of the raw observation."""
    if normalizer is None:
        return None
    m, std = np.asarray(normalizer.mean, np.float64), np.asarray(normalizer.std, np.float64)
    return (m - normalizer.clip * std).astype(np.float32), (m + normalizer.clip * std).astype(np.float32)


def actor_layers(actor: Actor, variables: Any, normalizer: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The default actor's variables as (kernel, bias) float32 layers, batch norms folded in (in
    float64): ReLU between the layers, tanh after the last. With an observation `normalizer`
    (`normalization.ObsNormalizer`), its affine map (x - m) / s is folded into the first layer too;
    its clip stays outside (`obs_clip`)."""
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    count = len(actor.hidden) + 1
    dense = [tuple(np.asarray(params[f"Dense_{i}"][name], np.float64) for name in ("kernel", "bias"))
             for i in range(count)]
    if actor.batch_norm:
        norms = [batch_norm_affine(params[f"BatchNorm_{i}"], stats[f"BatchNorm_{i}"]) for i in range(count)]
        # BatchNorm_0 normalizes the observation; BatchNorm_{i+1} follows hidden layer i.
        dense[0] = affine_then_dense(*norms[0], *dense[0])
        for i in range(len(actor.hidden)):
            dense[i] = dense_then_affine(*dense[i], *norms[i + 1])
    if normalizer is not None:  # applied before everything above: (x - m) / s into the first layer
        m, std = np.asarray(normalizer.mean, np.float64), np.asarray(normalizer.std, np.float64)
        dense[0] = affine_then_dense(1.0 / std, -m / std, *dense[0])
    return [(k.astype(np.float32), b.astype(np.float32)) for k, b in dense]


def export_numpy(source: str | Path | Policy, path: str | Path) -> Path:
    """Write the policy of `source` (a run directory, a checkpoint directory or a Policy) as an .npz
    file for `ddpgx.numpy_policy.load`."""
    from ddpgx import __version__

    folded = fold(source)
    arrays = {}
    for i, (kernel, bias) in enumerate(folded.layers):
        arrays.update({f"kernel_{i}": kernel, f"bias_{i}": bias})
    for i, norm in enumerate(folded.layer_norms or []):
        arrays.update({f"layer_norm_scale_{i}": norm[0], f"layer_norm_bias_{i}": norm[1]})
    if folded.layer_norms:
        arrays["layer_norm_epsilon"] = np.array(LAYER_NORM_EPSILON)
    if folded.obs_clip is not None:
        arrays.update(obs_low=folded.obs_clip[0], obs_high=folded.obs_clip[1])
    if folded.obs_keys:
        arrays["obs_keys"] = np.array([key for key, _ in folded.obs_keys])
        arrays.update({f"obs_key_shape_{i}": np.array(shape, np.int64) for i, (_, shape) in enumerate(folded.obs_keys)})
    arrays.update(
        num_layers=np.array(len(folded.layers)), action_low=folded.action_low, action_high=folded.action_high,
        obs_shape=np.array(folded.obs_shape, np.int64), hidden_activation=np.array("relu"),
        output_activation=np.array("tanh"), batch_norm=np.array(folded.batch_norm), env_id=np.array(folded.env_id),
        ddpgx_version=np.array(__version__), step=np.array(folded.step),
        format=np.array(numpy_policy.FORMAT if folded.obs_keys else 2),  # format 2 readers can read a Box policy
    )
    return write_atomically(path, lambda f: np.savez(f, **arrays))


def import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ExportError("the ONNX export needs the onnx package: pip install 'ddpgx[export]'") from None
    return onnx


def onnx_model(folded: FoldedPolicy) -> Any:
    """The ONNX model of a folded policy: input "obs" (batch, *obs_shape), or for a Dict observation
    one input per key, named by the key (nested keys joined with "/"), (batch, *key_shape); output
    "action" (batch, action_dim)."""
    onnx = import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    from ddpgx import __version__

    constants = []
    nodes = []

    def constant(name: str, value: np.ndarray) -> str:
        constants.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    x = "obs"
    if folded.obs_keys:  # the environment's dictionary: each key flattened, concatenated in the layout's order
        for i, (key, _) in enumerate(folded.obs_keys):
            nodes.append(helper.make_node("Flatten", [key], [f"obs_part_{i}"], axis=1))
        nodes.append(helper.make_node("Concat", [f"obs_part_{i}" for i in range(len(folded.obs_keys))], ["obs_flat"],
                                      axis=1))
        x = "obs_flat"
    elif len(folded.obs_shape) != 1:
        nodes.append(helper.make_node("Flatten", [x], ["obs_flat"], axis=1))
        x = "obs_flat"
    if folded.obs_clip is not None:  # the observation normalization's clip, on the raw observation
        nodes += [helper.make_node("Max", [x, constant("obs_low", folded.obs_clip[0])], ["obs_above_low"]),
                  helper.make_node("Min", ["obs_above_low", constant("obs_high", folded.obs_clip[1])], ["obs_clipped"])]
        x = "obs_clipped"
    last = len(folded.layers) - 1
    for i, (kernel, bias) in enumerate(folded.layers):
        nodes.append(helper.make_node("Gemm", [x, constant(f"kernel_{i}", kernel), constant(f"bias_{i}", bias)],
                                      [f"dense_{i}"]))
        pre = f"dense_{i}"
        if i != last and folded.layer_norms:
            scale, offset = folded.layer_norms[i]
            nodes.append(helper.make_node(
                "LayerNormalization", [pre, constant(f"layer_norm_scale_{i}", scale),
                                       constant(f"layer_norm_bias_{i}", offset)],
                [f"layer_norm_{i}"], axis=-1, epsilon=LAYER_NORM_EPSILON))
            pre = f"layer_norm_{i}"
        x = f"tanh_{i}" if i == last else f"relu_{i}"
        nodes.append(helper.make_node("Tanh" if i == last else "Relu", [pre], [x]))
    # ActionScaler.to_env: low + (a + 1) * 0.5 * (high - low)
    half_range = 0.5 * (folded.action_high - folded.action_low)
    nodes += [
        helper.make_node("Add", [x, constant("one", np.ones(1))], ["a_plus_one"]),
        helper.make_node("Mul", ["a_plus_one", constant("half_range", half_range)], ["scaled"]),
        helper.make_node("Add", ["scaled", constant("action_low", folded.action_low)], ["action"]),
    ]
    action_dim = len(folded.action_low)
    inputs = [helper.make_tensor_value_info(key, TensorProto.FLOAT, ["batch", *shape])
              for key, shape in folded.obs_keys] if folded.obs_keys else \
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", *folded.obs_shape])]
    graph = helper.make_graph(
        nodes, "ddpgx_policy", inputs,
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", action_dim])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="ddpgx", producer_version=__version__,
                              doc_string="ddpgx policy: observation in, action in the environment's units out")
    helper.set_model_props(model, {"env_id": folded.env_id, "step": str(folded.step),
                                   "obs_shape": str(list(folded.obs_shape)), "batch_norm": str(folded.batch_norm),
                                   "layer_norm": str(bool(folded.layer_norms)),
                                   "obs_norm": str(folded.obs_clip is not None),
                                   "obs_keys": str([key for key, _ in folded.obs_keys or []])})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(source: str | Path | Policy, path: str | Path) -> Path:
    """Write the policy of `source` (a run directory, a checkpoint directory or a Policy) as an ONNX model."""
    import_onnx()  # before reading the run: fail early
    model = onnx_model(fold(source))
    return write_atomically(path, lambda f: f.write(model.SerializeToString()))


def export(source: str | Path | Policy, format: str, path: str | Path | None = None) -> Path:
    """`export_onnx` or `export_numpy`; `path` defaults to policy.onnx or policy.npz in the run directory."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}: choose one of {', '.join(FORMATS)}")
    if path is None:
        if isinstance(source, Policy):
            raise ExportError("give the output path: a Policy has no run directory")
        path = Path(source) / FORMATS[format]
    return (export_onnx if format == "onnx" else export_numpy)(source, path)
