"""Learning: the default config solves Pendulum-v1 (the acceptance figure of the core issue)."""

import ddpgx
from tests.conftest import quiet


def test_pendulum_default_config_reaches_minus_200(tmp_path):
    config = ddpgx.from_preset("default", "Pendulum-v1", seed=0, total_steps=20_000, eval_every=0,
                               checkpoint_every=0, tensorboard=False)  # what `ddpgx train` runs
    assert config.learning_starts == 1_000
    result = ddpgx.train(config, tmp_path / "run", progress=False, print_fn=quiet)
    assert result.final_returns.shape == (1, 10)
    # measured: -146.5 (seed 0); the threshold leaves a margin of about 50
    assert result.mean_return >= -200, result.final_returns
