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


def pytest_collection_modifyitems(items):
    """The slow tests first, and first of all the learning test (by far the longest: 20,000 steps of
    the default config on 3 seeds): pytest-xdist hands tests out in this order, so the longest ones
    start while the short ones can still fill the other cores."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, item.path.name != "test_learning.py"))


def quiet(_: str) -> None:
    pass


@pytest.fixture
def small():
    return small_config
