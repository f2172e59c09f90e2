"""Ray, started on this machine or joined: the one module of ddpgx that starts and stops Ray.

A local Ray (the default of `ddpgx sweep`) binds every process to 127.0.0.1:
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, ...)
with usage statistics off, an object store of a fixed size, an authentication token of its own
(Ray's default would write one to ~/.ray), and a short temporary directory of its own. Ray replaces
a loopback node address by the address of the machine's route out unless it runs as a
single-machine cluster (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, set here); after it starts, every
node's address is checked, and a node elsewhere stops everything with an error. Tests run it inside
a loopback-only network namespace as well (`unshare -n`, then `ip link set lo up`).

Ray must start before JAX runs anything in the process: it forks its services, and a fork after
XLA has started its threads can deadlock. `start` refuses when JAX has a backend already.

Everything Ray starts inherits the environment tag DDPGX_RAY_TAG and works in the session's own
temporary directory; `stop` shuts Ray down, then stops by PID whatever still carries the tag or
holds a file there (Ray's agents outlive a killed driver). Nothing here runs `ray stop` or kills by
name.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ddpgx.config import ConfigError

LOOPBACK = "127.0.0.1"
TAG = "DDPGX_RAY_TAG"
OBJECT_STORE_BYTES = 256 * 2**20
CPU_SLOTS = Path("/tmp/ddpgx-cpu-slots")


class ClusterError(ConfigError):
    """Ray cannot be started, joined or used as asked; the message says why."""


@dataclass(frozen=True)
class Cluster:
    """A Ray session this process started (`owned`) or joined."""

    address: str
    owned: bool
    tag: str
    temp_dir: str | None


def import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError("this needs Ray: pip install 'ddpgx[ray]'") from None
    return ray


def start(address: str | None = None, num_cpus: int | None = None, object_store_bytes: int = OBJECT_STORE_BYTES,
          tag: str | None = None) -> Cluster:
    """Start a local Ray on 127.0.0.1 (address None) or join the cluster at `address` (HOST:PORT)."""
    if _jax_started():
        raise ClusterError("Ray must start before JAX computes anything in this process (Ray forks its services); "
                           "start the sweep or the workers first")
    tag = tag or secrets.token_hex(8)
    os.environ[TAG] = tag
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials keep the driver's working directory
    if address is None:
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        # a single-machine Ray: its node address stays loopback instead of the address of the
        # machine's route out (read when ray is first imported)
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = import_ray()
    if address is None:
        temp_dir = f"/tmp/ddpgx-ray-{os.getpid()}"  # short: Ray's socket paths must fit in 107 bytes
        info = ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, num_cpus=num_cpus,
                        object_store_memory=object_store_bytes, _temp_dir=temp_dir, log_to_driver=False,
                        configure_logging=False)
        cluster = Cluster(info.address_info["gcs_address"], True, tag, temp_dir)
        try:
            check_loopback()
        except ClusterError:
            stop(cluster)
            raise
        return cluster
    try:
        info = ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {error}") from None
    return Cluster(info.address_info["gcs_address"], False, tag, None)


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
    """Shut Ray down; for a cluster this process started, stop by PID what Ray left behind."""
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()
    if cluster is not None and cluster.owned:
        stop_processes(cluster.tag, cluster.temp_dir)


def ray_processes(tag: str, temp_dir: str | None = None) -> list[int]:
    """PIDs of the processes (not this one) of a Ray session: those whose environment carries
    DDPGX_RAY_TAG=tag, or that hold a file under the session's temporary directory."""
    needle = f"{TAG}={tag}".encode()
    prefix = temp_dir.rstrip("/") + "/" if temp_dir else None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
                    continue
            if prefix and any(os.readlink(f"/proc/{entry}/fd/{fd}").startswith(prefix)
                              for fd in os.listdir(f"/proc/{entry}/fd")):
                found.append(int(entry))
        except OSError:
            pass
    return found


def stop_processes(tag: str, temp_dir: str | None = None, grace_s: float = 5.0) -> None:
    """SIGTERM a Ray session's processes, then SIGKILL those still alive after `grace_s` (by PID)."""
    pids = ray_processes(tag, temp_dir)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if _alive(pid)]
            time.sleep(0.05)
        if not pids:
            break
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def pin_cpus(count: int) -> list[int]:
    """Pin this process to `count` of the machine's cores that no other pinned process holds.

    Each core is a slot file under /tmp/ddpgx-cpu-slots held with flock, which the kernel releases
    when the process ends, however it ends. XLA sizes its thread pools by the cores a process may
    run on, so this must come before JAX's first computation. Returns the cores taken (the process
    keeps the slots until it exits); with none free, the process stays unpinned.
    """
    CPU_SLOTS.mkdir(parents=True, exist_ok=True)
    taken = []
    for core in sorted(os.sched_getaffinity(0)):
        fd = os.open(CPU_SLOTS / f"cpu{core}", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        taken.append(core)  # the descriptor stays open: the slot is held until the process exits
        if len(taken) == count:
            break
    if taken:
        os.sched_setaffinity(0, taken)
    return taken


def _jax_started() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):
        return True
