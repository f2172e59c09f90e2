"""ddpgx: Deep Deterministic Policy Gradient on JAX.

The names below are imported on first use, so `import ddpgx.numpy_policy` (the numpy-only loader
of an exported policy) and `import ddpgx.config` do not pull in JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ddpgx.agent": ("DDPG", "AgentState", "Batch", "Metrics", "polyak"),
    "ddpgx.config": ("Config", "ConfigError"),
    "ddpgx.envs": ("ActionScaler", "EnvError"),
    "ddpgx.checkpoint": ("CheckpointError",),
    "ddpgx.networks": ("Actor", "Critic"),
    "ddpgx.policy": ("Policy", "load_policy"),
    "ddpgx.export": ("ExportError", "export_onnx", "export_numpy"),
    "ddpgx.presets": ("PRESETS", "from_preset"),
    "ddpgx.rundir": ("RunLocked", "find_run"),
    "ddpgx.learner": ("TrainResult", "build_agent"),
    "ddpgx.loop": ("train", "resume"),
    "ddpgx.sweeps": ("sweep", "load_spec"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'ddpgx' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
