import os
import tempfile
import warnings

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
# pytest-xdist runs one test process per core (`-n auto`): XLA stays on one thread in each, which is
# faster than every process spreading its small matrix products over all cores.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
# Most tests compile the same small programs again (new closures, the same shapes), in the test
# processes and in the subprocesses they start (the command line, Ray's trials): JAX's persistent
# compilation cache, shared by them all through the environment, compiles each program once. Its
# entries are keyed by the program and JAX's version, so a stale one is never used.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"ddpgx-tests-jax-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
warnings.filterwarnings("ignore", message=".*settotalmass.*")

import pytest  # noqa: E402

import ddpgx  # noqa: E402


def small_config(**changes) -> ddpgx.Config:
    """A config that trains in seconds: small networks, short schedule, no periodic I/O."""
    values = dict(
        total_steps=600, learning_starts=200, batch_size=32, buffer_size=5_000,
        actor_hidden=(32, 32), critic_hidden=(32, 32), eval_every=0, eval_episodes=2,
        checkpoint_every=0, log_every=200, tensorboard=False,
    )
    values.update(changes)
    return ddpgx.Config(**values)


# The slow files, longest first: the learning test (10,000 steps of the default config on 3 seeds),
# then the tests that start Ray or rollout workers, then the command line's subprocesses.
LONGEST_FIRST = ["test_learning.py", "test_sweep_ray.py", "test_workers.py", "test_cli.py"]


def pytest_collection_modifyitems(items):
    """The slow tests first, the longest of them first: pytest-xdist hands tests out one at a time in
    this order (`--dist load --maxschedchunk 1`), so the longest ones start early and the short ones
    fill the cores at the end. The scheduler keeps two tests queued on each process, so the one that
    waits behind the learning test is a fast one."""
    def rank(item):
        name = item.path.name
        return (item.get_closest_marker("slow") is None,
                LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST))
    items.sort(key=rank)
    if items and items[0].path.name == "test_learning.py":
        fast = next((i for i, item in enumerate(items) if item.get_closest_marker("slow") is None), None)
        if fast is not None:
            items.insert(1, items.pop(fast))


def pytest_xdist_auto_num_workers(config):
    """One test process per core and one more: with one per core, the two cores of this project's
    machine stood idle for 86 s of a 576 s run while tests waited for the processes they start (Ray's
    services, trials, the command line); one more process fills that time (5 s idle)."""
    return len(os.sched_getaffinity(0)) + 1


@pytest.fixture(autouse=True)
def _the_learning_test_keeps_a_core(request):
    """Every test but the learning test runs at a lower priority (and so do the processes it starts
    in its session), so that the learning test, which starts first and is the longest, is slowed as
    little as possible by the others. A process may always lower its own priority; it stays lowered,
    which is harmless once the learning test has started."""
    if request.node.path.name != "test_learning.py" and os.getenv("PYTEST_XDIST_WORKER") and os.nice(0) < 5:
        os.nice(5 - os.nice(0))
    yield


def quiet(_: str) -> None:
    pass


@pytest.fixture
def small():
    return small_config
