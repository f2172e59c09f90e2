"""ddpgx at the field's budgets (100,000, 300,000 and 1,000,000 environment steps) beside the published
DDPG and TD3 returns at the same steps.

    python benchmarks/budgets.py SWEEP_DIR... [--references benchmarks/references/mujoco_ddpg.csv]
        [--budgets 100000 300000 1000000] [--out benchmarks/results/budgets] [--preset NAME [--seeds S...]]

A SWEEP_DIR is a sweep as `ddpgx sweep` wrote it or its compact form (benchmarks/compact.py), finished
or still running. For each task and each budget B, every trial that runs to B or further is one row:
each seed's noise-free evaluation at step B (the mean of its episodes); over seeds, the mean and the
interquartile mean with 95% stratified bootstrap intervals (rliable, through ddpgx.stats), the median,
the worst and the best seed; then, for each reference the CSV holds for the task at B, whether the mean
over seeds reaches it (the references are means over their own seeds). A reference that averages
several evaluations per seed (the CSV's `window_start` before B, as "Our DDPG": 955,000 to 1,000,000)
is compared with ddpgx's mean over the same evaluations, not with its value at B. A trial that has not
come to B yet is a row that says how far it has come. Environment steps count every step, the random warm-up
included, for ddpgx and for the references (the CSV gives each source's own step label beside it).

With `--preset NAME` the report is that preset's: only the trials whose config is exactly what the
preset gives for their task (the budget fields aside, and a schedule's length where the schedule is
off), whatever preset and fields their spec named, pooled per task over the sweeps given as one row.
A preset with values per task is measured so by the sweeps that ran each task's values. A pooled row
waits at each budget for every seed that has begun; `--seeds` keeps the trials of the seeds given
alone, so that a seed just begun elsewhere does not hold back the others' budgets.

Writes budgets.md (first, per budget, one table of every setting's mean across the tasks beside the
best DDPG reference and TD3's curve; then one table, task by task and budget by budget, of every
setting's statistics over seeds beside those two; then the tables per task with every reference),
budgets.json and budgets_<task>.png (the trials' learning curves with the reference curves and
points drawn on them) to --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from compact import curve_arrays, differences, hosts as sweep_hosts, pool_seed_blocks, pooled, setting, trials
from host import machine
from report import _provenance, library

from ddpgx.config import Config, ConfigError
from ddpgx.plot import draw_curves, finish_figure, new_figure
from ddpgx.presets import preset_values
from ddpgx.stats import summarize

ROOT = Path(__file__).resolve().parent
REFERENCES = ROOT / "references" / "mujoco_ddpg.csv"
BUDGETS = (100_000, 300_000, 1_000_000)
NUMERIC = {"seeds": int, "env_steps": int, "source_axis_step": int, "value": float}
STATISTICS = ("seeds", "mean", "mean_ci", "iqm", "iqm_ci", "median", "worst", "best")


def read_references(path: Path) -> list[dict[str, Any]]:
    """The rows of a references CSV (benchmarks/references/mujoco_ddpg.csv), numbers as numbers. Without
    a `window_start` column every value is one evaluation at its step."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"source", "task", "env_version", *NUMERIC} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(sorted(missing))}: is it a references CSV?")
    return [{**row, **{k: cast(row[k]) for k, cast in NUMERIC.items()},
             "window_start": int(row.get("window_start") or row["env_steps"])} for row in rows]


def task_name(env_id: str) -> str:
    """The task without its version (HalfCheetah-v5 -> HalfCheetah), as the references CSV names it."""
    return re.sub(r"-v\d+$", "", env_id)


def reference_label(ref: dict[str, Any]) -> str:
    return f"{ref['source']}, {ref['env_version']}, {ref['seeds']} seeds"


def values_at(row: dict[str, Any], budget: int, start: int | None = None) -> list[float] | None:
    """Each seed's evaluation at exactly `budget` steps, or with `start` its mean over the evaluations from
    `start` to `budget`; None unless every seed of the trial has been evaluated at `budget`."""
    values = []
    for _, evals in row["curves"]:
        if not any(e["step"] == budget for e in evals):
            return None
        values.append(float(np.mean([e["mean_return"] for e in evals
                                     if (budget if start is None else start) <= e["step"] <= budget])))
    return values if len(values) == row["seeds"] else None


def compared(row: dict[str, Any], ref: dict[str, Any], budget: int, mean: float) -> dict[str, Any]:
    """A trial measured at `budget` (`mean` over its seeds) against one reference there: with its own
    statistic where the reference averages several evaluations (`window` and `ours` then say which)."""
    start = ref.get("window_start", ref["env_steps"])  # a single evaluation where the row does not say
    window = None
    if start < budget:
        mean, window = float(np.mean(values_at(row, budget, start))), [start, budget]
    return {"source": ref["source"], "value": ref["value"], "reached": mean >= ref["value"],
            "difference": mean - ref["value"], "window": window, "ours": mean}


def status(row: dict[str, Any], budget: int) -> str:
    """Why a trial that runs to `budget` has no value there yet."""
    evaluated = len(row["curves"])
    if row["step"] < budget or evaluated < row["seeds"]:
        seeds = f"; {evaluated} of {row['seeds']} seeds evaluated" if evaluated < row["seeds"] else ""
        return f"not reached yet: step {row['step']:,} of {row['total_steps']:,}{seeds}"
    return f"no evaluation at {budget:,} (evaluated every {row['config'].eval_every:,} steps)"


def budget_table(rows: list[dict[str, Any]], refs: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    """One task at one budget: the references at that step and a row per trial that runs to it."""
    at = [r for r in refs if r["env_steps"] == budget]
    measured = {f"{r['sweep']}/{r['trial']}": v for r in rows if (v := values_at(r, budget)) is not None}
    summaries = summarize(measured) if measured else {}
    entries = []
    for r in rows:
        key = f"{r['sweep']}/{r['trial']}"
        entry = {"sweep": r["sweep"], "trial": r["trial"], "library": r["library"], "preset": r["preset"],
                 "setting": r["setting"], "seeds": r["seeds"], "step": r["step"], "total_steps": r["total_steps"]}
        if key in summaries:
            s = summaries[key]
            entry.update(status="measured", per_seed=measured[key], **s._asdict())
            entry["references"] = [compared(r, ref, budget, s.mean) for ref in at]
        else:
            entry.update(status=status(r, budget))
        entries.append(entry)
    return {"budget": budget, "references": at, "rows": entries}


def task_tables(rows: list[dict[str, Any]], refs: list[dict[str, Any]], budgets: list[int]) -> dict[str, Any]:
    """Every task of the trials: the budgets its trials run to, with their tables, and the trials
    that stop short of a budget."""
    out = {}
    for task in sorted({r["task"] for r in rows}):
        task_rows = sorted((r for r in rows if r["task"] == task),
                           key=lambda r: (r["preset"], r["setting"], r["library"], r["sweep"], r["trial"]))
        task_refs = [r for r in refs if r["task"] == task_name(task)]
        tables = [budget_table([r for r in task_rows if r["total_steps"] >= b], task_refs, b) for b in budgets
                  if any(r["total_steps"] >= b for r in task_rows)]
        short = [{"budget": b, "trials": [f"{r['sweep']}/{r['trial']} ({r['total_steps']:,})" for r in task_rows
                                          if r["total_steps"] < b]} for b in budgets]
        out[task] = {"tables": tables, "short": [s for s in short if s["trials"]], "references": task_refs}
    return out


def overview(tables: dict[str, Any], budgets: list[int]) -> list[dict[str, Any]]:
    """Per budget, every (library, preset, setting) across the tasks: its mean over seeds on each task
    it was measured on, beside the best DDPG reference and TD3's curve at that step (the goal's table)."""
    out = []
    for budget in budgets:
        goals: dict[str, dict[str, Any]] = {}
        rows: dict[tuple, dict[str, Any]] = {}
        for task, t in tables.items():
            table = next((tab for tab in t["tables"] if tab["budget"] == budget), None)
            if table is None:
                continue
            ddpg = [r for r in table["references"] if r.get("algorithm") == "DDPG"]
            td3 = [r for r in table["references"] if r.get("algorithm") == "TD3"]
            goals[task] = {"ddpg": max(ddpg, key=lambda r: r["value"]) if ddpg else None,
                           "td3": td3[0] if td3 else None}
            for e in table["rows"]:
                if e["status"] == "measured":
                    cells = rows.setdefault((e["library"], e["preset"], e["setting"]), {})
                    cells[task] = {**{k: e[k] for k in STATISTICS}, "trial": f"{e['sweep']}/{e['trial']}",
                                   "references": {m["source"]: m for m in e["references"]}}
        if rows:
            out.append({"budget": budget, "tasks": list(goals), "goals": goals,
                        "rows": [{"library": k[0], "preset": k[1], "setting": k[2], "cells": v}
                                 for k, v in sorted(rows.items())]})
    return out


def overview_lines(views: list[dict[str, Any]]) -> list[str]:
    """The goal's table per budget: a row per setting, a column per task; a mean in bold is at or
    above the best DDPG reference, one marked + also at or above TD3's curve (each compared with its
    own statistic: a reference that averages several evaluations gets ddpgx's mean over the same ones,
    shown in brackets)."""
    lines = []
    windows = set()
    for view in views:
        tasks, goals = view["tasks"], view["goals"]

        def goal(task: str, kind: str) -> str:
            return reference_value(goals[task][kind]) if goals[task][kind] else "-"

        lines += [f"### All tasks at {view['budget']:,} steps", "",
                  "| preset | setting | library | " + " | ".join(tasks) + " |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in tasks) + " |",
                  "| best DDPG reference | | | " + " | ".join(goal(t, "ddpg") for t in tasks) + " |",
                  "| TD3's curve | | | " + " | ".join(goal(t, "td3") for t in tasks) + " |"]
        for row in view["rows"]:
            cells = []
            for task in tasks:
                cell = row["cells"].get(task)
                if cell is None:
                    cells.append("-")
                    continue
                text = f"{cell['mean']:.1f}"
                ddpg, td3 = (cell["references"][goals[task][kind]["source"]] if goals[task][kind] else None
                             for kind in ("ddpg", "td3"))
                if ddpg and ddpg["window"]:
                    text += f" [{ddpg['ours']:.1f}]"
                    windows.add((ddpg["source"], *ddpg["window"]))
                if ddpg and ddpg["reached"]:
                    text = f"**{text}**"
                if td3 and td3["reached"]:
                    text += " +"
                cells.append(f"{text} ({cell['seeds']} seed{'s' if cell['seeds'] != 1 else ''})")
            lines.append(f"| {row['preset']} | {row['setting'] or '-'} | {row['library']} | " + " | ".join(cells) + " |")
        lines.append("")
    if lines:
        brackets = "; ".join(f"{source}, {start:,} to {end:,} steps" for source, start, end in sorted(windows))
        lines = ["Each cell is the mean over the trial's seeds at that step. **Bold**: at or above the best DDPG "
                 "reference at the same step; +: at or above TD3's curve too."
                 + (f" In brackets: the mean over the evaluations that the best DDPG reference averages ({brackets}), "
                    "which is what it is compared with." if windows else ""), "", *lines]
    return lines


def reference_value(ref: dict[str, Any]) -> str:
    """A reference as the tables name it: its value, source and environment version."""
    return f"{ref['value']:.1f} ({ref['source']}, {ref['env_version']})"


def verdict(m: dict[str, Any]) -> str:
    """A trial against one reference (`compared`): reached or not, by how much, and with which mean
    where the reference averages several evaluations."""
    window = f": {m['ours']:.1f} over {m['window'][0]:,} to {m['window'][1]:,}" if m["window"] else ""
    return f"{'reached' if m['reached'] else 'not reached'} ({m['difference']:+.1f}{window})"


def statistics_cells(s: dict[str, Any]) -> str:
    """mean | 95% CI | IQM | 95% CI | median | worst | best, as the tables show them."""
    return (f"{s['mean']:.1f} | [{s['mean_ci'][0]:.1f}, {s['mean_ci'][1]:.1f}] | {s['iqm']:.1f} | "
            f"[{s['iqm_ci'][0]:.1f}, {s['iqm_ci'][1]:.1f}] | {s['median']:.1f} | {s['worst']:.1f} | {s['best']:.1f} |")


def goal_lines(views: list[dict[str, Any]]) -> list[str]:
    """The goal's evidence in one table: per task and budget, every setting measured there with its
    statistics over seeds, beside the best DDPG reference and TD3's curve and whether it reaches them."""
    tasks = list(dict.fromkeys(task for view in views for task in view["tasks"]))
    lines = []
    for task in tasks:
        for view in views:
            goals = view["goals"].get(task)
            for row in view["rows"]:
                cell = row["cells"].get(task)
                if goals is None or cell is None:
                    continue
                refs = [f"{reference_value(ref)}: {verdict(cell['references'][ref['source']])}" if ref else "-"
                        for ref in (goals["ddpg"], goals["td3"])]
                lines.append(f"| {task} | {view['budget']:,} | {row['preset']} | {row['setting'] or '-'} | "
                             f"{row['library']} | {cell['seeds']} | " + statistics_cells(cell) + "".join(
                                 f" {r} |" for r in refs))
    if not lines:
        return []
    return ["### Task by task, at each budget", "",
            "| task | steps | preset | setting | library | seeds | mean | 95% CI | IQM | 95% CI | median | worst "
            "| best | best DDPG reference | TD3's curve |", "| --- " * 15 + "|", *lines, ""]


def reference_lines(refs: list[dict[str, Any]], budgets: list[int]) -> list[str]:
    """The references of one task at the budgets: a row per source."""
    sources = list(dict.fromkeys(r["source"] for r in refs if r["env_steps"] in budgets))
    lines = ["| reference | env | seeds | statistic | " + " | ".join(f"{b:,}" for b in budgets) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in budgets) + " |"]
    for source in sources:
        mine = [r for r in refs if r["source"] == source]
        cells = []
        for b in budgets:
            at = [r for r in mine if r["env_steps"] == b]
            cells.append(f"{at[0]['value']:.1f}" if at else "-")
        lines.append(f"| {source} | {mine[0]['env_version']} | {mine[0]['seeds']} | {mine[0]['statistic']} | "
                     + " | ".join(cells) + " |")
    return lines


def markdown(tables: dict[str, Any], budgets: list[int]) -> list[str]:
    lines = []
    for task, t in tables.items():
        lines += [f"### {task}", ""]
        if any(r["env_steps"] in budgets for r in t["references"]):
            lines += ["References at the same environment steps (`env_steps` in the CSV):", "",
                      *reference_lines(t["references"], budgets), ""]
        else:
            lines += [f"No reference for {task_name(task)} in the CSV.", ""]
        for table in t["tables"]:
            refs = table["references"]
            lines += [f"#### {task} at {table['budget']:,} steps", "",
                      "| preset | setting | library | seeds | mean | 95% CI | IQM | 95% CI | median | worst | best |"
                      + "".join(f" {reference_label(ref)}: {ref['value']:.1f} |" for ref in refs),
                      "| --- " * (11 + len(refs)) + "|"]
            for e in table["rows"]:
                head = f"| {e['preset']} | {e['setting'] or '-'} | {e['library']} | {e['seeds']} | "
                if e["status"] != "measured":
                    lines.append(head + f"{e['status']} |" + " |" * (6 + len(refs)))
                    continue
                lines.append(head + statistics_cells(e) + "".join(f" {verdict(m)} |" for m in e["references"]))
            lines.append("")
        for s in t["short"]:
            lines.append(f"Not run to {s['budget']:,} steps: {', '.join(s['trials'])}.  ")
        lines += ["", f"![{task}](budgets_{task}.png)", ""]
    return lines


def plot(task: str, rows: list[dict[str, Any]], refs: list[dict[str, Any]], budgets: list[int], out: Path) -> Path:
    """The trials' learning curves with the references drawn on them: a trial of several seeds as the
    mean and min-max band over the steps all its seeds reached and each seed's whole curve as a thin
    line (a seed that has run further shows where it has come); a source's curve as a dashed line, a
    single value as a point, up to the longest trial's budget."""
    horizon = max((r["total_steps"] for r in rows), default=max(budgets))
    plt, fig, (ax,) = new_figure(1)
    for r in rows:
        if not r["curves"]:
            continue
        color = draw_curves(ax, *curve_arrays(r), f"{r['library']} {r['preset']} {r['setting']}".strip()
                            + f" [{r['sweep']}]")
        if r["several"]:
            for _, evals in r["curves"]:
                ax.plot([e["step"] for e in evals], [e["mean_return"] for e in evals], color=color,
                        linewidth=0.6, alpha=0.5)
    for source in dict.fromkeys(r["source"] for r in refs):
        mine = sorted((r for r in refs if r["source"] == source and r["env_steps"] <= horizon),
                      key=lambda r: r["env_steps"])
        if not mine:
            continue
        steps, values = [r["env_steps"] for r in mine], [r["value"] for r in mine]
        if len(mine) > 1:
            ax.plot(steps, values, linestyle="--", linewidth=1.2, label=reference_label(mine[0]))
        else:
            ax.plot(steps, values, marker="D", markersize=6, linestyle="none", label=reference_label(mine[0]))
    for b in budgets:
        if b <= horizon:
            ax.axvline(b, color="grey", linestyle=":", linewidth=0.8)
    return finish_figure(plt, fig, [ax], [f"{task}: ddpgx beside the published curves"], out)


def shown_path(path: Path) -> str:
    """`path` as a report names it: relative to the repository where it lies in it, so that no
    machine's directories end up in committed reports."""
    try:
        return str(Path(path).resolve().relative_to(ROOT.parent))
    except ValueError:
        return str(path)


def check_sweep_dirs(sweep_dirs: list[Path]) -> None:
    """Exit with a one-line error unless each directory is a sweep (full or compact)."""
    for sweep_dir in sweep_dirs:
        if not (sweep_dir / "spec.json").exists():
            sys.exit(f"error: {sweep_dir} has no spec.json: give a sweep directory (full or compact)")


def sweep_rows(sweep_dirs: list[Path]) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """The trials of the sweeps, each with its library, sweep and setting; and the sweeps' host.json."""
    rows, hosts = [], {}
    for sweep_dir in sweep_dirs:
        spec = json.loads((sweep_dir / "spec.json").read_text())
        hosts.update(sweep_hosts(sweep_dir))
        rows += [{**r, "library": library(spec), "sweep": sweep_dir.name,
                  "setting": setting(r["config"], r["preset"], r["task"])}
                 for r in pool_seed_blocks(trials(sweep_dir))]
    return rows, hosts


def unread(config: Config) -> set[str]:
    """The fields a run's config holds that its training never reads: the length of a schedule that is off
    (a run continued to a larger budget keeps the one of its first budget)."""
    return ({"noise_decay_steps"} if config.noise_schedule == "constant" else set()) | \
        ({"priority_beta_steps"} if not config.prioritized else set())


def runs_preset(config: Config, preset: str) -> bool:
    """Whether a trial's config is exactly what `preset` gives for its task, the budget fields aside."""
    return not set(differences(config, preset, config.env_id)) - unread(config)


def preset_rows(sweep_dirs: list[Path], preset: str, seeds: set[int] | None = None
                ) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """The trials of the sweeps whose config is `preset`'s for their task, whatever preset and fields
    their specs named, pooled per task and budget over the sweeps as one setting: the preset's row. A
    seed may come from one trial only. With `seeds`, only the trials of those seeds (a trial of several
    seeds must have all of them there or none)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    hosts: dict[str, dict] = {}
    for sweep_dir in sweep_dirs:
        spec = json.loads((sweep_dir / "spec.json").read_text())
        hosts.update(sweep_hosts(sweep_dir))
        for r in trials(sweep_dir):
            if r["curves"] and runs_preset(r["config"], preset):
                r = {**r, "library": library(spec), "sweep": sweep_dir.name}
                if seeds is not None:
                    inside = {seed in seeds for seed, _ in r["curves"]}
                    if inside == {True, False}:
                        sys.exit(f"error: {sweep_dir.name}/{r['trial']} runs seeds "
                                 f"{', '.join(str(seed) for seed, _ in r['curves'])}, not all of them in --seeds: "
                                 f"give all of its seeds or none")
                    if inside == {False}:
                        continue
                groups.setdefault((r["task"], r["total_steps"]), []).append(r)
    rows = []
    for (task, _), group in sorted(groups.items()):
        seeds = [seed for r in group for seed, _ in r["curves"]]
        if len(set(seeds)) < len(seeds):
            repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
            sys.exit(f"error: {task}: seed(s) {', '.join(map(str, repeated))} run the {preset} preset in more than one "
                     f"trial ({', '.join(r['sweep'] + '/' + r['trial'] for r in group)}): give one sweep of each")
        rows.append({**pooled(group), "preset": preset, "setting": "", "params": {},
                     "sweep": "+".join(dict.fromkeys(r["sweep"] for r in group))})
    if not rows:
        sys.exit(f"error: no trial of {', '.join(map(str, sweep_dirs))} runs the {preset} preset's config for its "
                 f"task{'' if seeds is None else ' with the seeds given'}: give the sweeps that do")
    return rows, hosts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", type=Path, nargs="+")
    parser.add_argument("--references", type=Path, default=REFERENCES)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), metavar="STEPS")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "budgets")
    parser.add_argument("--preset", metavar="NAME",
                        help="report only the trials whose config is this preset's for their task (whatever their "
                             "spec named: a preset with values per task is measured by the sweeps of its settings), "
                             "pooled over the sweeps as one row per task")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="with --preset: only the trials of these seeds, so that a seed that has begun but not "
                             "reached a budget does not hold back the others' row there")
    args = parser.parse_args()
    if args.seeds is not None and args.preset is None:
        sys.exit("error: --seeds chooses among the trials of a preset: give --preset NAME with it")
    check_sweep_dirs(args.sweeps)
    if args.preset is not None:
        try:
            preset_values(args.preset)
        except ConfigError as error:
            sys.exit(f"error: {error}")
    try:
        refs = read_references(args.references)
    except (OSError, ValueError) as error:
        sys.exit(f"error: cannot read the references: {error}")
    seeds = None if args.seeds is None else set(args.seeds)
    rows, hosts = sweep_rows(args.sweeps) if args.preset is None else preset_rows(args.sweeps, args.preset, seeds)
    budgets = sorted(args.budgets)
    tables = task_tables(rows, refs, budgets)
    views = overview(tables, budgets)
    lines = [f"Command: `python {' '.join(sys.argv)}`  ", *_provenance(hosts), "",
             "Each seed's noise-free evaluation at the budget (the mean of its episodes); over seeds: the mean and the "
             "interquartile mean with 95% stratified bootstrap intervals (rliable), the median, the worst and the best "
             "seed. A reference is reached where the mean over seeds is at or above it (the difference in brackets). "
             f"References: `{shown_path(args.references)}` (its source, environment version, seeds and statistic "
             "per row).", "",
             *overview_lines(views), *goal_lines(views), *markdown(tables, budgets)]
    args.out.mkdir(parents=True, exist_ok=True)
    for task in tables:
        plot(task, [r for r in rows if r["task"] == task], tables[task]["references"], budgets,
             args.out / f"budgets_{task}.png")
    (args.out / "budgets.md").write_text("\n".join(lines))
    tasks = {task: {k: v for k, v in t.items() if k != "references"} for task, t in tables.items()}
    (args.out / "budgets.json").write_text(json.dumps(
        {"command": " ".join(sys.argv), "machine": machine(), "runs": hosts, "references": str(args.references),
         "budgets": budgets, "overview": views, "tasks": tasks}, indent=2, default=_json) + "\n")
    print("\n".join(lines))


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


if __name__ == "__main__":
    main()
