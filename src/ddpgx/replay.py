"""Experience replay: a preallocated ring buffer on the host, sampled uniformly.

One buffer holds the transitions of every seed of a run, with a leading seed axis, so that a
minibatch for all seeds is one gather and one copy to the device. Each seed samples with its own
numpy Generator, so seed k of a multi-seed run samples exactly what a single run with seed k does.

All fields of a transition are packed into one float32 row, [obs | action | reward | next_obs |
terminated], so a minibatch is one gather of contiguous rows (a few cache lines each, whatever the
buffer's size) and one copy to the device; the jitted update splits the columns (`unpack`).
A transition costs 4 * (2 * obs_size + action_dim + 2) bytes. The next observation is stored, not
derived from the following slot, because at a truncation it is the episode's true final
observation, which the environment never returns as an observation of the next step. Pages are
allocated lazily: memory grows as the buffer fills.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddpgx.agent import Batch

FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


def columns(obs_shape: tuple[int, ...], action_dim: int) -> dict[str, slice]:
    """Where each field lies in a packed row."""
    obs_size = int(np.prod(obs_shape, dtype=np.int64))
    o, a = obs_size, action_dim
    return {"obs": slice(0, o), "action": slice(o, o + a), "reward": slice(o + a, o + a + 1),
            "next_obs": slice(o + a + 1, 2 * o + a + 1), "terminated": slice(2 * o + a + 1, 2 * o + a + 2)}


def unpack(rows, obs_shape: tuple[int, ...], action_dim: int) -> Batch:
    """Split packed rows (numpy or jax, any leading axes) into a Batch."""
    cols = columns(obs_shape, action_dim)
    lead = rows.shape[:-1]
    return Batch(
        obs=rows[..., cols["obs"]].reshape(*lead, *obs_shape),
        action=rows[..., cols["action"]],
        reward=rows[..., cols["reward"]].reshape(lead),
        next_obs=rows[..., cols["next_obs"]].reshape(*lead, *obs_shape),
        terminated=rows[..., cols["terminated"]].reshape(lead),
    )


class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], action_dim: int, num_seeds: int = 1):
        self.capacity = int(capacity)
        self.num_seeds = int(num_seeds)
        self.obs_shape, self.action_dim = tuple(obs_shape), int(action_dim)
        self.columns = columns(self.obs_shape, self.action_dim)
        width = self.columns["terminated"].stop
        self.data = np.zeros((self.num_seeds, self.capacity, width), np.float32)
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

    obs = property(lambda self: self.field("obs"))
    action = property(lambda self: self.field("action"))
    reward = property(lambda self: self.field("reward"))
    next_obs = property(lambda self: self.field("next_obs"))
    terminated = property(lambda self: self.field("terminated"))

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        """Store one step of every environment of every seed; arrays have shape (seeds, envs, ...)."""
        num_envs = np.shape(reward)[1]
        slots = (self.pos + np.arange(num_envs)) % self.capacity
        lead = (self.num_seeds, num_envs, -1)
        self.data[:, slots] = np.concatenate([
            np.reshape(obs, lead), np.reshape(action, lead), np.reshape(reward, lead),
            np.reshape(next_obs, lead), np.reshape(terminated, lead),
        ], axis=-1)
        self.pos = int((self.pos + num_envs) % self.capacity)
        self.size = min(self.size + num_envs, self.capacity)

    def sample_rows(self, rngs: list[np.random.Generator], batch_size: int, count: int = 1) -> np.ndarray:
        """`count` minibatches of `batch_size` packed rows per seed, drawn uniformly from the filled slots.

        Returns shape (seeds, count, batch_size, row width); seed k draws with rngs[k].
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = np.stack([rng.integers(0, self.size, size=(count, batch_size)) for rng in rngs])
        seed = np.arange(self.num_seeds).reshape(-1, 1, 1)
        return self.data[seed, index]

    def sample(self, rngs: list[np.random.Generator], batch_size: int, count: int = 1) -> Batch:
        """As `sample_rows`, split into a Batch of arrays of shape (seeds, count, batch_size, ...)."""
        return unpack(self.sample_rows(rngs, batch_size, count), self.obs_shape, self.action_dim)

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

    def save(self, path: str | Path, seed: int = 0) -> None:
        with open(path, "wb") as f:
            np.savez(f, **self.state_dict(seed))

    def load(self, path: str | Path, seed: int = 0) -> None:
        with np.load(path) as data:
            self.load_state_dict(seed, {name: data[name] for name in data.files})
