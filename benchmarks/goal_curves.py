"""The compact results of goal-task sweeps, for the repository: every evaluation of every seed as one
CSV (`curves.csv`: sweep, trial, seed, step, mean_return, success_rate), the sweeps' reports and
specs, and a table of the mean success rate over seeds at each evaluation step.

    python benchmarks/goal_curves.py OUT_DIR SWEEP_DIR...

A trial still running (or stopped) is read as far as its seeds have come; the table gives, per step,
how many seeds it averages.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path


def seed_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    found = sorted((int(d.name.split("_")[1]), d) for d in run_dir.glob("seed_*") if (d / "eval.csv").exists())
    return found or ([(-1, run_dir)] if (run_dir / "eval.csv").exists() else [])


def main(out: Path, sweeps: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for sweep in sweeps:
        for run_dir in sorted((sweep / "runs").iterdir()):
            for seed, d in seed_dirs(run_dir):
                with open(d / "eval.csv", newline="") as f:
                    for r in csv.DictReader(f):
                        rows.append({"sweep": sweep.name, "trial": run_dir.name, "seed": seed, "step": int(float(r["step"])),
                                     "mean_return": r["mean_return"], "success_rate": r.get("success_rate", "")})
        for name in ("spec.json", "results.md", "results.csv"):
            if (sweep / name).exists():
                shutil.copy(sweep / name, out / f"{sweep.name}_{name}")
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["sweep", "trial", "seed", "step", "mean_return", "success_rate"])
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| sweep | trial | step | seeds | mean success | per seed |", "| --- | --- | --- | --- | --- | --- |"]
    keys = sorted({(r["sweep"], r["trial"], r["step"]) for r in rows})
    for sweep, trial, step in keys:
        at = [r for r in rows if (r["sweep"], r["trial"], r["step"]) == (sweep, trial, step) and r["success_rate"] != ""]
        if at:
            values = [float(r["success_rate"]) for r in at]
            lines.append(f"| {sweep} | {trial} | {step:,} | {len(values)} | {sum(values) / len(values):.2f} | "
                         f"{' '.join(f'{v:.1f}' for v in values)} |")
    (out / "success.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'curves.csv'}, {out / 'success.md'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
