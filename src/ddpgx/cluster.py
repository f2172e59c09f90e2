"""Ray, started on this machine or joined: the one module of ddpgx that starts and stops Ray.

A local Ray (the default of `ddpgx sweep` and `--workers`) binds every process to 127.0.0.1:
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, ...)
with usage statistics off, an object store of a fixed size, an authentication token of its own
(Ray's default would write one to ~/.ray), and a short temporary directory of its own. Ray replaces
a loopback node address by the address of the machine's route out unless it runs as a
single-machine cluster (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, set here); after it starts, every
node's address is checked, and a node elsewhere stops everything with an error. Tests run it inside
a loopback-only network namespace as well (`unshare -n`, then `ip link set lo up`).

What is ours to stop: Ray's services inherit the environment variable DDPGX_RAY_TAG, set to a
token of the session while it runs, and Ray reports the PIDs of the services it started. `stop`
shuts Ray down, then stops by PID whatever still carries the tag or descends from a reported
service (Ray's agents outlive a killed driver), and puts back the environment variables `start`
set. A process that merely reads Ray's files (`tail -f` of a log, TensorBoard) is not ours.
Nothing here runs `ray stop` or kills by name.

Ray may start after JAX has computed in the process (a second `ddpgx.train` with workers in a
notebook). Ray starts each service with subprocess, fork then exec, and between the two the child
runs only Ray's preexec function: it blocks SIGINT and sets PR_SET_PDEATHSIG through a ctypes
function the parent resolved before forking. Neither takes a lock that one of XLA's threads could
hold at the fork (glibc's malloc and CPython's own locks are reset in the child), so no deadlock
is possible there; JAX's warning about os.fork, given for every fork once it has a backend, is
silenced while Ray starts. The authentication token is one per process, because Ray keeps the
first token it reads for the life of the process.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ddpgx.config import ConfigError

LOOPBACK = "127.0.0.1"
TAG = "DDPGX_RAY_TAG"
OBJECT_STORE_BYTES = 256 * 2**20
JOIN_TIMEOUT_S = 30.0
"""How long joining a cluster (`--address HOST:PORT`) waits for the head to accept a connection."""
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
"""One entry per GPU that NVIDIA's driver manages."""
_TOKEN = secrets.token_hex(32)


class ClusterError(ConfigError):
    """Ray cannot be started, joined or used as asked; the message says why."""


Process = tuple[int, int]
"""A process as (PID, start time in clock ticks since boot): a PID used again later is another process."""


@dataclass(frozen=True)
class Cluster:
    """A Ray session this process started (`owned`) or joined."""

    address: str
    owned: bool
    tag: str | None
    """The value of DDPGX_RAY_TAG in the environment of the session's processes (owned only)."""
    temp_dir: str | None
    processes: tuple[Process, ...] = ()
    """The services Ray reported starting for the session (owned only)."""
    environ: tuple[tuple[str, str | None], ...] = ()
    """The environment variables `start` set, with their values before (None: unset)."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError("this needs Ray: pip install 'ddpgx[ray]'") from None
    return ray


def local_cpus() -> int:
    """The CPUs a local Ray is given: the machine's."""
    return os.cpu_count() or 1


def local_gpus() -> int:
    """The GPUs a local Ray is given, found without starting CUDA or JAX: the entries of
    CUDA_VISIBLE_DEVICES when it is set (as Ray counts them; "" or "-1" is none), otherwise the GPUs
    NVIDIA's driver lists in /proc/driver/nvidia/gpus. Other accelerators count as none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return len(list(NVIDIA_GPUS.iterdir())) if NVIDIA_GPUS.is_dir() else 0
    listed = []
    for entry in visible.split(","):  # CUDA stops at the first invalid entry
        if not entry.strip() or entry.strip() in ("-1", "NoDevFiles"):
            break
        listed.append(entry)
    return len(listed)


def start(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
          object_store_bytes: int = OBJECT_STORE_BYTES, tag: str | None = None,
          join_timeout_s: float | None = None) -> Cluster:
    """Start a local Ray on 127.0.0.1 (address None) or join the cluster at `address` (HOST:PORT),
    giving up after `join_timeout_s` (default JOIN_TIMEOUT_S) if its head does not answer."""
    running = sys.modules.get("ray")
    if running is not None and running.is_initialized():  # not ours to start, nor to stop
        raise ClusterError("Ray already runs in this process (ray.init): call ray.shutdown() first")
    if address is not None:
        wait_for_head(address, JOIN_TIMEOUT_S if join_timeout_s is None else join_timeout_s)
    settings = {"RAY_USAGE_STATS_ENABLED": "0"}
    if "RAY_CHDIR_TO_TRIAL_DIR" not in os.environ:
        settings["RAY_CHDIR_TO_TRIAL_DIR"] = "0"  # trials keep the driver's working directory
    if address is None:
        tag = tag or secrets.token_hex(8)
        # a single-machine Ray: its node address stays loopback instead of the address of the
        # machine's route out (read when ray is first imported)
        settings.update({TAG: tag, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": _TOKEN,
                         "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    environ = tuple((name, os.environ.get(name)) for name in settings)
    os.environ.update(settings)
    try:
        ray = import_ray()
        if address is not None:
            try:
                info = ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise ClusterError(f"cannot join the Ray cluster at {address}: {error}") from None
            return Cluster(info.address_info["gcs_address"], False, None, None, environ=environ)
        temp_dir = f"/tmp/ddpgx-ray-{os.getpid()}"  # short: Ray's socket paths must fit in 107 bytes
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            try:
                info = ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, num_cpus=num_cpus,
                                num_gpus=num_gpus, object_store_memory=object_store_bytes, _temp_dir=temp_dir,
                                log_to_driver=False, configure_logging=False)
            except Exception as error:  # Ray's services did not come up (a bare Exception when they time out)
                reason = str(error).split(". ")[0].rstrip(".")
                busy = "timed out" in reason
                hint = ": if other work keeps its CPUs busy, pause it or try again later" if busy else ""
                raise ClusterError(f"Ray did not start on this machine ({reason}){hint}") from None
        cluster = Cluster(info.address_info["gcs_address"], True, tag, temp_dir, reported_processes(), environ)
    except BaseException:  # Ctrl-C or an error while Ray starts: stop what it started, put the environment back
        _shutdown()
        if address is None:
            stop_processes(tag, (), f"/tmp/ddpgx-ray-{os.getpid()}")
        _restore(environ)
        raise
    try:
        check_loopback()
    except ClusterError:
        stop(cluster)
        raise
    return cluster


def wait_for_head(address: str, timeout_s: float) -> None:
    """Return once the head at `address` (HOST:PORT) accepts a TCP connection; a ClusterError that
    names the address after `timeout_s` of trying. (Ray itself retries for many minutes.)"""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"invalid --address {address!r}: give the head's HOST:PORT, such as 10.0.0.5:6379")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=max(0.1, deadline - time.monotonic())).close()
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise ClusterError(f"cannot reach the Ray cluster at {address} within {timeout_s:g} s "
                                   f"({error.strerror or error}): is its head running (`ray start --head`), and is "
                                   f"the address right?") from None
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def node_addresses() -> list[str]:
    ray = import_ray()
    return [node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive", True)]


def check_loopback() -> None:
    """Every node of the local cluster listens on 127.0.0.1, or this is an error."""
    elsewhere = [a for a in node_addresses() if a != LOOPBACK]
    if elsewhere:
        raise ClusterError(f"Ray started a node on {', '.join(elsewhere)}, not {LOOPBACK}: run it where only "
                           f"loopback is reachable (for example inside `unshare -n`)")


def stop(cluster: Cluster | None) -> None:
    """Shut Ray down; for a cluster this process started, stop by PID what Ray left behind. Then
    put back the environment variables that `start` set."""
    try:
        ours = session_processes(cluster.tag, cluster.processes) if cluster is not None and cluster.owned else []
        _shutdown()  # a service's children are found above, while they still have their parent
        if cluster is not None and cluster.owned:
            stop_processes(cluster.tag, cluster.processes, cluster.temp_dir, also=ours)
    finally:
        if cluster is not None:
            _restore(cluster.environ)


def _shutdown() -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _restore(environ: tuple[tuple[str, str | None], ...]) -> None:
    for name, value in environ:
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def reported_processes() -> tuple[Process, ...]:
    """The services the running local Ray reported starting (its GCS, raylet, monitors, ...)."""
    ray = import_ray()
    node = getattr(ray._private.worker, "_global_node", None)
    found = []
    for infos in getattr(node, "all_processes", {}).values():
        for info in infos:
            pid = getattr(getattr(info, "process", None), "pid", None)
            start = _start_time(pid) if pid else None
            if start is not None:
                found.append((pid, start))
    return tuple(found)


def session_processes(tag: str | None, roots: tuple[Process, ...] | list = ()) -> list[Process]:
    """The processes (not this one) of a Ray session: those whose environment carries
    DDPGX_RAY_TAG=tag, and the descendants of `roots` (the services Ray reported) that still run."""
    needle = f"{TAG}={tag}".encode() if tag else None
    children: dict[int, list[int]] = {}
    found = set()
    starts = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            starts[pid] = int(fields[19])
            children.setdefault(int(fields[1]), []).append(pid)
            if needle is not None:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.add(pid)
        except (OSError, IndexError, ValueError):
            pass
    todo, seen = [pid for pid, start in roots if starts.get(pid) == start], set()
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    found |= seen
    found.discard(os.getpid())
    return sorted((pid, starts[pid]) for pid in found if pid in starts)


def stop_processes(tag: str | None, roots: tuple[Process, ...] | list = (), temp_dir: str | None = None,
                   grace_s: float = 5.0, also: list[Process] = ()) -> None:
    """SIGTERM a Ray session's processes (`session_processes`, and `also`), then SIGKILL those still
    alive after `grace_s`, each by PID and only while that PID is still the same process; then
    remove the session's temporary directory."""
    targets = sorted(set(session_processes(tag, roots)) | {tuple(p) for p in also})
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, start in targets:
            if _start_time(pid) == start:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        while targets and time.monotonic() < deadline:
            targets = [(pid, start) for pid, start in targets if _alive(pid, start)]
            time.sleep(0.05)
        if not targets:
            break
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, start: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0] != "Z" and int(fields[19]) == start
    except (OSError, IndexError, ValueError):
        return False


def cpu_slots() -> Path:
    """This user's CPU slots: a directory of lock files, one per core, readable by this user alone."""
    return Path(tempfile.gettempdir()) / f"ddpgx-cpu-slots-{os.getuid()}"


def pin_cpus(count: int, slots: Path | None = None) -> list[int]:
    """Pin this process to `count` of the machine's cores that no other pinned process of this user
    holds.

    Each core is a slot file in `cpu_slots()` held with flock, which the kernel releases when the
    process ends, however it ends. XLA sizes its thread pools by the cores a process may run on, so
    this must come before JAX's first computation. Returns the cores taken (the process keeps the
    slots until it exits). With none free, or when the slots cannot be used (the directory belongs
    to another user, or cannot be written), the process stays unpinned, says so on stderr, and
    returns [].
    """
    slots = cpu_slots() if slots is None else Path(slots)
    taken: list[tuple[int, int]] = []  # (core, descriptor)
    try:
        slots.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(slots)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise PermissionError(f"{slots} is not a directory that this user alone may write")
        for core in sorted(os.sched_getaffinity(0)):
            fd = os.open(slots / f"cpu{core}", os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            taken.append((core, fd))  # the descriptor stays open: the slot is held until the process exits
            if len(taken) == count:
                break
        if taken:
            os.sched_setaffinity(0, [core for core, _ in taken])
    except OSError as error:
        for _, fd in taken:
            os.close(fd)
        print(f"note: cannot use the CPU slots in {slots} ({error}): this process runs unpinned", file=sys.stderr)
        return []
    return [core for core, _ in taken]
