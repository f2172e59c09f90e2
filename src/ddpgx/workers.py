"""Distributed collection: rollout workers on Ray feeding one learner (`ddpgx train --workers N`).

The layout of Ape-X (Horgan et al. 2018) and D4PG (Barth-Maron et al. 2018): many actors in front
of one learner, so that a slow simulator's time overlaps learning.

Who owns what:
- A rollout worker (`Rollout`, run as a Ray actor by `WorkerPool`) owns its environments
  (`num_envs` per seed, for every seed of the run), its exploration noise and its random stream.
  It acts with numpy alone (the actor as plain dense layers, `numpy_policy`), so it never starts
  JAX, and returns chunks: `chunk_steps` steps of each of its environments as packed float32 rows
  (`replay.pack`), the episodes that ended, and the version of the actor that acted.
- The learner (the process that called `train`) owns the replay buffer, the agent, the jitted
  update and the run directory. It inserts chunks (their observations counted into the
  normalization statistics, their episodes into the hindsight bookkeeping), makes the learning
  steps the replay ratio asks for (`updates_due`, `learner.learn_step`: the single-process
  loop's), sends the actor, logs, evaluates and checkpoints (`learner.Training`, the
  single-process loop's machinery). A chunk is
  inserted in pieces cut at the steps where the single-process loop logs, evaluates or
  checkpoints, and at `total_steps`: those come at the same steps, and a run ends at exactly
  `total_steps` transitions per seed.
What travels: the actor's layers with the observation statistics of the moment folded in
(`worker_actors`), one `ray.put` per send, once `sync_every` gradient steps have passed since the
last; the chunks back. At most two chunks per worker are in flight.

Reproducibility: with `sync`, the workers collect in lockstep rounds: the learner takes round r's
chunks in worker order, asks for round r + 1 with the actor it has, then inserts and learns on
round r. Nothing then depends on timing, so the same seed gives the same parameters. The default
is asynchronous (the learner takes whichever chunk is ready first) and is not bit-reproducible.
A checkpoint holds the learner (parameters, optimizer states, replay buffer, the update and
transition counts); a resumed run starts its workers fresh. A worker that dies is started again
and the learner goes on: its chunks in flight are lost, never counted, so the transition count
stays exact.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ddpgx.config import Config
from ddpgx.envs import EnvFactory, Envs
from ddpgx.noise import make_noise, reset as reset_noise
from ddpgx.numpy_policy import NumpyPolicy
from ddpgx.replay import pack, stores_truncated

if TYPE_CHECKING:
    from ddpgx.learner import Training

WORKER_STREAM = 3
"""The workers' random streams: SeedSequence([seed, WORKER_STREAM, worker, start]) (0 trains, 1
evaluates, 2 samples the replay buffer)."""
IN_FLIGHT = 2
NOISE_SPREAD_BASE = 0.4
"""With `worker_noise_spread` A, worker i of N explores with noise_sigma * 0.4 ** (A * i / (N - 1)):
Ape-X's epsilon_i = 0.4 ** (1 + A * i / (N - 1)) (Horgan et al. 2018, A = 7) when noise_sigma is
0.4; whatever noise_sigma is, worker 0 keeps it and the others explore less."""


class Chunk(NamedTuple):
    """`steps` steps of every environment of one worker, for every seed."""

    rows: np.ndarray
    """Packed transitions, (seeds, steps * envs, row width), step by step, environment by environment."""
    episodes: list[tuple[int, int, float, int, int, float]]
    """Episodes that ended: (seed index, env, return, length, row, success), `row` the index of their
    last transition, `success` the final `info["is_success"]` (NaN where the environment reports none)."""
    version: int
    """The version of the actor that acted (-1: random actions)."""
    worker: int
    first: int = 0
    """The index of the first row in the chunk as collected (a piece of a chunk starts later)."""

    def sources(self, num_envs: int) -> np.ndarray:
        """The environment of each row, numbered over all workers (worker * num_envs + env)."""
        return self.worker * num_envs + (self.first + np.arange(self.rows.shape[1])) % num_envs


class WorkerActor(NamedTuple):
    """One seed's actor as a worker runs it (`numpy_policy.NumpyPolicy`): its layers with the
    observation normalization's affine map folded in (`export.actor_layers`), its layer norms, and
    the bounds of its observation clip (None without)."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    layer_norms: list[tuple[np.ndarray, np.ndarray]] | None = None
    obs_clip: tuple[np.ndarray, np.ndarray] | None = None


class Rollout:
    """A worker's environments and exploration, in numpy: the part of a worker that needs no Ray."""

    def __init__(self, config: Config, make_env: EnvFactory, seeds: list[int], worker: int, workers: int,
                 start: int):
        self.config, self.worker = config, worker
        self.envs = Envs(make_env, len(seeds), config.num_envs, config.env_id)
        streams = [np.random.SeedSequence([seed, WORKER_STREAM, worker, start]) for seed in seeds]
        self.rngs = [np.random.default_rng(stream) for stream in streams]  # each seed's own
        self.obs = self.envs.reset([int(stream.generate_state(1)[0]) for stream in streams], stream=WORKER_STREAM)
        self.noise = make_noise(config.noise, worker_sigma(config, worker, workers), config.ou_theta, config.ou_dt)
        S, E, A = len(seeds), config.num_envs, self.envs.action_dim
        self.noise_state = np.zeros((S * E, A), np.float32)
        self.done = np.zeros((S, E), bool)
        self.episode_return, self.episode_length = np.zeros((S, E)), np.zeros((S, E), np.int64)
        self.policies: list[NumpyPolicy] = []
        self.version = -1
        self.truncated = stores_truncated(config)  # the learner's buffer stores it (hindsight relabeling)

    def set_actor(self, actors: list[WorkerActor], version: int) -> None:
        """The actor to act with, one per seed."""
        scaler = self.envs.scaler
        self.policies = [NumpyPolicy(actor.layers, scaler.low, scaler.high, self.envs.obs_shape,
                                     layer_norms=actor.layer_norms, obs_clip=actor.obs_clip) for actor in actors]
        self.version = version

    def collect(self, steps: int, random: bool) -> Chunk:
        """`steps` steps of every environment: uniformly random actions, or the actor's with noise,
        clipped to [-1, 1] (as `learner.step_functions`' `act`)."""
        S, E, A = self.obs.shape[0], self.obs.shape[1], self.envs.action_dim
        rows, episodes = [], []
        for t in range(steps):
            if random or not self.policies:
                action = np.stack([rng.uniform(-1.0, 1.0, (E, A)) for rng in self.rngs]).astype(np.float32)
            else:
                self.noise_state = reset_noise(self.noise_state, self.done.reshape(-1))
                shock = np.concatenate([rng.standard_normal((E, A), np.float32) for rng in self.rngs])
                eps, self.noise_state = self.noise.advance(self.noise_state, shock)
                pi = np.stack([policy.unit(self.obs[s]) for s, policy in enumerate(self.policies)])
                action = np.clip(pi + eps.reshape(S, E, A), -1.0, 1.0).astype(np.float32)
            out = self.envs.step(action)
            rows.append(pack(self.obs, action, out.reward, out.next_obs, out.terminated,
                             out.truncated if self.truncated else None))
            self.done = out.terminated | out.truncated
            self.episode_return += out.reward
            self.episode_length += 1
            for s, j in zip(*np.nonzero(self.done)):
                success = float("nan") if out.success is None else float(out.success[s, j])
                episodes.append((int(s), self.worker * E + int(j), float(self.episode_return[s, j]),
                                 int(self.episode_length[s, j]), t * E + int(j), success))
            self.episode_return[self.done], self.episode_length[self.done] = 0.0, 0
            self.obs = out.obs
        data = np.stack(rows, axis=1)  # (seeds, steps, envs, width)
        return Chunk(data.reshape(S, steps * E, data.shape[-1]), episodes, -1 if random else self.version, self.worker)

    def close(self) -> None:
        self.envs.close()


def worker_sigma(config: Config, worker: int, workers: int) -> float:
    """The noise scale of worker `worker` of `workers`: spread over the workers by NOISE_SPREAD_BASE."""
    spread = config.worker_noise_spread * worker / (workers - 1) if workers > 1 else 0.0
    return config.noise_sigma * NOISE_SPREAD_BASE ** spread


def updates_due(inserted: int, learning_starts: int, replay_ratio: float, done: int) -> int:
    """Gradient steps owed after `inserted` transitions per seed, `done` of them made: as many as the
    single-process loop makes at `replay_ratio` gradient steps per transition. That loop first
    learns right after transition `first` = max(learning_starts, 1), then after each one (a whole
    ratio r: `gradient_steps=r`) or after each multiple of k (a ratio of 1/k: `train_freq=k`); after
    n transitions both have made floor(ratio * n) - floor(ratio * (first - 1))."""
    first = max(learning_starts, 1)
    if inserted < first:
        return 0
    return max(0, _floor(replay_ratio * inserted) - _floor(replay_ratio * (first - 1)) - done)


def _floor(x: float) -> int:
    # a ratio such as 0.29 is not exact in binary: 0.29 * 100 is 28.999999999999996
    return math.floor(x + 1e-9)


def cut(chunk: Chunk, start: int, stop: int) -> Chunk:
    """Transitions `start` to `stop` (per seed) of a chunk, with the episodes that ended among them."""
    return chunk._replace(rows=chunk.rows[:, start:stop], first=chunk.first + start,
                          episodes=[e[:4] + (e[4] - start,) + e[5:] for e in chunk.episodes if start <= e[4] < stop])


def pieces(chunk: Chunk, step: int, config: Config) -> list[Chunk]:
    """A chunk inserted after `step` transitions, cut at `total_steps` and at the steps where the
    single-process loop logs, evaluates and checkpoints (multiples of `log_every`, `eval_every`,
    `checkpoint_every`), so that these happen at the same steps as in that loop."""
    stop = min(step + chunk.rows.shape[1], config.total_steps)
    if stop <= step:
        return []
    ends = {stop} | {k for every in (config.log_every, config.eval_every, config.checkpoint_every) if every > 0
                     for k in range((step // every + 1) * every, stop, every)}
    bounds = [step, *sorted(ends)]
    return [cut(chunk, a - step, b - step) for a, b in zip(bounds, bounds[1:])]


# ----------------------------------------------------------------------------- with Ray


def start_ray(config: Config, address: str | None = None) -> Any:
    """Ray for the workers: the cluster at `address`, the Ray this process already runs, or a Ray
    started on this machine, on 127.0.0.1."""
    from ddpgx import cluster

    ray = sys.modules.get("ray")  # not imported here: Ray reads its settings when first imported
    if ray is not None and ray.is_initialized():
        return None
    return cluster.start(address, num_cpus=None if address else max(os.cpu_count() or 1, config.workers + 1))


def stop_ray(ray_cluster: Any) -> None:
    if ray_cluster is not None:
        from ddpgx import cluster

        cluster.stop(ray_cluster)


class _Worker:
    """The Ray actor around a Rollout (made remote in `WorkerPool`)."""

    def __init__(self, *args: Any):
        self.rollout = Rollout(*args)

    def collect(self, actors: Any, version: int, steps: int, random: bool) -> Chunk:
        if version != self.rollout.version and not random:
            self.rollout.set_actor(actors, version)
        return self.rollout.collect(steps, random)

    def info(self) -> dict[str, Any]:
        """The worker's process: its PID, and whether JAX was ever imported in it."""
        return {"pid": os.getpid(), "jax": "jax" in sys.modules}


class WorkerPool:
    """The rollout workers and their chunks in flight; a worker that dies is started again."""

    def __init__(self, config: Config, make_env: EnvFactory, seeds: list[int], start: int, print_fn=print,
                 on_restart: Callable[[int], None] | None = None):
        """`on_restart(worker)` is called when a worker is started again, before it collects."""
        from ddpgx import cluster

        self.ray = cluster.import_ray()
        self.config, self.make_env, self.seeds, self.start, self.print_fn = config, make_env, seeds, start, print_fn
        self.on_restart = on_restart
        self.remote = self.ray.remote(num_cpus=1, max_restarts=0)(_Worker)
        self.workers = [self._new(i, 0) for i in range(config.workers)]
        self.restarts = [0] * config.workers
        self.in_flight: dict[Any, int] = {}  # chunk reference -> worker
        self.queued: list[list[Any]] = [[] for _ in range(config.workers)]

    def _new(self, worker: int, restarts: int) -> Any:
        # a restarted worker gets a stream of its own: restarts are counted into its start
        return self.remote.remote(self.config, self.make_env, self.seeds, worker, self.config.workers,
                                  self.start + 1_000_003 * restarts)

    def submit(self, worker: int, actors: Any, version: int, random: bool) -> None:
        ref = self.workers[worker].collect.remote(actors, version, self.config.chunk_steps, random)
        self.in_flight[ref] = worker
        self.queued[worker].append(ref)

    def take(self, worker: int | None = None) -> Chunk | None:
        """The next chunk: the oldest in flight of `worker`, or of the worker whose chunk is ready
        first (a worker collects its chunks in the order they were asked for, so its oldest is
        ready too: the buffer gets each environment's steps in order). None when the worker died
        (it has been started again, with nothing in flight)."""
        if worker is None:
            ready, _ = self.ray.wait(list(self.in_flight), num_returns=1)
            worker = self.in_flight[ready[0]]
        ref = self.queued[worker][0]
        self.in_flight.pop(ref)
        self.queued[worker].remove(ref)
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayActorError as error:
            self.restart(worker, error)
            return None

    def restart(self, worker: int, error: Exception) -> None:
        for ref in self.queued[worker]:
            self.in_flight.pop(ref, None)
        self.queued[worker] = []
        self.restarts[worker] += 1
        self.print_fn(f"note: rollout worker {worker} died ({type(error).__name__}); started again "
                      f"(restart {self.restarts[worker]}), its chunks in flight are dropped")
        self.workers[worker] = self._new(worker, self.restarts[worker])
        if self.on_restart is not None:
            self.on_restart(worker)

    def info(self) -> list[dict[str, Any]]:
        return self.ray.get([w.info.remote() for w in self.workers])

    def stop(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)


def worker_actors(actor_module: Any, actor: Any, obs_stats: Any, obs_norm_clip: float,
                  num_seeds: int) -> list[WorkerActor]:
    """Each seed's actor as the workers run it, from the learner's actor variables and observation
    statistics (None without observation normalization), both with a leading seed axis."""
    from ddpgx.export import actor_layers, layer_norms, obs_clip
    from ddpgx.learner import take
    from ddpgx.normalization import ObsNormalizer

    actors = []
    for s in range(num_seeds):
        params = take(actor, s)
        normalizer = None if obs_stats is None else ObsNormalizer.from_stats(take(obs_stats, s), obs_norm_clip)
        actors.append(WorkerActor(actor_layers(actor_module, params, normalizer), layer_norms(actor_module, params),
                                  obs_clip(normalizer)))
    return actors


def collect_and_learn(t: Training, stop_requested: Callable[[], bool]) -> None:
    """The learner's loop: insert chunks, make the learning steps the replay ratio asks for
    (`learner.learn_step`), send the actor, and let `t` log, evaluate and checkpoint, until
    `total_steps` or `stop_requested()`."""
    import jax  # imported here: a worker process imports this module and never starts JAX

    from ddpgx import learner

    config, seeds, buffer = t.config, t.seeds, t.buffer
    S, G, E = len(seeds), config.gradient_steps, config.num_envs
    actor_module = t.agent.actor.module
    state, step = t.state, t.step
    hindsight = buffer.hindsight
    if hindsight is not None:  # workers start afresh: the episodes running at a checkpoint never end
        hindsight.restart(np.arange(hindsight.sources))

    def restarted(worker: int) -> None:
        if hindsight is not None:
            hindsight.restart(worker * E + np.arange(E))

    pool = WorkerPool(config, t.make_env, seeds, step, t.print_fn, on_restart=restarted)
    try:
        def send() -> tuple[Any, int]:
            actors = worker_actors(actor_module, jax.device_get(state.agent.actor), state.obs_stats,
                                   config.obs_norm_clip, S)
            return pool.ray.put(actors), int(np.asarray(state.agent.updates)[0])

        actors, version = send()

        def request(worker: int) -> None:
            pool.submit(worker, actors, version, step < config.learning_starts)

        for worker in range(config.workers):
            for _ in range(1 if config.sync else IN_FLIGHT):
                request(worker)
        while step < config.total_steps and not stop_requested():
            if config.sync:  # round r in worker order, then round r + 1 is asked for before learning on r
                chunks = [pool.take(w) for w in range(config.workers)]
                for w in range(config.workers):
                    request(w)
            else:
                chunks = [pool.take()]
                if chunks[0] is None:
                    for w, queued in enumerate(pool.queued):
                        while len(queued) < IN_FLIGHT:
                            request(w)
                    continue
                request(chunks[0].worker)
            for chunk in filter(None, chunks):  # None: the worker died
                for piece in pieces(chunk, step, config):
                    count = piece.rows.shape[1]
                    buffer.add_rows(piece.rows, piece.sources(E))
                    counted = count if config.obs_norm_until == 0 else min(count, max(0, config.obs_norm_until - step))
                    state = learner.count_observations(state, piece.rows[:, :counted, buffer.columns["obs"]],
                                                       t.goal_swap)
                    previous, step = step, step + count
                    finished = [e[:4] for e in piece.episodes]
                    state = learner.count_episodes(state, finished)
                    t.log_episodes(step, finished, [e[5] for e in piece.episodes])
                    updates = int(np.asarray(state.agent.updates)[0])
                    while updates_due(step, config.learning_starts, config.replay_ratio, updates) >= G:
                        state = learner.learn_step(t.fns, buffer, state, seeds, config, step, draw=updates, updates=G)
                        updates += G
                    if updates - version >= config.sync_every:
                        actors, version = send()
                    t.after_step(previous, step, state)
    finally:
        pool.stop()
