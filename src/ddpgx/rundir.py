"""A run directory: where a run is written, how it is found again, and who may write to it.

    RUN_DIR/                   one seed: the run itself
      .lock                    held (flock) by the process writing the run; names its PID and host
      config.json, eval.csv, metrics.csv, episodes.csv, tb/, checkpoints/
    RUN_DIR/                   several seeds (`num_seeds > 1`)
      .lock
      seed_<k>/                one seed's run, as above, for each seed k

A run's seeds and config are read back from its directory (`find_run`), so resuming needs only
the directory. Nothing here starts training.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import socket
import time
from pathlib import Path

from ddpgx.config import Config, ConfigError

LOCK = ".lock"
SEED_PREFIX = "seed_"

# Fields that may differ when a run is resumed: they change what is logged or saved, not what is learned.
RESUMABLE_CHANGES = frozenset({"total_steps", "eval_every", "eval_episodes", "log_every", "checkpoint_every",
                               "keep_checkpoints", "save_buffer", "tensorboard"})


class RunLocked(ConfigError):
    """Another live process is writing the run directory."""


def default_run_dir(config: Config) -> Path:
    name = config.env_id.replace(":", "_").replace("/", "_")
    return Path("runs") / f"{name}__seed{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def seed_dirs(root: Path) -> dict[int, Path]:
    """The seed directories of a multi-seed run, by seed, in numeric order."""
    found = {int(d.name[len(SEED_PREFIX):]): d for d in Path(root).glob(SEED_PREFIX + "*")
             if d.name[len(SEED_PREFIX):].isdigit() and (d / "config.json").exists()}
    return dict(sorted(found.items()))


def find_run(root: str | Path) -> tuple[Config, int]:
    """The config (of the first seed) and the number of seeds of the run in `root`."""
    root = Path(root)
    if (root / "config.json").exists():
        return Config.load(root / "config.json"), 1
    dirs = seed_dirs(root)
    if not dirs:
        raise ConfigError(f"{root} holds no ddpgx run (no config.json): give the directory a run was trained in")
    seeds = list(dirs)
    if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise ConfigError(f"{root} holds the seeds {seeds}, which are not consecutive: it is not one ddpgx run")
    configs = [Config.load(d / "config.json") for d in dirs.values()]
    first = configs[0]
    for seed, config in zip(seeds, configs):
        if config.seed != seed or config.replace(seed=first.seed) != first:
            raise ConfigError(f"{dirs[seed] / 'config.json'} does not belong to the run in {root} "
                              f"(its seed or its config differs from {SEED_PREFIX}{seeds[0]}'s)")
    return first, len(seeds)


def check_resumable(saved: Config, given: Config, root: Path) -> None:
    changed = [f.name for f in dataclasses.fields(Config)
               if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(given, f.name)]
    if changed:
        details = ", ".join(f"{n}: {getattr(saved, n)!r} -> {getattr(given, n)!r}" for n in changed)
        raise ConfigError(
            f"cannot resume {root} with a different config ({details}); only "
            f"{', '.join(sorted(RESUMABLE_CHANGES))} may change on resume"
        )


class RunDir:
    """The directory of one run: its root, one directory per seed, and its lock."""

    def __init__(self, root: str | Path, seeds: list[int]):
        self.root = Path(root)
        self.seeds = list(seeds)
        self.seed_dirs = [self.root] if len(seeds) == 1 else [self.root / f"{SEED_PREFIX}{s}" for s in seeds]
        self._lock_fd: int | None = None

    def holds_run(self) -> bool:
        return (self.root / "config.json").exists() or bool(seed_dirs(self.root))

    def check(self, resume: bool, overwrite: bool) -> None:
        """Refuse to write over an existing run unless asked to resume or overwrite it (writes nothing)."""
        if resume:
            if not self.holds_run():
                raise ConfigError(f"cannot resume {self.root}: it holds no ddpgx run (no config.json)")
            return
        if self.root.exists() and any(p.name != LOCK for p in self.root.iterdir()):
            if not overwrite:
                raise ConfigError(
                    f"the run directory {self.root} exists and is not empty: pass --resume to continue that run, "
                    f"--overwrite to replace it, or choose another --run-dir"
                )
            if not self.holds_run():
                raise ConfigError(f"refusing to overwrite {self.root}: it does not look like a ddpgx run directory")

    def open(self, resume: bool, overwrite: bool, print_fn=print) -> None:
        """Make the directory (emptied, with `overwrite`), check that it can be written, and take its lock."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot write to the run directory {self.root}: {error.strerror or error}") from None
        self.lock(print_fn)
        if not resume:
            if overwrite:
                for child in self.root.iterdir():
                    if child.name != LOCK:
                        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            elif self.holds_run():  # another process made a run here since `check`
                self.close()
                raise ConfigError(f"the run directory {self.root} was just filled by another run: choose another")
        for d in self.seed_dirs:
            d.mkdir(exist_ok=True)

    def lock(self, print_fn=print) -> None:
        self._lock_fd = take_lock(self.root, print_fn)

    def close(self) -> None:
        if self._lock_fd is not None:
            release_lock(self._lock_fd)
            self._lock_fd = None

    def write_configs(self, configs: list[Config]) -> None:
        for d, config in zip(self.seed_dirs, configs):
            config.save(d / "config.json")


def take_lock(root: Path, print_fn=print, what: str = "the run directory") -> int:
    """Take the lock of a directory (a run's, or a sweep's), or fail naming the process that holds it.

    The lock is an flock on `root/.lock`, which names its owner: the kernel releases it when its
    process ends, however it ends, so a directory whose writer died is taken over. Returns the
    descriptor to pass to `release_lock`.
    """
    path = Path(root) / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError(f"cannot write to {what} {root}: {error.strerror or error}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunLocked(f"{what} {root} is in use by {owner}: wait for it to end, or stop it "
                        f"(its lock is taken over once that process is gone)") from None
    previous = os.pread(fd, 200, 0).decode(errors="replace").strip()
    if previous:
        print_fn(f"note: {root} was left by {previous}, which is gone; its lock is taken over")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    return fd


def release_lock(fd: int) -> None:
    """Release a lock (the empty lock file stays: removing it would race with a new owner)."""
    os.ftruncate(fd, 0)
    os.close(fd)
