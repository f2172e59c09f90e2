"""A reproduction of a published curve, read seed by seed: does ddpgx, run with the source's settings,
land on the source's curve within the spread between seeds?

    python benchmarks/repro.py SWEEP_DIR... [--seeds-csv benchmarks/references/tianshou_ddpg_seeds.csv]
        [--against SWEEP_DIR] [--null-draws N] [--every 25000] [--out benchmarks/results/repro]

A SWEEP_DIR is a sweep as `ddpgx sweep` wrote it or its compact form, finished or still running. The
seeds CSV holds the source's runs one by one: a row per task and environment step (`env_steps`,
every step counted, the random warm-up included; `source_axis_step`, the step as the source labels
it), a `seed_<i>` column per seed. At every step where each seed of a trial and the source have an
evaluation, the mean over ddpgx's seeds is compared with the mean over the source's: their
difference, with a 95% interval from resampling each set of seeds on its own (rliable, through
ddpgx.stats). The difference is "level" where the interval holds 0, "below" or "above" where it
lies on one side; the summary counts the steps of each kind. The table shows every `--every` steps.

`--against SWEEP_DIR` reads the source's seeds from another sweep instead (one setting per task, its
trials of split seed blocks pooled): the same algorithm in other code, run here.

How many steps would read below or above by chance? `--null-draws N` compares the source with
itself: N sets of as many of its seeds as the trial has (all the sets, if there are no more than N),
each set against the source's other seeds at every step the trial was compared at, with the same
interval. Each draw counts its steps below and above; the report gives the counts' median and how
many draws had at least as many steps below (and above) as the trial. The source's own seeds are
one sample of its code: where the trial's counts are common among the draws, they are no evidence
of a difference. With few seeds the percentile interval is narrower than 95% coverage asks, and
the draws measure how much.

Writes repro.md, repro.json and repro_<task>.png (ddpgx's curve and the source's, each as the mean
over seeds with the band from the worst to the best seed) to --out.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from budgets import check_sweep_dirs, shown_path, sweep_rows, task_name
from compact import curve_arrays
from host import machine
from report import _provenance

from ddpgx.plot import plot_curves
from ddpgx.stats import mean_difference

ROOT = Path(__file__).resolve().parent
SEEDS_CSV = ROOT / "references" / "tianshou_ddpg_seeds.csv"
SOURCE = "Tianshou DDPG"


def read_seeds(path: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """task -> environment step -> {"source_axis_step", "env_version", "values" (one per seed)}."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"task", "env_steps", "source_axis_step"} <= set(rows[0]) or \
            not any(k.startswith("seed_") for k in rows[0]):
        raise ValueError(f"{path} is not a per-seed references CSV (task, env_steps, source_axis_step, seed_0, ...)")
    seeds = sorted((k for k in rows[0] if k.startswith("seed_")), key=lambda k: int(k.removeprefix("seed_")))
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["task"], {})[int(row["env_steps"])] = {
            "source_axis_step": int(row["source_axis_step"]), "env_version": row.get("env_version", ""),
            "values": [float(row[k]) for k in seeds if row[k] not in ("", None)]}
    return out


def every_seed_at(trial: dict[str, Any]) -> dict[int, list[float]]:
    """The steps at which each of the trial's seeds was evaluated, with their returns in seed order
    (none while a seed has no evaluation yet)."""
    evaluated = [{int(e["step"]): e["mean_return"] for e in evals} for _, evals in trial["curves"]]
    if not evaluated or len(evaluated) < trial["seeds"]:
        return {}
    return {step: [e[step] for e in evaluated] for step in sorted(set.intersection(*(set(e) for e in evaluated)))}


def sweep_reference(sweep_dir: Path) -> tuple[str, dict[str, dict[int, dict[str, Any]]]]:
    """A sweep as the source: its library and name, and per task the seeds' evaluations as
    `read_seeds` gives a seeds CSV's (one trial per task; trials of split seed blocks pooled)."""
    rows, _ = sweep_rows([sweep_dir])
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        task = task_name(r["task"])
        if task in out:
            raise ValueError(f"{sweep_dir} has more than one setting on {r['task']}: give a sweep with one per task")
        at = every_seed_at(r)
        if at:
            out[task] = {step: {"source_axis_step": step, "env_version": r["task"].rpartition("-")[2],
                                "values": values} for step, values in at.items()}
    if not out:
        raise ValueError(f"{sweep_dir} has no trial whose seeds have all been evaluated")
    return f"{rows[0]['library']} ({Path(sweep_dir).name})", out


def compare(trial: dict[str, Any], reference: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """At every step where all of the trial's seeds and the reference were evaluated: both means, the
    reference's seeds, the difference with its interval, and where it lies."""
    points = []
    for step, ours in every_seed_at(trial).items():
        if step not in reference:
            continue
        theirs = reference[step]["values"]
        difference, (low, high) = mean_difference(ours, theirs)
        points.append({"env_steps": step, "source_axis_step": reference[step]["source_axis_step"],
                       "per_seed": ours, "mean": float(np.mean(ours)), "reference_mean": float(np.mean(theirs)),
                       "reference_worst": min(theirs), "reference_best": max(theirs),
                       "reference_seeds": len(theirs), "difference": difference, "interval": (low, high),
                       "verdict": "below" if high < 0 else "above" if low > 0 else "level"})
    return points


def null_draws(reference: dict[int, dict[str, Any]], steps: list[int], k: int, draws: int,
               seed: int = 0) -> dict[str, Any]:
    """The source against itself at `steps`: `draws` sets of k of its seeds (all the sets if there
    are no more), each compared with the source's other seeds as `compare` compares a trial; per
    draw, the number of steps below and above."""
    steps = [s for s in steps if len(reference[s]["values"]) == len(reference[steps[0]]["values"])]
    n = len(reference[steps[0]]["values"])
    if not 0 < k < n:
        return {}
    every = list(itertools.combinations(range(n), k))
    rng = np.random.default_rng(seed)
    chosen = every if len(every) <= draws else [every[i] for i in sorted(rng.choice(len(every), draws, replace=False))]
    below, above = [], []
    for subset in chosen:
        inside = np.isin(np.arange(n), subset)
        verdicts = []
        for step in steps:
            values = np.asarray(reference[step]["values"])
            _, (low, high) = mean_difference(values[inside], values[~inside])
            verdicts.append("below" if high < 0 else "above" if low > 0 else "level")
        below.append(verdicts.count("below"))
        above.append(verdicts.count("above"))
    return {"draws": len(chosen), "k": k, "others": n - k, "steps": len(steps), "below": below, "above": above}


def null_summary(null: dict[str, Any], points: list[dict[str, Any]]) -> str:
    ours = {v: sum(p["verdict"] == v for p in points) for v in ("below", "above")}
    at_least = {v: sum(c >= ours[v] for c in null[v]) for v in ("below", "above")}
    return (f"The source against itself ({null['draws']} draws of {null['k']} of its seeds against the other "
            f"{null['others']}, at the same {null['steps']} steps): below at a median of "
            f"{np.median(null['below']):g} steps (at least {ours['below']} in {at_least['below']} of "
            f"{null['draws']} draws), above at a median of {np.median(null['above']):g} (at least "
            f"{ours['above']} in {at_least['above']} of {null['draws']})")


def summary(points: list[dict[str, Any]]) -> str:
    counts = {v: sum(p["verdict"] == v for p in points) for v in ("level", "below", "above")}
    return (f"{len(points)} steps compared ({points[0]['env_steps']:,} to {points[-1]['env_steps']:,}): "
            f"level at {counts['level']}, below at {counts['below']}, above at {counts['above']}")


def markdown(results: list[dict[str, Any]], every: int, source: str) -> list[str]:
    lines = []
    for r in results:
        lines += [f"### {r['task']}: {r['label']}", ""]
        if not r["points"]:
            lines += ["No step with an evaluation of every seed and of the reference yet.", ""]
            continue
        lines += [summary(r["points"]) + ".", ""]
        if r.get("null"):
            lines += [null_summary(r["null"], r["points"]) + ".", ""]
        relabeled = any(p["source_axis_step"] != p["env_steps"] for p in r["points"])  # a sweep's axis is ours
        label = f" {source}'s label |" if relabeled else ""
        lines += [f"| environment steps |{label} mean | seeds | {source} mean "
                  f"({r['reference_seeds']} seeds) | its worst to best seed | difference [95% interval] | |",
                  "| --- " * (7 + relabeled) + "|"]
        for p in r["points"]:
            if p["env_steps"] % every and p is not r["points"][-1]:
                continue
            seeds = " / ".join(f"{v:.1f}" for v in p["per_seed"])
            step = f" {p['source_axis_step']:,} |" if relabeled else ""
            lines.append(f"| {p['env_steps']:,} |{step} {p['mean']:.1f} | {seeds} | "
                         f"{p['reference_mean']:.1f} | {p['reference_worst']:.1f} to {p['reference_best']:.1f} | "
                         f"{p['difference']:+.1f} [{p['interval'][0]:+.1f}, {p['interval'][1]:+.1f}] | "
                         f"{p['verdict']} |")
        lines += ["", f"![{r['task']}](repro_{r['task']}.png)", ""]
    return lines


def plot(task: str, trials: list[dict[str, Any]], reference: dict[int, dict[str, Any]], version: str,
         source: str, out: Path) -> Path:
    horizon = max(t["total_steps"] for t in trials)
    steps = sorted(s for s in reference if s <= horizon)
    width = min(len(reference[s]["values"]) for s in steps)
    theirs = np.array([reference[s]["values"][:width] for s in steps]).T
    curves = [(f"{t['library']} {t['preset']} {t['setting']}".strip(), *curve_arrays(t)) for t in trials if t["curves"]]
    curves.append((f"{source}, {version}", np.array(steps), theirs))
    return plot_curves(curves, out, title=f"{task}: the source's settings beside {source}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", type=Path, nargs="+")
    parser.add_argument("--seeds-csv", type=Path, default=SEEDS_CSV)
    parser.add_argument("--against", type=Path, metavar="SWEEP_DIR",
                        help="read the source's seeds from this sweep instead of --seeds-csv")
    parser.add_argument("--null-draws", type=int, default=0, metavar="N",
                        help="compare the source with itself in N draws of its seeds (default: 0, none)")
    parser.add_argument("--every", type=int, default=25_000, help="the table's interval, in environment steps")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "repro")
    args = parser.parse_args()
    check_sweep_dirs(args.sweeps + ([args.against] if args.against else []))
    if args.every <= 0:
        sys.exit(f"error: --every {args.every}: give a positive number of environment steps")
    if args.null_draws < 0:
        sys.exit(f"error: --null-draws {args.null_draws}: give a number of draws of at least 0")
    try:
        source, references = (sweep_reference(args.against) if args.against
                              else (SOURCE, read_seeds(args.seeds_csv)))
    except (OSError, ValueError) as error:
        sys.exit(f"error: cannot read the per-seed references: {error}")
    origin = f"the sweep `{shown_path(args.against)}`" if args.against else f"`{shown_path(args.seeds_csv)}`"
    rows, hosts = sweep_rows(args.sweeps)
    rows = [r for r in rows if task_name(r["task"]) in references]
    if not rows:
        sys.exit(f"error: no trial of {', '.join(map(str, args.sweeps))} is on a task of {origin}")
    results = []
    for r in sorted(rows, key=lambda r: (r["task"], r["sweep"], r["trial"])):
        reference = references[task_name(r["task"])]
        points = compare(r, reference)
        null = (null_draws(reference, [p["env_steps"] for p in points], r["seeds"], args.null_draws)
                if args.null_draws and points else {})
        results.append({"task": r["task"], "sweep": r["sweep"], "trial": r["trial"], "seeds": r["seeds"],
                        "label": f"{r['library']} {r['preset']} {r['setting']} [{r['sweep']}/{r['trial']}]",
                        "reference_seeds": len(next(iter(reference.values()))["values"]), "points": points,
                        "null": null})
    args.out.mkdir(parents=True, exist_ok=True)
    for task in sorted({r["task"] for r in rows}):
        reference = references[task_name(task)]
        version = next(iter(reference.values()))["env_version"]
        plot(task, [r for r in rows if r["task"] == task], reference, version, source,
             args.out / f"repro_{task}.png")
    lines = [f"Command: `python {' '.join(sys.argv)}`  ", *_provenance(hosts), "",
             f"Each seed's noise-free evaluation at the step; {source}'s seeds from {origin}, on the "
             "environment-step axis (its own label beside). The difference of the means over seeds, with its 95% "
             "interval from resampling each side's seeds on their own (rliable): level where the interval holds 0.",
             "", *markdown(results, args.every, source)]
    (args.out / "repro.md").write_text("\n".join(lines))
    (args.out / "repro.json").write_text(json.dumps(
        {"command": " ".join(sys.argv), "machine": machine(), "runs": hosts, "source": source,
         "seeds_csv": str(args.against or args.seeds_csv), "results": results}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
