"""A sweep directory in compact form: what the reports and their pictures read, without the run directories.

    python benchmarks/compact.py SWEEP_DIR OUT_DIR
    python benchmarks/compact.py SWEEP_DIR OUT_DIR --add
    python benchmarks/compact.py OUT_DIR --drop TRIAL [TRIAL ...]

The second form adds the trials of SWEEP_DIR to OUT_DIR, the compact form of a sweep of the same
trials made elsewhere (the same spec, or one that grew by variants, seeds, tasks or presets; `ddpgx
sweep SPEC --skip-finished OUT_DIR` runs the trials it had not finished): where both hold a trial of
the same task, variant and seeds, the one that went further stays.

The third form takes unfinished trials out of OUT_DIR for good: trials that will not go on because
their checkpoints went away with the machine that ran them, and whose seeds run again from step 0
elsewhere. A trial that has just begun would otherwise hold back every budget of its task in the
reports, which wait for each begun seed. Their records move to dropped.json, and adding a part
that holds them again leaves them out.

A sweep keeps a run directory per trial (and a directory per seed in it: configs, every evaluation,
training episodes, metrics, checkpoints). The reports need far less, and the compact form keeps
only that:

    spec.json, host.json            the sweep's spec; the machine, versions and commit (if written);
      host-N.json                   those of the N-th part added to it, where it was made
    results.md, results.csv,        the sweep's own report (`ddpgx sweep` wrote them), as they were
      curves.png
    trials/<trial>.json             each trial's task, preset, fields and seeds, as the sweep wrote them
    configs.json                    each trial's full Config (its first seed's), by trial
    curves.csv                      every evaluation of every seed: trial, task, preset, setting, seed,
                                    step, mean_return and the other columns of eval.csv; and the
                                    training at that step: the critic's mean value and the losses
                                    (train_q, train_critic_loss, train_actor_loss, from metrics.csv)
                                    and the training episodes since the evaluation before
                                    (train_episodes, train_return_sum, train_length_sum)

`trials(sweep_dir)` reads a sweep in either form, so the reports (report.py, budgets.py, repro.py)
take compact and full directories alike; `pool_seed_blocks` joins the trials that a list of first
seeds split one setting into. The full run directories stay on the machine that ran them.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ddpgx.config import Config, ConfigError
from ddpgx.logging import read_csv
from ddpgx.presets import from_preset
from ddpgx.rundir import find_run, seed_dirs
from ddpgx.sweeps import Spec, same_trials, trial_key, trial_rows

CURVES = "curves.csv"
CONFIGS = "configs.json"
DROPPED = "dropped.json"
COPIED = ("spec.json", "host.json", "results.md", "results.csv", "curves.png")
CURVE_KEYS = ("trial", "task", "preset", "setting", "seed", "step", "mean_return")
TRAINING_METRICS = ("q", "critic_loss", "actor_loss")
"""The columns of a run's metrics.csv that the compact form keeps at each evaluation step."""
BUDGET_FIELDS = {"seed", "total_steps", "eval_every", "checkpoint_every", "keep_checkpoints", "tensorboard",
                 "eval_episodes", "log_every"}


def is_compact(sweep_dir: Path) -> bool:
    return (Path(sweep_dir) / CURVES).exists()


def differences(config: Config, preset: str, task: str) -> dict[str, Any]:
    """The fields of a trial that differ from its preset's values for the task (budget fields aside)."""
    base = from_preset(preset, task, total_steps=config.total_steps)  # schedules follow the budget
    return {name: value for name, value in config.to_dict().items()
            if name not in BUDGET_FIELDS and value != getattr(base, name)}


def setting(config: Config, preset: str, task: str) -> str:
    """`differences` as a trial's label: `name=value, ...`."""
    return ", ".join(f"{name}={value}" for name, value in differences(config, preset, task).items())


def trials(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every trial of a sweep (compact or full) that has written its config, in trial order: the
    trial's own record (trials/<trial>.json) with `config`, `total_steps`, `curves` (per seed, in seed
    order: the seed, its evaluation rows as dicts of floats), `returns` (per seed, the mean return of
    each evaluation), `final_returns` (each seed's last), `step` (the least advanced seed's last
    evaluated step, 0 before any) and `several` (whether its seeds are kept apart: seed_N/
    directories; a one-seed trial's curve is drawn as a single line)."""
    sweep_dir = Path(sweep_dir)
    rows = _compact_trials(sweep_dir) if is_compact(sweep_dir) else _full_trials(sweep_dir)
    for row in rows:
        row["returns"] = [[e["mean_return"] for e in evals] for _, evals in row["curves"]]
        row["final_returns"] = [r[-1] for r in row["returns"]]
        row["step"] = min((int(evals[-1]["step"]) for _, evals in row["curves"]), default=0)
        row["total_steps"] = row["config"].total_steps
    return rows


def pool_seed_blocks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`trials` with the trials that differ only in their first seed as one row each. A spec's
    `first_seed: [1, 2, 3]` runs one setting's blocks of seeds as separate trials, side by side; the
    reports read them as one trial of all their seeds (in seed order), named by its trials joined
    with '+'. Rows of one sweep only: the reports pool each sweep on its own."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["task"], row["preset"], row["total_steps"],
                setting(row["config"], row["preset"], row["task"]))].append(row)
    return [pooled(group) for group in groups.values()]


def pooled(group: list[dict[str, Any]]) -> dict[str, Any]:
    """Trials of one setting as one row of all their seeds (in seed order), named by its trials joined
    with '+'; a single trial as it is."""
    if len(group) == 1:
        return group[0]
    group = sorted(group, key=lambda r: r["config"].seed)
    curves = sorted((c for r in group for c in r["curves"]), key=lambda c: c[0])
    returns = [[e["mean_return"] for e in evals] for _, evals in curves]
    return {**group[0], "trial": "+".join(r["trial"] for r in group), "seeds": sum(r.get("seeds", 1) for r in group),
            "several": True, "curves": curves, "returns": returns, "final_returns": [r[-1] for r in returns],
            "step": min(r["step"] for r in group)}


def _full_trials(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for row in trial_rows(sweep_dir):
        config, num_seeds = find_run(row["run_dir"])
        several = max(num_seeds, row.get("seeds", 1)) > 1  # as trial_rows tells the layouts apart
        dirs = seed_dirs(row["run_dir"]) if several else {config.seed: row["run_dir"]}
        curves = [(seed, _with_training([_numbers(e) for e in read_csv(d / "eval.csv")], d))
                  for seed, d in dirs.items() if (d / "eval.csv").exists()]
        keep = {k: v for k, v in row.items() if k not in ("returns", "final_returns", "step", "total_steps")}
        rows.append({**keep, "config": config, "several": several, "curves": [c for c in curves if c[1]]})
    return rows


def _compact_trials(sweep_dir: Path) -> list[dict[str, Any]]:
    configs = json.loads((sweep_dir / CONFIGS).read_text())
    evaluations: dict[str, dict[int, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for line in read_csv(sweep_dir / CURVES):
        evaluations[line["trial"]][int(line["seed"])].append(
            _numbers({k: v for k, v in line.items() if k not in CURVE_KEYS or k in ("step", "mean_return")}))
    rows = []
    for trial_file in sorted((sweep_dir / "trials").glob("*.json")):
        trial = json.loads(trial_file.read_text())
        if trial_file.stem not in configs:
            continue  # a trial that had not written its config when the sweep was compacted
        config = Config.from_dict(configs[trial_file.stem])
        per_seed = evaluations.get(trial_file.stem, {})
        curves = [(seed, sorted(per_seed[seed], key=lambda e: e["step"])) for seed in sorted(per_seed)]
        rows.append({**trial, "config": config, "several": trial.get("seeds", 1) > 1, "curves": curves})
    return rows


def _with_training(evals: list[dict[str, float]], run_dir: Path) -> list[dict[str, float]]:
    """Each evaluation with the training at its step: `train_` and the columns of TRAINING_METRICS
    from metrics.csv at that step, and of the training episodes that ended since the evaluation
    before, how many (`train_episodes`), their summed return and their summed length
    (`train_return_sum`, `train_length_sum`: their ratio is the reward per step)."""
    metrics = {int(float(m["step"])): m for m in read_csv(run_dir / "metrics.csv")} \
        if (run_dir / "metrics.csv").exists() else {}
    episodes = sorted(((int(float(x["step"])), float(x["return"]), float(x["length"]))
                       for x in read_csv(run_dir / "episodes.csv")) if (run_dir / "episodes.csv").exists() else [])
    ends, returns, lengths = (np.asarray(column) for column in zip(*episodes)) if episodes else ((), (), ())
    previous = 0
    for e in evals:
        step = int(e["step"])
        row = metrics.get(step, {})
        e.update({f"train_{k}": v for k, v in _numbers(row).items() if k in TRAINING_METRICS})
        if episodes:
            window = slice(*np.searchsorted(ends, [previous, step], side="right"))
            e.update(train_episodes=float(len(returns[window])), train_return_sum=float(returns[window].sum()),
                     train_length_sum=float(lengths[window].sum()))
        previous = step
    return evals


def _numbers(row: dict[str, str]) -> dict[str, float]:
    """An eval.csv row with its numbers as floats (empty cells left out)."""
    return {k: float(v) for k, v in row.items() if v not in ("", None)}


def curve_arrays(row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A trial's evaluations for a plot: the steps its seeds all reached and the returns at them,
    (seeds, evaluations) for a trial of several seeds, (evaluations,) for a one-seed trial."""
    length = min(len(evals) for _, evals in row["curves"])
    steps = np.array([e["step"] for e in row["curves"][0][1][:length]])
    returns = np.array([[e["mean_return"] for e in evals[:length]] for _, evals in row["curves"]])
    return steps, (returns if row["several"] else returns[0])


def compact(sweep_dir: Path, out_dir: Path) -> int:
    """Write the compact form of the sweep in `sweep_dir` (compact or full) to `out_dir`; returns the
    number of evaluation rows written."""
    sweep_dir, out_dir = Path(sweep_dir), Path(out_dir)
    _check_sweep(sweep_dir)
    if out_dir.resolve() == sweep_dir.resolve():
        raise ConfigError(f"OUT_DIR is the sweep itself ({sweep_dir}): give another directory")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir} exists and is not empty: give a new directory (nothing was written)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (sweep_dir / name).exists():
            shutil.copy2(sweep_dir / name, out_dir / name)
    return _write_trials(out_dir, [(row, sweep_dir) for row in trials(sweep_dir)])


def add(sweep_dir: Path, out_dir: Path) -> tuple[int, int]:
    """Add the trials of `sweep_dir` (compact or full) to `out_dir`, the compact form of a sweep of the
    same trials (`ddpgx.sweeps.same_trials`; its spec.json becomes the added sweep's): of two trials
    of one task, preset, variant and block of seeds, the one evaluated further stays (the added one
    if level). The sweep's own report (results.md, .csv, curves.png) covered one part and is left
    out; the added part's host.json is kept as host-N.json. Written beside `out_dir` first, then
    swapped in. Adding a part again, further on, updates its trials. Returns the evaluation rows and
    the trials taken from `sweep_dir`."""
    sweep_dir, out_dir = Path(sweep_dir), Path(out_dir)
    _check_sweep(sweep_dir)
    if not is_compact(out_dir):
        raise ConfigError(f"{out_dir} is not the compact form of a sweep: make it with `compact.py SWEEP_DIR {out_dir}`")
    theirs, ours = (Spec.from_json(json.loads((d / "spec.json").read_text())) for d in (sweep_dir, out_dir))
    if not same_trials(theirs, ours):
        raise ConfigError(f"{sweep_dir}'s trials differ from {out_dir}'s (in the fields of every trial, the seeds per "
                          f"trial, the trainable or a task's fields): only sweeps of the same trials join (nothing "
                          f"was written)")
    kept: dict[str, tuple[dict[str, Any], Path]] = {}
    old, dropped = trials(out_dir), _dropped(out_dir)
    new = [row for row in trials(sweep_dir) if row["trial"] not in dropped]
    for row, source in [(r, out_dir) for r in old] + [(r, sweep_dir) for r in new]:
        key = trial_key(row["task"], row["preset"], row.get("params", {}), row["first_seed"])
        if key not in kept or row["step"] >= kept[key][0]["step"]:
            kept[key] = (row, source)
    staging = _staging(out_dir, "adding")
    shutil.copy2(sweep_dir / "spec.json", staging / "spec.json")  # the newer spec: it may have grown
    known = [p.read_bytes() for p in staging.glob("host*.json")]
    if (sweep_dir / "host.json").exists() and (sweep_dir / "host.json").read_bytes() not in known:  # a new part
        part = 1 + len(list(staging.glob("host-*.json")))
        shutil.copy2(sweep_dir / "host.json", staging / f"host-{part}.json")
    written = _write_trials(staging, sorted(kept.values(), key=lambda item: item[0]["trial"]))
    _swap_in(staging, out_dir)
    return written, sum(source == sweep_dir for _, source in kept.values())


def drop(out_dir: Path, names: list[str]) -> int:
    """Take the unfinished trials `names` out of `out_dir` (a compact form) for good: their records
    go to dropped.json (with the step each had reached), and `add` leaves them out from then on.
    Refuses, changing nothing, a name that is not a trial there and a trial that has finished.
    Returns the evaluation rows kept."""
    out_dir = Path(out_dir)
    if not is_compact(out_dir):
        raise ConfigError(f"{out_dir} is not the compact form of a sweep: give a directory `compact.py` wrote")
    rows = {row["trial"]: row for row in trials(out_dir)}
    for name in names:
        if name not in rows:
            raise ConfigError(f"{out_dir} has no trial {name!r}: give one of {', '.join(rows)} (nothing was changed)")
        if rows[name]["step"] >= rows[name]["total_steps"]:
            raise ConfigError(f"trial {name} has finished ({rows[name]['step']:,} steps): only unfinished trials "
                              f"are dropped (nothing was changed)")
    dropped = _dropped(out_dir)
    for name in names:
        record = json.loads((out_dir / "trials" / f"{name}.json").read_text())
        dropped[name] = {**record, "reached_step": rows[name]["step"]}
    staging = _staging(out_dir, "dropping")
    for name in COPIED:  # the sweep's own report stays as it was: it says what that sweep ran
        if (out_dir / name).exists():
            shutil.copy2(out_dir / name, staging / name)
    (staging / DROPPED).write_text(json.dumps(dropped, indent=2) + "\n")
    written = _write_trials(staging, [(row, out_dir) for name, row in rows.items() if name not in dropped])
    _swap_in(staging, out_dir)
    return written


def _dropped(out_dir: Path) -> dict[str, dict]:
    path = Path(out_dir) / DROPPED
    return json.loads(path.read_text()) if path.exists() else {}


def _staging(out_dir: Path, what: str) -> Path:
    """A new directory beside `out_dir` with its host*.json and dropped.json, to be filled and swapped in."""
    staging = out_dir.with_name(f"{out_dir.name}.{what}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for path in [*out_dir.glob("host*.json"), out_dir / DROPPED]:
        if path.exists():
            shutil.copy2(path, staging / path.name)
    return staging


def _swap_in(staging: Path, out_dir: Path) -> None:
    replaced = out_dir.with_name(out_dir.name + ".replaced")
    out_dir.rename(replaced)
    staging.rename(out_dir)
    shutil.rmtree(replaced)


def hosts(sweep_dir: Path) -> dict[str, dict]:
    """The machines a sweep's trials ran on (host.json, and host-N.json of the parts added to it), by
    the sweep's name and part."""
    sweep_dir = Path(sweep_dir)
    found = {}
    for path in sorted(sweep_dir.glob("host*.json")):
        part = path.stem.partition("-")[2]
        found[sweep_dir.name + (f" (part {part})" if part else "")] = json.loads(path.read_text())
    return found


def _check_sweep(sweep_dir: Path) -> None:
    if not (sweep_dir / "spec.json").exists():
        raise ConfigError(f"{sweep_dir} has no spec.json: give a directory `ddpgx sweep` wrote")


def _write_trials(out_dir: Path, rows: list[tuple[dict[str, Any], Path]]) -> int:
    """trials/, configs.json and curves.csv of `rows` (each trial with the sweep directory its record is in)."""
    extra = sorted({k for row, _ in rows for _, evals in row["curves"] for e in evals for k in e} - set(CURVE_KEYS))
    (out_dir / "trials").mkdir()
    for row, source in rows:
        shutil.copy2(source / "trials" / f"{row['trial']}.json", out_dir / "trials" / f"{row['trial']}.json")
    configs = {row["trial"]: row["config"].to_dict() for row, _ in rows}
    (out_dir / CONFIGS).write_text(json.dumps(configs, indent=2) + "\n")
    written = 0
    with open(out_dir / CURVES, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*CURVE_KEYS, *extra], lineterminator="\n")
        writer.writeheader()
        for row, _ in rows:
            label = setting(row["config"], row["preset"], row["task"])
            for seed, evals in row["curves"]:
                for e in evals:
                    writer.writerow({"trial": row["trial"], "task": row["task"], "preset": row["preset"],
                                     "setting": label, "seed": seed, **{k: _cell(v) for k, v in e.items()}})
                    written += 1
    return written


def _cell(value: float) -> int | str:
    """A number as eval.csv wrote it: an integer without its '.0', a float by its shortest repr."""
    return int(value) if value.is_integer() else repr(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR")
    parser.add_argument("out_dir", type=Path, nargs="?", metavar="OUT_DIR")
    parser.add_argument("--add", action="store_true",
                        help="add the trials to OUT_DIR, the compact form of a sweep of the same spec")
    parser.add_argument("--drop", nargs="+", metavar="TRIAL",
                        help="take these unfinished trials out of the compact form given as the one directory")
    args = parser.parse_args()
    if (args.drop is None) == (args.out_dir is None):
        parser.error("give SWEEP_DIR OUT_DIR (with --add or not), or one compact directory with --drop")
    try:
        if args.drop:
            written = drop(args.sweep_dir, args.drop)
            print(f"wrote {args.sweep_dir}: {written:,} evaluations of {len(trials(args.sweep_dir))} trials, "
                  f"{', '.join(args.drop)} dropped")
            return
        if args.add:
            written, added = add(args.sweep_dir, args.out_dir)
        else:
            written, added = compact(args.sweep_dir, args.out_dir), None
    except ConfigError as error:
        sys.exit(f"error: {error}")
    print(f"wrote {args.out_dir}: {written:,} evaluations of {len(trials(args.out_dir))} trials"
          + (f", {added} of them from {args.sweep_dir}" if added is not None else ""))


if __name__ == "__main__":
    main()
