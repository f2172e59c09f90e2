"""The returns benchmark's report: the sweeps of benchmarks/specs/ in one table per task.

    python benchmarks/report.py SWEEP_DIR... [--out benchmarks/results/returns]

A SWEEP_DIR is a sweep as `ddpgx sweep` wrote it or its compact form (benchmarks/compact.py).

Each row is one trial of one sweep: the library (ddpgx, or SB3 DDPG for the sweeps whose trainable is
sb3_trainable.py), the preset, the fields the sweep sets apart from the preset's, the seeds' final
noise-free returns with their mean and interquartile mean, each with a 95% stratified bootstrap
interval (rliable, through ddpgx.stats), the median, the worst and the best seed, and every seed's
value; and the mean over seeds of each seed's last `--last` evaluations (4 by default), a figure
less noisy than a single evaluation on tasks whose returns swing from one evaluation to the next
(Hopper-v5). A trial whose seeds have not all reached its last step (a sweep still running, or
stopped) is left out of the tables and named under its task. Writes returns.md, returns.json and
curves_<task>.png to --out. A sweep directory holding host.json (`python benchmarks/host.py`,
written after the sweep) names the machine, the versions and the ddpgx commit its runs were made
with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from compact import curve_arrays, hosts as sweep_hosts, pool_seed_blocks, setting, trials
from host import machine

from ddpgx.plot import plot_curves
from ddpgx.stats import summarize

LIBRARIES = ("ddpgx", "SB3 DDPG")


def library(spec: dict) -> str:
    """ddpgx, or SB3 DDPG for a sweep whose trainable is sb3_trainable.py."""
    return LIBRARIES[1] if "sb3_trainable" in spec["trainable"] else LIBRARIES[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "returns")
    parser.add_argument("--last", type=int, default=4, metavar="K",
                        help="also report the mean of each seed's last K evaluations (default: 4)")
    args = parser.parse_args()
    rows, unfinished, hosts = [], [], {}
    for sweep_dir in args.sweeps:
        spec = json.loads((sweep_dir / "spec.json").read_text())
        hosts.update(sweep_hosts(sweep_dir))
        for row in pool_seed_blocks(trials(sweep_dir)):
            row = {**row, "library": library(spec), "sweep": sweep_dir.name,
                   "setting": setting(row["config"], row["preset"], row["task"])}
            finished = len(row["final_returns"]) == row["seeds"] and row["step"] >= row["total_steps"] > 0
            (rows if finished else unfinished).append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [f"Command: `python {' '.join(sys.argv)}`  ", *_provenance(hosts), "",
             "Final noise-free return of each seed (the mean of its last evaluation's episodes). Over seeds: the mean "
             "and the interquartile mean with 95% stratified bootstrap intervals (rliable), the median, the worst "
             f"and the best seed. Last {args.last}: the mean over seeds of each seed's last {args.last} evaluations.",
             ""]
    table = []
    for task in sorted({r["task"] for r in rows}):
        task_rows = sorted((r for r in rows if r["task"] == task),
                           key=lambda r: (r["preset"], r["setting"], LIBRARIES.index(r["library"])))
        summaries = summarize({f"{r['sweep']}/{r['trial']}": r["final_returns"] for r in task_rows})
        steps = sorted({r["total_steps"] for r in task_rows})
        lines += [f"### {task}: {', '.join(f'{s:,}' for s in steps)} steps", "",
                  f"| preset | setting | library | seeds | mean | 95% CI | IQM | 95% CI | median | worst | best | "
                  f"last {args.last} | per seed |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in task_rows:
            s = summaries[f"{r['sweep']}/{r['trial']}"]
            per_seed = " / ".join(f"{v:.1f}" for v in r["final_returns"])
            last = float(np.mean([np.mean(seed[-args.last:]) for seed in r["returns"]]))
            lines.append(f"| {r['preset']} | {r['setting'] or '-'} | {r['library']} | {s.seeds} | {s.mean:.1f} | "
                         f"[{s.mean_ci[0]:.1f}, {s.mean_ci[1]:.1f}] | {s.iqm:.1f} | [{s.iqm_ci[0]:.1f}, {s.iqm_ci[1]:.1f}] | "
                         f"{s.median:.1f} | {s.worst:.1f} | {s.best:.1f} | {last:.1f} | {per_seed} |")
            table.append({"task": task, "preset": r["preset"], "setting": r["setting"], "library": r["library"],
                          "sweep": r["sweep"], "trial": r["trial"], "first_seed": r["first_seed"],
                          "final_returns": r["final_returns"], f"last_{args.last}": last, **s._asdict()})
        lines += [f"\nNot in the table, unfinished: {r['library']} {r['preset']} {r['setting'] or ''}".rstrip()
                  + f" ({r['sweep']}/{r['trial']}: {progress(r)})." for r in unfinished if r["task"] == task]
        lines += ["", f"![{task}](curves_{task}.png)", ""]
        plot_curves([(f"{r['library']} {r['preset']} {r['setting']}".strip(), *curve_arrays(r)) for r in task_rows],
                    args.out / f"curves_{task}.png", title=task)
    (args.out / "returns.md").write_text("\n".join(lines))
    (args.out / "returns.json").write_text(json.dumps({"command": " ".join(sys.argv), "machine": machine(),
                                                       "runs": hosts, "rows": table}, indent=2) + "\n")
    print("\n".join(lines))


def progress(row: dict) -> str:
    """How far an unfinished trial has come."""
    if not row["final_returns"]:
        return "no evaluation yet"
    return (f"{len(row['final_returns'])} of {row['seeds']} seeds evaluated, the least advanced at step "
            f"{row['step']:,} of {row['total_steps']:,}")


def _provenance(hosts: dict[str, dict]) -> list[str]:
    """Where and with what the runs were made (from each sweep's host.json), then the report's own machine."""
    lines = []
    for key in sorted({(h.get("git"), h.get("cpu"), h.get("cores"), json.dumps(h.get("versions"))) for h in hosts.values()},
                      key=str):
        git, cpu, cores, versions = key
        names = sorted(n for n, h in hosts.items() if (h.get("git"), h.get("cpu"), h.get("cores"),
                                                        json.dumps(h.get("versions"))) == key)
        dates = sorted(hosts[n]["date"][:10] for n in names)
        lines.append(f"Runs ({', '.join(names)}): ddpgx commit {git}; {cpu}, {cores} cores; "
                     f"{dates[0]}{' to ' + dates[-1] if dates[-1] != dates[0] else ''}  ")
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in json.loads(versions).items()) + "  ")
    m = machine()
    lines.append(f"Report: {m['cpu']}, {m['cores']} cores; {m['date']}; ddpgx commit {m.get('git')}  ")
    return lines


if __name__ == "__main__":
    np.set_printoptions(precision=1)
    main()
