"""The seed's equations on networks small enough to compute by hand.

actor  pi(s)    = tanh(w * s)
critic Q(s, a)  = v1 * s + v2 * a + b
with scalar observations and actions, so every target, loss, gradient and update below is written
out in numpy (float64) and compared with what ddpgx computes (float32).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ddpgx.agent import DDPG, Batch, check_shapes, polyak
from ddpgx.networks import as_network

GAMMA = 0.9
RTOL, ATOL = 1e-5, 1e-6


def network(init, apply):
    """An (init, apply) pair, as a user passes one."""
    return as_network((init, apply), "network")


def linear_actor(w=0.5):
    return network(lambda key, obs: {"w": jnp.array(w, jnp.float32)},
                   lambda p, obs: jnp.tanh(p["w"] * obs))


def linear_critic(v1=0.3, v2=-0.7, b=0.2):
    return network(lambda key, obs, action: {"v1": jnp.array(v1, jnp.float32), "v2": jnp.array(v2, jnp.float32),
                                             "b": jnp.array(b, jnp.float32)},
                   lambda p, obs, action: p["v1"] * obs[:, 0] + p["v2"] * action[:, 0] + p["b"])


def make_agent(tau=0.1, actor_lr=0.1, critic_lr=0.05, optimizer=optax.sgd, gamma=GAMMA):
    return DDPG(actor=linear_actor(), critic=linear_critic(), actor_optimizer=optimizer(actor_lr),
                critic_optimizer=optimizer(critic_lr), gamma=gamma, tau=tau)


def example():
    return jnp.zeros((1, 1), jnp.float32), jnp.zeros((1, 1), jnp.float32)


def with_targets(agent, state):
    """A state whose target networks differ from the online ones, so a mix-up shows."""
    return state._replace(
        actor_target={"w": jnp.array(-1.2, jnp.float32)},
        critic_target={"v1": jnp.array(1.5, jnp.float32), "v2": jnp.array(0.4, jnp.float32),
                       "b": jnp.array(-0.3, jnp.float32)},
    )


# a batch of 4 transitions; the third is terminated, the fourth was truncated (stored as not terminated)
OBS = np.array([0.5, -1.0, 2.0, 0.25])
ACTION = np.array([0.2, -0.6, 0.9, -0.1])
REWARD = np.array([1.0, -0.5, 2.0, 0.3])
NEXT_OBS = np.array([0.7, 1.1, -0.4, -2.0])
TERMINATED = np.array([0.0, 0.0, 1.0, 0.0])


def batch(terminated=TERMINATED):
    f = lambda x: jnp.asarray(x, jnp.float32)
    return Batch(obs=f(OBS[:, None]), action=f(ACTION[:, None]), reward=f(REWARD), next_obs=f(NEXT_OBS[:, None]),
                 terminated=f(terminated))


def q_hand(p, s, a):
    return float(p["v1"]) * s + float(p["v2"]) * a + float(p["b"])


def pi_hand(p, s):
    return np.tanh(float(p["w"]) * s)


def target_hand(state, terminated=TERMINATED, gamma=GAMMA):
    next_q = q_hand(state.critic_target, NEXT_OBS, pi_hand(state.actor_target, NEXT_OBS))
    return REWARD + gamma * (1.0 - terminated) * next_q


def critic_grad_hand(critic, y):
    err = q_hand(critic, OBS, ACTION) - y
    return {"v1": np.mean(2 * err * OBS), "v2": np.mean(2 * err * ACTION), "b": np.mean(2 * err)}


def actor_grad_hand(actor, critic):
    """d/dw of -mean Q(s, tanh(w s)) = -mean dQ/da * da/dw = -mean v2 * (1 - tanh^2(w s)) * s."""
    a = pi_hand(actor, OBS)
    return -np.mean(float(critic["v2"]) * (1.0 - a**2) * OBS)


def first(out):
    """The value of a loss that may also return auxiliary outputs (mean Q, batch statistics)."""
    return out[0] if isinstance(out, tuple) else out


def close(tree, expected):
    np.testing.assert_allclose(np.asarray(tree), expected, rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def agent():
    return make_agent()


@pytest.fixture(scope="module")
def state(agent):
    return with_targets(agent, agent.init(jax.random.PRNGKey(0), *example()))


# ----------------------------------------------------------------------------- the target and the losses


def test_init_copies_online_into_targets_and_starts_counting_at_zero(agent):
    s = agent.init(jax.random.PRNGKey(0), *example())
    assert s.actor == s.actor_target == {"w": 0.5}
    assert {k: float(v) for k, v in s.critic_target.items()} == pytest.approx({"v1": 0.3, "v2": -0.7, "b": 0.2})
    assert int(s.updates) == 0


def test_td_target_uses_the_target_networks_and_masks_only_terminated(agent, state):
    y = agent.td_target(state.actor_target, state.critic_target, batch())
    expected = target_hand(state)
    close(y, expected)
    # the terminated transition's target is its reward alone; the others bootstrap
    assert float(y[2]) == pytest.approx(REWARD[2])
    for i in (0, 1, 3):
        assert abs(float(y[i]) - REWARD[i]) > 0.1


def test_a_truncated_transition_bootstraps(agent, state):
    """A time-limit truncation is stored with terminated=False: its target is r + gamma * Q'(s', pi'(s'))."""
    y = agent.td_target(state.actor_target, state.critic_target, batch())
    s_next = NEXT_OBS[3]
    expected = REWARD[3] + GAMMA * q_hand(state.critic_target, s_next, pi_hand(state.actor_target, s_next))
    assert float(y[3]) == pytest.approx(expected, rel=RTOL)
    # and with every transition marked terminated, every target is the reward
    close(agent.td_target(state.actor_target, state.critic_target, batch(np.ones(4))), REWARD)


def test_td_target_with_gamma_zero_is_the_reward(state):
    agent = make_agent(gamma=0.0)
    close(agent.td_target(state.actor_target, state.critic_target, batch(np.zeros(4))), REWARD)


def test_critic_loss_is_the_mean_squared_td_error(agent, state):
    y = target_hand(state)
    loss, aux = agent.critic_loss(state.critic, jnp.asarray(y, jnp.float32), batch())
    mean_q = first(aux)
    q = q_hand(state.critic, OBS, ACTION)
    assert float(loss) == pytest.approx(np.mean((q - y) ** 2), rel=RTOL)
    assert float(mean_q) == pytest.approx(np.mean(q), rel=RTOL)


def test_actor_loss_and_its_gradient_are_the_deterministic_policy_gradient(agent, state):
    obs = jnp.asarray(OBS[:, None], jnp.float32)
    loss, grad = jax.value_and_grad(lambda actor: first(agent.actor_loss(actor, state.critic, obs)))(state.actor)
    assert float(loss) == pytest.approx(-np.mean(q_hand(state.critic, OBS, pi_hand(state.actor, OBS))), rel=RTOL)
    assert float(grad["w"]) == pytest.approx(actor_grad_hand(state.actor, state.critic), rel=RTOL)


def test_update_changes_the_critic_by_the_critic_step_alone(state):
    """The actor's loss also depends on the critic, but the actor step must move only the actor:
    the critic after `update` is what the critic optimizer (Adam here) gives from the critic loss."""
    agent = make_agent(optimizer=optax.adam, actor_lr=0.5, critic_lr=1e-2)
    state = state._replace(actor_opt=agent.actor_optimizer.init(state.actor),
                           critic_opt=agent.critic_optimizer.init(state.critic))
    new, _, _ = agent.update(state, batch())
    y = jnp.asarray(target_hand(state), jnp.float32)
    grad = jax.grad(lambda c: first(agent.critic_loss(c, y, batch())))(state.critic)
    step, _ = agent.critic_optimizer.update(grad, state.critic_opt, state.critic)
    expected = optax.apply_updates(state.critic, step)
    for k in expected:
        assert float(new.critic[k]) == pytest.approx(float(expected[k]), rel=RTOL, abs=ATOL), k


# ----------------------------------------------------------------------------- one update, by hand


def expected_update(state, tau, actor_lr=0.1, critic_lr=0.05):
    y = target_hand(state)
    g = critic_grad_hand(state.critic, y)
    critic = {k: float(state.critic[k]) - critic_lr * g[k] for k in g}
    # the actor step uses the critic after its step (the seed's order)
    actor = {"w": float(state.actor["w"]) - actor_lr * actor_grad_hand(state.actor, critic)}
    critic_target = {k: tau * critic[k] + (1 - tau) * float(state.critic_target[k]) for k in critic}
    actor_target = {"w": tau * actor["w"] + (1 - tau) * float(state.actor_target["w"])}
    q = q_hand(state.critic, OBS, ACTION)
    metrics = {"critic_loss": np.mean((q - y) ** 2), "q": np.mean(q),
               "actor_loss": -np.mean(q_hand(critic, OBS, pi_hand(state.actor, OBS)))}
    return actor, critic, actor_target, critic_target, metrics


@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_update_matches_the_hand_computed_sgd_step(tau):
    agent = make_agent(tau=tau)
    state = with_targets(agent, agent.init(jax.random.PRNGKey(0), *example()))
    new, metrics, td_error = jax.jit(agent.update)(state, batch())
    actor, critic, actor_target, critic_target, m = expected_update(state, tau)
    for name, expected in [("actor", actor), ("critic", critic), ("actor_target", actor_target),
                           ("critic_target", critic_target)]:
        got = getattr(new, name)
        for k in expected:
            assert float(got[k]) == pytest.approx(expected[k], rel=RTOL, abs=ATOL), (name, k)
    if tau == 1.0:  # the targets become copies of the online networks
        assert jax.tree.all(jax.tree.map(lambda a, b: bool(a == b), new.critic_target, new.critic))
        assert jax.tree.all(jax.tree.map(lambda a, b: bool(a == b), new.actor_target, new.actor))
    assert int(new.updates) == 1
    assert float(metrics.critic_loss) == pytest.approx(m["critic_loss"], rel=RTOL)
    assert float(metrics.q) == pytest.approx(m["q"], rel=RTOL)
    assert float(metrics.actor_loss) == pytest.approx(m["actor_loss"], rel=RTOL)
    close(td_error, q_hand(state.critic, OBS, ACTION) - target_hand(state))  # before the critic's step


def test_update_counts_updates(agent, state):
    update = jax.jit(agent.update)
    s = state
    for expected in (1, 2, 3):
        s, _, _ = update(s, batch())
        assert int(s.updates) == expected


# ----------------------------------------------------------------------------- Polyak averaging


@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_polyak(tau):
    online = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(4.0)}
    target = {"a": jnp.array([3.0, 0.5]), "b": jnp.array(-6.0)}
    out = polyak(online, target, tau)
    close(out["a"], tau * np.array([1.0, -2.0]) + (1 - tau) * np.array([3.0, 0.5]))
    close(out["b"], tau * 4.0 + (1 - tau) * -6.0)
    if tau == 0.1:
        close(out["a"], [2.8, 0.25])
        close(out["b"], -5.0)
    else:
        close(out["a"], [1.0, -2.0])
        close(out["b"], 4.0)


# ----------------------------------------------------------------------------- several updates in one call


def test_update_many_equals_repeated_updates():
    agent = make_agent(optimizer=optax.adam, actor_lr=1e-2, critic_lr=1e-2)
    state = with_targets(agent, agent.init(jax.random.PRNGKey(0), *example()))
    b = batch()
    stacked = jax.tree.map(lambda x: jnp.stack([x, x, x]), b)
    many, mean_metrics, td_errors = jax.jit(agent.update_many)(state, stacked)
    update = jax.jit(agent.update)
    one, all_metrics, all_td = state, [], []
    for _ in range(3):
        one, m, td = update(one, b)
        all_metrics.append(m)
        all_td.append(td)
    np.testing.assert_allclose(np.asarray(td_errors), np.stack(all_td), rtol=1e-5, atol=1e-6)  # every batch's
    assert int(many.updates) == 3
    for got, want in zip(jax.tree.leaves(many), jax.tree.leaves(one)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7)
    # three distinct updates happened (the parameters moved at each)
    assert float(all_metrics[0].critic_loss) != float(all_metrics[2].critic_loss)
    for name in ("critic_loss", "actor_loss", "q"):
        expected = np.mean([float(getattr(m, name)) for m in all_metrics])
        assert float(getattr(mean_metrics, name)) == pytest.approx(expected, rel=1e-5), name


# ----------------------------------------------------------------------------- shape checks


def test_actor_with_the_wrong_number_of_outputs_is_named():
    wide_actor = network(lambda key, obs: {"w": jnp.ones((1, 2))}, lambda p, obs: jnp.tanh(obs @ p["w"]))
    agent = DDPG(wide_actor, linear_critic(), optax.sgd(0.1), optax.sgd(0.1), GAMMA, 0.1)
    obs, action = jnp.zeros((3, 1)), jnp.zeros((3, 1))
    with pytest.raises(ValueError) as error:
        agent.init(jax.random.PRNGKey(0), obs, action)
    message = str(error.value)
    assert "the actor maps observations of shape (3, 1) to (3, 2)" in message
    assert "needs (3, 1)" in message
    assert "output 1 values per observation" in message


def test_critic_with_two_values_per_pair_is_named():
    wide_critic = network(lambda key, obs, action: {"v": jnp.ones((2, 2))},
                          lambda p, obs, action: jnp.concatenate([obs, action], -1) @ p["v"])
    agent = DDPG(linear_actor(), wide_critic, optax.sgd(0.1), optax.sgd(0.1), GAMMA, 0.1)
    obs, action = jnp.zeros((3, 1)), jnp.zeros((3, 1))
    with pytest.raises(ValueError) as error:
        agent.init(jax.random.PRNGKey(0), obs, action)
    message = str(error.value)
    assert "the critic maps 3 (observation, action) pairs to shape (3, 2)" in message
    assert "shape (3,) or (3, 1)" in message


def test_check_shapes_accepts_both_critic_output_shapes():
    for apply in (lambda p, o, a: p["v"] * a, lambda p, o, a: p["v"] * a[:, 0]):  # (batch, 1) and (batch,)
        critic = network(lambda key, o, a: {"v": jnp.array(1.0)}, apply)
        agent = DDPG(linear_actor(), critic, optax.sgd(0.1), optax.sgd(0.1), GAMMA, 0.1)
        obs, action = jnp.zeros((3, 1)), jnp.zeros((3, 1))
        state = agent.init(jax.random.PRNGKey(0), obs, action)
        check_shapes(agent, state.actor, state.critic, obs, action)  # no error
        q, _ = agent.q(state.critic, obs, action + 2.0)
        assert q.shape == (3,)  # one value per pair, whichever shape the critic returns
        close(q, [2.0, 2.0, 2.0])

