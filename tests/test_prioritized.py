"""Proportional prioritized replay: the sum tree against brute force, the sampling distribution (a
chi-square test with a fixed seed), the importance weights, beta's schedule, the priorities from TD
errors, and the priorities' round trip through a checkpoint."""

import numpy as np
import pytest
from scipy import stats

from ddpgx.prioritized import Priorities, SumTree, beta_at, importance_weights
from ddpgx.replay import ReplayBuffer


def test_the_tree_sums_and_finds_as_brute_force_does():
    rng = np.random.default_rng(0)
    tree = SumTree(num_seeds=2, capacity=13)  # not a power of two: 16 leaves, 3 always empty
    assert tree.leaves == 16 and tree.depth == 4
    values = rng.uniform(0.1, 3.0, (2, 13))
    tree.set(np.tile(np.arange(13), (2, 1)), values)
    np.testing.assert_allclose(tree.total, values.sum(axis=1), rtol=1e-12)
    mass = rng.uniform(0, 1, (2, 500)) * tree.total[:, None]
    found = tree.find(mass)
    cumulative = np.cumsum(values, axis=1)
    expected = np.stack([np.searchsorted(cumulative[s], mass[s], side="right") for s in range(2)])
    np.testing.assert_array_equal(found, expected)
    # a change of some leaves keeps every inner node the sum of its children, as a rebuild makes it
    tree.set(np.array([[3, 7], [0, 12]]), np.array([[10.0, 0.5], [2.0, 4.0]]))
    rebuilt = SumTree(2, 13)
    rebuilt.nodes[:, 16:] = tree.nodes[:, 16:]
    rebuilt.rebuild()
    np.testing.assert_array_equal(rebuilt.nodes, tree.nodes)


def test_a_slot_set_twice_keeps_its_last_value_and_empty_slots_are_never_found():
    tree = SumTree(1, 8)
    tree.set(np.array([[2, 5, 2, 2]]), np.array([[1.0, 3.0, 7.0, 4.0]]))
    assert tree.values(np.array([[2, 5]])).tolist() == [[4.0, 3.0]]
    assert tree.total[0] == 7.0
    found = tree.find(np.linspace(0, 7.0, 1000, endpoint=False)[None])
    assert set(found.ravel().tolist()) == {2, 5}
    assert (found == 2).sum() == 4 * 1000 // 7 + 1  # masses in [0, 4) -> slot 2
    assert tree.find(np.array([[7.0]])).item() == 5  # the total itself (a rounding overshoot) stays in a filled slot


def test_sampling_follows_the_priorities_chi_square():
    """8,000 draws from 20 slots with priorities 1..20 and alpha 0.6: the counts fit P(i) = p_i^0.6 / sum."""
    priorities = Priorities(num_seeds=1, capacity=32, alpha=0.6, eps=1e-6)
    slots = np.arange(20)
    priorities.add(slots)
    td = np.arange(1.0, 21.0) - 1e-6  # p_i = |td| + eps = 1 .. 20
    priorities.update(slots[None], td[None])
    indices, probabilities = priorities.sample([7], step=3, size=20, shape=(40, 200))
    expected = np.arange(1.0, 21.0) ** 0.6 / np.sum(np.arange(1.0, 21.0) ** 0.6)
    np.testing.assert_allclose(probabilities[0], expected[indices[0]], rtol=1e-9)
    counts = np.bincount(indices.ravel(), minlength=20)
    assert counts.sum() == 8000 and counts[20:].sum() == 0
    result = stats.chisquare(counts, expected * 8000)
    assert result.pvalue > 0.01, (result, counts)
    # stratified: each of a minibatch's 200 draws comes from its own 1/200 of the total
    cumulative = np.concatenate([[0.0], np.cumsum(expected)])
    first_draw_upper_bound = np.searchsorted(cumulative, 1 / 200, side="right")
    assert np.all(indices[0, :, 0] < first_draw_upper_bound)
    # and a wrong distribution is rejected by the same test (uniform draws against these priorities)
    uniform = np.bincount(np.random.default_rng(0).integers(0, 20, 8000), minlength=20)
    assert stats.chisquare(uniform, expected * 8000).pvalue < 1e-6


def test_draws_are_a_function_of_seed_and_step():
    priorities = Priorities(2, 16, 0.6, 1e-6)
    priorities.add(np.arange(10))
    priorities.update(np.tile(np.arange(10), (2, 1)), np.random.default_rng(1).uniform(0, 5, (2, 10)))
    a, _ = priorities.sample([3, 4], 50, 10, (2, 32))
    b, _ = priorities.sample([3, 4], 50, 10, (2, 32))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, priorities.sample([3, 4], 51, 10, (2, 32))[0])


def test_new_transitions_get_the_largest_priority_so_far_and_priorities_come_from_td_errors():
    alpha, eps = 0.5, 0.01
    priorities = Priorities(1, 8, alpha, eps)
    priorities.add(np.array([0, 1, 2]))
    np.testing.assert_allclose(priorities.tree.values(np.array([[0, 1, 2]])), 1.0)  # 1 before any update
    priorities.update(np.array([[0, 1, 0]]), np.array([[-3.0, 0.5, 2.0]]))  # slot 0 twice: the later error counts
    np.testing.assert_allclose(priorities.tree.values(np.array([[0, 1, 2]])),
                               [[(2.0 + eps) ** alpha, (0.5 + eps) ** alpha, 1.0]])
    assert priorities.max_priority[0] == pytest.approx(3.0 + eps)  # the largest |delta| + eps seen
    priorities.add(np.array([3]))
    assert priorities.tree.values(np.array([[3]]))[0, 0] == pytest.approx((3.0 + eps) ** alpha)


def test_importance_weights_and_beta():
    p = np.array([[0.1, 0.2, 0.4], [0.05, 0.05, 0.5]])
    w = importance_weights(p, size=10, beta=0.5)
    raw = (10 * p) ** -0.5
    np.testing.assert_allclose(w, raw / raw.max(axis=1, keepdims=True))
    assert w.max() == 1.0 and np.all(w[:, 0] >= w[:, 2])  # rarer transitions weigh more
    np.testing.assert_allclose(importance_weights(p, 10, 0.0), 1.0)  # beta 0: no correction
    assert beta_at(0, 0.4, 1000) == 0.4
    assert beta_at(500, 0.4, 1000) == pytest.approx(0.7)
    assert beta_at(1000, 0.4, 1000) == 1.0 and beta_at(5000, 0.4, 1000) == 1.0


def test_priorities_survive_the_buffers_state_round_trip():
    def buffer():
        return ReplayBuffer(16, (2,), 1, num_seeds=2, priorities=Priorities(2, 16, 0.6, 1e-6))

    saved = buffer()
    rng = np.random.default_rng(0)
    for _ in range(11):
        saved.add(rng.normal(size=(2, 1, 2)), rng.uniform(-1, 1, (2, 1, 1)), rng.normal(size=(2, 1)),
                  rng.normal(size=(2, 1, 2)), np.zeros((2, 1), bool))
    saved.priorities.update(rng.integers(0, 11, (2, 3, 8)), rng.normal(size=(2, 3, 8)))
    restored = buffer()
    for seed in range(2):
        restored.load_state_dict(seed, saved.state_dict(seed))
    np.testing.assert_array_equal(restored.priorities.tree.nodes, saved.priorities.tree.nodes)
    np.testing.assert_array_equal(restored.priorities.max_priority, saved.priorities.max_priority)
    np.testing.assert_array_equal(restored.priorities.sample([5, 6], 20, 11, (2, 8))[0],
                                  saved.priorities.sample([5, 6], 20, 11, (2, 8))[0])
    with pytest.raises(ValueError, match="without prioritized replay"):
        restored.load_state_dict(0, ReplayBuffer(16, (2,), 1, num_seeds=2).state_dict(0))
