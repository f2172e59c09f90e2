"""Learning: what `ddpgx train` runs solves Pendulum-v1, over several seeds."""

import numpy as np
import pytest

import ddpgx
from tests.conftest import quiet


@pytest.mark.slow
def test_pendulum_default_config_learns_on_every_seed(tmp_path):
    """Seeds 0-2 in one process. The 10-seed benchmark (docs/benchmarks.md) ends between -107 and -204
    with a median of -157, and a random policy scores about -1,200: the thresholds leave a margin of
    about 70 on the median and 150 on the worst seed."""
    config = ddpgx.Config(seed=0, eval_every=0, checkpoint_every=0, tensorboard=False)  # what `ddpgx train` runs
    assert config.learning_starts == 1_000 and config.total_steps == 20_000
    result = ddpgx.train(config, tmp_path / "run", num_seeds=3, progress=False, print_fn=quiet)
    assert result.final_returns.shape == (3, 10)
    per_seed = result.final_returns.mean(axis=1)
    assert np.median(per_seed) >= -230, per_seed
    assert per_seed.min() >= -350, per_seed
