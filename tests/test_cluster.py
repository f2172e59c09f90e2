"""cluster.py without starting Ray: which processes a session's stop touches, the CPU slots, the
GPUs a local Ray is given, joining an address that does not answer, and a sweep that asks for more
than this machine has. tests/test_sweep_ray.py starts Ray itself."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddpgx import cluster
from ddpgx.cluster import ClusterError


def start(command: list[str], tag: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != cluster.TAG}
    if tag is not None:
        env[cluster.TAG] = tag
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def identity(process: subprocess.Popen) -> tuple[int, int]:
    return process.pid, cluster._start_time(process.pid)


def holds_a_file_under(pid: int, directory: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(directory)) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_stop_touches_the_tagged_and_the_reported_services_children_only(tmp_path):
    """Ours: a process carrying the session's tag, and the children of a service Ray reported (which
    do not carry it here). Not ours: a `tail -f` of a file in the session's temporary directory, a
    process of another session's tag, and a process that has the reported service's PID but
    started later (a PID used again)."""
    temp_dir = tmp_path / "ddpgx-ray-session"
    (temp_dir / "logs").mkdir(parents=True)
    (temp_dir / "logs" / "raylet.out").write_text("started\n")
    tagged = start(["sleep", "60"], tag="abc")
    service = start(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    children = wait_for(lambda: [p for p, _ in cluster.session_processes(None, [identity(service)]) if p != service.pid]
                        if len(cluster.session_processes(None, [identity(service)])) == 3 else None)  # sh and two sleeps
    tail = start(["tail", "-f", str(temp_dir / "logs" / "raylet.out")])
    other = start(["sleep", "60"], tag="abcd")
    reused = start(["sleep", "60"])
    try:
        wait_for(lambda: holds_a_file_under(tail.pid, temp_dir))
        found = {pid for pid, _ in cluster.session_processes("abc", [identity(service), (reused.pid, 1)])}
        assert found == {tagged.pid, service.pid, *children}
        cluster.stop_processes("abc", [identity(service)], str(temp_dir), grace_s=2.0)
        for process in (tagged, service):
            assert process.wait(timeout=10) == -15
        wait_for(lambda: not any(cluster._alive(pid, cluster._start_time(pid) or -1) for pid in children))
        for process in (tail, other, reused):
            assert process.poll() is None
        assert not temp_dir.exists()
    finally:
        for process in (tagged, service, tail, other, reused):
            process.kill()
            process.wait()


def test_a_pid_used_again_is_not_stopped():
    victim = start(["sleep", "60"], tag="zz")
    try:
        cluster.stop_processes(None, [], also=[(victim.pid, cluster._start_time(victim.pid) + 1)], grace_s=0.5)
        assert victim.poll() is None  # the same PID, another start time: another process
    finally:
        victim.kill()
        victim.wait()


def pin_in_a_new_process(slots: Path, count: int = 1) -> tuple[list[int], str, list[int]]:
    """pin_cpus run in a child (it pins the calling process): the cores taken, stderr, the
    child's cores after."""
    script = ("import os, sys; from pathlib import Path; from ddpgx.cluster import pin_cpus; "
              f"print(pin_cpus({count}, Path(sys.argv[1]))); print(sorted(os.sched_getaffinity(0)))")
    done = subprocess.run([sys.executable, "-c", script, str(slots)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    taken, after = done.stdout.splitlines()
    return eval(taken), done.stderr, eval(after)


def test_cpu_slots_are_this_users_alone(tmp_path):
    slots = tmp_path / "slots"
    taken, err, after = pin_in_a_new_process(slots)
    assert len(taken) == 1 and after == taken and err == ""
    assert (slots.stat().st_mode & 0o777, slots.stat().st_uid) == (0o700, os.getuid())
    assert (slots / f"cpu{taken[0]}").stat().st_mode & 0o777 == 0o600
    assert cluster.cpu_slots().name == f"ddpgx-cpu-slots-{os.getuid()}"


def test_cpu_slots_of_another_user_leave_the_process_unpinned(tmp_path):
    slots = tmp_path / "slots"
    slots.mkdir(mode=0o755)
    os.chown(slots, 65534, 65534)  # another user's (the tests run as root, for whom chmod alone would not bar writing)
    taken, err, after = pin_in_a_new_process(slots)
    assert taken == [] and after == sorted(os.sched_getaffinity(0))
    assert "cannot use the CPU slots" in err and "runs unpinned" in err
    assert list(slots.iterdir()) == []


def test_cpu_slots_that_cannot_be_written_leave_the_process_unpinned(tmp_path, monkeypatch):
    """A PermissionError (a directory this user may not write) becomes a note, not an error."""
    before = sorted(os.sched_getaffinity(0))

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cluster.os, "open", refused)
    try:
        assert cluster.pin_cpus(1, tmp_path / "slots") == []
    finally:
        os.sched_setaffinity(0, before)  # had it pinned this process anyway
    monkeypatch.undo()
    assert sorted(os.sched_getaffinity(0)) == before


@pytest.mark.parametrize("visible, gpus", [("0,1", 2), ("", 0), ("-1", 0), ("1,-1,2", 1), ("GPU-5a1b", 1)])
def test_gpus_are_counted_from_cuda_visible_devices(monkeypatch, visible, gpus):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert cluster.local_gpus() == gpus


def test_gpus_are_counted_from_nvidias_driver(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(cluster, "NVIDIA_GPUS", tmp_path / "gpus")
    assert cluster.local_gpus() == 0
    for bus in ("0000:01:00.0", "0000:02:00.0"):
        (tmp_path / "gpus" / bus).mkdir(parents=True)
    assert cluster.local_gpus() == 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_joining_an_address_that_does_not_answer_gives_up_in_time():
    address = f"127.0.0.1:{closed_port()}"
    environ = dict(os.environ)
    began = time.monotonic()
    with pytest.raises(ClusterError, match=f"cannot reach the Ray cluster at {address} within 1.5 s"):
        cluster.start(address, join_timeout_s=1.5)
    assert 1.5 <= time.monotonic() - began < 10
    assert dict(os.environ) == environ
    with pytest.raises(ClusterError, match="invalid --address 'head': give the head's HOST:PORT"):
        cluster.start("head")


def test_a_sweep_joining_an_address_that_does_not_answer_fails_with_the_address(tmp_path, monkeypatch, capsys):
    import yaml

    from ddpgx.cli import main

    monkeypatch.setattr(cluster, "JOIN_TIMEOUT_S", 1.0)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "tasks": ["Pendulum-v1"], "config": {"total_steps": 1000}}))
    address = f"127.0.0.1:{closed_port()}"
    assert main(["sweep", str(spec), "--storage-path", str(tmp_path / "sweeps"), "--address", address]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Ray cluster at {address} within 1 s" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in (tmp_path / "sweeps" / "s").iterdir()] == [".lock"]  # nothing to resume, nothing lost
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized()


@pytest.mark.parametrize("key, message", [
    ("cpus_per_trial", "cpus_per_trial={n} is more than this machine's {cpus} CPUs: lower it, or join a cluster"),
    ("gpus_per_trial", "gpus_per_trial=1 is more than this machine's 0 GPUs"),
])
def test_a_local_sweep_that_asks_for_more_than_the_machine_has_is_refused_before_ray(tmp_path, monkeypatch, key,
                                                                                    message):
    from ddpgx.sweeps import SpecError, sweep

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    cpus = os.cpu_count()
    spec = {"name": "s", "tasks": ["Pendulum-v1"], "config": {"total_steps": 1000},
            key: cpus + 1 if key == "cpus_per_trial" else 1}
    with pytest.raises(SpecError, match=message.format(n=cpus + 1, cpus=cpus)):
        sweep(spec, tmp_path)
    assert not (tmp_path / "s").exists()
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized()


def test_a_ray_that_this_process_already_runs_is_left_alone(monkeypatch):
    class RunningRay:
        shut_down = False

        def is_initialized(self):
            return True

        def shutdown(self):
            self.shut_down = True

    ray = RunningRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    environ = dict(os.environ)
    with pytest.raises(ClusterError, match=r"Ray already runs in this process \(ray.init\): call ray.shutdown\(\) first"):
        cluster.start()
    assert not ray.shut_down and dict(os.environ) == environ


def test_a_local_ray_that_does_not_come_up_is_one_line_that_says_what_to_do(monkeypatch):
    """On a machine too busy for Ray's services to start in time, ray.init raises a bare Exception
    (seen beside a benchmark's trainings): a ClusterError with Ray's reason, and what to do only for a
    timeout; the environment as it was."""
    class StuckRay:
        error = ""

        def is_initialized(self):
            return False

        def init(self, **_):
            raise Exception(self.error)

    ray = StuckRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    environ = dict(os.environ)
    for error, message in [
        ("The current node timed out during startup. This could happen because some of the raylet failed to "
         "startup or the GCS has become overloaded.",
         "Ray did not start on this machine (The current node timed out during startup): if other work keeps its "
         "CPUs busy, pause it or try again later"),
        ("Failed to start the dashboard.", "Ray did not start on this machine (Failed to start the dashboard)"),
    ]:
        ray.error = error
        with pytest.raises(ClusterError) as raised:
            cluster.start(num_cpus=1)
        assert str(raised.value) == message
        assert dict(os.environ) == environ and not os.path.exists(f"/tmp/ddpgx-ray-{os.getpid()}")
