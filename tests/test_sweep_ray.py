"""Sweeps and cluster.py on a real Ray, each inside a loopback-only network namespace: a local sweep
with ASHA, a trial whose worker is killed, a driver that is killed and resumed, a sweep stopped with
Ctrl-C and resumed, the nodes' addresses, what a stop leaves alone, and Ray started twice in one
process after JAX.

Every command that starts Ray runs as `unshare -n sh -c 'ip link set lo up && exec CMD'`: even a
wrong default could reach no address but 127.0.0.1. The namespace needs root (or user namespaces);
without it these tests fail, they do not run Ray on the open network.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ddpgx import checkpoint as ckpt
from ddpgx.logging import read_csv

pytestmark = pytest.mark.slow  # every test here starts Ray

TOTAL = 2000  # each trial's steps: evaluations and checkpoints every 500, learning from 500
SMALL = {"total_steps": TOTAL, "learning_starts": 500, "batch_size": 32, "actor_hidden": [32, 32],
         "critic_hidden": [32, 32], "eval_every": 500, "checkpoint_every": 500, "eval_episodes": 2,
         "log_every": 500, "tensorboard": False, "buffer_size": 5000}


def in_loopback_namespace(*command: str) -> list[str]:
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]


def ddpgx(*args: str, timeout: float = 600, check: bool = True, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess:
    done = subprocess.run(in_loopback_namespace(sys.executable, "-m", "ddpgx.cli", *map(str, args)),
                          capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def write_spec(path: Path, **changes) -> Path:
    import yaml

    spec = {"name": "sweep", "tasks": ["Pendulum-v1"], "config": dict(SMALL), "seeds": 2, "max_concurrent": 2,
            "cpus_per_trial": 1}
    spec.update(changes)
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_namespace_is_loopback_only_and_ray_stays_on_127_0_0_1():
    script = ("from ddpgx import cluster; c = cluster.start(num_cpus=1); print(cluster.node_addresses()); "
              "import ray; print(ray.get(ray.remote(lambda: 1 + 1).remote())); cluster.stop(c); "
              "print(len(cluster.session_processes(c.tag, c.processes)))")
    done = subprocess.run(in_loopback_namespace(sys.executable, "-c", script), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:3] == ["['127.0.0.1']", "2", "0"]  # one node, on loopback; nothing left
    links = subprocess.run(in_loopback_namespace("ip", "-o", "addr"), capture_output=True, text=True, timeout=60)
    assert {line.split()[1] for line in links.stdout.splitlines()} == {"lo"}


def run_in_namespace(script: str, *args: str, timeout: float = 300) -> list:
    """Run a Python script in the namespace; its last line of stdout, read as JSON."""
    done = subprocess.run(in_loopback_namespace(sys.executable, "-c", script, *args), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_stop_leaves_a_reader_of_rays_logs_alive_and_the_environment_as_it_was():
    """A `tail -f` of raylet.out, started as from another terminal (without the session's tag),
    survives the stop; afterwards the tag and the token are gone from the environment, so a process
    started later is no target of a second stop of the same session (a --resume)."""
    script = """
import glob, json, os, subprocess, time
from ddpgx import cluster
names = (cluster.TAG, "RAY_AUTH_TOKEN", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_USAGE_STATS_ENABLED")
os.environ["RAY_USAGE_STATS_ENABLED"] = "1"  # a value of the user's, to be put back
before = {name: os.environ.get(name) for name in names}
c = cluster.start(num_cpus=1)
import ray
ray.get(ray.remote(lambda: 1).remote())  # a worker process too
during = {name: os.environ.get(name) for name in names}
log = os.path.realpath(glob.glob(c.temp_dir + "/session_latest/logs/raylet.out")[0])
reader = subprocess.Popen(["tail", "-f", log], stdout=subprocess.DEVNULL,
                          env={k: v for k, v in os.environ.items() if k != cluster.TAG})
deadline = time.time() + 30
while not any(os.readlink(f"/proc/{reader.pid}/fd/{fd}") == log for fd in os.listdir(f"/proc/{reader.pid}/fd")):
    assert time.time() < deadline, "tail never opened the log"
    time.sleep(0.05)
cluster.stop(c)
after = {name: os.environ.get(name) for name in names}
later = subprocess.Popen(["sleep", "60"])  # inherits the environment after the stop
cluster.stop_processes(c.tag, c.processes, c.temp_dir)  # as --resume stops a dead driver's session
print(json.dumps({"reader": reader.poll(), "later": later.poll(), "left": cluster.session_processes(c.tag, c.processes),
                  "tagged": during[cluster.TAG] == c.tag and during["RAY_AUTH_MODE"] == "token",
                  "restored": after == before, "temp_dir": os.path.exists(c.temp_dir)}))
reader.kill(); later.kill()
"""
    assert run_in_namespace(script) == {"reader": None, "later": None, "left": [], "tagged": True, "restored": True,
                                        "temp_dir": False}


def test_two_trainings_with_workers_in_one_process():
    """A notebook: `ddpgx.train` with rollout workers twice in one interpreter. The second starts
    Ray after JAX has computed (Ray forks and then execs its services); both finish."""
    script = """
import json, os, sys, warnings
warnings.simplefilter("error", RuntimeWarning)  # JAX's warning about os.fork is not for Ray's fork-then-exec
import ddpgx
config = ddpgx.Config(total_steps=300, learning_starts=100, batch_size=32, buffer_size=2000, actor_hidden=(16, 16),
                      critic_hidden=(16, 16), eval_every=0, eval_episodes=1, checkpoint_every=0, log_every=100,
                      tensorboard=False, workers=1, chunk_steps=50)
results = [ddpgx.train(config, os.path.join(sys.argv[1], name), progress=False, print_fn=lambda _: None)
           for name in ("first", "second")]
print(json.dumps([[r.step, r.interrupted, r.final_returns.shape[1]] for r in results]
                 + [os.path.exists(f"/tmp/ddpgx-ray-{os.getpid()}"), "DDPGX_RAY_TAG" in os.environ]))
"""
    import tempfile

    with tempfile.TemporaryDirectory() as runs:
        assert run_in_namespace(script, runs, timeout=600) == [[300, False, 1], [300, False, 1], False, False]


def test_ctrl_c_stops_a_sweep_that_then_resumes(tmp_path):
    """Ctrl-C in the terminal (SIGINT to the driver's process group) once a trial has a checkpoint:
    exit status 130, the trials named unfinished (not stopped, ASHA's word), the exact command
    that resumes the sweep, and no hint to call Tune's Tuner.restore. That command then finishes
    the trials."""
    spec = write_spec(tmp_path / "spec.yaml", search={"tau": [0.005, 0.01]})
    sweep = subprocess.Popen(in_loopback_namespace(sys.executable, "-m", "ddpgx.cli", "sweep", str(spec),
                                                   "--storage-path", str(tmp_path)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    runs = tmp_path / "sweep" / "runs"
    wait_for(lambda: any(latest_step(d) >= 500 for d in runs.glob("*")), 300, "a checkpoint")
    os.killpg(sweep.pid, signal.SIGINT)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 130, out[-3000:] + err[-3000:]
    again = f"ddpgx sweep {spec} --storage-path {tmp_path} --resume"
    assert f"resume with: {again}" in out and "Tuner.restore" not in out + err
    assert "2 trials, 0 failed, 2 unfinished" in out
    rows = list(read_csv(tmp_path / "sweep" / "results.csv"))
    assert rows and all(r["status"] == "unfinished" and r["stopped"] == "False" and int(r["step"]) < TOTAL for r in rows)
    assert "(unfinished)" in (tmp_path / "sweep" / "results.md").read_text()
    assert "(stopped)" not in (tmp_path / "sweep" / "results.md").read_text()
    done = ddpgx(*again.split()[1:])
    assert "2 trials, 0 failed" in done.stdout and "unfinished" not in done.stdout
    rows = list(read_csv(tmp_path / "sweep" / "results.csv"))
    assert len(rows) == 2 and all(r["status"] == "finished" and int(r["step"]) == TOTAL for r in rows)


def test_a_local_sweep_with_asha_writes_runs_and_a_table(tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", search={"actor_lr": [1e-3, 3e-3], "noise_sigma": [0.1, 0.3]},
                      scheduler={"asha": {"grace_period": 1000, "reduction_factor": 2}})
    # The CPU slots (`cluster.cpu_slots`, under the temporary directory) of this sweep alone: the
    # other tests' sweeps, running beside it on the other pytest workers, hold the machine's own.
    (tmp_path / "tmp").mkdir()
    done = ddpgx("sweep", spec, "--storage-path", tmp_path, env={"TMPDIR": str(tmp_path / "tmp")})
    sweep_dir = tmp_path / "sweep"
    assert "sweep saved in" in done.stdout and "4 trials, 0 failed" in done.stdout
    assert json.loads((sweep_dir / "driver.json").read_text())["address"].startswith("127.0.0.1:")
    trials = sorted(p.stem for p in (sweep_dir / "trials").glob("*.json"))
    assert len(trials) == 4
    assert (tmp_path / "tmp" / f"ddpgx-cpu-slots-{os.getuid()}").is_dir()
    for trial in trials:  # each trial's process ran on one core of its own (cpus_per_trial: 1)
        cores = json.loads((sweep_dir / "trials" / f"{trial}.json").read_text())["cores"]
        assert len(cores) == 1 and cores[0] in os.sched_getaffinity(0)
    rows = list(read_csv(sweep_dir / "results.csv"))
    assert sorted(r["trial"] for r in rows) == trials
    settings = sorted(r["setting"] for r in rows)
    assert settings == ["actor_lr=0.001, noise_sigma=0.1", "actor_lr=0.001, noise_sigma=0.3",
                        "actor_lr=0.003, noise_sigma=0.1", "actor_lr=0.003, noise_sigma=0.3"]
    for row in rows:  # each trial ran its two seeds at least to ASHA's grace period, each an ordinary run
        assert int(row["seeds"]) == 2 and 1000 <= int(row["step"]) <= TOTAL
        assert (row["stopped"] == "True") == (int(row["step"]) < TOTAL) == (row["status"] == "stopped")
        for seed in (0, 1):
            steps = [int(r["step"]) for r in read_csv(sweep_dir / "runs" / row["trial"] / f"seed_{seed}" / "eval.csv")]
            assert steps == list(range(500, int(row["step"]) + 1, 500))
    assert any(row["stopped"] == "False" for row in rows)  # the best one runs to the end
    assert "## Pendulum-v1" in (sweep_dir / "results.md").read_text()
    assert (sweep_dir / "curves.png").exists()
    again = ddpgx("sweep", spec, "--storage-path", tmp_path, check=False)  # the directory is taken
    assert again.returncode == 2 and "pass --resume to continue that sweep" in again.stderr


def wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def owner_pid(run_dir: Path) -> int | None:
    """The PID of the process holding a run directory's lock (a trial's worker)."""
    try:
        text = (run_dir / ".lock").read_text()
    except OSError:
        return None
    return int(text.split()[1]) if text.startswith("process ") else None


def latest_step(run_dir: Path) -> int:
    seed_0 = run_dir / "seed_0"  # a trial of several seeds has a directory per seed
    path = ckpt.latest_checkpoint(seed_0 if seed_0.exists() else run_dir)
    return ckpt.Checkpoint(path).step if path else 0


def test_a_killed_trial_worker_is_retried_and_ends_where_it_would_have(tmp_path):
    """Two trials that learn the same (log_every does not change learning); one's worker is killed
    mid-run with SIGKILL. Tune retries it, it resumes from its checkpoint, and its final parameters
    equal the other's bit for bit."""
    spec = write_spec(tmp_path / "spec.yaml", search={"log_every": [500, 1000]}, max_failures=2)
    sweep = subprocess.Popen(in_loopback_namespace(sys.executable, "-m", "ddpgx.cli", "sweep", str(spec),
                                                   "--storage-path", str(tmp_path)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "sweep" / "runs"
    victim = wait_for(lambda: next((d for d in sorted(runs.glob("*")) if latest_step(d) >= 1000 and owner_pid(d)), None),
                      300, "a trial with a checkpoint")
    pid = owner_pid(victim)
    os.kill(pid, signal.SIGKILL)
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-3000:] + err[-3000:]
    assert "2 trials, 0 failed" in out
    other = next(d for d in runs.glob("*") if d != victim)
    assert owner_pid(victim) is None  # released
    for seed in (0, 1):
        killed = ckpt.Checkpoint(ckpt.latest_checkpoint(victim / f"seed_{seed}"))
        straight = ckpt.Checkpoint(ckpt.latest_checkpoint(other / f"seed_{seed}"))
        assert killed.step == straight.step == TOTAL
        for key in straight.arrays:
            if key.startswith(".agent"):
                np.testing.assert_array_equal(killed.arrays[key], straight.arrays[key], err_msg=key)
    assert [r["step"] for r in read_csv(victim / "seed_0" / "eval.csv")] == \
        [r["step"] for r in read_csv(other / "seed_0" / "eval.csv")]


def test_a_killed_driver_is_resumed(tmp_path):
    """The driver is killed (SIGKILL) while one trial runs and one waits; the resumed sweep stops the
    dead driver's Ray by its PIDs and finishes both trials. The two trials learn the same (log_every
    does not change learning): the first, resumed from its checkpoint, ends with the parameters of
    the second, which ran straight through."""
    spec = write_spec(tmp_path / "spec.yaml", search={"log_every": [500, 1000]}, seeds=1, max_concurrent=1)
    sweep = subprocess.Popen(in_loopback_namespace(sys.executable, "-m", "ddpgx.cli", "sweep", str(spec),
                                                   "--storage-path", str(tmp_path)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "sweep" / "runs"
    wait_for(lambda: any(latest_step(d) >= 1000 for d in runs.glob("*")), 300, "a checkpoint")
    sweep.send_signal(signal.SIGKILL)
    sweep.communicate(timeout=60)
    driver = json.loads((tmp_path / "sweep" / "driver.json").read_text())
    from ddpgx.cluster import session_processes

    assert session_processes(driver["tag"], driver["processes"])  # Ray's agents outlive the driver
    done = ddpgx("sweep", spec, "--storage-path", tmp_path, "--resume")
    assert "2 trials, 0 failed" in done.stdout
    rows = list(read_csv(tmp_path / "sweep" / "results.csv"))
    assert len(rows) == 2 and all(int(r["step"]) == TOTAL for r in rows)
    assert session_processes(driver["tag"], driver["processes"]) == []  # the dead driver's, stopped by PID
    assert json.loads((tmp_path / "sweep" / "driver.json").read_text())["tag"] != driver["tag"]
    resumed, straight = (ckpt.Checkpoint(ckpt.latest_checkpoint(d)) for d in sorted(runs.glob("*")))
    assert resumed.step == straight.step == TOTAL
    for key in straight.arrays:
        if key.startswith(".agent"):
            np.testing.assert_array_equal(resumed.arrays[key], straight.arrays[key], err_msg=key)


def test_a_sweep_joins_a_cluster_started_with_ray_start(tmp_path):
    """`ray start --head` on 127.0.0.1 in the namespace, the sweep joins it with --address and leaves it
    running; the head is then stopped by its PID."""
    spec = write_spec(tmp_path / "spec.yaml", config={**SMALL, "total_steps": 1000})
    ray = Path(sys.executable).parent / "ray"
    script = f"""
set -e
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=0123456789abcdef0123456789abcdef RAY_USAGE_STATS_ENABLED=0
{ray} start --head --block --node-ip-address 127.0.0.1 --port 6391 --num-cpus 2 --include-dashboard false \
    --object-store-memory 134217728 --temp-dir /tmp/ddpgx-ray-head-$$ --disable-usage-stats > {tmp_path}/head.log 2>&1 &
head=$!
trap 'kill -TERM $head; wait $head || true; rm -rf /tmp/ddpgx-ray-head-$$' EXIT
for _ in $(seq 600); do grep -q "Ray runtime started" {tmp_path}/head.log && break; sleep 0.1; done
{sys.executable} -m ddpgx.cli sweep {spec} --storage-path {tmp_path} --address 127.0.0.1:6391
{sys.executable} -c "import ray; ray.init(address='127.0.0.1:6391'); print('head alive', ray.nodes()[0]['NodeManagerAddress'])"
"""
    done = subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && {script}"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + (tmp_path / "head.log").read_text()[-2000:]
    assert "1 trials, 0 failed" in done.stdout and "head alive 127.0.0.1" in done.stdout
    assert json.loads((tmp_path / "sweep" / "driver.json").read_text())["tag"] is None  # not ours to stop


def test_a_sweep_runs_only_the_trials_that_another_sweep_of_its_spec_did_not_finish(tmp_path):
    """The compact copy of a sweep elsewhere finished three of four trials: the new sweep runs the
    fourth, with its own variant and seeds, through Tune."""
    from ddpgx.sweeps import load_spec
    from tests.test_sweep import compact_sweep

    path = write_spec(tmp_path / "spec.yaml", seeds=1, first_seed=[1, 2], variants=[{}, {"tau": 0.01}],
                      config={**SMALL, "total_steps": 1000, "checkpoint_every": 0})
    spec = load_spec(path)
    done = compact_sweep(tmp_path / "elsewhere", spec, [("a", {}, 1, [1000]), ("b", {}, 2, [1000]),
                                                        ("c", {"tau": 0.01}, 1, [1000]), ("d", {"tau": 0.01}, 2, [500])])
    run = ddpgx("sweep", path, "--storage-path", tmp_path / "here", "--skip-finished", done)
    assert "3 trials finished elsewhere are skipped; 1 to run" in run.stdout and "1 trials, 0 failed" in run.stdout
    [trial] = [json.loads(p.read_text()) for p in (tmp_path / "here" / "sweep" / "trials").glob("*.json")]
    assert (trial["params"], trial["first_seed"]) == ({"tau": 0.01}, 2)
    config = json.loads((tmp_path / "here" / "sweep" / "runs" / trial["trial"] / "config.json").read_text())
    assert (config["tau"], config["seed"], config["total_steps"]) == (0.01, 2, 1000)
    again = ddpgx("sweep", path, "--storage-path", tmp_path / "here", "--resume", "--skip-finished", done, check=False)
    assert again.returncode == 2 and "give one of them" in again.stderr
    nothing = ddpgx("sweep", path, "--storage-path", tmp_path / "there", "--skip-finished", done,
                    tmp_path / "here" / "sweep", check=False)
    assert nothing.returncode == 2 and "nothing to run" in nothing.stderr
