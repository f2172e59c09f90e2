"""Checkpoints: everything needed to continue one seed's run exactly where it stopped.

A checkpoint is a directory `checkpoints/step_<step>/` holding
    meta.json    format version, ddpgx version, step, config, the number of rows of each log file
                 at this step, observation shape, action bounds, the actor's and critic's type
    state.npz    the seed's loop state (`learner.SeedState`), every array by its pytree path: agent
                 parameters, targets, optimizer states, the exploration key, noise state, current
                 observations, episode counters, recent returns, the last update's metrics
    envs.pkl     the environments' state (physics, RNGs, time-limit counters)
    replay.npz   the replay buffer (if `save_buffer`)
It is written into a temporary directory, each file flushed to disk, then renamed into place in
one atomic step; a process killed at any moment leaves the earlier checkpoints intact, and a
temporary directory left behind is ignored and removed by the next save.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

FORMAT = 2
PREFIX = "step_"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit this run; the message names the file."""


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def common_checkpoints(run_dirs: list[Path]) -> list[Path]:
    """Per run directory (one per seed), its checkpoint of the latest step that all of them have."""
    by_step = [{int(p.name[len(PREFIX):]): p for p in list_checkpoints(d)} for d in run_dirs]
    for run_dir, found in zip(run_dirs, by_step):
        if not found:
            raise CheckpointError(f"cannot resume {run_dir}: it has no checkpoint in {checkpoint_dir(run_dir)}")
    shared = set.intersection(*(set(found) for found in by_step))
    if not shared:
        steps = "; ".join(f"{d.name}: {sorted(found)}" for d, found in zip(run_dirs, by_step))
        raise CheckpointError(f"cannot resume: the seeds have no checkpoint step in common ({steps})")
    step = max(shared)
    return [found[step] for found in by_step]


def flatten(tree: Any) -> dict[str, np.ndarray]:
    """A pytree as {path: array}, the paths as jax.tree_util.keystr prints them."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def unflatten(template: Any, arrays: dict[str, np.ndarray], source: Path) -> Any:
    """Fill `template`'s structure with `arrays`, checking that every path and shape matches."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    values = []
    for path, leaf in leaves:
        name = jax.tree_util.keystr(path)
        if name not in arrays:
            raise CheckpointError(f"{source} has no array {name}: it was written for another network or config")
        value = arrays[name]
        if value.shape != np.shape(leaf):
            raise CheckpointError(
                f"{source}: {name} has shape {value.shape} but this run needs {np.shape(leaf)}: "
                f"the checkpoint was written for another network or environment"
            )
        values.append(value.astype(np.asarray(leaf).dtype))
    return jax.tree_util.tree_unflatten(treedef, values)


def _write(path: Path, write) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def save(run_dir: Path, step: int, meta: dict[str, Any], arrays: dict[str, np.ndarray],
         env_state: bytes | None, replay: dict[str, np.ndarray] | None) -> Path:
    """Write a checkpoint atomically (older ones are removed by `prune`)."""
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    final = root / f"{PREFIX}{step:010d}"
    tmp = root / f".tmp-{PREFIX}{step:010d}-{os.getpid()}"
    try:
        tmp.mkdir()
        _write(tmp / "state.npz", lambda f: np.savez(f, **arrays))
        if env_state is not None:
            _write(tmp / "envs.pkl", lambda f: f.write(env_state))
        if replay is not None:
            _write(tmp / "replay.npz", lambda f: np.savez(f, **replay))
        _write(tmp / "meta.json", lambda f: f.write(json.dumps({"format": FORMAT, **meta}, indent=2).encode()))
        if final.exists():  # the same step saved again (for example the final save after a periodic one)
            shutil.rmtree(final)
        os.replace(tmp, final)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = latest_checkpoint(run_dir)
        raise CheckpointError(
            f"cannot write the checkpoint {final}: {error.strerror or error}; "
            + (f"the last good checkpoint {kept} is kept" if kept else "no earlier checkpoint exists")
        ) from None
    return final


def prune(run_dirs: list[Path], keep: int) -> None:
    """Keep the `keep` newest checkpoints of each seed's run directory. Called once every seed has
    saved, so a kill between two seeds' saves leaves a step that all seeds still have."""
    for run_dir in run_dirs:
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


class Checkpoint:
    """A checkpoint read back from disk (arrays loaded eagerly, the replay buffer on demand)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        try:
            self.meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise CheckpointError(f"{meta_path} is missing: {self.path} is not a complete checkpoint") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{meta_path} is unreadable or corrupted ({error})") from None
        if not isinstance(self.meta, dict) or self.meta.get("format") != FORMAT:
            raise CheckpointError(
                f"{meta_path} has checkpoint format {self.meta.get('format') if isinstance(self.meta, dict) else None!r}; "
                f"this ddpgx reads format {FORMAT}"
            )
        self.arrays = self._load_npz(self.path / "state.npz")
        env_path = self.path / "envs.pkl"
        self.env_state = env_path.read_bytes() if env_path.exists() else None

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def has_replay(self) -> bool:
        return (self.path / "replay.npz").exists()

    def replay(self) -> dict[str, np.ndarray]:
        return self._load_npz(self.path / "replay.npz")

    @staticmethod
    def _load_npz(path: Path) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except FileNotFoundError:
            raise CheckpointError(f"{path} is missing") from None
        except Exception as error:  # zipfile, pickle and value errors of a damaged file
            raise CheckpointError(f"{path} is truncated or corrupted ({type(error).__name__}: {error})") from None

    def subtree(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays whose path starts with `prefix` (such as ".agent.actor"), with the prefix removed."""
        return {k[len(prefix):]: v for k, v in self.arrays.items()
                if k.startswith(prefix) and k[len(prefix):][:1] in ("", "[", ".")}
