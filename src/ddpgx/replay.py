"""Experience replay: a preallocated ring buffer on the host, sampled uniformly.

One buffer holds the transitions of every seed of a run, with a leading seed axis, so that a
minibatch for all seeds is one gather and one copy to the device. The indices a seed samples at a
step depend only on the seed and the step (`sample_indices`), so seed k of a multi-seed run draws
exactly the indices a single run with seed k draws, and a resumed run needs no sampler state.

All fields of a transition are packed into one float32 row, [obs | action | reward | next_obs |
terminated], so a minibatch is one gather of contiguous rows (a few cache lines each, whatever the
buffer's size) and one copy to the device; the jitted update splits the columns (`unpack`).
A transition costs 4 * (2 * obs_size + action_dim + 2) bytes. The next observation is stored, not
derived from the following slot, because at a truncation it is the episode's true final
observation, which the environment never returns as an observation of the next step. Pages are
allocated lazily: memory grows as the buffer fills.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from ddpgx.config import ConfigError

FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


def columns(obs_shape: tuple[int, ...], action_dim: int) -> dict[str, slice]:
    """Where each field lies in a packed row."""
    obs_size = int(np.prod(obs_shape, dtype=np.int64))
    o, a = obs_size, action_dim
    return {"obs": slice(0, o), "action": slice(o, o + a), "reward": slice(o + a, o + a + 1),
            "next_obs": slice(o + a + 1, 2 * o + a + 1), "terminated": slice(2 * o + a + 1, 2 * o + a + 2)}


def pack(obs, action, reward, next_obs, terminated) -> np.ndarray:
    """Transitions as packed float32 rows: arrays with the same leading axes (..., field shape) in,
    (..., row width) out. What the buffer stores, and what a rollout worker sends."""
    lead = np.shape(reward)
    return np.concatenate([np.reshape(obs, (*lead, -1)), np.reshape(action, (*lead, -1)), np.reshape(reward, (*lead, 1)),
                           np.reshape(next_obs, (*lead, -1)), np.reshape(terminated, (*lead, 1))],
                          axis=-1, dtype=np.float32)


def unpack(rows, obs_shape: tuple[int, ...], action_dim: int):
    """Split packed rows (numpy or jax, any leading axes) into an agent.Batch."""
    from ddpgx.agent import Batch  # here, so that packing rows (rollout workers) needs numpy alone

    cols = columns(obs_shape, action_dim)
    lead = rows.shape[:-1]
    return Batch(
        obs=rows[..., cols["obs"]].reshape(*lead, *obs_shape),
        action=rows[..., cols["action"]],
        reward=rows[..., cols["reward"]].reshape(lead),
        next_obs=rows[..., cols["next_obs"]].reshape(*lead, *obs_shape),
        terminated=rows[..., cols["terminated"]].reshape(lead),
    )


class BufferTooLarge(ConfigError):
    """The replay buffer would not fit in this machine's memory; the message gives both sizes."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:,.0f} {unit}" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    raise AssertionError


class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], action_dim: int, num_seeds: int = 1,
                 fills: int | None = None):
        """A buffer of `capacity` transitions per seed. `fills`, if given, is how many transitions per
        seed the run will store: the pages actually touched, which must fit in the available memory."""
        self.capacity = int(capacity)
        self.num_seeds = int(num_seeds)
        self.obs_shape, self.action_dim = tuple(obs_shape), int(action_dim)
        self.columns = columns(self.obs_shape, self.action_dim)
        width = self.columns["terminated"].stop
        row = 4 * width
        used = self.num_seeds * row * min(self.capacity, self.capacity if fills is None else fills)
        available = available_memory()
        if available is not None and used > available:
            raise BufferTooLarge(
                f"the replay buffer needs {_size(used)} ({self.num_seeds} seed(s) x "
                f"{min(self.capacity, fills or self.capacity):,} transitions x {row} bytes) but this machine has "
                f"{_size(available)} available: lower buffer_size (or num_seeds)")
        try:
            self.data = np.zeros((self.num_seeds, self.capacity, width), np.float32)
        except MemoryError:
            raise BufferTooLarge(
                f"the replay buffer needs {_size(self.num_seeds * row * self.capacity)} of address space "
                f"({self.num_seeds} seed(s) x {self.capacity:,} transitions x {row} bytes), which this machine "
                f"cannot reserve ({_size(available) if available else 'unknown'} available): lower buffer_size"
            ) from None
        self.pos = 0  # next slot to write
        self.size = 0  # filled slots

    @staticmethod
    def transition_bytes(obs_size: int, action_dim: int) -> int:
        return 4 * (2 * obs_size + action_dim + 2)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def field(self, name: str) -> np.ndarray:
        """A view of one field of every slot, shape (seeds, capacity, ...)."""
        return unpack(self.data, self.obs_shape, self.action_dim)._asdict()[name]

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        """Store one step of every environment of every seed; arrays have shape (seeds, envs, ...)."""
        self.add_rows(pack(obs, action, reward, next_obs, terminated))

    def add_rows(self, rows: np.ndarray) -> None:
        """Store packed transitions, shape (seeds, count, row width), in order."""
        count = rows.shape[1]
        slots = (self.pos + np.arange(count)) % self.capacity
        self.data[:, slots] = rows
        self.pos = int((self.pos + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)

    def sample_rows(self, indices: np.ndarray) -> np.ndarray:
        """The packed rows at `indices` (seeds, ...) of each seed's own slots: shape (seeds, ..., row width)."""
        seed = np.arange(self.num_seeds).reshape(-1, *([1] * (indices.ndim - 1)))
        return self.data[seed, indices]

    def state_dict(self, seed: int) -> dict[str, np.ndarray]:
        """The filled part of one seed's buffer, in slot order, with the write position."""
        return {"data": self.data[seed, : self.size], "pos": np.int64(self.pos), "capacity": np.int64(self.capacity)}

    def load_state_dict(self, seed: int, state: dict[str, np.ndarray]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"the saved replay buffer has capacity {int(state['capacity'])}, this run {self.capacity}"
            )
        data = state["data"]
        if data.ndim != 2 or data.shape[1] != self.data.shape[2]:
            raise ValueError(f"the saved replay buffer has rows of shape {data.shape[1:]}, this run needs "
                             f"({self.data.shape[2]},): it was written for other spaces")
        if self.size not in (0, len(data)) and seed > 0:
            raise ValueError("the saved buffers of the seeds have different sizes")
        self.data[seed, : len(data)] = data
        self.size, self.pos = len(data), int(state["pos"])


def sample_indices(seeds: list[int], step: int, size: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform indices into the `size` filled slots, shape (seeds, *shape), for the sampling at `step`.

    Seed k draws from a Philox generator keyed by (k's sampler key, step): its own stream, a
    function of the seed and the step alone (as `fold_in(explore_key, step)` is for exploration).
    """
    if size == 0:
        raise ValueError("cannot sample from an empty replay buffer")
    return np.stack([np.random.Generator(np.random.Philox(key=[_sampler_key(seed), step])).integers(0, size, shape)
                     for seed in seeds])


@functools.lru_cache(maxsize=1024)
def _sampler_key(seed: int) -> int:
    return int(np.random.SeedSequence([seed, 2]).generate_state(1, np.uint64)[0])
