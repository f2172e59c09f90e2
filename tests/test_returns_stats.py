"""The statistics of benchmarks/returns.py: interquartile mean and bootstrap interval, checked by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "returns.py"


@pytest.fixture(scope="module")
def returns():
    sys.path.insert(0, str(PATH.parent))  # as `python benchmarks/returns.py` has it, for its sibling host.py
    spec = importlib.util.spec_from_file_location("benchmark_returns", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)  # importing runs nothing: main() is behind `if __name__ == "__main__"`
    return module


def test_iqm_of_a_multiple_of_four_drops_a_quarter_at_each_end(returns):
    assert returns.iqm(range(1, 9)) == pytest.approx(np.mean([3, 4, 5, 6]))
    assert returns.iqm([8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx(4.5)  # order does not matter
    assert returns.iqm([0, 0, 1, 100]) == pytest.approx(0.5)


def test_iqm_weights_the_values_that_straddle_a_quartile(returns):
    assert returns.iqm([0, 1, 10]) == pytest.approx((0.25 * 0 + 1 + 0.25 * 10) / 1.5)
    assert returns.iqm([0, 10, 20, 30, 1000]) == pytest.approx((0.75 * 10 + 20 + 0.75 * 30) / 2.5)
    ten = np.arange(10.0) ** 2  # drop 2 at each end, the 3rd and 8th count half
    assert returns.iqm(ten) == pytest.approx((0.5 * 4 + 9 + 16 + 25 + 36 + 0.5 * 49) / 5)
    assert returns.iqm([3.0, 5.0]) == pytest.approx(4.0)
    assert returns.iqm([-7.0]) == -7.0


def test_iqm_ignores_outliers_the_mean_follows(returns):
    assert returns.iqm([1, 2, 3, 4, 5, 6, 7, 1e9]) == pytest.approx(4.5)


def test_bootstrap_ci_of_a_constant_is_that_constant(returns):
    low, high = returns.bootstrap_ci([-150.25] * 10)
    assert low == pytest.approx(-150.25, abs=1e-9) and high == pytest.approx(-150.25, abs=1e-9)
    low, high = returns.bootstrap_ci([4.0])
    assert low == pytest.approx(4.0) and high == pytest.approx(4.0)


def test_bootstrap_ci_contains_the_mean_and_lies_within_the_values(returns):
    x = np.random.default_rng(3).normal(-150, 20, size=10)
    low, high = returns.bootstrap_ci(x)
    assert x.min() <= low < x.mean() < high <= x.max()
    # about the normal interval of the mean: 2 * 1.96 * (the bootstrap's standard error, x.std() / sqrt(n))
    assert high - low == pytest.approx(2 * 1.96 * x.std() / np.sqrt(len(x)), rel=0.2)


def test_bootstrap_ci_is_deterministic_for_a_seed(returns):
    x = np.random.default_rng(4).normal(size=7)
    assert returns.bootstrap_ci(x) == returns.bootstrap_ci(x)
    assert returns.bootstrap_ci(x, seed=1) != returns.bootstrap_ci(x, seed=2)


def test_bootstrap_ci_of_curves_is_per_point_and_matches_each_column(returns):
    curves = np.random.default_rng(5).normal(size=(6, 4))
    low, high = returns.bootstrap_ci(curves)
    assert low.shape == high.shape == (4,)
    assert np.all(low <= curves.mean(0)) and np.all(curves.mean(0) <= high)
    # resampling seeds jointly gives each column the same interval as resampling it alone
    for j in range(4):
        assert (low[j], high[j]) == pytest.approx(returns.bootstrap_ci(curves[:, j]))


def test_summarize(returns):
    s = returns.summarize([-150, -140, -160, -145, -170])
    assert s["mean"] == pytest.approx(-153.0)
    assert s["median"] == -150.0 and s["worst"] == -170.0 and s["best"] == -140.0
    assert s["iqm"] == pytest.approx((0.75 * -160 - 150 + 0.75 * -145) / 2.5)
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]
    assert returns.summarize([-150.0])["ci95"] == [None, None]  # one seed has no interval


def test_sb3_mapping_copies_the_default_preset_and_refuses_the_paper_one(returns):
    import ddpgx

    kwargs, reasons = returns.sb3_hyperparameters(ddpgx.from_preset("default", "Pendulum-v1"))
    assert reasons == []
    assert kwargs["learning_rate"] == 3e-4 and kwargs["batch_size"] == 256 and kwargs["learning_starts"] == 1_000
    assert kwargs["policy_kwargs"]["net_arch"] == {"pi": [256, 256], "qf": [256, 256]}
    assert kwargs["action_noise"] == {"kind": "normal", "mean": 0.0, "sigma": 0.1}
    assert kwargs["train_freq"] == kwargs["gradient_steps"] == 1
    kwargs, reasons = returns.sb3_hyperparameters(ddpgx.from_preset("td3-paper", "HalfCheetah-v5"))
    assert reasons == [] and kwargs["learning_rate"] == 1e-3 and kwargs["batch_size"] == 100
    kwargs, reasons = returns.sb3_hyperparameters(ddpgx.from_preset("paper", "Pendulum-v1"))
    assert kwargs is None and len(reasons) == 5 and any("batch normalization" in r for r in reasons)
    kwargs, reasons = returns.sb3_hyperparameters(ddpgx.from_preset("default", "Pendulum-v1", hidden_init="lecun_normal"))
    assert kwargs is None and reasons == ["SB3 always initializes as PyTorch does (ddpgx's fan_in_uniform), "
                                          "the preset uses hidden_init=lecun_normal"]
    kwargs, _ = returns.sb3_hyperparameters(ddpgx.from_preset("paper", "Pendulum-v1", batch_norm=False,
                                            critic_action_layer=0, critic_weight_decay=0.0, final_init=0.0,
                                            critic_lr=1e-4))
    assert kwargs["action_noise"] == {"kind": "ornstein_uhlenbeck", "mean": 0.0, "sigma": 0.2, "theta": 0.15, "dt": 1.0}


def test_per_env_budgets(returns):
    envs = ["Pendulum-v1", "HalfCheetah-v5"]
    assert returns.parse_per_env(["Pendulum-v1=3000"], envs, returns.DEFAULT_STEPS, None, "--steps") == \
        {"Pendulum-v1": 3000, "HalfCheetah-v5": 100_000}
    assert returns.parse_per_env(["1e4"], envs, {}, None, "--steps") == {"Pendulum-v1": 10_000, "HalfCheetah-v5": 10_000}
    with pytest.raises(SystemExit, match="not in --envs"):
        returns.parse_per_env(["Hopper-v5=10"], envs, {}, None, "--steps")


def test_targets_of_the_issue_suite(returns):
    def row(library, preset, env, seeds, steps, finals):
        return {"library": library, "preset": preset, "env_id": env, "seeds": list(range(1, seeds + 1)),
                "steps": steps, "status": "finished", **returns.summarize(finals)}

    rows = [row("ddpgx", "default", "Pendulum-v1", 10, 20_000, [-140] * 9 + [-199]),
            row("ddpgx", "default", "InvertedPendulum-v5", 5, 30_000, [1000, 1000, 1000, 900, 12]),
            row("ddpgx", "default", "HalfCheetah-v5", 3, 100_000, [3000, 3500, 4000])]
    verdicts = [t["verdict"] for t in returns.check_targets(returns.SUITES["issue4"], rows)]
    assert verdicts == ["pass", "pass", "pending", "pending"]  # no SB3 row yet; paper rows missing
    rows[0] = row("ddpgx", "default", "Pendulum-v1", 10, 20_000, [-140] * 9 + [-201])
    rows.append(row("sb3", "default", "HalfCheetah-v5", 3, 100_000, [3600, 3600, 3600]))
    verdicts = [t["verdict"] for t in returns.check_targets(returns.SUITES["issue4"], rows)]
    assert verdicts == ["FAIL", "pass", "FAIL", "pending"]
