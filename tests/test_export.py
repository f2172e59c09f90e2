"""Export: the ONNX model (run by onnxruntime) and the numpy weights compute ddpgx's own policy."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort
import pytest

import ddpgx
from ddpgx import numpy_policy
from ddpgx.cli import main
from ddpgx.export import IR_VERSION, OPSET, ExportError, export_numpy, export_onnx
from tests.conftest import quiet, small_config

TOLERANCE = 1e-5  # the bound on the largest absolute difference, in action units
LOW = np.array([-1.0, 0.0, 2.0], np.float32)
HIGH = np.array([3.0, 0.5, 5.0], np.float32)


class AsymmetricEnv(gym.Env):
    """Observations of shape (2, 3), unbounded and off-centre; actions in bounds that are not [-b, b]."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2, 3), np.float32)
    action_space = gym.spaces.Box(LOW, HIGH, dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), -float(np.sum((action - 1.0) ** 2)), False, self.t >= 50, {}

    def _obs(self):
        return self.np_random.normal(2.0, 3.0, (2, 3)).astype(np.float32)


def sample_observations(space: gym.spaces.Box, count: int, seed: int = 0) -> np.ndarray:
    """`count` observations inside `space`: uniform where it is bounded, normal (scale 3) where not."""
    rng = np.random.default_rng(seed)
    low = np.broadcast_to(space.low, space.shape)
    high = np.broadcast_to(space.high, space.shape)
    bounded = np.isfinite(low) & np.isfinite(high)
    uniform = rng.uniform(np.where(bounded, low, 0.0), np.where(bounded, high, 1.0), (count, *space.shape))
    normal = np.clip(rng.normal(0.0, 3.0, (count, *space.shape)), low, high)
    return np.where(bounded, uniform, normal).astype(np.float32)


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    """The default actor (no batch norm) on Pendulum-v1: torque in [-2, 2]."""
    run = tmp_path_factory.mktemp("pendulum") / "run"
    ddpgx.train(small_config(total_steps=300, learning_starts=100), run, progress=False, print_fn=quiet)
    return run, gym.make("Pendulum-v1").observation_space


@pytest.fixture(scope="module")
def batch_norm_run(tmp_path_factory):
    """The paper's actor (batch norm on the input and every hidden layer) on 2-D observations and asymmetric bounds.

    final_init=0 keeps flax's default last layer, so that the actions are not all near the middle of the bounds.
    """
    run = tmp_path_factory.mktemp("batch_norm") / "run"
    config = ddpgx.from_preset("paper", "AsymmetricEnv", total_steps=300, learning_starts=100, actor_hidden=(32, 32),
                               critic_hidden=(32, 32), final_init=0.0, eval_every=0, eval_episodes=1, tensorboard=False)
    ddpgx.train(config, run, make_env=AsymmetricEnv, progress=False, print_fn=quiet)
    return run, AsymmetricEnv.observation_space


@pytest.fixture(scope="module")
def normalized_run(tmp_path_factory):
    """Observation normalization (a clip of 1.5 standard deviations, so that many of the test's
    observations are clipped) and layer norm in the actor and the critic, on 2-D observations whose
    mean (2) and spread (3) are far from 0 and 1."""
    run = tmp_path_factory.mktemp("normalized") / "run"
    config = small_config(env_id="AsymmetricEnv", total_steps=300, learning_starts=100, obs_norm=True,
                          obs_norm_clip=1.5, actor_layer_norm=True, critic_layer_norm=True, eval_episodes=1)
    ddpgx.train(config, run, make_env=AsymmetricEnv, progress=False, print_fn=quiet)
    return run, AsymmetricEnv.observation_space


def onnx_actions(path: Path, obs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["action"], {"obs": obs})[0]


@pytest.mark.slow
@pytest.mark.parametrize("run_fixture", ["pendulum_run", "batch_norm_run", "normalized_run"])
def test_onnx_and_numpy_match_the_policy_on_1000_observations(run_fixture, request, tmp_path):
    run, space = request.getfixturevalue(run_fixture)
    policy = ddpgx.load_policy(run)
    obs = sample_observations(space, 1000)
    expected = policy(obs)
    onnx_path = export_onnx(run, tmp_path / "policy.onnx")
    npz_path = export_numpy(run, tmp_path / "policy.npz")
    from_onnx = onnx_actions(onnx_path, obs)
    from_numpy = numpy_policy.load(npz_path)(obs)
    assert from_onnx.shape == from_numpy.shape == expected.shape == (1000, len(policy.scaler.low))
    assert np.abs(from_onnx - expected).max() <= TOLERANCE
    assert np.abs(from_numpy - expected).max() <= TOLERANCE
    # the actions spread over the bounds, so the rescale is really compared
    assert np.all(expected >= policy.scaler.low - 1e-6) and np.all(expected <= policy.scaler.high + 1e-6)
    assert np.ptp(expected, axis=0).min() > 0.01 * np.min(policy.scaler.high - policy.scaler.low)


def test_batch_norm_run_has_learned_statistics_and_asymmetric_bounds(batch_norm_run):
    run, _ = batch_norm_run
    policy = ddpgx.load_policy(run)
    assert policy.actor.batch_norm and policy.obs_shape == (2, 3)
    np.testing.assert_array_equal(policy.scaler.low, LOW)
    np.testing.assert_array_equal(policy.scaler.high, HIGH)
    mean = np.asarray(policy.params["batch_stats"]["BatchNorm_0"]["mean"])
    assert np.abs(mean).max() > 0.5  # the running mean moved toward the observations' mean 2.0


def test_the_normalized_run_exports_its_statistics_and_layer_norms(normalized_run, tmp_path):
    """The exported policies take raw observations: the clip bounds are m -+ 1.5 s of the run's
    statistics, the normalization's affine part is in the first layer, and the layer norms are kept."""
    run, space = normalized_run
    policy = ddpgx.load_policy(run)
    assert policy.normalizer is not None and policy.actor.layer_norm
    assert np.abs(policy.normalizer.mean - 2.0).max() < 1.0 and np.abs(policy.normalizer.std - 3.0).max() < 1.0
    loaded = numpy_policy.load(export_numpy(run, tmp_path / "policy.npz"))
    assert loaded.metadata["obs_norm"] and loaded.metadata["layer_norm"] and loaded.metadata["format"] == 2
    np.testing.assert_allclose(loaded.obs_clip[0], policy.normalizer.mean - 1.5 * policy.normalizer.std, rtol=1e-6)
    obs = sample_observations(space, 1000)
    clipped = np.abs((obs.reshape(1000, -1) - policy.normalizer.mean) / policy.normalizer.std) > 1.5
    assert 0.1 < clipped.mean() < 0.9  # the clip is really exercised
    # without the normalization the actions would differ: the statistics matter
    bare = ddpgx.Policy(policy.actor, policy.params, policy.scaler, policy.obs_shape)
    assert np.abs(bare(obs) - policy(obs)).max() > 0.01


def test_a_format_1_file_still_loads(pendulum_run, tmp_path):
    run, _ = pendulum_run
    path = export_numpy(run, tmp_path / "policy.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["format"] = np.array(1)
    np.savez(tmp_path / "old.npz", **arrays)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(numpy_policy.load(tmp_path / "old.npz")(obs), numpy_policy.load(path)(obs))


@pytest.mark.slow
def test_batch_norm_folding_with_arbitrary_statistics(tmp_path):
    """Random scale, bias, running mean and variance in every batch norm: folding keeps the policy."""
    actor = ddpgx.Actor(3, (16, 8), batch_norm=True)
    params = actor.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 2)))
    keys = iter(jax.random.split(jax.random.PRNGKey(1), 100))

    def randomize(path, leaf):  # the dense layers keep flax's initialization
        name = jax.tree_util.keystr(path)
        if "'var'" in name:
            return jax.random.uniform(next(keys), leaf.shape, minval=0.1, maxval=4.0)
        if "'scale'" in name:
            return jax.random.uniform(next(keys), leaf.shape, minval=0.5, maxval=2.0)
        if "'mean'" in name or "BatchNorm" in name:  # mean and bias
            return jax.random.normal(next(keys), leaf.shape)
        return leaf

    params = jax.tree_util.tree_map_with_path(randomize, params)
    policy = ddpgx.Policy(actor, params, ddpgx.ActionScaler(LOW.astype(np.float64), HIGH.astype(np.float64)), (4, 2))
    obs = sample_observations(gym.spaces.Box(-2.0, 2.0, (4, 2), np.float32), 1000)
    expected = policy(obs)
    assert np.abs(onnx_actions(export_onnx(policy, tmp_path / "p.onnx"), obs) - expected).max() <= TOLERANCE
    assert np.abs(numpy_policy.load(export_numpy(policy, tmp_path / "p.npz"))(obs) - expected).max() <= TOLERANCE


def test_batch_dimension_is_dynamic_and_single_observations_work(pendulum_run, tmp_path):
    run, space = pendulum_run
    policy = ddpgx.load_policy(run)
    onnx_path = export_onnx(run, tmp_path / "policy.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (obs_input,), (action_output,) = session.get_inputs(), session.get_outputs()
    assert (obs_input.name, obs_input.shape, action_output.shape) == ("obs", ["batch", 3], ["batch", 1])
    loaded = numpy_policy.load(export_numpy(run, tmp_path / "policy.npz"))
    for batch in (1, 37):
        obs = sample_observations(space, batch, seed=batch)
        expected = policy(obs)
        assert session.run(None, {"obs": obs})[0].shape == (batch, 1)
        assert np.abs(session.run(None, {"obs": obs})[0] - expected).max() <= TOLERANCE
        assert np.abs(loaded(obs) - expected).max() <= TOLERANCE
    one = sample_observations(space, 1)[0]
    assert loaded(one).shape == (1,)
    assert np.abs(loaded(one) - policy(one)).max() <= TOLERANCE
    with pytest.raises(ValueError, match=r"observations of shape \(3,\)"):
        loaded(np.zeros(4))


def test_exported_files_carry_their_metadata(pendulum_run, tmp_path):
    import onnx

    run, _ = pendulum_run
    model = onnx.load(str(export_onnx(run, tmp_path / "policy.onnx")))
    assert model.ir_version == IR_VERSION and [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    assert {p.key: p.value for p in model.metadata_props}["env_id"] == "Pendulum-v1"
    loaded = numpy_policy.load(export_numpy(run, tmp_path / "policy.npz"))
    assert loaded.metadata["env_id"] == "Pendulum-v1" and loaded.metadata["step"] == 300
    assert loaded.metadata["ddpgx_version"] == ddpgx.__version__ and loaded.obs_shape == (3,)
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a ddpgx numpy policy"):
        numpy_policy.load(tmp_path / "other.npz")


def test_numpy_loader_needs_only_numpy(pendulum_run, tmp_path):
    """numpy_policy.py, loaded on its own (as when copied next to the .npz), imports no JAX and no ddpgx."""
    run, space = pendulum_run
    npz = export_numpy(run, tmp_path / "policy.npz")
    obs = sample_observations(space, 5)
    np.save(tmp_path / "obs.npy", obs)
    script = f"""
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("numpy_policy", {numpy_policy.__file__!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
action = module.load({str(npz)!r})(np.load({str(tmp_path / "obs.npy")!r}))
np.save({str(tmp_path / "action.npy")!r}, action)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("jax", "jaxlib", "flax", "ddpgx", "gymnasium", "torch")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert np.abs(np.load(tmp_path / "action.npy") - ddpgx.load_policy(run)(obs)).max() <= TOLERANCE
    # imported through the installed package, it still pulls in no JAX (ddpgx imports its names lazily)
    script = "import sys, ddpgx.numpy_policy; print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


@pytest.mark.slow
def test_cli_exports_both_formats(pendulum_run, tmp_path):
    run, space = pendulum_run

    def ddpgx_cli(*args):
        return subprocess.run([sys.executable, "-m", "ddpgx.cli", "export", *map(str, args)], capture_output=True,
                              text=True, timeout=120)

    result = ddpgx_cli(run, "--format", "onnx")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {run / 'policy.onnx'}"
    result = ddpgx_cli(run, "--format", "numpy", "--out", tmp_path / "pi.npz")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {tmp_path / 'pi.npz'}"
    obs = sample_observations(space, 1000)
    expected = ddpgx.load_policy(run)(obs)
    assert np.abs(onnx_actions(run / "policy.onnx", obs) - expected).max() <= TOLERANCE
    assert np.abs(numpy_policy.load(tmp_path / "pi.npz")(obs) - expected).max() <= TOLERANCE


def test_a_multi_seed_root_asks_for_one_seed(pendulum_run, tmp_path, capsys):
    import shutil

    run, _ = pendulum_run
    root = tmp_path / "multi"
    for seed in (0, 1):
        shutil.copytree(run, root / f"seed_{seed}")
    assert main(["export", str(root), "--format", "numpy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{root} holds 2 seeds: export one seed's directory, one of {root / 'seed_0'}, {root / 'seed_1'}" in err
    assert main(["export", str(root / "seed_1"), "--format", "numpy"]) == 0
    assert (root / "seed_1" / "policy.npz").exists()


@pytest.mark.slow
def test_a_custom_actor_is_refused_with_what_is_supported(tmp_path, capsys):
    import flax.linen as nn

    class TinyActor(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return jnp.tanh(nn.Dense(1)(obs))

    run = tmp_path / "custom"
    ddpgx.train(small_config(total_steps=250, learning_starts=250), run, actor=TinyActor(), progress=False,
                print_fn=quiet)
    supported = "export supports only ddpgx's default MLP actor"
    with pytest.raises(ExportError, match=f"trained with a custom actor network; {supported}"):
        export_numpy(run, tmp_path / "p.npz")
    assert main(["export", str(run), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and supported in err and "Traceback" not in err
    policy = ddpgx.load_policy(run, actor=TinyActor())
    with pytest.raises(ExportError, match=supported):
        export_onnx(policy, tmp_path / "p.onnx")
    assert not list(tmp_path.glob("p.*"))


def test_missing_onnx_says_what_to_install(pendulum_run, tmp_path, monkeypatch):
    run, _ = pendulum_run
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with pytest.raises(ExportError, match=r"pip install 'ddpgx\[export\]'"):
        export_onnx(run, tmp_path / "policy.onnx")
