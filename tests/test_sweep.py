"""Sweeps without Ray: the spec and its errors, a trial driven by a fake report, resuming a failed
trial, and the report (rliable's statistics). tests/test_sweep_ray.py runs real sweeps on Ray."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

import ddpgx
from ddpgx import checkpoint as ckpt
from ddpgx.sweeps import (Asha, Dimension, Spec, SpecError, finished_trials, grid_cells, load_spec, remaining_cells,
                          report, run_trial, same_trials, trainable_identity, trial_config, trial_space,
                          trials_in_grid)
from tests.conftest import quiet

SMALL = {"total_steps": 400, "learning_starts": 200, "batch_size": 32, "actor_hidden": [32, 32],
         "critic_hidden": [32, 32], "eval_every": 100, "eval_episodes": 2, "log_every": 100, "tensorboard": False,
         "buffer_size": 5000}


def spec_dict(**changes):
    spec = {"name": "test", "tasks": ["Pendulum-v1"], "config": dict(SMALL), "seeds": 2}
    spec.update(changes)
    return spec


def test_a_spec_parses_into_tasks_presets_fields_and_a_search_space(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("""
name: pendulum-lr
tasks:
  Pendulum-v1: {total_steps: 20000}
  HalfCheetah-v5: {total_steps: 100000, eval_every: 5000}
preset: [default, td3-paper]
config: {eval_every: 2000}
search:
  actor_lr: {loguniform: [1.0e-4, 1.0e-3]}
  batch_size: [128, 256]
  actor_hidden: {choice: [[64, 64], [256, 256]]}
seeds: 5
first_seed: 1
samples: 3
cpus_per_trial: 1
""")
    spec = load_spec(path)
    assert spec.tasks == {"Pendulum-v1": {"total_steps": 20000}, "HalfCheetah-v5": {"total_steps": 100000, "eval_every": 5000}}
    assert spec.presets == ("default", "td3-paper")
    assert spec.search == {"actor_lr": Dimension("loguniform", (1e-4, 1e-3)), "batch_size": Dimension("grid", (128, 256)),
                           "actor_hidden": Dimension("choice", ((64, 64), (256, 256)))}
    assert (spec.seeds, spec.first_seed, spec.samples, spec.scheduler) == (5, 1, 3, None)
    assert trials_in_grid(spec) == 2 * 2 * 2 * 3  # tasks x presets x grid x samples
    config = trial_config(spec, "HalfCheetah-v5", "td3-paper", {"actor_lr": 5e-4, "batch_size": 128,
                                                               "actor_hidden": (64, 64)})
    assert (config.env_id, config.seed, config.total_steps, config.eval_every, config.actor_lr, config.batch_size,
            config.actor_hidden, config.critic_hidden) == ("HalfCheetah-v5", 1, 100000, 5000, 5e-4, 128, (64, 64), (400, 300))
    assert config.learning_starts == 10_000  # the task's default, as `ddpgx train` gives it
    per_task = load_spec(spec_dict(tasks={"HalfCheetah-v5": {"total_steps": 100}, "Hopper-v5": {"total_steps": 100}},
                                   preset="mujoco", config={"critic_lr": 5e-4}))
    cheetah, hopper = (trial_config(per_task, task, "mujoco", {}) for task in ("HalfCheetah-v5", "Hopper-v5"))
    assert (cheetah.gradient_steps, cheetah.actor_lr, cheetah.learning_starts, cheetah.critic_lr) == (2, 1e-3, 25_000, 5e-4)
    assert (hopper.gradient_steps, hopper.actor_lr, hopper.learning_starts, hopper.critic_lr) == (1, 1e-4, 1_000, 5e-4)
    with_asha = load_spec(spec_dict(scheduler={"asha": {"grace_period": 200}}))
    assert with_asha.scheduler == Asha(200, 3.0)


@pytest.mark.parametrize("changes, message", [
    ({"taks": ["Pendulum-v1"]}, "unknown key(s) taks; a spec has name, tasks"),
    ({"name": ""}, "name: give the sweep a name"),
    ({"tasks": []}, "tasks: list the Gymnasium ids"),
    ({"preset": "papr"}, "preset: unknown preset 'papr': choose one of default, paper, td3-paper, extended"),
    ({"config": {"learning_rate": 1e-3}}, "config.learning_rate: unknown Config field; known fields are"),
    ({"config": {"seed": 3}}, "config.seed: is set by the spec's tasks and seeds, not as a field"),
    ({"search": {"tau": [0.005, 2.0]}}, "task Pendulum-v1, preset default, tau=2: invalid tau=2.0: must be in (0, 1]"),
    ({"search": {"tau": {"normal": [0, 1]}}}, "search.tau: give a list (a grid), or one of {choice"),
    ({"search": {"tau": {"uniform": [0.1, 0.01]}}}, "search.tau.uniform: needs low < high"),
    ({"search": {"actor_lr": {"loguniform": [0.0, 1e-3]}}}, "needs low < high, both positive"),
    ({"search": {"batch_size": {"uniform": [64, 256]}}}, "batch_size is not a real-valued field: search it with a grid"),
    ({"seeds": 0}, "seeds: must be an integer of at least 1, not 0"),
    ({"tasks": ["Pendulum-v1", "Hopper-v5"], "scheduler": {"asha": {"grace_period": 100}}},
     "ASHA compares trials by their return, which differs from task to task"),
    ({"scheduler": {"asha": {"grace": 100}}}, "scheduler.asha: unknown option(s) grace"),
    ({"scheduler": {"hyperband": {}}}, "scheduler: the one scheduler is asha"),
    ({"trainable": "sb3"}, "trainable: 'ddpgx', or 'module:function'"),
    ({"config": {"buffer_size": 10, "batch_size": 32}}, "invalid batch_size=32: is larger than buffer_size=10"),
    # every one below ends before Ray starts, with one line that names the key
    ({"preset": {"a": 1}}, "preset: unknown preset {'a': 1}: choose one of default"),
    ({"preset": [["default"]]}, "preset: unknown preset ['default']: choose one of default"),
    ({"preset": []}, "preset: list at least one preset"),
    ({"preset": ["default", "default"]}, "preset: a preset is listed twice"),
    ({"tasks": [["Pendulum-v1"]]}, "tasks: ['Pendulum-v1'] is not a Gymnasium id"),
    ({"tasks": ["Pendulum-v1", "Pendulum-v1"]}, "tasks: a task is listed twice"),
    ({"tasks": {"Pendulum-v1": [1]}}, "tasks.Pendulum-v1: must map field overrides"),
    ({"trainable": "nosuch:f"}, "trainable: cannot load the trainable nosuch:f: No module named 'nosuch'"),
    ({"trainable": "ddpgx.sweeps:nosuch"}, "trainable: cannot load the trainable ddpgx.sweeps:nosuch: module"),
    ({"trainable": "ddpgx.sweeps:SPEC_KEYS"}, "trainable: the trainable ddpgx.sweeps:SPEC_KEYS is not a function"),
    ({"config": {**SMALL, "noise_schedule": "linear"}, "search": {"noise_sigma": [0.3, 0.1],
                                                                  "noise_sigma_final": [0.05, 0.2]}},
     "noise_sigma=0.1, noise_sigma_final=0.2: invalid noise_sigma_final=0.2: is above noise_sigma=0.1"),
    ({"search": {"noise_schedule": ["constant", "linear"], "noise_sigma": {"uniform": [0.1, 0.3]},
                 "noise_sigma_final": {"choice": [0.05, 0.2]}}},
     "noise_schedule=linear, noise_sigma=0.1, noise_sigma_final=0.2: invalid noise_sigma_final=0.2"),
    ({"variants": [{}, {"noise_schedule": "linear"}], "search": {"noise_sigma_final": [0.0, 0.2]}},
     "variants[1], noise_sigma_final=0.2: invalid noise_sigma_final=0.2: is above noise_sigma=0.1"),
    ({"search": {"actor_lr": {"loguniform": ["1e-4", 1e-3]}}},
     "search.actor_lr.loguniform: '1e-4' is text, not a number: YAML reads a number in exponent notation"),
    ({"search": {"actor_lr": {"loguniform": [1e-4]}}}, "search.actor_lr.loguniform: must be [low, high], two numbers"),
    ({"search": {"actor_lr": ["1e-4", 3e-4]}}, "search.actor_lr: '1e-4' is text, not a number"),
    ({"config": {"critic_lr": "1e-3"}}, "config.critic_lr: '1e-3' is text, not a number: YAML reads"),
    ({"variants": [{"tau": "5e-3"}]}, "variants[0].tau: '5e-3' is text, not a number"),
    ({"config": {"workers": 2}}, "config.workers: a trial trains in one process of its own: rollout workers "
                                 "(workers=2) cannot run inside it"),
    ({"tasks": {"Pendulum-v1": {"workers": 1}}}, "tasks.Pendulum-v1.workers: a trial trains in one process"),
    ({"variants": [{}, {"workers": 1}]}, "variants[1].workers: a trial trains in one process"),
    ({"search": {"workers": [0, 2]}}, "search.workers: a trial trains in one process"),
    ({"scheduler": {"asha": {"grace_period": 500}}}, "scheduler.asha.grace_period: 500 is above the longest trial's "
                                                     "total_steps, 400: ASHA could never stop a trial"),
])
def test_bad_specs_get_one_line_errors(changes, message):
    with pytest.raises(SpecError) as error:
        load_spec(spec_dict(**changes))
    assert message in str(error.value), str(error.value)
    assert "\n" not in str(error.value)


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
BENCHMARK_SPECS = sorted((BENCHMARKS / "specs").rglob("*.yaml"))
COMPACT_SWEEPS = sorted(path.parent for path in (BENCHMARKS / "results" / "sweeps").glob("*/spec.json"))


@pytest.fixture(scope="module")
def benchmark_specs():
    """Every committed spec, parsed and checked as a sweep checks it before Ray starts."""
    return [(path, load_spec(path)) for path in BENCHMARK_SPECS]


def test_every_benchmark_spec_is_a_valid_spec_with_a_name_of_its_own(benchmark_specs):
    """The commands in docs/benchmarks.md run these specs: each must pass the checks a sweep makes
    before Ray starts (every trial a valid Config), and two specs with one name would share a
    sweep directory."""
    names = [spec.name for _, spec in benchmark_specs]
    assert len(names) >= 30
    assert len(set(names)) == len(names), sorted(name for name in names if names.count(name) > 1)


def test_every_committed_sweep_result_was_made_by_the_spec_of_its_name_as_committed(benchmark_specs):
    """A spec edited after its sweep ran would no longer reproduce the results it sits beside."""
    specs = {spec.name: (path, spec) for path, spec in benchmark_specs}
    assert len(COMPACT_SWEEPS) >= 20
    for sweep_dir in COMPACT_SWEEPS:
        ran = Spec.from_json(json.loads((sweep_dir / "spec.json").read_text()))
        assert ran.name in specs, f"{sweep_dir.name}: no spec named {ran.name} in benchmarks/specs"
        path, committed = specs[ran.name]
        # the trainable file is stored by its absolute path, which names the clone the sweep ran in
        ran, committed = (dataclasses.replace(spec, trainable=trainable_identity(spec.trainable))
                          for spec in (ran, committed))
        assert ran == committed, \
            f"{sweep_dir.name} was run with another {path.relative_to(BENCHMARKS.parent)}"


def test_yamls_exponent_without_a_dot_is_named_in_the_error(tmp_path):
    """YAML 1.1 (PyYAML) reads 1e-4 as the string '1e-4'; 1.0e-4 is a number."""
    path = tmp_path / "spec.yaml"
    path.write_text("name: lr\ntasks: [Pendulum-v1]\nsearch:\n  actor_lr: {loguniform: [1e-4, 1e-3]}\n")
    with pytest.raises(SpecError, match=r"spec.yaml: search.actor_lr.loguniform: '1e-4' is text, not a number: .* "
                                        r"write 1.0e-4"):
        load_spec(path)
    path.write_text("name: lr\ntasks: [Pendulum-v1]\nsearch:\n  actor_lr: {loguniform: [1.0e-4, 1.0e-3]}\n")
    assert load_spec(path).search["actor_lr"] == Dimension("loguniform", (1e-4, 1e-3))


@pytest.mark.slow
def test_every_combination_of_searched_values_is_checked_and_the_check_is_bounded(monkeypatch):
    """The invalid trial is the one combination of three fields among many: found through all
    combinations, and through every three fields' combinations once there are more than
    CHECK_LIMIT (which stays polynomial in the number of fields)."""
    from ddpgx import sweeps

    search = {"noise_schedule": ["constant", "linear"], "noise_sigma": [0.3, 0.2, 0.1],
              "noise_sigma_final": [0.0, 0.05, 0.15], "tau": [0.005, 0.01, 0.02], "gamma": [0.98, 0.99],
              "actor_lr": [1e-4, 3e-4], "critic_lr": [1e-4, 3e-4], "batch_size": [32, 64]}
    message = r"noise_schedule=linear, noise_sigma=0\.1, noise_sigma_final=0\.15, .*: invalid noise_sigma_final=0\.15"
    checked = []
    original = sweeps.trial_config

    def counting(*args, **kwargs):
        checked.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(sweeps, "trial_config", counting)
    for limit, most in ((sweeps.CHECK_LIMIT, 2 * 3 * 3 * 3 * 2 ** 4), (10, 56 * 3 ** 3)):
        monkeypatch.setattr(sweeps, "CHECK_LIMIT", limit)
        checked.clear()
        with pytest.raises(SpecError, match=message):
            load_spec(spec_dict(search=search))
        assert 0 < len(checked) <= most
        fixed = {**search, "noise_sigma_final": [0.0, 0.05, 0.1]}
        spec = load_spec(spec_dict(search=fixed))
        names = list(fixed)
        combinations = {tuple(point[n] for n in names) for _, _, _, point in sweeps.checked_values(spec)}
        if limit == 10:  # every three fields see all their combinations
            import itertools

            for group in itertools.combinations(range(len(names)), 3):
                for values in itertools.product(*(fixed[names[i]] for i in group)):
                    assert any(all(c[i] == v for i, v in zip(group, values)) for c in combinations)
            assert len(combinations) < math.prod(len(v) for v in fixed.values())


def test_asha_runs_to_the_longest_trial_of_any_variant_or_searched_value():
    from ddpgx.sweeps import longest_trial

    spec = load_spec(spec_dict(variants=[{}, {"total_steps": 800}], scheduler={"asha": {"grace_period": 600}}))
    assert longest_trial(spec) == 800
    spec = load_spec(spec_dict(search={"total_steps": [400, 1200]}, scheduler={"asha": {"grace_period": 1000}}))
    assert longest_trial(spec) == 1200
    spec = load_spec(spec_dict(tasks={"Pendulum-v1": {}, "InvertedPendulum-v5": {"total_steps": 900}}))
    assert longest_trial(spec) == 900
    with pytest.raises(SpecError, match="grace_period: 1000 is above the longest trial's total_steps, 800"):
        load_spec(spec_dict(variants=[{}, {"total_steps": 800}], scheduler={"asha": {"grace_period": 1000}}))


def test_bad_spec_files(tmp_path):
    with pytest.raises(SpecError, match="cannot read the spec .*missing.yaml: No such file"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="bad.yaml is not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- Pendulum-v1\n")
    with pytest.raises(SpecError, match="list.yaml must be a mapping of keys"):
        load_spec(tmp_path / "list.yaml")


def run(spec, sweep_dir, trial_id, params, fail_at=None):
    """A trial with a fake Tune: returns the reports; raises after the report number `fail_at`."""
    reports = []

    def report(metrics, checkpoint):
        reports.append((metrics, json.loads((checkpoint / "ddpgx.json").read_text()) if checkpoint else None))
        if len(reports) == fail_at:
            raise RuntimeError("the worker died")

    run_trial(spec, params, sweep_dir, trial_id, report, print_fn=quiet)
    return reports


@pytest.mark.slow
def test_a_trial_reports_every_evaluation_and_a_failed_trial_resumes_exactly(tmp_path):
    spec = load_spec(spec_dict(config={**SMALL, "checkpoint_every": 100}))
    params = {"task": "Pendulum-v1", "preset": "default"}
    reports = run(spec, tmp_path, "straight", params)
    assert [m["step"] for m, _ in reports] == [100, 200, 300, 400]
    assert all(pointer == {"run_dir": str(tmp_path / "runs" / "straight"), "step": m["step"]} for m, pointer in reports)
    assert all(m["worst_seed_return"] <= m["mean_return"] for m, _ in reports)
    run_dir = tmp_path / "runs" / "straight"
    assert ddpgx.find_run(run_dir) == (trial_config(spec, "Pendulum-v1", "default", {}), 2)  # an ordinary run
    assert ddpgx.load_policy(run_dir / "seed_0")(np.zeros(3)).shape == (1,)
    # the same trial, failing after its second report (step 200), then retried as Tune retries it
    with pytest.raises(RuntimeError, match="the worker died"):
        run(spec, tmp_path, "failed", params, fail_at=2)
    retried = run(spec, tmp_path, "failed", params)
    assert [m["step"] for m, _ in retried] == [300, 400]
    for seed in (0, 1):
        want = ckpt.Checkpoint(ckpt.latest_checkpoint(run_dir / f"seed_{seed}"))
        got = ckpt.Checkpoint(ckpt.latest_checkpoint(tmp_path / "runs" / "failed" / f"seed_{seed}"))
        assert got.step == want.step == 400
        for key in want.arrays:
            np.testing.assert_array_equal(got.arrays[key], want.arrays[key], err_msg=key)


def test_a_trial_that_died_before_its_first_checkpoint_starts_again(tmp_path):
    spec = load_spec(spec_dict(config={**SMALL, "checkpoint_every": 0}))  # only the final checkpoint
    params = {"task": "Pendulum-v1", "preset": "default"}
    with pytest.raises(RuntimeError):
        run(spec, tmp_path, "t", params, fail_at=1)
    assert [m["step"] for m, _ in run(spec, tmp_path, "t", params)] == [100, 200, 300, 400]


@pytest.mark.slow
def test_the_report_gives_per_task_statistics_from_rliable_and_curves(tmp_path):
    spec = load_spec(spec_dict(search={"tau": [0.005, 0.05]}, seeds=3))
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_json()))
    for trial_id, tau in (("a", 0.005), ("b", 0.05)):
        run(spec, tmp_path, trial_id, {"task": "Pendulum-v1", "preset": "default", "tau": tau})
    table = report(tmp_path, print_fn=quiet)
    assert [(row["trial"], row["setting"], row["seeds"], row["step"]) for row in table] == [
        ("a", "tau=0.005", 3, 400), ("b", "tau=0.05", 3, 400)]
    from ddpgx.logging import read_csv

    for row in table:
        finals = [float(read_csv(tmp_path / "runs" / row["trial"] / f"seed_{k}" / "eval.csv")[-1]["mean_return"])
                  for k in range(3)]
        assert row["mean"] == pytest.approx(np.mean(finals))
        assert row["median"] == pytest.approx(np.median(finals))
        assert (row["worst"], row["best"]) == (min(finals), max(finals))
        assert row["mean_ci_low"] <= row["mean"] <= row["mean_ci_high"]
        assert min(finals) <= row["iqm_ci_low"] <= row["iqm"] <= row["iqm_ci_high"] <= max(finals)
    text = (tmp_path / "results.md").read_text()
    assert "## Pendulum-v1" in text and "| a | tau=0.005 | 3 | 400 |" in text
    assert (tmp_path / "results.csv").read_text().splitlines()[0].startswith("task,trial,setting,seeds,step")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report(tmp_path, print_fn=quiet) == table  # deterministic intervals
    from ddpgx.cli import main

    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "plot.png")]) == 0
    assert (tmp_path / "plot.png").exists()


@pytest.mark.slow
def test_variants_are_one_trial_each_and_checked(tmp_path):
    """A variant is a set of field overrides: one trial each, crossed with the presets and the grid."""
    spec = load_spec(spec_dict(variants=[{}, {"n_step": 3}, {"obs_norm": True, "obs_norm_clip": 3.0}],
                               preset=["default", "td3-paper"], search={"tau": [0.005, 0.01]}))
    assert trials_in_grid(spec) == 3 * 2 * 2
    assert spec.variants == ({}, {"n_step": 3}, {"obs_norm": True, "obs_norm_clip": 3.0})
    config = trial_config(spec, "Pendulum-v1", "default", {**spec.variants[2], "tau": 0.01})
    assert (config.obs_norm, config.obs_norm_clip, config.n_step, config.tau) == (True, 3.0, 1, 0.01)
    from ddpgx.sweeps import Spec

    assert Spec.from_json(json.loads(json.dumps(spec.to_json()))) == spec  # what --resume compares
    reports = []
    run_trial(spec, {"task": "Pendulum-v1", "preset": "default", "variant": 1, "tau": 0.005}, tmp_path, "t1",
              lambda metrics, checkpoint: reports.append(metrics), print_fn=quiet)
    trial = json.loads((tmp_path / "trials" / "t1.json").read_text())
    assert trial["params"] == {"n_step": 3, "tau": 0.005}
    assert ddpgx.find_run(tmp_path / "runs" / "t1")[0].n_step == 3
    for variants, message in [([], "variants: list sets of field overrides"),
                              ([{"n_stp": 3}], "variants[0].n_stp: unknown Config field"),
                              ([{"n_step": 0}], "invalid n_step=0: must be at least 1"),
                              ([{"tau": 0.01}], "tau is also searched")]:
        with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_spec(spec_dict(variants=variants, search={"tau": [0.005, 0.01]}))


@pytest.mark.slow
def test_a_list_of_first_seeds_splits_the_seeds_over_trials(tmp_path):
    """`first_seed: [1, 5]` with `seeds: 4` is two trials, seeds 1-4 and 5-8, side by side."""
    spec = load_spec(spec_dict(first_seed=[1, 5], seeds=2, search={"tau": [0.005, 0.01]}))
    assert spec.first_seed == (1, 5) and trials_in_grid(spec) == 2 * 2
    from ddpgx.sweeps import Spec

    assert Spec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    for trial, first_seed in (("t0", 1), ("t1", 5)):
        run_trial(spec, {"task": "Pendulum-v1", "preset": "default", "first_seed": first_seed, "tau": 0.005},
                  tmp_path, trial, lambda metrics, checkpoint: None, print_fn=quiet)
    config, num_seeds = ddpgx.find_run(tmp_path / "runs" / "t1")
    assert (config.seed, num_seeds) == (5, 2)
    assert sorted(p.name for p in (tmp_path / "runs" / "t1").glob("seed_*")) == ["seed_5", "seed_6"]
    assert json.loads((tmp_path / "trials" / "t1.json").read_text())["first_seed"] == 5
    assert sorted(t["trial"] for t in finished_trials(tmp_path)) == ["t0", "t1"]  # each seed reached its last step
    report(tmp_path, print_fn=quiet)
    table = (tmp_path / "results.md").read_text()
    assert "| t0 | first_seed=1, tau=0.005 | 2 |" in table and "| t1 | first_seed=5, tau=0.005 | 2 |" in table
    for first_seed, message in [([], "a list of distinct ones"), ([1, 1], "a list of distinct ones"),
                                ([1, -2], "must list integers of at least 0, not -2"),
                                ([1, 2], "the blocks of 2 seeds from 1 and from 2 overlap"),
                                ([1, 2**32 - 1], "go past the largest seed")]:
        with pytest.raises(SpecError, match=message):
            load_spec(spec_dict(first_seed=first_seed))


@pytest.mark.slow
def test_a_goal_tasks_report_gives_the_success_rate_and_the_steps_to_reach_it(tmp_path):
    """A sweep on a goal task reports each evaluation's success rate to Tune, and its report adds the
    final success rate over seeds, the first step at which it reached 0.95, and success curves."""
    from ddpgx.cli import main
    from tests.probe_envs import PointGoal, register

    env_id = register()[PointGoal]
    spec = load_spec(spec_dict(tasks={env_id: {}}, config={**SMALL, "her": True, "eval_every": 200}))
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_json()))
    reports = run(spec, tmp_path, "g", {"task": env_id, "preset": "default"})
    assert [m["step"] for m, _ in reports] == [200, 400] and all(0 <= m["success_rate"] <= 1 for m, _ in reports)
    (row,) = report(tmp_path, print_fn=quiet)
    from ddpgx.logging import read_csv

    curves = [[float(r["success_rate"]) for r in read_csv(tmp_path / "runs" / "g" / f"seed_{k}" / "eval.csv")]
              for k in range(2)]
    assert row["success"] == pytest.approx((curves[0][-1] + curves[1][-1]) / 2)
    mean = np.mean(curves, axis=0)
    assert row["steps_to_95"] == next((step for step, m in zip([200, 400], mean) if m >= 0.95), None)
    assert "| success | steps to 0.95 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "success.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(tmp_path / "runs" / "g"), "--metric", "success", "--out", str(tmp_path / "s.png")]) == 0


def test_plotting_the_success_of_a_task_without_it_says_why(tmp_path, capsys):
    from ddpgx.cli import main

    spec = load_spec(spec_dict(seeds=1))
    run(spec, tmp_path, "p", {"task": "Pendulum-v1", "preset": "default"})
    assert main(["plot", str(tmp_path / "runs" / "p"), "--metric", "success", "--out", str(tmp_path / "s.png")]) == 2
    assert "evaluations have no success_rate: its environment reports no info['is_success']" in capsys.readouterr().err


def compact_sweep(path, spec, trials):
    """A sweep in compact form (benchmarks/compact.py's files): per trial, its variant's fields, first
    seed and the last step each seed was evaluated at."""
    (path / "trials").mkdir(parents=True)
    (path / "spec.json").write_text(json.dumps(spec.to_json()))
    configs, lines = {}, ["trial,task,preset,setting,seed,step,mean_return"]
    for trial, values, first_seed, last_steps in trials:
        record = {"trial": trial, "task": "Pendulum-v1", "preset": "default", "params": values,
                  "seeds": spec.seeds, "first_seed": first_seed}
        (path / "trials" / f"{trial}.json").write_text(json.dumps(record))
        configs[trial] = trial_config(spec, "Pendulum-v1", "default", values, first_seed).to_dict()
        for seed, last in zip(range(first_seed, first_seed + spec.seeds), last_steps):
            lines += [f"{trial},Pendulum-v1,default,,{seed},{step},-1000.0" for step in range(100, last + 1, 100)]
    (path / "configs.json").write_text(json.dumps(configs))
    (path / "curves.csv").write_text("\n".join(lines) + "\n")
    return path


def test_a_sweep_goes_on_elsewhere_without_the_trials_another_sweep_of_its_spec_finished(tmp_path):
    """Four trials (two variants x two blocks of seeds); a sweep elsewhere finished one, left one with
    a seed short of the last step and one with a seed missing: the three others are still to run."""
    spec = load_spec(spec_dict(first_seed=[1, 5], variants=[{}, {"tau": 0.01}]))
    cells = grid_cells(spec)
    assert len(cells) == trials_in_grid(spec) == 4
    assert {(c["variant"], c["first_seed"]) for c in cells} == {(0, 1), (0, 5), (1, 1), (1, 5)}
    done = compact_sweep(tmp_path / "done", spec, [("a", {}, 1, [400, 400]), ("b", {"tau": 0.01}, 1, [400, 300]),
                                                   ("c", {}, 5, [400])])
    assert [t["trial"] for t in finished_trials(done)] == ["a"]
    left, skipped = remaining_cells(spec, [done])
    assert skipped == 1 and {(c["variant"], c["first_seed"]) for c in left} == {(0, 5), (1, 1), (1, 5)}
    # the resources a sweep runs with are not the spec's trials; its fields are
    assert remaining_cells(load_spec(spec_dict(first_seed=[1, 5], variants=[{}, {"tau": 0.01}], max_concurrent=1,
                                               name="elsewhere")), [done])[1] == 1
    # a spec that grew a variant and a block of seeds: the finished trial is still skipped
    grown = load_spec(spec_dict(first_seed=[1, 5, 9], variants=[{}, {"tau": 0.01}, {"tau": 0.02}]))
    left, skipped = remaining_cells(grown, [done])
    assert skipped == 1 and left == [c for c in grid_cells(grown) if (c["variant"], c["first_seed"]) != (0, 1)]
    # a trainable file in a clone at another path (as on another machine) is the same trainable
    here, elsewhere, another_function = (dataclasses.replace(spec, trainable=trainable) for trainable in (
        "/work/main/benchmarks/sb3_trainable.py:train", "/check/work/main/benchmarks/sb3_trainable.py:train",
        "/work/main/benchmarks/sb3_trainable.py:other"))
    assert same_trials(here, elsewhere) and not same_trials(here, another_function)
    assert not same_trials(here, spec)
    for other in (spec_dict(first_seed=[1, 5], config={**SMALL, "gamma": 0.9}), spec_dict(first_seed=[1, 5], seeds=3),
                  spec_dict(first_seed=[1, 5], tasks={"Pendulum-v1": {"total_steps": 800}})):
        with pytest.raises(SpecError, match="is a sweep whose trials differ from this spec's"):
            remaining_cells(load_spec(other), [done])
    with pytest.raises(SpecError, match="holds no sweep"):
        remaining_cells(spec, [tmp_path])
    with pytest.raises(SpecError, match="has no fixed set of trials"):
        grid_cells(load_spec(spec_dict(search={"tau": {"uniform": [0.001, 0.01]}}, samples=2)))
    with pytest.raises(SpecError, match="cannot be split over sweeps"):
        grid_cells(load_spec(spec_dict(search={"tau": [0.005, 0.01]}, scheduler={"asha": {"grace_period": 100}})))


def test_a_new_sweep_runs_each_first_seed_on_every_task_and_variant_before_the_next():
    """The order of a fresh sweep's trials is `grid_cells`' too, so that the first results of a long
    spec cover every task; sampled fields and schedulers keep Tune's space of the whole spec."""
    spec = load_spec(spec_dict(tasks=["Pendulum-v1", "MountainCarContinuous-v0"], first_seed=[1, 5],
                               variants=[{}, {"tau": 0.01}]))
    order = [(c["first_seed"], c["variant"], c["task"]) for c in trial_space(spec)["cell"]["grid_search"]]
    assert order == [(1, 0, "Pendulum-v1"), (1, 0, "MountainCarContinuous-v0"), (1, 1, "Pendulum-v1"),
                     (1, 1, "MountainCarContinuous-v0"), (5, 0, "Pendulum-v1"), (5, 0, "MountainCarContinuous-v0"),
                     (5, 1, "Pendulum-v1"), (5, 1, "MountainCarContinuous-v0")]
    sampled = trial_space(load_spec(spec_dict(search={"tau": {"uniform": [0.001, 0.01]}}, samples=2)))
    assert "cell" not in sampled and set(sampled) >= {"task", "preset", "tau"}
