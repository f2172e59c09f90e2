"""ddpgx: Deep Deterministic Policy Gradient on JAX."""

__version__ = "0.1.0"

from ddpgx.agent import DDPG, AgentState, Batch, Metrics, polyak
from ddpgx.config import Config, ConfigError
from ddpgx.envs import ActionScaler, EnvError
from ddpgx.checkpoint import CheckpointError
from ddpgx.networks import Actor, Critic
from ddpgx.policy import Policy, load_policy
from ddpgx.export import ExportError, export_numpy, export_onnx
from ddpgx.presets import PRESETS, from_preset
from ddpgx.train import TrainResult, build_agent, train

__all__ = [
    "DDPG", "AgentState", "Batch", "Metrics", "polyak", "Config", "ConfigError", "ActionScaler", "EnvError",
    "CheckpointError", "Actor", "Critic", "Policy", "load_policy", "TrainResult", "build_agent", "train",
    "PRESETS", "from_preset", "ExportError", "export_onnx", "export_numpy",
]
