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

With n-step returns, each row also records `truncated`, and `nstep_rows` assembles the n-step
transitions of the sampled slots from the slots that follow them (see its docstring). With
prioritized replay, the buffer holds the priorities of its slots (`prioritized.Priorities`) and
saves them with its contents; with hindsight experience replay, it holds the episode bookkeeping
of its slots (`her.Hindsight`) the same way.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from ddpgx.config import ConfigError

FIELDS = ("obs", "action", "reward", "next_obs", "terminated")
SCALARS = ("truncated", "discount", "weight")
"""Optional one-number columns after `terminated`: `truncated` is stored for n-step returns; a
minibatch carries `discount` (n-step returns) and `weight` (prioritized replay) to the update."""


def stores_truncated(config: Any) -> bool:
    """Whether a run's rows record `truncated`: for n-step returns and for hindsight relabeling."""
    return config.n_step > 1 or config.her


def columns(obs_shape: tuple[int, ...], action_dim: int, extra: tuple[str, ...] = ()) -> dict[str, slice]:
    """Where each field lies in a packed row; `extra` names the optional columns, in order."""
    obs_size = int(np.prod(obs_shape, dtype=np.int64))
    o, a = obs_size, action_dim
    cols = {"obs": slice(0, o), "action": slice(o, o + a), "reward": slice(o + a, o + a + 1),
            "next_obs": slice(o + a + 1, 2 * o + a + 1), "terminated": slice(2 * o + a + 1, 2 * o + a + 2)}
    for i, name in enumerate(extra):
        if name not in SCALARS:
            raise ValueError(f"unknown column {name!r}; the optional columns are {', '.join(SCALARS)}")
        cols[name] = slice(2 * o + a + 2 + i, 2 * o + a + 3 + i)
    return cols


def pack(obs, action, reward, next_obs, terminated, truncated=None) -> np.ndarray:
    """Transitions as packed float32 rows: arrays with the same leading axes (..., field shape) in,
    (..., row width) out. What the buffer stores, and what a rollout worker sends. `truncated`, if
    given, is the last column (the buffers of n-step returns store it)."""
    lead = np.shape(reward)
    fields = [np.reshape(obs, (*lead, -1)), np.reshape(action, (*lead, -1)), np.reshape(reward, (*lead, 1)),
              np.reshape(next_obs, (*lead, -1)), np.reshape(terminated, (*lead, 1))]
    if truncated is not None:
        fields.append(np.reshape(truncated, (*lead, 1)))
    return np.concatenate(fields, axis=-1, dtype=np.float32)


def unpack(rows, obs_shape: tuple[int, ...], action_dim: int, extra: tuple[str, ...] = ()):
    """Split packed rows (numpy or jax, any leading axes) into an agent.Batch (with its `discount` and
    `weight` if the rows have those columns)."""
    from ddpgx.agent import Batch  # here, so that packing rows (rollout workers) needs numpy alone

    cols = columns(obs_shape, action_dim, extra)
    lead = rows.shape[:-1]
    scalar = {name: rows[..., cols[name]].reshape(lead) for name in ("discount", "weight") if name in cols}
    return Batch(
        obs=rows[..., cols["obs"]].reshape(*lead, *obs_shape),
        action=rows[..., cols["action"]],
        reward=rows[..., cols["reward"]].reshape(lead),
        next_obs=rows[..., cols["next_obs"]].reshape(*lead, *obs_shape),
        terminated=rows[..., cols["terminated"]].reshape(lead),
        **scalar,
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
                 fills: int | None = None, truncated: bool = False, priorities: Any = None, hindsight: Any = None):
        """A buffer of `capacity` transitions per seed. `fills`, if given, is how many transitions per
        seed the run will store: the pages actually touched, which must fit in the available memory.
        `truncated` adds the column n-step returns need; `priorities` (a `prioritized.Priorities`)
        makes the buffer keep a priority per slot; `hindsight` (a `her.Hindsight`, which needs the
        `truncated` column) its episode bookkeeping."""
        self.capacity = int(capacity)
        self.num_seeds = int(num_seeds)
        self.obs_shape, self.action_dim = tuple(obs_shape), int(action_dim)
        self.extra = ("truncated",) if truncated else ()
        self.columns = columns(self.obs_shape, self.action_dim, self.extra)
        self.priorities = priorities
        self.hindsight = hindsight
        if hindsight is not None and not truncated:
            raise ValueError("a buffer with hindsight bookkeeping stores truncated: pass truncated=True")
        width = max(c.stop for c in self.columns.values())
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
    def transition_bytes(obs_size: int, action_dim: int, extra: int = 0) -> int:
        """Bytes per transition; `extra` counts the optional columns (1 with n-step returns)."""
        return 4 * (2 * obs_size + action_dim + 2 + extra)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def field(self, name: str) -> np.ndarray:
        """A view of one field of every slot, shape (seeds, capacity, ...)."""
        if name in self.extra:
            return self.data[..., self.columns[name]][..., 0]
        return unpack(self.data, self.obs_shape, self.action_dim)._asdict()[name]

    def add(self, obs, action, reward, next_obs, terminated, truncated=None) -> None:
        """Store one step of every environment of every seed; arrays have shape (seeds, envs, ...).
        `truncated` is stored if the buffer has its column (n-step returns)."""
        if self.extra and truncated is None:
            raise ValueError("this buffer stores truncated (for n-step returns): pass it to add")
        self.add_rows(pack(obs, action, reward, next_obs, terminated, truncated if self.extra else None))

    def add_rows(self, rows: np.ndarray, sources: np.ndarray | None = None) -> None:
        """Store packed transitions, shape (seeds, count, row width), in order; new slots get the
        largest priority so far (prioritized replay). `sources` (count,), for the hindsight
        bookkeeping: the environment each transition comes from (`her.Hindsight.add`)."""
        count = rows.shape[1]
        slots = (self.pos + np.arange(count)) % self.capacity
        self.data[:, slots] = rows
        self.pos = int((self.pos + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)
        if self.priorities is not None:
            self.priorities.add(slots)
        if self.hindsight is not None:
            ended = rows[..., self.columns["terminated"].start] + rows[..., self.columns["truncated"].start] > 0
            self.hindsight.add(slots, ended, sources)

    def sample_rows(self, indices: np.ndarray) -> np.ndarray:
        """The packed rows at `indices` (seeds, ...) of each seed's own slots: shape (seeds, ..., row width)."""
        seed = np.arange(self.num_seeds).reshape(-1, *([1] * (indices.ndim - 1)))
        return self.data[seed, indices]

    def nstep_rows(self, indices: np.ndarray, n: int, gamma: float, num_envs: int) -> np.ndarray:
        """Packed n-step transitions [obs | action | R | next_obs | terminated | discount] starting at
        the slots `indices` (seeds, ...), each from its own seed's slots.

        Environment j's next transition after slot i is in slot (i + num_envs) mod capacity (every
        `add` writes one slot per environment, in order), so the transition k steps later is at
        i + k * num_envs. The n-step transition starting at i sums m rewards,

            R = r_i + gamma r_(i+1) + ... + gamma^(m-1) r_(i+m-1),   discount = gamma^m,

        and takes the last one's next_obs and terminated: m = n, or fewer if the episode ended
        (terminated or truncated) at one of the first n - 1 steps, or if fewer than n - 1 later
        transitions of its environment have been stored yet. So a termination within n steps stops
        the sum without bootstrapping, a truncation bootstraps with gamma^m from the true final
        observation, and a slot never reads a later slot that the ring has already overwritten.
        """
        cols = self.columns
        seed = np.arange(self.num_seeds).reshape(-1, *([1] * (indices.ndim - 1)))
        steps = np.arange(n)
        later = (indices[..., None] + steps * num_envs) % self.capacity  # (seeds, ..., n)
        rows_ahead = self.data[seed[..., None], later]
        reward = rows_ahead[..., cols["reward"].start]
        ended = (rows_ahead[..., cols["terminated"].start] + rows_ahead[..., cols["truncated"].start]) > 0
        stored_after = ((self.pos - 1 - indices) % self.capacity) // num_envs  # later transitions held
        # transition k is in the sum if k <= stored_after and no episode ended before it
        alive = (steps <= stored_after[..., None]) & np.concatenate(
            [np.ones_like(ended[..., :1]), np.cumprod(~ended[..., :-1], axis=-1).astype(bool)], axis=-1)
        m = alive.sum(axis=-1)
        discounts = gamma ** steps
        total = np.sum(np.where(alive, reward.astype(np.float64) * discounts, 0.0), axis=-1)
        last = np.take_along_axis(rows_ahead, (m - 1)[..., None, None], axis=-2)[..., 0, :]
        first = rows_ahead[..., 0, :]
        return np.concatenate([
            first[..., cols["obs"]], first[..., cols["action"]], total[..., None].astype(np.float32),
            last[..., cols["next_obs"]], last[..., cols["terminated"]],
            (gamma ** m.astype(np.float64))[..., None].astype(np.float32),
        ], axis=-1)

    def state_dict(self, seed: int) -> dict[str, np.ndarray]:
        """The filled part of one seed's buffer, in slot order, with the write position (and the
        priorities, with prioritized replay)."""
        state = {"data": self.data[seed, : self.size], "pos": np.int64(self.pos), "capacity": np.int64(self.capacity)}
        if self.priorities is not None:
            state.update(self.priorities.state_dict(seed, self.size))
        if self.hindsight is not None:
            state.update(self.hindsight.state_dict(seed, self.size))
        return state

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
        if self.priorities is not None:
            self.priorities.load_state_dict(seed, state)
        if self.hindsight is not None:
            self.hindsight.load_state_dict(seed, state)


def sample_indices(seeds: list[int], step: int, size: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform indices into the `size` filled slots, shape (seeds, *shape), for the sampling at `step`.

    Seed k draws from a Philox generator keyed by (k's sampler key, step): its own stream, a
    function of the seed and the step alone (as `fold_in(explore_key, step)` is for exploration).
    """
    if size == 0:
        raise ValueError("cannot sample from an empty replay buffer")
    return np.stack([sampler(seed, step).integers(0, size, shape) for seed in seeds])


def sampler(seed: int, step: int) -> np.random.Generator:
    """Seed `seed`'s generator of the sampling at `step` (Philox, keyed by the seed's sampler key and the step)."""
    return np.random.Generator(np.random.Philox(key=[_sampler_key(seed), step]))


@functools.lru_cache(maxsize=1024)
def _sampler_key(seed: int) -> int:
    return int(np.random.SeedSequence([seed, 2]).generate_state(1, np.uint64)[0])
