"""The benchmark's sweep results in compact form (benchmarks/compact.py), the reports that read them
(benchmarks/report.py, benchmarks/budgets.py, benchmarks/repro.py) and the published references they
are read against (benchmarks/references/mujoco_ddpg.csv, tianshou_ddpg_seeds.csv). Sweeps are written
by hand, no training: seconds."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ddpgx
from ddpgx.config import ConfigError
from ddpgx.stats import mean_difference

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the benchmark scripts import each other by name
try:
    import budgets
    import compact
    import repro
finally:
    sys.path.remove(str(BENCHMARKS))

pytest.importorskip("rliable")  # the reports' statistics (ddpgx.stats)


def write_sweep(root: Path, name: str, trials: list[dict], trainable: str = "ddpgx") -> Path:
    """A sweep directory as `ddpgx sweep` leaves it: spec.json, trials/<id>.json and each trial's run
    directory (seed_N/config.json and eval.csv per seed, or the run directory itself for one seed).
    A trial: id, task, preset, seeds, first_seed, total_steps, fields (Config fields the trial sets),
    evals ({seed: [(step, mean_return, {other eval.csv columns}), ...]})."""
    sweep = root / name
    (sweep / "trials").mkdir(parents=True)
    (sweep / "spec.json").write_text(json.dumps({"name": name, "trainable": trainable}))
    for t in trials:
        (sweep / "trials" / f"{t['id']}.json").write_text(json.dumps(
            {"trial": t["id"], "task": t["task"], "preset": t["preset"], "params": t.get("fields", {}),
             "seeds": t["seeds"], "first_seed": t["first_seed"], "cores": [0]}))
        run = sweep / "runs" / t["id"]
        for k in range(t["seeds"]):
            seed = t["first_seed"] + k
            seed_dir = run / f"seed_{seed}" if t["seeds"] > 1 else run
            seed_dir.mkdir(parents=True)
            ddpgx.from_preset(t["preset"], t["task"], total_steps=t["total_steps"], seed=seed, eval_every=5_000,
                              **t.get("fields", {})).save(seed_dir / "config.json")
            evals = t["evals"].get(seed, [])
            extra = sorted({k for _, _, more in evals for k in more})
            with open(seed_dir / "eval.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["step", "mean_return", "std_return", "episodes", *extra])
                for step, value, more in evals:
                    writer.writerow([step, repr(float(value)), 1.5, 10, *(more.get(k, "") for k in extra)])
    return sweep


def curve(steps: list[int], values: list[float], **more) -> list[tuple]:
    return [(s, v, dict(more)) for s, v in zip(steps, values)]


STEPS = [100_000, 200_000, 300_000]


@pytest.fixture
def sweeps(tmp_path):
    """A finished trial (3 seeds to 300,000 steps, with a field set apart from its preset), a one-seed
    trial with an extra eval column, and a running trial (to 1,000,000 steps, at 200,000; its third
    seed not yet evaluated, as SB3 trials run their seeds one after the other)."""
    finished = {"id": "a_00000", "task": "HalfCheetah-v5", "preset": "default", "seeds": 3, "first_seed": 1,
                "total_steps": 300_000, "fields": {"actor_lr": 1e-3},
                "evals": {1: curve(STEPS, [900.0, 1500.0, 2900.0]), 2: curve(STEPS, [1100.0, 1600.0, 3100.0]),
                          3: curve(STEPS, [1000.0, 1700.0, 3000.0])}}
    single = {"id": "a_00001", "task": "Hopper-v5", "preset": "default", "seeds": 1, "first_seed": 4,
              "total_steps": 300_000, "evals": {4: curve(STEPS, [300.0, 700.0, 1300.0], success=0.5)}}
    running = {"id": "b_00000", "task": "HalfCheetah-v5", "preset": "extended", "seeds": 3, "first_seed": 1,
               "total_steps": 1_000_000,
               "evals": {1: curve(STEPS[:2], [2000.0, 4000.0]), 2: curve(STEPS[:2], [2100.0, 4100.0])}}
    return (write_sweep(tmp_path / "full", "done", [finished, single]),
            write_sweep(tmp_path / "full", "live", [running]))


REFERENCES = [  # source, task, env_steps, value
    ("Lib A", "HalfCheetah", 100_000, 999.0), ("Lib A", "HalfCheetah", 300_000, 3001.0),
    ("Lib A", "HalfCheetah", 1_000_000, 5000.0), ("Lib B", "HalfCheetah", 300_000, 2500.0),
    ("Lib A", "Hopper", 300_000, 1300.0), ("Lib A", "Ant", 300_000, 1.0),
]


@pytest.fixture
def references(tmp_path):
    path = tmp_path / "refs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["source", "algorithm", "library", "task", "env_version", "seeds",
                                               "env_steps", "source_axis_step", "value", "statistic", "url_or_path",
                                               "note"])
        writer.writeheader()
        for source, task, steps, value in REFERENCES:
            writer.writerow({"source": source, "algorithm": "DDPG", "library": source, "task": task,
                             "env_version": "v3", "seeds": 10, "env_steps": steps, "source_axis_step": steps,
                             "value": value, "statistic": "mean", "url_or_path": "here", "note": ""})
    return path


# ----------------------------------------------------------------------------- the compact form


def test_compact_sweep_reads_back_as_the_full_one(sweeps, tmp_path):
    for full in sweeps:
        out = tmp_path / "compact" / full.name
        compact.compact(full, out)
        assert not (out / "runs").exists()
        assert sorted(p.name for p in out.iterdir()) == ["configs.json", "curves.csv", "spec.json", "trials"]
        a, b = compact.trials(full), compact.trials(out)
        assert [r["trial"] for r in a] == [r["trial"] for r in b]
        for x, y in zip(a, b):
            for key in ("task", "preset", "seeds", "first_seed", "config", "curves", "returns", "final_returns",
                        "step", "total_steps", "several"):
                assert x[key] == y[key], (full.name, x["trial"], key)


def test_compact_curves_csv_has_every_evaluation_with_its_setting_and_extra_columns(sweeps, tmp_path):
    out = tmp_path / "done"
    assert compact.compact(sweeps[0], out) == 3 * 3 + 3
    rows = list(csv.DictReader(open(out / "curves.csv")))
    assert list(rows[0]) == ["trial", "task", "preset", "setting", "seed", "step", "mean_return", "episodes",
                             "std_return", "success"]
    first = [r for r in rows if r["trial"] == "a_00000"]
    assert {r["setting"] for r in first} == {"actor_lr=0.001"}
    assert [(r["seed"], r["step"], r["mean_return"]) for r in first[:2]] == [("1", "100000", "900"),
                                                                               ("1", "200000", "1500")]
    assert {r["success"] for r in rows if r["trial"] == "a_00001"} == {"0.5"}
    assert {r["success"] for r in first} == {""}
    configs = json.loads((out / "configs.json").read_text())
    assert configs["a_00000"]["actor_lr"] == 1e-3 and configs["a_00001"]["seed"] == 4


def test_compact_keeps_the_training_at_each_evaluation(tmp_path):
    """The critic's mean value and losses at each evaluation step (metrics.csv), and the training
    episodes that ended since the evaluation before (episodes.csv): what says whether a critic's
    values run away from its returns, kept where the run directories are not."""
    full = write_sweep(tmp_path / "full", "probe", [
        {"id": "p_00000", "task": "Ant-v5", "preset": "default", "seeds": 1, "first_seed": 3,
         "total_steps": 15_000, "evals": {3: curve([5_000, 10_000, 15_000], [-50.0, -40.0, -30.0])}}])
    run = full / "runs" / "p_00000"
    with open(run / "metrics.csv", "w") as f:  # as the loop logs it: every 1,000 steps, no losses before learning
        f.write("step,critic_loss,actor_loss,q,recent_return,episodes,steps_per_s\n")
        for step in range(1_000, 16_000, 1_000):
            losses = (f"{step / 1e3},-{step / 1e2},{step / 1e2}" if step >= 10_000 else ",,")
            f.write(f"{step},{losses},-20.0,3,250.0\n")
    with open(run / "episodes.csv", "w") as f:  # out of order, as several environments end them
        f.write("step,env,return,length,success\n4000,0,-8.0,4000,\n5000,1,-2.0,1000,\n"
                "9000,0,-6.0,3000,\n5001,1,-1.0,1,\n14000,0,-3.0,2000,\n")
    out = tmp_path / "compact"
    compact.compact(full, out)
    rows = [{k: v for k, v in r.items() if k.startswith("train_") or k == "step"}
            for r in csv.DictReader(open(out / "curves.csv"))]
    assert rows == [
        {"step": "5000", "train_q": "", "train_critic_loss": "", "train_actor_loss": "", "train_episodes": "2",
         "train_return_sum": "-10", "train_length_sum": "5000"},
        {"step": "10000", "train_q": "100", "train_critic_loss": "10", "train_actor_loss": "-100",
         "train_episodes": "2", "train_return_sum": "-7", "train_length_sum": "3001"},
        {"step": "15000", "train_q": "150", "train_critic_loss": "15", "train_actor_loss": "-150",
         "train_episodes": "1", "train_return_sum": "-3", "train_length_sum": "2000"}]
    # the compact form reads back as the full one, and a compact form of it keeps the columns
    assert compact.trials(out)[0]["curves"] == compact.trials(full)[0]["curves"]
    compact.compact(out, tmp_path / "again")
    assert (tmp_path / "again" / "curves.csv").read_text() == (out / "curves.csv").read_text()


def test_compact_refuses_a_used_or_same_directory_and_a_non_sweep(sweeps, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        compact.compact(sweeps[0], used)
    assert sorted(p.name for p in used.iterdir()) == ["keep.txt"]
    with pytest.raises(ConfigError, match="the sweep itself"):
        compact.compact(sweeps[0], sweeps[0])
    with pytest.raises(ConfigError, match="no spec.json"):
        compact.compact(tmp_path / "used", tmp_path / "new")


def test_compact_command_line_names_the_problem(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "compact.py"), str(tmp_path / "nothing"),
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'nothing'} has no spec.json: give a directory " \
                                                   "`ddpgx sweep` wrote"


SPLIT_SCREEN = {"name": "screen", "tasks": {"HalfCheetah-v5": {"total_steps": 300_000}}, "seeds": 1,
                "first_seed": [1, 2], "config": {"eval_every": 5_000}}
"""A spec whose two seeds are one trial each."""
HERE = {"task": "HalfCheetah-v5", "preset": "default", "seeds": 1, "total_steps": 300_000}


def split_screen(root: Path, name: str) -> Path:
    """A sweep of SPLIT_SCREEN that finished seed 1 and stopped seed 2 after 2 of 3 evaluations."""
    return write_sweep(root, name, [
        {**HERE, "id": "p_00000", "first_seed": 1, "evals": {1: curve(STEPS, [1.0, 2.0, 3.0])}},
        {**HERE, "id": "p_00001", "first_seed": 2, "evals": {2: curve(STEPS[:2], [10.0, 20.0])}}])


def test_a_part_of_the_sweep_run_elsewhere_joins_its_compact_form(tmp_path):
    """One spec, seeds split over two trials: the first machine finished seed 1 and stopped seed 2 at
    200,000 steps; the second ran seed 2 again to the end. The compact form then holds seed 1 from
    the first and seed 2 from the second, read as one trial of two seeds, with both machines."""
    from ddpgx.sweeps import load_spec

    spec = load_spec(SPLIT_SCREEN)
    first = split_screen(tmp_path / "one", "screen")
    second = write_sweep(tmp_path / "two", "screen", [
        {**HERE, "id": "q_00000", "first_seed": 2, "evals": {2: curve(STEPS, [5.0, 6.0, 7.0])}}])
    for sweep, cpu in ((first, "machine one"), (second, "machine two")):
        (sweep / "spec.json").write_text(json.dumps(spec.to_json()))
        (sweep / "host.json").write_text(json.dumps({"cpu": cpu, "date": "2026-12-06T00:00:00"}))
    out = tmp_path / "compact" / "screen"
    compact.compact(first, out)
    assert compact.add(second, out) == (6, 1)
    assert sorted(r["trial"] for r in compact.trials(out)) == ["p_00000", "q_00000"]
    [pooled] = compact.pool_seed_blocks(compact.trials(out))
    assert pooled["trial"] == "p_00000+q_00000" and pooled["final_returns"] == [3.0, 7.0]
    assert {k: h["cpu"] for k, h in compact.hosts(out).items()} == {"screen": "machine one",
                                                                     "screen (part 1)": "machine two"}
    assert not out.with_name("screen.adding").exists() and not out.with_name("screen.replaced").exists()
    before = sorted((p.name, p.read_bytes()) for p in out.rglob("*") if p.is_file())
    assert compact.add(second, out) == (6, 1)  # the same part again: the same compact form
    assert sorted((p.name, p.read_bytes()) for p in out.rglob("*") if p.is_file()) == before
    (second / "spec.json").write_text(json.dumps(dataclasses.replace(spec, seeds=2).to_json()))
    with pytest.raises(ConfigError, match="trials differ"):
        compact.add(second, out)
    with pytest.raises(ConfigError, match="not the compact form"):
        compact.add(second, first)
    assert sorted((p.name, p.read_bytes()) for p in out.rglob("*") if p.is_file()) == before  # nothing was lost


def test_a_trial_that_will_not_go_on_is_dropped_for_good_and_a_finished_one_is_refused(tmp_path):
    """Seed 2 began on a machine that went away (2 of 3 evaluations) and runs again elsewhere: dropped,
    it leaves the compact form with its record in dropped.json, and adding that machine's part again
    does not bring it back. A finished trial or an unknown name is refused, and nothing changes."""
    from ddpgx.sweeps import load_spec

    spec = load_spec(SPLIT_SCREEN)
    gone = split_screen(tmp_path / "gone", "screen")
    (gone / "spec.json").write_text(json.dumps(spec.to_json()))
    out = tmp_path / "compact" / "screen"
    compact.compact(gone, out)
    assert [r["step"] for r in compact.trials(out)] == [STEPS[-1], STEPS[1]]
    before = sorted((p.name, p.read_bytes()) for p in out.rglob("*") if p.is_file())
    for names, message in ((["p_00000"], "has finished"), (["p_00001", "p_00009"], "has no trial 'p_00009'")):
        with pytest.raises(ConfigError, match=message):
            compact.drop(out, names)
    assert sorted((p.name, p.read_bytes()) for p in out.rglob("*") if p.is_file()) == before

    (out / "results.md").write_text("the sweep's own report\n")
    assert compact.drop(out, ["p_00001"]) == 3
    assert (out / "results.md").read_text() == "the sweep's own report\n"
    assert [r["trial"] for r in compact.trials(out)] == ["p_00000"]
    record = json.loads((out / "dropped.json").read_text())["p_00001"]
    assert (record["first_seed"], record["reached_step"]) == (2, STEPS[1])
    assert compact.add(gone, out) == (3, 1)  # p_00000 again (level: the added one), p_00001 left out
    assert [r["trial"] for r in compact.trials(out)] == ["p_00000"]
    assert "p_00001" in json.loads((out / "dropped.json").read_text())
    done = subprocess.run([sys.executable, str(BENCHMARKS / "compact.py"), str(out), "--drop", "p_00000"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and done.stderr.strip().splitlines()[-1].startswith("error: trial p_00000 has finished")


@pytest.mark.slow
def test_report_from_the_compact_form_equals_the_report_from_the_full_one(sweeps, tmp_path):
    full = sweeps[0]
    small = compact.compact(full, tmp_path / "compact" / full.name)
    assert small > 0
    outputs = []
    for sweep in (full, tmp_path / "compact" / full.name):
        out = tmp_path / f"report-{sweep.parent.name}"
        done = subprocess.run([sys.executable, str(BENCHMARKS / "report.py"), str(sweep), "--out", str(out)],
                              capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        outputs.append(out)
    lines = [(out / "returns.md").read_text().splitlines() for out in outputs]
    assert [x for x, y in zip(*lines) if x != y and not x.startswith(("Command:", "Report:"))] == []
    assert "| default | actor_lr=0.001 | ddpgx | 3 | 3000.0 |" in "\n".join(lines[0])
    for name in ("curves_HalfCheetah-v5.png", "curves_Hopper-v5.png"):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes()


# ----------------------------------------------------------------------------- the budgets


def test_budget_tables_mark_references_reached_and_not_reached(sweeps, references, tmp_path):
    dirs = [tmp_path / "compact" / s.name for s in sweeps]
    for full, small in zip(sweeps, dirs):
        compact.compact(full, small)
    rows, _ = budgets.sweep_rows(dirs)
    tables = budgets.task_tables(rows, budgets.read_references(references), [100_000, 300_000, 1_000_000])
    cheetah = {t["budget"]: t for t in tables["HalfCheetah-v5"]["tables"]}
    assert sorted(cheetah) == [100_000, 300_000, 1_000_000]
    at_100k = {e["trial"]: e for e in cheetah[100_000]["rows"]}
    assert at_100k["a_00000"]["mean"] == pytest.approx(1000.0)
    assert at_100k["a_00000"]["per_seed"] == [900.0, 1100.0, 1000.0]
    assert (at_100k["a_00000"]["worst"], at_100k["a_00000"]["best"]) == (900.0, 1100.0)
    assert [(m["source"], m["reached"]) for m in at_100k["a_00000"]["references"]] == [("Lib A", True)]
    assert at_100k["a_00000"]["references"][0]["difference"] == pytest.approx(1.0)
    # the running trial has all the seeds it has begun at 100,000 but not its third
    assert at_100k["b_00000"]["status"] == "not reached yet: step 200,000 of 1,000,000; 2 of 3 seeds evaluated"
    at_300k = {e["trial"]: e for e in cheetah[300_000]["rows"]}
    assert at_300k["a_00000"]["mean"] == pytest.approx(3000.0)
    assert [(m["source"], m["reached"]) for m in at_300k["a_00000"]["references"]] == [("Lib A", False),
                                                                                         ("Lib B", True)]
    # only the trial that runs to 1,000,000 is in that table; the other is named as stopping short
    assert [e["trial"] for e in cheetah[1_000_000]["rows"]] == ["b_00000"]
    assert cheetah[1_000_000]["rows"][0]["status"].startswith("not reached yet: step 200,000 of 1,000,000")
    assert tables["HalfCheetah-v5"]["short"] == [{"budget": 1_000_000, "trials": ["done/a_00000 (300,000)"]}]
    hopper = {t["budget"]: t for t in tables["Hopper-v5"]["tables"]}
    assert sorted(hopper) == [100_000, 300_000]  # nothing runs to 1,000,000 on Hopper
    (one,) = hopper[300_000]["rows"]
    assert one["per_seed"] == [1300.0] and one["references"][0]["reached"]  # equal counts as reached


def test_overview_puts_each_setting_across_the_tasks_beside_the_best_ddpg_reference_and_td3(sweeps):
    def ref(source, algorithm, task, steps, value):
        return {"source": source, "algorithm": algorithm, "task": task, "env_version": "v3", "seeds": 10,
                "env_steps": steps, "source_axis_step": steps, "value": value}

    refs = [ref("Lib A", "DDPG", "HalfCheetah", 300_000, 2900.0), ref("Lib B", "DDPG", "HalfCheetah", 300_000, 3001.0),
            ref("TD3", "TD3", "HalfCheetah", 300_000, 2000.0), ref("Lib A", "DDPG", "Hopper", 300_000, 1300.0),
            ref("TD3", "TD3", "Hopper", 300_000, 1500.0), ref("Lib A", "DDPG", "HalfCheetah", 100_000, 900.0)]
    rows, _ = budgets.sweep_rows(list(sweeps))
    tables = budgets.task_tables(rows, refs, [100_000, 300_000])
    views = {v["budget"]: v for v in budgets.overview(tables, [100_000, 300_000])}
    at_300k = views[300_000]
    assert at_300k["tasks"] == ["HalfCheetah-v5", "Hopper-v5"]
    assert at_300k["goals"]["HalfCheetah-v5"]["ddpg"]["source"] == "Lib B"  # the best of the DDPG references
    assert at_300k["goals"]["HalfCheetah-v5"]["td3"]["value"] == 2000.0
    # the running trial has no value at 300,000 yet; the two finished ones differ in their setting
    hopper, cheetah = at_300k["rows"]  # sorted by setting
    assert (cheetah["preset"], cheetah["setting"], list(cheetah["cells"])) == ("default", "actor_lr=0.001",
                                                                               ["HalfCheetah-v5"])
    assert cheetah["cells"]["HalfCheetah-v5"]["mean"] == pytest.approx(3000.0)
    assert (hopper["setting"], list(hopper["cells"])) == ("", ["Hopper-v5"])
    table = "\n".join(budgets.overview_lines([at_300k]))
    assert "| best DDPG reference | | | 3001.0 (Lib B, v3) | 1300.0 (Lib A, v3) |" in table
    assert "| TD3's curve | | | 2000.0 (TD3, v3) | 1500.0 (TD3, v3) |" in table
    # below the best DDPG reference on HalfCheetah and above TD3 there; equal to the reference on
    # Hopper (at or above: bold) and below TD3
    assert "| default | actor_lr=0.001 | ddpgx | 3000.0 + (3 seeds) | - |" in table
    assert "| default | - | ddpgx | - | **1300.0** (1 seed) |" in table
    # at 100,000 the running trial has 2 of its 3 seeds evaluated: no mean to show yet
    assert {r["preset"] for r in views[100_000]["rows"]} == {"default"}


def test_goal_table_gives_each_task_and_budget_its_statistics_beside_the_best_ddpg_reference_and_td3(sweeps):
    refs = [{"source": s, "algorithm": a, "task": t, "env_version": "v3", "seeds": 10, "env_steps": n,
             "source_axis_step": n, "value": v}
            for s, a, t, n, v in [("Lib A", "DDPG", "HalfCheetah", 300_000, 2900.0),
                                  ("Lib B", "DDPG", "HalfCheetah", 300_000, 3001.0),
                                  ("TD3", "TD3", "HalfCheetah", 300_000, 2000.0),
                                  ("Lib A", "DDPG", "Hopper", 100_000, 301.0)]]
    rows, _ = budgets.sweep_rows(list(sweeps))
    tables = budgets.task_tables(rows, refs, [100_000, 300_000])
    lines = budgets.goal_lines(budgets.overview(tables, [100_000, 300_000]))
    body = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    # task by task, then budget; the running trial has no value anywhere yet (2 of its 3 seeds at
    # 100,000)
    assert [line.split(" | ")[:3] for line in body] == [["| HalfCheetah-v5", "100,000", "default"],
                                                        ["| HalfCheetah-v5", "300,000", "default"],
                                                        ["| Hopper-v5", "100,000", "default"],
                                                        ["| Hopper-v5", "300,000", "default"]]
    _, cheetah, hopper, _ = body
    assert body[0].endswith("| 900.0 | 1100.0 | - | - |")  # no reference at that step: nothing to meet
    # seeds 2900, 3100, 3000: below the best DDPG reference (Lib B's, not Lib A's), above TD3
    assert cheetah.startswith("| HalfCheetah-v5 | 300,000 | default | actor_lr=0.001 | ddpgx | 3 | 3000.0 | [")
    assert cheetah.endswith("| 3000.0 | 2900.0 | 3100.0 | 3001.0 (Lib B, v3): not reached (-1.0) | "
                            "2000.0 (TD3, v3): reached (+1000.0) |")
    assert hopper.endswith("| 300.0 | 300.0 | 300.0 | 301.0 (Lib A, v3): not reached (-1.0) | - |")
    assert budgets.goal_lines([]) == []


def test_a_reference_that_averages_several_evaluations_is_compared_with_the_same_mean(sweeps, tmp_path):
    """As "Our DDPG" (the mean of the evaluations from 955,000 to 1,000,000 steps): the trial's seeds are
    each averaged over the same window, and that, not the value at the budget, meets the reference."""
    refs = [{"source": "Window", "algorithm": "DDPG", "task": "HalfCheetah", "env_version": "v1", "seeds": 10,
             "env_steps": 300_000, "source_axis_step": 300_000, "window_start": 200_000, "value": 2500.0,
             "statistic": "mean of the evaluations from 200,000 steps"},
            {"source": "TD3", "algorithm": "TD3", "task": "HalfCheetah", "env_version": "v1", "seeds": 10,
             "env_steps": 300_000, "source_axis_step": 300_000, "value": 2999.0, "statistic": "mean"}]
    rows, _ = budgets.sweep_rows(list(sweeps))
    tables = budgets.task_tables(rows, refs, [300_000])
    (table,) = tables["HalfCheetah-v5"]["tables"]
    trial = next(e for e in table["rows"] if e["trial"] == "a_00000")
    assert trial["mean"] == pytest.approx(3000.0)  # the value at 300,000 would pass 2500
    window, td3 = trial["references"]
    # seeds (1500 + 2900) / 2, (1600 + 3100) / 2, (1700 + 3000) / 2
    assert window["ours"] == pytest.approx(2300.0) and window["window"] == [200_000, 300_000]
    assert not window["reached"] and window["difference"] == pytest.approx(-200.0)
    assert td3["window"] is None and td3["reached"] and td3["ours"] == pytest.approx(3000.0)
    assert "not reached (-200.0: 2300.0 over 200,000 to 300,000) | reached (+1.0) |" in "\n".join(
        budgets.markdown(tables, [300_000]))
    text = "\n".join(budgets.overview_lines(budgets.overview(tables, [300_000])))
    assert "| default | actor_lr=0.001 | ddpgx | 3000.0 [2300.0] + (3 seeds) |" in text
    assert "In brackets: the mean over the evaluations that the best DDPG reference averages (Window, 200,000 " \
           "to 300,000 steps)" in text
    # the CSV's column; a CSV without it holds single evaluations
    path = tmp_path / "refs.csv"
    path.write_text("source,task,env_version,seeds,env_steps,source_axis_step,window_start,value\n"
                    "A,Ant,v1,10,1000000,1000000,955000,564.07\nB,Ant,v3,10,100000,75000,,-313.2\n")
    assert [r["window_start"] for r in budgets.read_references(path)] == [955_000, 100_000]
    assert {r["window_start"] for r in budgets.read_references(budgets.REFERENCES)
            if r["source"].startswith("Our DDPG")} == {955_000}


def test_a_trial_past_a_budget_without_an_evaluation_there_says_so(tmp_path):
    trial = {"id": "c_00000", "task": "Hopper-v5", "preset": "default", "seeds": 2, "first_seed": 1,
             "total_steps": 120_000, "evals": {s: curve([60_000, 120_000], [1.0, 2.0]) for s in (1, 2)}}
    rows, _ = budgets.sweep_rows([write_sweep(tmp_path, "odd", [trial])])
    (table,) = budgets.task_tables(rows, [], [100_000])["Hopper-v5"]["tables"]
    assert table["rows"][0]["status"] == "no evaluation at 100,000 (evaluated every 5,000 steps)"


def test_a_preset_with_values_per_task_is_read_from_the_sweeps_that_ran_each_task(tmp_path):
    """`--preset mujoco`: the trials whose config is the preset's for their task, whichever preset their spec
    named, pooled over sweeps; a run continued to a larger budget (an unread schedule length) counts."""
    cheetah = dict(actor_lr=1e-3, critic_lr=1e-3, learning_starts=25_000, gradient_steps=2)
    slow = {"id": "s_00000", "task": "Hopper-v5", "preset": "modern", "seeds": 1, "first_seed": 2,
            "total_steps": 300_000, "fields": {"actor_lr": 1e-4}, "evals": {2: curve(STEPS, [1.0, 2.0, 3.0])}}
    not_it = {"id": "s_00001", "task": "HalfCheetah-v5", "preset": "modern", "seeds": 1, "first_seed": 2,
              "total_steps": 300_000, "fields": {"actor_lr": 1e-4}, "evals": {2: curve(STEPS, [9.0, 9.0, 9.0])}}
    continued = {"id": "p_00000", "task": "HalfCheetah-v5", "preset": "default", "seeds": 1, "first_seed": 1,
                 "total_steps": 300_000, "fields": {**cheetah, "noise_decay_steps": 100_000},
                 "evals": {1: curve(STEPS, [10.0, 20.0, 30.0])}}
    other_seed = {**continued, "id": "p_00001", "first_seed": 2, "fields": cheetah,
                  "evals": {2: curve(STEPS, [30.0, 40.0, 50.0])}}
    lever = {**other_seed, "id": "p_00002", "fields": {**cheetah, "obs_norm": True}}
    sweeps = [write_sweep(tmp_path, "slow", [slow, not_it]), write_sweep(tmp_path, "plain", [continued, other_seed, lever])]
    rows, _ = budgets.preset_rows(sweeps, "mujoco")
    assert [(r["task"], r["preset"], r["sweep"], r["trial"], r["seeds"]) for r in rows] == [
        ("HalfCheetah-v5", "mujoco", "plain", "p_00000+p_00001", 2), ("Hopper-v5", "mujoco", "slow", "s_00000", 1)]
    (table, *_) = budgets.task_tables(rows, [], [300_000])["HalfCheetah-v5"]["tables"]
    assert table["rows"][0]["per_seed"] == [30.0, 50.0] and table["rows"][0]["mean"] == 40.0
    twice = write_sweep(tmp_path, "again", [{**other_seed, "id": "q_00000"}])
    with pytest.raises(SystemExit, match="HalfCheetah-v5: seed\\(s\\) 2 run the mujoco preset in more than one trial"):
        budgets.preset_rows([*sweeps, twice], "mujoco")
    with pytest.raises(SystemExit, match="no trial of .* runs the td3-paper preset's config"):
        budgets.preset_rows(sweeps, "td3-paper")
    # --seeds: a seed that has only begun (here 1, at 100,000 of 300,000) is left out on request
    begun = {**continued, "id": "r_00000", "task": "Hopper-v5", "fields": {"actor_lr": 1e-4}, "preset": "modern",
             "evals": {1: curve([100_000], [7.0])}}
    sweeps.append(write_sweep(tmp_path, "begun", [begun]))
    rows, _ = budgets.preset_rows(sweeps, "mujoco")
    hopper = next(r for r in rows if r["task"] == "Hopper-v5")
    assert hopper["seeds"] == 2 and budgets.task_tables([hopper], [], [300_000])["Hopper-v5"]["tables"][0][
        "rows"][0]["status"].startswith("not reached yet: step 100,000")
    rows, _ = budgets.preset_rows(sweeps, "mujoco", seeds={2})
    assert [(r["task"], r["trial"], r["seeds"]) for r in rows] == [
        ("HalfCheetah-v5", "p_00001", 1), ("Hopper-v5", "s_00000", 1)]
    (table, *_) = budgets.task_tables(rows, [], [300_000])["Hopper-v5"]["tables"]
    assert table["rows"][0]["per_seed"] == [3.0]
    both = write_sweep(tmp_path, "both", [{**slow, "id": "t_00000", "seeds": 2, "first_seed": 3,
                                            "evals": {s: curve(STEPS, [1.0, 2.0, 3.0]) for s in (3, 4)}}])
    with pytest.raises(SystemExit, match="both/t_00000 runs seeds 3, 4, not all of them in --seeds"):
        budgets.preset_rows([both], "mujoco", seeds={3})
    with pytest.raises(SystemExit, match="with the seeds given"):
        budgets.preset_rows(sweeps, "mujoco", seeds={9})


@pytest.mark.slow
def test_budgets_report_writes_tables_and_pictures_for_a_running_sweep(sweeps, references, tmp_path):
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "budgets.py"), *map(str, sweeps), "--references",
                           str(references), "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    text = (out / "budgets.md").read_text()
    assert "#### HalfCheetah-v5 at 300,000 steps" in text
    assert "| best | Lib A, v3, 10 seeds: 3001.0 | Lib B, v3, 10 seeds: 2500.0 |\n" in text
    assert "| 3100.0 | not reached (-1.0) | reached (+500.0) |\n" in text
    assert "| extended | - | ddpgx | 3 | not reached yet: step 200,000 of 1,000,000; 2 of 3 seeds evaluated |" in text
    assert "Not run to 1,000,000 steps: done/a_00000 (300,000)." in text
    assert f"References: `{references}`" in text  # outside the repository: as given
    assert budgets.shown_path(budgets.REFERENCES) == "benchmarks/references/mujoco_ddpg.csv"  # no machine's path
    saved = json.loads((out / "budgets.json").read_text())
    assert saved["budgets"] == [100_000, 300_000, 1_000_000]
    for task in ("HalfCheetah-v5", "Hopper-v5"):
        assert (out / f"budgets_{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_picture_shows_how_far_each_seed_has_come_and_keeps_a_long_legend_off_the_curves(tmp_path, monkeypatch):
    """The mean and band of a trial of several seeds stop where its slowest seed is; each seed's whole
    curve is drawn too, so a seed that has run further is seen. A legend of many entries goes below
    the axes."""
    trial = {"id": "r_00000", "task": "Hopper-v5", "preset": "default", "seeds": 2, "first_seed": 1,
             "total_steps": 1_000_000, "evals": {1: curve([5_000, 10_000, 15_000], [1.0, 2.0, 7.0]),
                                                 2: curve([5_000], [3.0])}}
    rows, _ = budgets.sweep_rows([write_sweep(tmp_path, "running", [trial])])
    refs = [{"source": f"Lib {k}", "library": f"Lib {k}", "env_version": "v3", "seeds": 10, "env_steps": 1_000_000,
             "value": float(k)} for k in range(6)]
    drawn = {}
    finish = budgets.finish_figure

    def keep(plt, fig, axes, titles, out, **kw):
        drawn["lines"] = [(line.get_label(), list(line.get_xdata()), list(line.get_ydata())) for line in axes[0].lines]
        result = finish(plt, fig, axes, titles, out, **kw)
        legend, box = axes[0].get_legend(), axes[0].get_position()
        drawn["legend_top"] = legend.get_window_extent().transformed(fig.transFigure.inverted()).y1
        drawn["axes_bottom"] = box.y0
        return result

    monkeypatch.setattr(budgets, "finish_figure", keep)
    out = budgets.plot("Hopper-v5", rows, refs, [100_000], tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mean = [line for line in drawn["lines"] if line[0].endswith("(2 seeds)")]
    assert [(x, y) for _, x, y in mean] == [([5_000], [2.0])]
    seeds = [(x, y) for label, x, y in drawn["lines"] if label.startswith("_")]
    assert ([5_000, 10_000, 15_000], [1.0, 2.0, 7.0]) in seeds and ([5_000], [3.0]) in seeds
    assert drawn["legend_top"] < drawn["axes_bottom"]  # 1 trial + 6 references: below the axes


def test_budgets_report_refuses_a_file_that_is_not_a_references_csv(sweeps, tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    done = subprocess.run([sys.executable, str(BENCHMARKS / "budgets.py"), str(sweeps[0]), "--references", str(wrong),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0 and "is it a references CSV?" in done.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- the references


def test_references_csv_puts_every_source_on_the_environment_step_axis():
    refs = budgets.read_references(budgets.REFERENCES)
    keys = [(r["source"], r["task"], r["env_steps"]) for r in refs]
    assert len(keys) == len(set(keys))
    assert all(r["statistic"] and r["url_or_path"] and r["env_version"] for r in refs)
    tianshou = [r for r in refs if r["source"] == "Tianshou DDPG"]
    # Tianshou's trainer counts from 0 after its 25,000 random steps
    assert tianshou and all(r["env_steps"] == r["source_axis_step"] + 25_000 for r in tianshou)
    assert all(r["env_steps"] == r["source_axis_step"] for r in refs if r["source"] != "Tianshou DDPG")
    for source in ("Tianshou DDPG", "TD3 (Fujimoto et al. 2018)"):
        for task in ("HalfCheetah", "Hopper", "Walker2d", "Ant"):
            assert {r["env_steps"] for r in refs if (r["source"], r["task"]) == (source, task)} >= set(budgets.BUDGETS)


def test_curve_arrays_keep_the_steps_every_seed_reached():
    row = {"several": True, "curves": [(1, [{"step": 5.0, "mean_return": 1.0}, {"step": 10.0, "mean_return": 3.0}]),
                                       (2, [{"step": 5.0, "mean_return": 2.0}])]}
    steps, returns = compact.curve_arrays(row)
    np.testing.assert_array_equal(steps, [5.0])
    np.testing.assert_array_equal(returns, [[1.0], [2.0]])
    steps, returns = compact.curve_arrays({**row, "several": False, "curves": row["curves"][:1]})
    np.testing.assert_array_equal(returns, [1.0, 3.0])


def test_references_per_seed_average_to_the_references_means():
    """tianshou_ddpg_seeds.csv is the same files' seed columns: at every step both hold, the mean of
    the 10 seeds is mujoco_ddpg.csv's value (rounded as Tianshou wrote it)."""
    seeds = repro.read_seeds(repro.SEEDS_CSV)
    refs = [r for r in budgets.read_references(budgets.REFERENCES) if r["source"] == "Tianshou DDPG"]
    assert set(seeds) == {"HalfCheetah", "Hopper", "Walker2d", "Ant"}
    for r in refs:
        at = seeds[r["task"]][r["env_steps"]]
        assert len(at["values"]) == 10 and at["source_axis_step"] == r["source_axis_step"]
        assert np.mean(at["values"]) == pytest.approx(r["value"], abs=1e-3)
    assert all(min(steps) == 25_000 and max(steps) == 1_025_000 and len(steps) == 201 for steps in seeds.values())


# ----------------------------------------------------------------------------- the reproduction


def test_mean_difference_interval_holds_zero_for_the_same_scores_and_not_for_shifted_ones():
    theirs = np.linspace(900.0, 1100.0, 10)
    same, (low, high) = mean_difference([990.0, 1000.0, 1010.0], theirs)
    assert same == pytest.approx(0.0) and low < 0 < high
    shifted, (low, high) = mean_difference([490.0, 500.0, 510.0], theirs)
    assert shifted == pytest.approx(-500.0) and low <= -500 + 100 and high < 0 and low < shifted < high
    assert mean_difference([490.0, 500.0, 510.0], theirs) == (shifted, (low, high))  # seeded: the same interval


def reference_seeds(path: Path, task: str, rows: dict[int, list[float]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "env_version", "env_steps", "source_axis_step", *(f"seed_{i}" for i in range(10))])
        for step, values in rows.items():
            writer.writerow([task, "v3", step, step - 25_000, *values])
    return path


def test_repro_compares_at_steps_every_seed_and_the_source_evaluated(tmp_path):
    spread = list(np.linspace(900.0, 1100.0, 10))
    refs = reference_seeds(tmp_path / "seeds.csv", "HalfCheetah",
                           {25_000: spread, 50_000: spread, 75_000: [v + 2000 for v in spread], 100_000: spread})
    trial = {"id": "t_00000", "task": "HalfCheetah-v5", "preset": "default", "seeds": 3, "first_seed": 1,
             "total_steps": 100_000,
             "evals": {1: curve([25_000, 50_000, 75_000], [1000.0, 990.0, 1000.0]),
                       2: curve([25_000, 50_000, 75_000], [1010.0, 1000.0, 1010.0]),
                       3: curve([25_000, 50_000], [990.0, 1010.0])}}  # its third seed not yet at 75,000
    sweep = write_sweep(tmp_path, "repro", [trial])
    row = compact.trials(sweep)[0]
    points = repro.compare(row, repro.read_seeds(refs)["HalfCheetah"])
    assert [p["env_steps"] for p in points] == [25_000, 50_000]
    assert [p["verdict"] for p in points] == ["level", "level"]
    assert points[1]["per_seed"] == [990.0, 1000.0, 1010.0] and points[1]["source_axis_step"] == 25_000
    far = {**row, "curves": [(s, [{**e, "mean_return": e["mean_return"] - 800} for e in evals])
                             for s, evals in row["curves"]]}
    assert [p["verdict"] for p in repro.compare(far, repro.read_seeds(refs)["HalfCheetah"])] == ["below", "below"]
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "repro.py"), str(sweep), "--seeds-csv", str(refs),
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    text = (out / "repro.md").read_text()
    assert "2 steps compared (25,000 to 50,000): level at 2, below at 0, above at 0." in text
    assert "| 50,000 | 25,000 | 1000.0 | 990.0 / 1000.0 / 1010.0 | 1000.0 | 900.0 to 1100.0 |" in text
    assert (out / "repro_HalfCheetah-v5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, str(BENCHMARKS / "repro.py"), str(sweep), "--seeds-csv",
                          str(budgets.REFERENCES), "--out", str(tmp_path / "bad")], capture_output=True, text=True,
                         cwd=ROOT)
    assert bad.returncode != 0 and "is not a per-seed references CSV" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def seed_blocks(task: str, values: dict[int, list[float]], fields: dict | None = None, tag: str = "s") -> list[dict]:
    """One one-seed trial per seed, a spec's `first_seed: [1, 2, 3]` (as the SB3 sweeps split seeds)."""
    return [{"id": f"{tag}_{k:05d}", "task": task, "preset": "default", "seeds": 1, "first_seed": seed,
             "total_steps": 50_000, "fields": fields or {}, "evals": {seed: curve([25_000, 50_000], v)}}
            for k, (seed, v) in enumerate(values.items())]


def test_trials_split_into_seed_blocks_are_read_as_one(tmp_path):
    """Trials that differ only in their first seed are one row of all their seeds, in seed order; a
    trial of another setting stays a row of its own, and so does an unfinished block's progress."""
    blocks = seed_blocks("Hopper-v5", {3: [30.0, 300.0], 1: [10.0, 100.0], 2: [20.0, 200.0]})
    blocks[0]["evals"][3] = curve([25_000], [30.0])  # seed 3 not yet at 50,000
    other = seed_blocks("Hopper-v5", {1: [1.0, 2.0]}, fields={"actor_lr": 1e-3}, tag="o")
    sweep = write_sweep(tmp_path, "blocks", blocks + other, trainable="../../sb3_trainable.py:train")
    rows, _ = budgets.sweep_rows([sweep])
    assert len(rows) == 2
    pooled = next(r for r in rows if not r["setting"])
    assert pooled["trial"] == "s_00001+s_00002+s_00000" and pooled["seeds"] == 3 and pooled["several"]
    assert [seed for seed, _ in pooled["curves"]] == [1, 2, 3] and pooled["library"] == "SB3 DDPG"
    assert pooled["final_returns"] == [100.0, 200.0, 30.0] and pooled["step"] == 25_000
    assert next(r for r in rows if r["setting"])["seeds"] == 1


def test_repro_against_another_sweep_and_the_source_against_itself(tmp_path):
    """--against reads the source's seeds from a sweep (its seed blocks pooled); --null-draws compares
    the source with itself, every set of as many of its seeds as the trial has against the others."""
    ours = write_sweep(tmp_path, "ours", seed_blocks("Hopper-v5", {1: [0.0, 0.0], 2: [0.0, 0.0]}, tag="a"))
    theirs = write_sweep(tmp_path, "theirs", seed_blocks("Hopper-v5", {1: [0.0, 0.0], 2: [0.0, 0.0], 3: [0.0, 0.0],
                                                                       4: [1000.0, 1000.0]}, tag="b"),
                         trainable="../../sb3_trainable.py:train")
    source, references = repro.sweep_reference(theirs)
    assert source == "SB3 DDPG (theirs)" and references["Hopper"][50_000]["values"] == [0.0, 0.0, 0.0, 1000.0]
    # one seed of four against the other three: only the seed at 1000 reads above, at both steps
    null = repro.null_draws(references["Hopper"], [25_000, 50_000], k=1, draws=10)
    assert (null["draws"], null["others"]) == (4, 3) and null["below"] == [0, 0, 0, 0]
    assert null["above"] == [0, 0, 0, 2]
    assert repro.null_draws(references["Hopper"], [25_000, 50_000], k=2, draws=3)["draws"] == 3  # of 6 sets
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "repro.py"), str(ours), "--against", str(theirs),
                           "--null-draws", "10", "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    text = (out / "repro.md").read_text()
    assert "SB3 DDPG (theirs)'s seeds from the sweep" in text
    assert "| environment steps | mean | seeds | SB3 DDPG (theirs) mean (4 seeds) |" in text  # one step axis
    assert "2 steps compared (25,000 to 50,000): level at 2, below at 0, above at 0." in text
    assert ("The source against itself (6 draws of 2 of its seeds against the other 2, at the same 2 steps): "
            "below at a median of 0 steps (at least 0 in 6 of 6 draws)") in text
    bad = subprocess.run([sys.executable, str(BENCHMARKS / "repro.py"), str(ours), "--against", str(theirs),
                          "--null-draws", "-1", "--out", str(tmp_path / "bad")], capture_output=True, text=True,
                         cwd=ROOT)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "--null-draws -1" in bad.stderr


def test_untrained_returns_are_those_of_the_actors_runs_start_from(tmp_path):
    """benchmarks/untrained.py evaluates, for seed i, the actor a run with seed i starts from: its
    values equal the final evaluation of a one-step run of that seed alone (no update made)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import untrained
    finally:
        sys.path.remove(str(BENCHMARKS))
    returns = untrained.untrained_returns("Pendulum-v1", "default", 2, 2, tmp_path / "all")
    for seed in (0, 1):
        config = ddpgx.from_preset("default", "Pendulum-v1", seed=seed, total_steps=1, eval_episodes=2, eval_every=0,
                                   checkpoint_every=0, tensorboard=False)
        alone = ddpgx.train(config, tmp_path / f"seed{seed}", progress=False, print_fn=lambda _: None)
        assert returns[seed] == pytest.approx(np.mean(alone.final_returns), rel=1e-5)
    assert returns[0] != returns[1]
