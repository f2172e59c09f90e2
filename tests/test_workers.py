"""Rollout workers: chunk assembly, the replay-ratio limiter, the noise spread, and the learner's loop
beside the single-process loop (the same learning step, the same counts, exponents and evaluation
steps) and a dead worker, without Ray (on an in-process stand-in for it); then, on a real Ray in a
loopback-only network namespace, reproducible lockstep collection, a killed worker with an exact
transition count, the resume of a distributed run, workers that never import JAX, and Ctrl-C while
Ray starts."""

import os
import signal
import subprocess
import sys
import time
import types

import jax
import numpy as np
import pytest

import ddpgx
from ddpgx import checkpoint as ckpt
from ddpgx.replay import columns
from ddpgx import learner
from ddpgx.loop import learns
from ddpgx.normalization import MeanStd
from ddpgx.numpy_policy import NumpyPolicy
from ddpgx.prioritized import beta_at
from ddpgx.workers import (NOISE_SPREAD_BASE, Rollout, WorkerActor, WorkerPool, cut, pieces, updates_due, worker_actors,
                           worker_sigma)
from tests.conftest import quiet, small_config
from tests.logs import csv_rows
from tests.probe_envs import ObsDependentAction, TwoStep
from tests.test_sweep_ray import in_loopback_namespace

# ----------------------------------------------------------------------------- without Ray


def test_updates_due_keeps_the_replay_ratio_whatever_the_chunks():
    assert updates_due(99, learning_starts=100, replay_ratio=1.0, done=0) == 0
    assert updates_due(100, 100, 1.0, 0) == 1  # the first update follows the learning_starts-th transition
    assert updates_due(164, 100, 1.0, 1) == 64
    assert updates_due(164, 100, 0.25, 0) == 17  # after transitions 100, 104, ..., 164, as with train_freq=4
    assert updates_due(164, 100, 2.0, 100) == 30
    # chunk by chunk or at once, the total is the same: the ratio of the single-process loop
    done = 0
    for inserted in range(50, 1001, 50):
        done += updates_due(inserted, 100, 1.0, done)
    assert done == 1000 - 100 + 1 == updates_due(1000, 100, 1.0, 0)


@pytest.mark.parametrize("learning_starts", [0, 1, 7, 100, 101])
@pytest.mark.parametrize("train_freq, gradient_steps", [(1, 1), (2, 1), (4, 1), (3, 1), (1, 3)])
def test_updates_due_makes_the_updates_of_the_single_process_loop(learning_starts, train_freq, gradient_steps):
    """At replay ratio gradient_steps / train_freq, after every transition the learner has made as
    many updates as the single-process loop (one environment) has by then."""
    config = ddpgx.Config(num_envs=1, learning_starts=learning_starts, train_freq=train_freq,
                          gradient_steps=gradient_steps)
    made_by_loop = np.cumsum([gradient_steps * learns(step, config) for step in range(1, 201)])
    done = 0
    for inserted in range(1, 201):
        done += updates_due(inserted, learning_starts, gradient_steps / train_freq, done)
        assert done == made_by_loop[inserted - 1], inserted
    assert made_by_loop[-1] > 0


def test_the_noise_spread_lowers_the_noise_from_the_first_worker_to_the_last():
    high = small_config(env_id="probe", workers=3, noise_sigma=1.5, worker_noise_spread=2.0)
    np.testing.assert_allclose([worker_sigma(high, w, 3) for w in range(3)], [1.5, 0.6, 0.24])
    assert Rollout(high, ObsDependentAction, [0], 2, 3, 0).noise.sigma == pytest.approx(0.24)
    # Ape-X's spread (Horgan et al. 2018): 0.4 ** (1 + 7 i / (N - 1)) over N = 8 actors
    apex = small_config(workers=8, noise_sigma=0.4, worker_noise_spread=7.0)
    assert NOISE_SPREAD_BASE == 0.4
    np.testing.assert_allclose([worker_sigma(apex, w, 8) for w in range(8)], 0.4 ** (1 + np.arange(8)))
    assert worker_sigma(small_config(workers=1, worker_noise_spread=7.0), 0, 1) == 0.1


def test_a_chunk_is_cut_where_the_single_process_loop_logs_evaluates_checkpoints_and_ends():
    config = small_config(workers=1, log_every=250, eval_every=500, checkpoint_every=0, total_steps=1010)
    chunk = Rollout(small_config(env_id="probe", workers=1, chunk_steps=64), ObsDependentAction, [0], 0, 1,
                    0).collect(64, random=True)
    assert [p.rows.shape[1] for p in pieces(chunk, 448, config)] == [52, 12]  # 448 -> 500 -> 512
    assert [p.rows.shape[1] for p in pieces(chunk, 960, config)] == [40, 10]  # 960 -> 1000 -> 1010, the end
    assert pieces(chunk, 1010, config) == []
    assert [p.rows.shape[1] for p in pieces(chunk, 0, config)] == [64]


def rows_of(chunk, obs_shape=(1,), action_dim=1):
    cols = columns(obs_shape, action_dim)
    return {name: chunk.rows[..., c] for name, c in cols.items()}


def test_a_chunk_holds_every_environments_steps_in_order_with_its_episodes():
    config = small_config(env_id="probe", num_envs=2, chunk_steps=5, workers=2)
    rollout = Rollout(config, TwoStep, seeds=[7, 8], worker=1, workers=2, start=0)
    chunk = rollout.collect(5, random=True)
    assert chunk.rows.shape == (2, 5 * 2, 2 * 1 + 1 + 2) and chunk.rows.dtype == np.float32
    assert chunk.version == -1 and chunk.worker == 1
    fields = rows_of(chunk)
    # TwoStep: obs 0 then 1, reward 0 then 1, terminated at the second step; rows are step by step,
    # environment by environment: (step 0, env 0), (step 0, env 1), (step 1, env 0), ...
    np.testing.assert_array_equal(fields["obs"][0, :, 0], [0, 0, 1, 1, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(fields["reward"][0, :, 0], [0, 0, 1, 1, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(fields["terminated"][0, :, 0], [0, 0, 1, 1, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(fields["next_obs"][0, :, 0], np.ones(10))
    assert np.all(np.abs(fields["action"]) <= 1.0) and not np.allclose(fields["action"][0], fields["action"][1])
    # episodes end at steps 1 and 3 of each env, for each seed: worker 1's envs are 2 and 3
    assert sorted(e[:5] for e in chunk.episodes) == sorted((s, 2 + j, 1.0, 2, t * 2 + j) for s in (0, 1)
                                                          for t in (1, 3) for j in (0, 1))
    assert all(np.isnan(e[5]) for e in chunk.episodes)  # TwoStep reports no is_success
    kept = cut(chunk, 0, 5)
    assert kept.rows.shape[1] == 5 and sorted(e[4] for e in kept.episodes) == [2, 2, 3, 3]
    rest = cut(chunk, 5, 10)  # the episodes' rows count from the piece's start
    assert rest.rows.shape[1] == 5 and sorted(e[4] for e in rest.episodes) == [1, 1, 2, 2]
    # each row's environment, numbered over the workers: worker 1's are 2 and 3, whatever the cut
    np.testing.assert_array_equal(chunk.sources(2), [2, 3] * 5)
    np.testing.assert_array_equal(rest.sources(2), [3, 2, 3, 2, 3])
    np.testing.assert_array_equal(np.concatenate([kept.rows, rest.rows], axis=1), chunk.rows)


def test_a_chunk_acts_with_the_actor_it_was_sent_plus_noise_clipped():
    config = small_config(env_id="probe", num_envs=3, noise_sigma=0.0, workers=1)
    rollout = Rollout(config, ObsDependentAction, seeds=[0], worker=0, workers=1, start=0)
    # pi(s) = tanh(2 s): one dense layer with tanh
    rollout.set_actor([WorkerActor([(np.array([[2.0]], np.float32), np.array([0.0], np.float32))])], version=12)
    chunk = rollout.collect(4, random=False)
    fields = rows_of(chunk)
    np.testing.assert_allclose(fields["action"][0, :, 0], np.tanh(2 * fields["obs"][0, :, 0]), rtol=1e-6)
    assert chunk.version == 12
    noisy = Rollout(small_config(env_id="probe", noise_sigma=5.0, workers=1), ObsDependentAction, [0], 0, 1, 0)
    noisy.set_actor([WorkerActor([(np.array([[2.0]], np.float32), np.array([0.0], np.float32))])], version=1)
    actions = rows_of(noisy.collect(50, random=False))["action"]
    assert actions.min() == -1.0 and actions.max() == 1.0  # clipped, as the single-process loop clips


def test_worker_streams_are_their_own():
    config = small_config(num_envs=1, workers=2)
    make_env = lambda: __import__("gymnasium").make("Pendulum-v1")  # noqa: E731
    a, b, again = (Rollout(config, make_env, [0], w, 2, start) for w, start in ((0, 0), (1, 0), (0, 0)))
    first, second, repeat = (r.collect(3, random=True).rows for r in (a, b, again))
    np.testing.assert_array_equal(first, repeat)  # same worker, same start: the same stream
    assert not np.allclose(first, second)
    restarted = Rollout(config, make_env, [0], 0, 2, 1_000_003).collect(3, random=True).rows
    assert not np.allclose(first, restarted)


def test_workers_refuse_a_custom_actor(tmp_path):
    import flax.linen as nn

    class Tiny(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.tanh(nn.Dense(1)(obs))

    with pytest.raises(ddpgx.ConfigError, match="rollout workers act with the default MLP actor"):
        ddpgx.train(small_config(workers=2), tmp_path / "run", actor=Tiny(), progress=False)
    assert not (tmp_path / "run").exists()


def test_the_workers_actor_acts_as_the_learners_policy_with_normalization_and_layer_norm(tmp_path):
    """What the learner sends (the observation statistics folded into the first layer, the clip as
    bounds, the layer norms beside) acts as the learner's policy, observations far outside the clip
    included."""
    config = small_config(obs_norm=True, obs_norm_clip=2.0, actor_layer_norm=True, total_steps=400)
    ddpgx.train(config, tmp_path / "run", progress=False, print_fn=quiet)
    policy = ddpgx.load_policy(tmp_path / "run")
    normalizer = policy.normalizer
    stats = MeanStd(np.ones(1), normalizer.mean[None], normalizer.std[None] ** 2)
    params = jax.tree.map(lambda x: np.asarray(x)[None], policy.params)
    actor, = worker_actors(policy.actor, params, stats, config.obs_norm_clip, 1)
    worker_policy = NumpyPolicy(actor.layers, *policy.scaler, policy.obs_shape, layer_norms=actor.layer_norms,
                                obs_clip=actor.obs_clip)
    obs = np.random.default_rng(0).normal(0.0, 3.0, (64, *policy.obs_shape)).astype(np.float32)
    assert (np.abs(normalizer(obs)) == config.obs_norm_clip).any()  # some coordinates are clipped
    np.testing.assert_allclose(worker_policy(obs), policy(obs), atol=1e-4)


class InProcessRay:
    """Just enough of Ray's API to run the learner's loop and its workers in this process, in a fixed
    order: a call runs when it is made, `wait` answers the oldest call first, and a worker can be made
    to die at its n-th chunk, as a killed process would."""

    class RayActorError(Exception):
        pass

    def __init__(self, die_at_chunk: int):
        self.exceptions = self
        self.die_at_chunk, self.calls, self.started = die_at_chunk, 0, 0

    def is_initialized(self):
        return True

    def remote(self, **_):
        return lambda cls: types.SimpleNamespace(remote=lambda *args: self.Handle(self, cls(*args)))

    class Ref:
        def __init__(self, value):
            self.value = value

    class Handle:
        def __init__(self, ray, actor):
            ray.started += 1
            self.ray, self.actor, self.dead = ray, actor, False
            self.collect = types.SimpleNamespace(remote=self._collect)

        def _collect(self, *args):
            self.ray.calls += 1
            self.dead = self.dead or self.ray.calls == self.ray.die_at_chunk
            return InProcessRay.Ref(self.ray.RayActorError("killed") if self.dead else self.actor.collect(*args))

    def put(self, value):
        return value

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        if isinstance(ref.value, Exception):
            raise ref.value
        return ref.value

    def kill(self, handle):
        handle.dead = True


class NewestFirstRay(InProcessRay):
    """Ray's `wait` may name any ready chunk: this one names the newest."""

    def wait(self, refs, num_returns):
        return refs[-num_returns:], refs[:-num_returns]


def test_a_workers_chunks_are_inserted_in_the_order_it_collected_them(monkeypatch):
    """Hindsight relabeling follows each environment's steps in the buffer: whichever chunk Ray
    says is ready, the learner takes that worker's oldest."""
    monkeypatch.setitem(sys.modules, "ray", NewestFirstRay(die_at_chunk=0))
    config = small_config(workers=1, chunk_steps=5)
    pool = WorkerPool(config, lambda: __import__("gymnasium").make("Pendulum-v1"), [0], 0)
    pool.submit(0, None, -1, True)
    pool.submit(0, None, -1, True)
    first, second = pool.take(), pool.take()
    obs = columns((3,), 1)
    np.testing.assert_array_equal(first.rows[0, -1, obs["next_obs"]], second.rows[0, 0, obs["obs"]])
    pool.stop()


def test_without_lockstep_a_dead_worker_is_started_again_and_the_counts_stay_exact(monkeypatch, tmp_path):
    ray = InProcessRay(die_at_chunk=12)  # worker 1's, asked for at step 400: 8 chunks of 50 in, learning begun
    monkeypatch.setitem(sys.modules, "ray", ray)
    lines = []
    config = small_config(workers=2, chunk_steps=50, total_steps=1500, learning_starts=300, checkpoint_every=500)
    ddpgx.train(config, tmp_path / "run", progress=False, print_fn=lines.append)
    assert [line for line in lines if "died" in line] == [
        "note: rollout worker 1 died (RayActorError); started again (restart 1), its chunks in flight are dropped"]
    assert ray.started == 3
    checkpoint = final(tmp_path / "run")
    assert checkpoint.step == 1500 and len(checkpoint.replay()["data"]) == 1500
    assert int(checkpoint.arrays[".agent.updates"]) == 1500 - 300 + 1


def train_on(ray, config, run_dir, monkeypatch, **kwargs):
    monkeypatch.setitem(sys.modules, "ray", ray)
    return ddpgx.train(config, run_dir, progress=False, **{"print_fn": quiet, **kwargs})


def test_both_loops_learn_through_the_one_learning_step(monkeypatch, tmp_path):
    """The single-process loop and the workers' learner make every learning call through
    `learner.learn_step`, and make the same updates: from the first transition on (learning_starts
    0), 200 over 200 steps."""
    calls, learn_step = [], learner.learn_step

    def counted(fns, buffer, state, seeds, config, step, *, draw, updates):
        calls.append((config.workers, step, updates))
        return learn_step(fns, buffer, state, seeds, config, step, draw=draw, updates=updates)

    monkeypatch.setattr(learner, "learn_step", counted)
    config = small_config(total_steps=200, learning_starts=0, chunk_steps=50, log_every=1000)
    for workers in (0, 2):
        train_on(InProcessRay(die_at_chunk=0), config.replace(workers=workers), tmp_path / f"{workers}", monkeypatch)
        assert int(final(tmp_path / f"{workers}").arrays[".agent.updates"]) == 200
    assert [(step, updates) for workers, step, updates in calls if workers == 0] == [(s, 1) for s in range(1, 201)]
    with_workers = [(step, updates) for workers, step, updates in calls if workers == 2]
    assert sum(updates for _, updates in with_workers) == 200 and {step for step, _ in with_workers} == {50, 100, 150, 200}


@pytest.mark.slow
def test_with_workers_prioritized_replay_anneals_its_exponent_over_environment_steps(monkeypatch, tmp_path):
    """beta reaches 1 at the run's last environment step, as in the single-process loop, whatever
    the replay ratio (half an update per transition here)."""
    seen = []

    def recorded(step, beta0, steps):
        seen.append((step, beta_at(step, beta0, steps)))
        return seen[-1][1]

    monkeypatch.setattr(learner, "beta_at", recorded)
    config = small_config(prioritized=True, total_steps=600, learning_starts=100, chunk_steps=50, log_every=1000)
    for workers, replay_ratio in ((0, 1.0), (2, 0.5)):
        seen.clear()
        train_on(InProcessRay(die_at_chunk=0), config.replace(workers=workers, replay_ratio=replay_ratio),
                 tmp_path / f"{workers}", monkeypatch)
        assert seen[-1] == (600, 1.0), workers
        assert [step for step, _ in seen] == sorted(step for step, _ in seen)
    assert {step for step, _ in seen} == set(range(100, 601, 50))  # learning after each chunk


def test_with_workers_logs_evaluations_and_checkpoints_come_at_the_single_process_loops_steps(monkeypatch, tmp_path):
    """Chunks of 64 steps, evaluations and checkpoints every 500, logs every 250: at 500, 1000, 1500,
    not at the chunk boundaries 512, 1024; the checkpoint of an evaluation's step is written."""
    evaluations = []
    config = small_config(workers=2, chunk_steps=64, total_steps=1500, learning_starts=300, eval_every=500,
                          checkpoint_every=500, log_every=250)
    train_on(InProcessRay(die_at_chunk=0), config, tmp_path / "run", monkeypatch, on_evaluation=evaluations.append)
    assert [(e.step, e.checkpointed) for e in evaluations] == [(500, True), (1000, True), (1500, True)]
    assert [r["step"] for r in csv_rows(tmp_path / "run", "eval")] == ["500", "1000", "1500"]
    assert [r["step"] for r in csv_rows(tmp_path / "run", "metrics")] == [str(s) for s in range(250, 1501, 250)]
    assert int(final(tmp_path / "run").arrays[".agent.updates"]) == 1500 - 300 + 1


def test_with_workers_a_run_ends_at_exactly_total_steps_and_no_note_says_otherwise(monkeypatch, tmp_path):
    lines = []
    config = small_config(workers=2, num_envs=3, chunk_steps=10, total_steps=601, log_every=1000)
    train_on(InProcessRay(die_at_chunk=0), config, tmp_path / "run", monkeypatch, print_fn=lines.append)
    assert not [line for line in lines if line.startswith("note:")], lines
    checkpoint = final(tmp_path / "run")
    assert checkpoint.step == 601 and len(checkpoint.replay()["data"]) == 601


def test_with_workers_the_observation_statistics_are_those_of_the_stored_observations(monkeypatch, tmp_path):
    """The learner counts every inserted observation into the normalization statistics, up to
    `obs_norm_until` (350: inside a chunk of 50), as the single-process loop counts every step's."""
    config = small_config(workers=2, chunk_steps=50, total_steps=600, learning_starts=200, obs_norm=True,
                          obs_norm_until=350, log_every=1000)
    train_on(InProcessRay(die_at_chunk=0), config, tmp_path / "run", monkeypatch)
    checkpoint = final(tmp_path / "run")
    stored = checkpoint.replay()["data"][:350, columns((3,), 1)["obs"]].astype(np.float64)
    assert int(checkpoint.arrays[".obs_stats.count"]) == 350
    np.testing.assert_allclose(checkpoint.arrays[".obs_stats.mean"], stored.mean(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(checkpoint.arrays[".obs_stats.var"], stored.var(axis=0), rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- with Ray, on loopback

FLAGS = ["--workers", "2", "--total-steps", "2000", "--learning-starts", "300", "--actor-hidden", "32", "32",
         "--critic-hidden", "32", "32", "--batch-size", "32", "--eval-every", "1000", "--eval-episodes", "2",
         "--log-every", "500", "--checkpoint-every", "500", "--chunk-steps", "50", "--no-progress",
         "--no-tensorboard"]


def ddpgx_cli(*args, check=True, timeout=600):
    done = subprocess.run(in_loopback_namespace(sys.executable, "-m", "ddpgx.cli", *map(str, args)),
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def final(run_dir):
    return ckpt.Checkpoint(ckpt.latest_checkpoint(run_dir))


@pytest.mark.slow
def test_lockstep_workers_are_reproducible_and_never_import_jax(tmp_path):
    for name in ("a", "b"):
        ddpgx_cli("train", "--run-dir", tmp_path / name, "--sync", *FLAGS)
    a, b = final(tmp_path / "a"), final(tmp_path / "b")
    assert a.step == b.step == 2000
    assert len(a.replay()["data"]) == 2000  # exactly total_steps transitions
    for key in a.arrays:
        np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)
    np.testing.assert_array_equal(a.replay()["data"], b.replay()["data"])
    assert int(a.arrays[".agent.updates"]) == 2000 - 300 + 1  # replay ratio 1 from learning_starts on
    assert csv_rows(tmp_path / "a", "eval") == csv_rows(tmp_path / "b", "eval")
    script = ("from ddpgx import cluster, workers, config; c = cluster.start(num_cpus=2); "
              "cfg = config.Config(workers=2); "
              "pool = workers.WorkerPool(cfg, __import__('ddpgx.envs').envs.env_factory('Pendulum-v1'), [0], 0); "
              "print([i['jax'] for i in pool.info()]); pool.stop(); cluster.stop(c)")
    done = subprocess.run(in_loopback_namespace(sys.executable, "-c", script), capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "[False, False]", done.stderr[-2000:]


def worker_pids() -> list[int]:
    """The PIDs of running rollout workers (Ray names their processes after the actor class)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::_Worker"):
                    found.append(int(entry))
        except (OSError, ValueError):
            pass
    return found


@pytest.mark.slow
def test_a_killed_worker_is_started_again_and_no_transition_is_lost_or_counted_twice(tmp_path):
    # In lockstep the learner waits for each worker's chunk in turn, so it must see the death; without
    # lockstep the other worker could finish the run before Ray reports it, and nothing would be seen.
    run = tmp_path / "run"
    before = set(worker_pids())
    learner = subprocess.Popen(in_loopback_namespace(sys.executable, "-m", "ddpgx.cli", "train", "--run-dir", str(run),
                                                     "--sync", *FLAGS, "--total-steps", "4000"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (ckpt.latest_checkpoint(run) and len(set(worker_pids()) - before) == 2):
        assert time.time() < deadline and learner.poll() is None, learner.communicate()
        time.sleep(0.05)
    os.kill(sorted(set(worker_pids()) - before)[0], signal.SIGKILL)
    out, err = learner.communicate(timeout=600)
    assert learner.returncode == 0, out[-3000:] + err[-3000:]
    assert "died (" in out and "started again (restart 1)" in out
    checkpoint = final(run)
    assert checkpoint.step == 4000 and len(checkpoint.replay()["data"]) == 4000
    assert int(checkpoint.arrays[".agent.updates"]) == 4000 - 300 + 1
    assert [r["step"] for r in csv_rows(run, "metrics")] == [str(s) for s in range(500, 4001, 500)]


@pytest.mark.slow
def test_a_distributed_run_resumes_with_fresh_workers(tmp_path):
    run = tmp_path / "run"
    ddpgx_cli("train", "--run-dir", run, *FLAGS, "--total-steps", "1200")
    done = ddpgx_cli("train", "--run-dir", run, "--resume", "--total-steps", "2000", "--no-progress")
    assert "final evaluation, seed 0" in done.stdout
    checkpoint = final(run)
    assert checkpoint.step == 2000 and len(checkpoint.replay()["data"]) == 2000
    assert int(checkpoint.arrays[".agent.updates"]) == 2000 - 300 + 1
    assert [r["step"] for r in csv_rows(run, "eval")] == ["1000", "2000"]  # the 1200 final evaluation is cut
    assert ddpgx.Config.load(run / "config.json").workers == 2


def marked_processes(mark: str) -> list[int]:
    """The PIDs of the processes whose environment carries DDPGX_TEST_MARK=mark: a run's learner
    and everything it started (Ray's processes inherit the learner's environment)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if f"DDPGX_TEST_MARK={mark}".encode() in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.5, 1.5])
def test_ctrl_c_while_ray_starts_stops_everything_it_started(tmp_path, delay):
    """Ctrl-C `delay` seconds after Ray's session directory appears (Ray starting, or just started):
    the learner exits with 130 ("interrupted"), not killed by a signal, and leaves neither the
    directory nor a process behind."""
    mark = f"{os.getpid()}-{time.time_ns()}"
    learner_process = subprocess.Popen(
        in_loopback_namespace(sys.executable, "-m", "ddpgx.cli", "train", "--run-dir", str(tmp_path / "run"), *FLAGS),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "DDPGX_TEST_MARK": mark},
        start_new_session=True)  # its own process group, as a terminal's foreground job
    session = f"/tmp/ddpgx-ray-{learner_process.pid}"  # unshare and sh exec: the learner keeps the PID
    try:
        deadline = time.time() + 300
        while not os.path.exists(session):
            assert time.time() < deadline and learner_process.poll() is None, learner_process.communicate()
            time.sleep(0.02)
        time.sleep(delay)
        os.killpg(learner_process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        out, err = learner_process.communicate(timeout=300)
    finally:
        if learner_process.poll() is None:
            learner_process.kill()
    assert learner_process.returncode == 130, (learner_process.returncode, out[-3000:], err[-3000:])
    assert "interrupted" in out + err
    assert not os.path.exists(session)
    deadline = time.time() + 5
    while marked_processes(mark) and time.time() < deadline:
        time.sleep(0.1)
    assert marked_processes(mark) == []
