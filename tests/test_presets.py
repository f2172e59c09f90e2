"""Presets: cited values, per-task values, flags overriding single fields, and the paper's architecture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ddpgx
from ddpgx import checkpoint as ckpt
from ddpgx.cli import main
from tests.conftest import quiet


def test_default_preset_values_and_per_task_random_start():
    cheetah = ddpgx.from_preset("default", "HalfCheetah-v5")
    assert (cheetah.actor_hidden, cheetah.actor_lr, cheetah.batch_size, cheetah.tau, cheetah.noise_sigma,
            cheetah.learning_starts, cheetah.gamma) == ((256, 256), 3e-4, 256, 0.005, 0.1, 10_000, 0.99)
    assert ddpgx.from_preset("default", "Pendulum-v1").learning_starts == 1_000
    assert ddpgx.from_preset("default", "InvertedPendulum-v5").learning_starts == 1_000  # as Fujimoto et al.
    assert ddpgx.from_preset("default", "Pendulum-v1", learning_starts=5).learning_starts == 5  # flags win


def test_paper_and_td3_presets_follow_their_sources():
    paper = ddpgx.from_preset("paper", "HalfCheetah-v5")
    assert (paper.actor_hidden, paper.critic_hidden, paper.actor_lr, paper.critic_lr, paper.critic_weight_decay,
            paper.tau, paper.batch_size, paper.noise, paper.noise_sigma, paper.ou_theta, paper.final_init,
            paper.critic_action_layer, paper.batch_norm) == (
        (400, 300), (400, 300), 1e-4, 1e-3, 1e-2, 0.001, 64, "ou", 0.2, 0.15, 3e-3, 1, True)
    td3 = ddpgx.from_preset("td3-paper", "HalfCheetah-v5")
    assert (td3.actor_hidden, td3.actor_lr, td3.critic_lr, td3.batch_size, td3.noise_sigma, td3.tau,
            td3.critic_action_layer, td3.batch_norm) == ((400, 300), 1e-3, 1e-3, 100, 0.1, 0.005, 0, False)


def test_extended_preset_is_default_with_the_extensions_that_helped():
    extended, default = ddpgx.from_preset("extended", "Hopper-v5"), ddpgx.from_preset("default", "Hopper-v5")
    assert (extended.obs_norm, extended.n_step) == (True, 3)
    assert extended.replace(obs_norm=False, n_step=1) == default  # nothing else differs


def test_modern_preset_is_extended_with_adam_1e3_and_a_layer_normalized_critic():
    modern, extended = ddpgx.from_preset("modern", "HalfCheetah-v5"), ddpgx.from_preset("extended", "HalfCheetah-v5")
    assert (modern.actor_lr, modern.critic_lr, modern.critic_layer_norm, modern.actor_layer_norm) == (1e-3, 1e-3, True, False)
    assert modern.replace(actor_lr=3e-4, critic_lr=3e-4, critic_layer_norm=False) == extended  # nothing else differs
    assert modern.learning_starts == 10_000 and ddpgx.from_preset("modern", "Hopper-v5").learning_starts == 1_000


def test_mujoco_preset_gives_halfcheetah_its_own_values_and_the_others_the_slower_actor():
    modern = ddpgx.from_preset("modern", "Hopper-v5")
    for env_id in ("Hopper-v5", "Walker2d-v5", "Ant-v5"):
        config = ddpgx.from_preset("mujoco", env_id)
        assert config == ddpgx.from_preset("modern", env_id, actor_lr=1e-4)  # nothing else differs
    cheetah = ddpgx.from_preset("mujoco", "HalfCheetah-v5")
    assert (cheetah.actor_lr, cheetah.critic_lr, cheetah.obs_norm, cheetah.n_step, cheetah.critic_layer_norm,
            cheetah.learning_starts, cheetah.gradient_steps, cheetah.noise_sigma, cheetah.batch_size) == (
        1e-3, 1e-3, False, 1, False, 25_000, 2, 0.1, 256)
    assert cheetah.replace(learning_starts=10_000, gradient_steps=1) == modern.replace(
        env_id="HalfCheetah-v5", learning_starts=10_000, obs_norm=False, n_step=1, critic_layer_norm=False)
    flagged = ddpgx.from_preset("mujoco", "HalfCheetah-v5", gradient_steps=1, actor_lr=3e-4)  # flags win over the task's
    assert (flagged.gradient_steps, flagged.actor_lr, flagged.learning_starts) == (1, 3e-4, 25_000)


def test_mujoco_preset_help_shows_the_value_per_task(capsys):
    from ddpgx.cli import shown_default

    assert shown_default("gradient_steps", "mujoco") == "2 on HalfCheetah-v5; 1 on other tasks, from the mujoco preset"
    assert shown_default("actor_lr", "mujoco") == "0.001 on HalfCheetah-v5; 0.0001 on other tasks, from the mujoco preset"
    assert shown_default("learning_starts", "mujoco").startswith("1000 on Pendulum-v1, Hopper-v5")
    assert "25000 on HalfCheetah-v5; 10000 on other tasks, from the mujoco preset" in shown_default("learning_starts",
                                                                                                     "mujoco")
    assert shown_default("batch_size", "mujoco") == "256"


def test_multigoal_preset_follows_the_baselines_her_settings():
    reach = ddpgx.from_preset("multigoal", "FetchReach-v4")
    assert (reach.her, reach.her_strategy, reach.her_k, reach.actor_hidden, reach.critic_hidden, reach.actor_lr,
            reach.critic_lr, reach.tau, reach.batch_size, reach.gamma, reach.noise, reach.noise_sigma, reach.obs_norm,
            reach.obs_norm_clip, reach.learning_starts) == (
        True, "future", 4, (256, 256, 256), (256, 256, 256), 1e-3, 1e-3, 0.05, 256, 0.98, "gaussian", 0.2, True, 5.0,
        1_000)
    assert ddpgx.from_preset("multigoal", "FetchReach-v4", actor_hidden=(64, 64)).actor_hidden == (64, 64)


def test_unknown_preset_is_a_clear_error(capsys):
    assert main(["train", "--preset", "paper2"]) == 2
    assert "unknown preset 'paper2': choose one of default, paper, td3-paper, extended, modern, mujoco, multigoal" in capsys.readouterr().err


@pytest.mark.slow
def test_paper_architecture():
    config = ddpgx.from_preset("paper", "Pendulum-v1", actor_hidden=(8, 6), critic_hidden=(8, 6))
    agent = ddpgx.build_agent(config, action_dim=2)
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 2)))
    critic = state.critic["params"]
    assert critic["Dense_0"]["kernel"].shape == (3, 8)  # the state alone
    assert critic["Dense_1"]["kernel"].shape == (8 + 2, 6)  # the action joins the second layer
    assert set(state.critic["batch_stats"]) == {"BatchNorm_0", "BatchNorm_1"}  # state input and layer 1
    assert set(state.actor["batch_stats"]) == {"BatchNorm_0", "BatchNorm_1", "BatchNorm_2"}
    final = np.asarray(critic["Dense_2"]["kernel"])
    assert np.abs(final).max() <= 3e-3 and np.abs(final).max() > 1e-3  # uniform in [-3e-3, 3e-3]


@pytest.mark.slow
def test_batch_norm_statistics_update_and_weight_decay_only_on_weight_matrices():
    config = ddpgx.from_preset("paper", "Pendulum-v1", actor_hidden=(8, 6), critic_hidden=(8, 6), critic_lr=1e-3)
    rng = np.random.default_rng(0)
    batch = ddpgx.Batch(rng.normal(2.0, 1.0, (16, 3)).astype(np.float32), rng.uniform(-1, 1, (16, 1)).astype(np.float32),
                        np.ones(16, np.float32), rng.normal(size=(16, 3)).astype(np.float32), np.zeros(16, bool))
    updated = {}
    for decay in (0.0, 0.5):
        agent = ddpgx.build_agent(config.replace(critic_weight_decay=decay), action_dim=1)
        state = agent.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 1)))
        updated[decay], metrics, _ = jax.jit(agent.update)(state, batch)
        assert np.isfinite(np.asarray(metrics.critic_loss))
    new, plain = updated[0.5], updated[0.0]
    # running means move toward the batch mean (2.0) with flax's momentum 0.99
    mean = np.asarray(new.critic["batch_stats"]["BatchNorm_0"]["mean"])
    np.testing.assert_allclose(mean, 0.01 * batch.obs.mean(0), rtol=1e-4)
    assert not np.allclose(np.asarray(new.actor["batch_stats"]["BatchNorm_0"]["mean"]), 0.0)
    # the decay moves every weight matrix of the critic and nothing else of it: not its biases, its
    # batch-norm scales or statistics
    for layer in ("Dense_0", "Dense_1", "Dense_2"):
        assert not np.allclose(new.critic["params"][layer]["kernel"], plain.critic["params"][layer]["kernel"]), layer
        np.testing.assert_array_equal(new.critic["params"][layer]["bias"], plain.critic["params"][layer]["bias"])
    for left, right in [(new.critic["batch_stats"], plain.critic["batch_stats"]),
                        (new.critic["params"]["BatchNorm_0"], plain.critic["params"]["BatchNorm_0"])]:
        for a, b in zip(jax.tree.leaves(left), jax.tree.leaves(right)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_batch_norm_trains_with_minibatch_statistics_and_acts_with_running_ones():
    """As Lillicrap et al. 2016 (section 3): running averages only for exploration and evaluation."""
    config = ddpgx.from_preset("paper", "Pendulum-v1", actor_hidden=(8, 6), critic_hidden=(8, 6))
    agent = ddpgx.build_agent(config, action_dim=1)
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 1)))
    rng = np.random.default_rng(1)
    batch = ddpgx.Batch(rng.normal(2.0, 1.0, (16, 3)).astype(np.float32), rng.uniform(-1, 1, (16, 1)).astype(np.float32),
                        np.ones(16, np.float32), rng.normal(3.0, 2.0, (16, 3)).astype(np.float32), np.zeros(16, bool))

    def shifted(variables):  # running averages far from any minibatch's statistics
        stats = jax.tree.map(lambda x: x + 100.0, variables["batch_stats"])
        return {**variables, "batch_stats": stats}

    target = agent.td_target(state.actor_target, state.critic_target, batch)
    np.testing.assert_allclose(agent.td_target(shifted(state.actor_target), shifted(state.critic_target), batch),
                               target, rtol=1e-6)
    loss, _ = agent.actor_loss(state.actor, state.critic, batch.obs)
    np.testing.assert_allclose(agent.actor_loss(state.actor, shifted(state.critic), batch.obs)[0], loss, rtol=1e-6)
    # acting (exploration and evaluation) uses the running averages
    assert not np.allclose(agent.act(shifted(state.actor), batch.obs), agent.act(state.actor, batch.obs))
    # the critic's running averages move in its own loss only: the actor loss leaves them as they were
    new, _, _ = jax.jit(agent.update)(state, batch)
    np.testing.assert_allclose(new.critic["batch_stats"]["BatchNorm_0"]["mean"], 0.01 * batch.obs.mean(0), rtol=1e-4)


@pytest.mark.slow
def test_paper_preset_trains_and_its_policy_loads(tmp_path):
    config = ddpgx.from_preset("paper", "Pendulum-v1", total_steps=300, learning_starts=100, actor_hidden=(16, 16),
                               critic_hidden=(16, 16), eval_every=0, eval_episodes=2, tensorboard=False)
    result = ddpgx.train(config, tmp_path / "run", progress=False, print_fn=quiet)
    assert np.isfinite(result.final_returns).all()
    policy = ddpgx.load_policy(tmp_path / "run")
    state = ckpt.Checkpoint(ckpt.latest_checkpoint(tmp_path / "run")).arrays
    assert any("batch_stats" in k for k in state)
    assert policy(np.zeros(3)).shape == (1,)


@pytest.mark.parametrize("bad, message", [
    (dict(critic_action_layer=2), "invalid critic_action_layer=2"),
    (dict(critic_weight_decay=-1.0), "invalid critic_weight_decay=-1.0"),
])
def test_invalid_architecture_values(bad, message):
    with pytest.raises(ddpgx.ConfigError, match=message.replace("(", r"\(")):
        ddpgx.Config(**bad)


@pytest.mark.slow
def test_fan_in_uniform_initialization_bounds_every_layer():
    """PyTorch's nn.Linear init, the default (as CleanRL and SB3): weights and biases in +-1/sqrt(fan_in)."""
    assert ddpgx.Config().hidden_init == ddpgx.from_preset("default", "HalfCheetah-v5").hidden_init == "fan_in_uniform"
    agent = ddpgx.build_agent(ddpgx.Config(actor_hidden=(8, 6), critic_hidden=(8, 6)), action_dim=2)
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 2)))
    layers = [(state.actor, "Dense_0", 3), (state.actor, "Dense_1", 8), (state.actor, "Dense_2", 6),
              (state.critic, "Dense_0", 3 + 2), (state.critic, "Dense_2", 6)]  # the action joins the critic's input
    for params, name, fan_in in layers:
        for leaf in ("kernel", "bias"):
            values = np.abs(np.asarray(params["params"][name][leaf]))
            assert values.max() <= 1 / np.sqrt(fan_in) and values.max() > 0.3 / np.sqrt(fan_in), (name, leaf)
    lecun = ddpgx.build_agent(ddpgx.Config(actor_hidden=(8, 6), hidden_init="lecun_normal"), action_dim=2)
    actor = lecun.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 2))).actor["params"]["Dense_0"]
    assert np.all(np.asarray(actor["bias"]) == 0.0)  # flax's default: zero biases, normal weights
    assert np.abs(np.asarray(actor["kernel"])).max() > 1 / np.sqrt(3)


def test_weight_decay_reaches_weight_matrices_only():
    from ddpgx.networks import weight_matrices

    config = ddpgx.from_preset("paper", "Pendulum-v1", actor_hidden=(8, 6), critic_hidden=(8, 6))
    agent = ddpgx.build_agent(config, action_dim=1)
    critic = agent.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 1))).critic
    mask = weight_matrices(critic)
    assert mask["params"]["Dense_0"]["kernel"] and mask["params"]["Dense_2"]["kernel"]
    assert not mask["params"]["Dense_0"]["bias"] and not mask["params"]["BatchNorm_0"]["scale"]
    assert not any(jax.tree.leaves(mask["batch_stats"]))
    # with a zero gradient, one step moves a kernel by lr * sign (Adam on the decay term) and leaves biases alone
    optimizer = ddpgx.build_agent(config.replace(critic_weight_decay=0.1), action_dim=1).critic_optimizer
    zero = jax.tree.map(jnp.zeros_like, critic)
    step, _ = optimizer.update(zero, optimizer.init(critic), critic)
    assert np.all(np.asarray(step["params"]["Dense_0"]["bias"]) == 0.0)
    kernel, moved = np.asarray(critic["params"]["Dense_0"]["kernel"]), np.asarray(step["params"]["Dense_0"]["kernel"])
    np.testing.assert_allclose(moved, -config.critic_lr * np.sign(kernel), rtol=1e-3)


def test_td3_paper_random_start_follows_the_authors_per_task():
    assert ddpgx.from_preset("td3-paper", "HalfCheetah-v5").learning_starts == 10_000
    assert ddpgx.from_preset("td3-paper", "Hopper-v5").learning_starts == 1_000
