import os
import warnings

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
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


def quiet(_: str) -> None:
    pass


@pytest.fixture
def small():
    return small_config
