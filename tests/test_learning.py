"""Learning: what `ddpgx train` runs solves Pendulum-v1, over several seeds."""

import numpy as np
import pytest

import ddpgx
from tests.conftest import quiet


@pytest.mark.slow
def test_pendulum_default_config_learns_on_every_seed(tmp_path):
    """Seeds 0-2 in one process, with the default algorithm at half the default budget (10,000 of
    20,000 steps; this is the suite's longest test, nearly all of it the updates): the same seeds and
    thresholds as at 20,000 steps, reached in half the steps. The 10-seed benchmark
    (docs/benchmarks.md, `benchmarks/results/sweeps/pendulum/curves.csv`) has converged by then:
    median -157 and worst seed -202 at 10,000 steps, -155 and -203 at 20,000. A random policy scores
    about -1,200; the thresholds leave a margin of about 70 on the median and 150 on the worst
    seed."""
    config = ddpgx.Config(seed=0, total_steps=10_000, eval_every=0, checkpoint_every=0, tensorboard=False)
    assert config.replace(total_steps=20_000) == ddpgx.Config(seed=0, eval_every=0, checkpoint_every=0,
                                                              tensorboard=False)  # only the budget differs
    result = ddpgx.train(config, tmp_path / "run", num_seeds=3, progress=False, print_fn=quiet)
    assert result.final_returns.shape == (3, 10)
    per_seed = result.final_returns.mean(axis=1)
    assert np.median(per_seed) >= -230, per_seed
    assert per_seed.min() >= -350, per_seed
