"""Sweeps on a real Ray, each inside a loopback-only network namespace: a local sweep with ASHA, a
trial whose worker is killed, a driver that is killed and resumed, and the nodes' addresses.

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

SMALL = {"total_steps": 3000, "learning_starts": 500, "batch_size": 32, "actor_hidden": [32, 32],
         "critic_hidden": [32, 32], "eval_every": 500, "checkpoint_every": 500, "eval_episodes": 2,
         "log_every": 500, "tensorboard": False, "buffer_size": 5000}


def in_loopback_namespace(*command: str) -> list[str]:
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]


def ddpgx(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(in_loopback_namespace(sys.executable, "-m", "ddpgx.cli", *map(str, args)),
                          capture_output=True, text=True, timeout=timeout)
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


def cores_no_other_process_holds() -> int:
    """How many of this machine's core slots (`cluster.pin_cpus`) are free now."""
    import fcntl

    from ddpgx.cluster import cpu_slots

    free = 0
    for core in sorted(os.sched_getaffinity(0)):
        path = cpu_slots() / f"cpu{core}"
        if not path.exists():
            free += 1
            continue
        with open(path) as slot:
            try:
                fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free += 1
            except BlockingIOError:
                pass
    return free


def test_a_local_sweep_with_asha_writes_runs_and_a_table(tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", search={"actor_lr": [1e-3, 3e-3], "noise_sigma": [0.1, 0.3]},
                      scheduler={"asha": {"grace_period": 1000, "reduction_factor": 2}})
    free_cores = cores_no_other_process_holds()
    done = ddpgx("sweep", spec, "--storage-path", tmp_path)
    sweep_dir = tmp_path / "sweep"
    assert "sweep saved in" in done.stdout and "4 trials, 0 failed" in done.stdout
    assert json.loads((sweep_dir / "driver.json").read_text())["address"].startswith("127.0.0.1:")
    trials = sorted(p.stem for p in (sweep_dir / "trials").glob("*.json"))
    assert len(trials) == 4
    for trial in trials:  # each trial's process ran on one core of its own (cpus_per_trial: 1)
        cores = json.loads((sweep_dir / "trials" / f"{trial}.json").read_text())["cores"]
        # (unpinned only if another process on this machine, a sweep of a benchmark, held the cores)
        assert len(cores) == 1 if free_cores >= 2 else len(cores) <= 1
    rows = list(read_csv(sweep_dir / "results.csv"))
    assert sorted(r["trial"] for r in rows) == trials
    settings = sorted(r["setting"] for r in rows)
    assert settings == ["actor_lr=0.001, noise_sigma=0.1", "actor_lr=0.001, noise_sigma=0.3",
                        "actor_lr=0.003, noise_sigma=0.1", "actor_lr=0.003, noise_sigma=0.3"]
    for row in rows:  # each trial ran its two seeds at least to ASHA's grace period, each an ordinary run
        assert int(row["seeds"]) == 2 and 1000 <= int(row["step"]) <= 3000
        assert (row["stopped"] == "True") == (int(row["step"]) < 3000)
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
    path = ckpt.latest_checkpoint(run_dir / "seed_0")
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
        assert killed.step == straight.step == 3000
        for key in straight.arrays:
            if key.startswith(".agent"):
                np.testing.assert_array_equal(killed.arrays[key], straight.arrays[key], err_msg=key)
    assert [r["step"] for r in read_csv(victim / "seed_0" / "eval.csv")] == \
        [r["step"] for r in read_csv(other / "seed_0" / "eval.csv")]


def test_a_killed_driver_is_resumed(tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", search={"tau": [0.005, 0.01, 0.02]}, max_concurrent=1)
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
    assert "3 trials, 0 failed" in done.stdout
    rows = list(read_csv(tmp_path / "sweep" / "results.csv"))
    assert len(rows) == 3 and all(int(r["step"]) == 3000 for r in rows)
    assert session_processes(driver["tag"], driver["processes"]) == []  # the dead driver's, stopped by PID
    assert json.loads((tmp_path / "sweep" / "driver.json").read_text())["tag"] != driver["tag"]


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
sleep 8
{sys.executable} -m ddpgx.cli sweep {spec} --storage-path {tmp_path} --address 127.0.0.1:6391
{sys.executable} -c "import ray; ray.init(address='127.0.0.1:6391'); print('head alive', ray.nodes()[0]['NodeManagerAddress'])"
"""
    done = subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && {script}"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + (tmp_path / "head.log").read_text()[-2000:]
    assert "1 trials, 0 failed" in done.stdout and "head alive 127.0.0.1" in done.stdout
    assert json.loads((tmp_path / "sweep" / "driver.json").read_text())["tag"] is None  # not ours to stop
