"""Sweeps on Ray Tune: `ddpgx sweep SPEC.yaml` and `ddpgx.sweep(spec)`.

A spec names tasks, a preset, field overrides, variants (sets of field overrides, one trial each), a
search space, seeds per trial and an optional ASHA scheduler. A trial is one (task, preset, variant,
point of the search space); its seeds are trained
together in one process, the vmapped seed axis. Each trial writes an ordinary ddpgx run directory
(SWEEP_DIR/runs/<trial id>/), reports every evaluation to Tune, and registers a checkpoint with it
that names the ddpgx checkpoint of that step: a trial that fails is retried and resumes its run
directory exactly, so it ends where it would have.

    SWEEP_DIR = STORAGE_PATH/NAME/
      spec.json            the spec, as parsed
      .lock                held by the driver; a second driver is refused
      driver.json          the driver's PID, its Ray session's tag and services, for `--resume` after it died
      outcomes.json        how each trial that ended ended (completed, or failed), as the driver saw it
      tune/                Tune's experiment (its state, its trials' results)
      runs/<trial>/        each trial's ddpgx run directory (`ddpgx eval`, `plot`, `export` work on it)
      trials/<trial>.json  each trial's task, preset and parameters
      results.md, results.csv, curves.png    the report (`report`)

The spec and the trial function need no Ray (tests drive `run_trial` with a fake report); only
`sweep` starts Ray, through `cluster.py`, once the spec is checked whole (`load_spec`) and fits
this machine (`check_resources`).
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import itertools
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ddpgx.config import Config, ConfigError
from ddpgx.files import write_json
from ddpgx.presets import PRESETS, from_preset

SPEC_KEYS = ("name", "tasks", "preset", "config", "variants", "search", "seeds", "first_seed", "samples",
             "sample_seed", "scheduler", "max_concurrent", "cpus_per_trial", "gpus_per_trial", "max_failures",
             "trainable")
DISTRIBUTIONS = ("choice", "uniform", "loguniform")
SWEEP_OWNS = ("env_id", "seed")  # set by the spec's tasks and seeds, not by fields


class SpecError(ConfigError):
    """A sweep spec is invalid; the message names the key and what to do."""


@dataclass(frozen=True)
class Dimension:
    """One searched field: a grid (every value is a trial), or a distribution sampled `samples` times."""

    kind: str  # "grid", "choice", "uniform", "loguniform"
    values: tuple

    def candidates(self) -> tuple:
        """The values a trial may get (for a range: its ends), for checking the spec."""
        return self.values


@dataclass(frozen=True)
class Asha:
    """ASHA (Li et al. 2020) on the noise-free evaluation return, with time in environment steps."""

    grace_period: int
    reduction_factor: float = 3.0


@dataclass(frozen=True)
class Spec:
    name: str
    tasks: dict[str, dict[str, Any]]
    """Task -> its own field overrides."""
    presets: tuple[str, ...] = ("default",)
    config: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Dimension] = field(default_factory=dict)
    seeds: int = 1
    first_seed: int | tuple[int, ...] = 0
    """The first seed of a trial; several split the seeds over trials, one trial per first seed."""
    samples: int = 1
    sample_seed: int = 0
    scheduler: Asha | None = None
    max_concurrent: int = 0
    """Trials side by side (0: as many as the cluster's CPUs allow)."""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 3
    trainable: str = "ddpgx"
    """"ddpgx", or "module:function" with the signature of `ddpgx_trainable`."""
    variants: tuple[dict[str, Any], ...] = ({},)
    """Sets of field overrides, one trial each (crossed with the tasks, presets and search space)."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["search"] = {k: {"kind": d.kind, "values": list(d.values)} for k, d in self.search.items()}
        return out

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Spec:
        values = dict(values)
        values["search"] = {k: Dimension(d["kind"], _frozen(d["values"])) for k, d in values["search"].items()}
        values["scheduler"] = Asha(**values["scheduler"]) if values["scheduler"] else None
        values["presets"] = tuple(values["presets"])
        if isinstance(values.get("first_seed"), list):
            values["first_seed"] = tuple(values["first_seed"])
        values["variants"] = tuple(dict(v) for v in values.get("variants", [{}]))
        return cls(**values)


def _frozen(values: list) -> tuple:
    """A dimension's values as a tuple, list-valued ones (layer widths) as tuples too."""
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


# ----------------------------------------------------------------------------- the spec


def load_spec(source: str | Path | dict[str, Any]) -> Spec:
    """Parse and check a spec (a YAML file, or its contents as a dict); every error is one line."""
    where = "the spec"
    if not isinstance(source, dict):
        where = str(source)
        try:
            import yaml
        except ImportError:
            raise SpecError("reading a spec needs PyYAML: pip install 'ddpgx[ray]'") from None
        try:
            source = yaml.safe_load(Path(source).read_text())
        except OSError as error:
            raise SpecError(f"cannot read the spec {where}: {error.strerror or error}") from None
        except yaml.YAMLError as error:
            raise SpecError(f"{where} is not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(source, dict):
        raise SpecError(f"{where} must be a mapping of keys ({', '.join(SPEC_KEYS)})")
    try:
        return _parse(source, where)
    except SpecError:
        raise
    except ConfigError as error:
        raise SpecError(f"{where}: {error}") from None


def _parse(raw: dict[str, Any], where: str) -> Spec:
    def fail(key: str, why: str) -> SpecError:
        return SpecError(f"{where}: {key}: {why}")

    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)}; a spec has {', '.join(SPEC_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise fail("name", "give the sweep a name (a directory name, no '/')")
    tasks = raw.get("tasks")
    if isinstance(tasks, str):
        tasks = [tasks]
    if isinstance(tasks, list):
        for task in tasks:
            if not isinstance(task, str) or not task:
                raise fail("tasks", f"{task!r} is not a Gymnasium id: list ids such as [Pendulum-v1, Hopper-v5]")
        if len(set(tasks)) != len(tasks):
            raise fail("tasks", "a task is listed twice: list each once")
        tasks = {task: {} for task in tasks}
    if not isinstance(tasks, dict) or not tasks:
        raise fail("tasks", "list the Gymnasium ids to train on, or map each to its own field overrides")
    for task, overrides in tasks.items():
        if not isinstance(task, str) or not task:
            raise fail("tasks", f"{task!r} is not a Gymnasium id: map ids such as Pendulum-v1 to field overrides")
        if not isinstance(overrides or {}, dict):
            raise fail(f"tasks.{task}", "must map field overrides such as {total_steps: 100000}")
        tasks[task] = _fields(overrides or {}, f"tasks.{task}", fail)
    presets = raw.get("preset", "default")
    presets = tuple(presets) if isinstance(presets, list) else (presets,)
    if not presets:
        raise fail("preset", f"list at least one preset: {', '.join(PRESETS)}")
    for preset in presets:
        if not isinstance(preset, str) or preset not in PRESETS:
            raise fail("preset", f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}, or list several")
    if len(set(presets)) != len(presets):
        raise fail("preset", "a preset is listed twice: list each once")
    config = _fields(raw.get("config") or {}, "config", fail)
    variants = raw.get("variants", [{}])
    if not isinstance(variants, list) or not variants:
        raise fail("variants", "list sets of field overrides, one trial each, such as [{}, {n_step: 3}]")
    variants = tuple(_fields(variant or {}, f"variants[{i}]", fail) for i, variant in enumerate(variants))
    search = {}
    for name_, dim in _fields(raw.get("search") or {}, "search", fail, values_too=False).items():
        search[name_] = _dimension(name_, dim, fail)
        for value in search[name_].candidates():
            _check_value(name_, value, f"search.{name_}", fail)
    numbers = {}
    blocks = raw.get("first_seed", 0)
    if isinstance(blocks, list):
        if not blocks or len(set(map(repr, blocks))) != len(blocks):
            raise fail("first_seed", "give one first seed, or a list of distinct ones (one trial each)")
        for value in blocks:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail("first_seed", f"must list integers of at least 0, not {value!r}")
        raw = {**raw, "first_seed": 0}
    for key, default, low in (("seeds", 1, 1), ("first_seed", 0, 0), ("samples", 1, 1), ("sample_seed", 0, 0),
                              ("max_concurrent", 0, 0), ("max_failures", 3, 0)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise fail(key, f"must be an integer of at least {low}, not {value!r}")
        numbers[key] = value
    if isinstance(blocks, list):
        numbers["first_seed"] = tuple(blocks)
        ordered = sorted(blocks)
        for low, high in zip(ordered, ordered[1:]):
            if high < low + numbers["seeds"]:
                raise fail("first_seed", f"the blocks of {numbers['seeds']} seeds from {low} and from {high} overlap")
    last = max(blocks) if isinstance(blocks, list) else numbers["first_seed"]
    if last + numbers["seeds"] > 2**32:
        raise fail("seeds", f"seeds {last}..{last + numbers['seeds'] - 1} go past the largest seed, 2**32 - 1")
    for key, default in (("cpus_per_trial", 1.0), ("gpus_per_trial", 0.0)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
            raise fail(key, f"must be a number of at least 0, not {value!r}")
        numbers[key] = float(value)
    if numbers["cpus_per_trial"] == 0 and numbers["gpus_per_trial"] == 0:
        raise fail("cpus_per_trial", "a trial needs some CPUs or GPUs")
    scheduler = raw.get("scheduler")
    if scheduler is not None:
        if not (isinstance(scheduler, dict) and set(scheduler) == {"asha"} and isinstance(scheduler["asha"], (dict, type(None)))):
            raise fail("scheduler", "the one scheduler is asha: {asha: {grace_period: STEPS, reduction_factor: 3}}")
        options = scheduler["asha"] or {}
        bad = sorted(set(options) - {"grace_period", "reduction_factor"})
        if bad:
            raise fail("scheduler.asha", f"unknown option(s) {', '.join(bad)}; asha takes grace_period, reduction_factor")
        if len(tasks) > 1:
            raise fail("scheduler", "ASHA compares trials by their return, which differs from task to task: "
                                    "sweep one task at a time")
        grace, factor = options.get("grace_period", 0), options.get("reduction_factor", 3)
        if isinstance(grace, bool) or not isinstance(grace, int) or grace < 1:
            raise fail("scheduler.asha.grace_period", "give the steps every trial runs before it may be stopped")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
            raise fail("scheduler.asha.reduction_factor", "must be a number above 1")
        scheduler = Asha(grace, float(factor))
    trainable = raw.get("trainable", "ddpgx")
    if not isinstance(trainable, str) or (trainable != "ddpgx" and ":" not in trainable):
        raise fail("trainable", "'ddpgx', or 'module:function' or 'path/file.py:function' for a trainable of your own")
    module, _, function = trainable.partition(":")
    if module.endswith(".py"):  # a file, relative to the spec's directory
        base = Path(where).parent if where != "the spec" else Path.cwd()
        path = (base / module).resolve()
        if not path.is_file():
            raise fail("trainable", f"{path} does not exist")
        trainable = f"{path}:{function}"
    if trainable != "ddpgx":  # found now, not in every trial
        try:
            load_trainable(trainable)
        except SpecError as error:
            raise fail("trainable", str(error)) from None
    overlap = sorted({k for variant in variants for k in variant} & set(search))
    if overlap:
        raise fail("variants", f"{', '.join(overlap)} is also searched: set a field in the variants or in the search")
    spec = Spec(name, tasks, presets, config, search, scheduler=scheduler, trainable=trainable, variants=variants,
                **numbers)
    for task, preset, variant, point in checked_values(spec):  # what trials may get, checked as Configs
        try:
            trial_config(spec, task, preset, {**variants[variant], **point})
        except ConfigError as error:
            trial = [f"task {task}", f"preset {preset}"] + ([f"variants[{variant}]"] if len(variants) > 1 else []) + \
                [f"{k}={_short(v)}" for k, v in point.items()]
            raise SpecError(f"{where}: {', '.join(trial)}: {error}") from None
    if scheduler is not None and scheduler.grace_period > longest_trial(spec):
        raise fail("scheduler.asha.grace_period", f"{scheduler.grace_period} is above the longest trial's total_steps, "
                                                  f"{longest_trial(spec)}: ASHA could never stop a trial")
    return spec


def _fields(values: Any, key: str, fail: Callable[[str, str], SpecError], values_too: bool = True) -> dict[str, Any]:
    """Config fields and their values (`values_too`) or their search dimensions, checked by name."""
    if not isinstance(values, dict):
        raise fail(key, "must map Config fields to values")
    known = {f.name for f in fields(Config)}
    for name in values:
        if name in SWEEP_OWNS:
            raise fail(f"{key}.{name}", "is set by the spec's tasks and seeds, not as a field")
        if name not in known:
            raise fail(f"{key}.{name}", f"unknown Config field; known fields are {', '.join(sorted(known - set(SWEEP_OWNS)))}")
        if values_too:
            _check_value(name, values[name], f"{key}.{name}", fail)
    return dict(values)


def _check_value(name: str, value: Any, key: str, fail: Callable[[str, str], SpecError]) -> None:
    """What a Config cannot say as well: YAML's text that looks like a number, and rollout workers."""
    if _number_text(value) and _numeric(name):
        raise fail(key, _YAML_NUMBER.format(value=value))
    if name == "workers" and value not in (0, None):
        raise fail(key, f"a trial trains in one process of its own: rollout workers (workers={value!r}) cannot run "
                        f"inside it; leave workers at 0 (trials side by side: max_concurrent, cpus_per_trial)")


_YAML_NUMBER = ("{value!r} is text, not a number: YAML reads a number in exponent notation without a dot (1e-4) "
                "as a string; write 1.0e-4")


def _number_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _numeric(name: str) -> bool:
    hint = str(next(f.type for f in fields(Config) if f.name == name))
    return "int" in hint or "float" in hint


def _dimension(name: str, raw: Any, fail: Callable[[str, str], SpecError]) -> Dimension:
    key = f"search.{name}"
    if isinstance(raw, list):
        if not raw:
            raise fail(key, "a grid needs at least one value")
        return Dimension("grid", _frozen(raw))
    if not (isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in DISTRIBUTIONS):
        raise fail(key, "give a list (a grid), or one of {choice: [a, b]}, {uniform: [low, high]}, "
                        "{loguniform: [low, high]}")
    kind, values = next(iter(raw.items()))
    if not isinstance(values, list) or not values:
        raise fail(f"{key}.{kind}", "must be a list")
    if kind == "choice":
        return Dimension(kind, _frozen(values))
    for value in values:
        if _number_text(value):
            raise fail(f"{key}.{kind}", _YAML_NUMBER.format(value=value))
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise fail(f"{key}.{kind}", f"must be [low, high], two numbers, not {values!r}")
    low, high = (float(v) for v in values)
    if not low < high or (kind == "loguniform" and low <= 0):
        raise fail(f"{key}.{kind}", "needs low < high" + (", both positive" if kind == "loguniform" else ""))
    hint = next(f.type for f in fields(Config) if f.name == name)
    if "float" not in str(hint):
        raise fail(key, f"{name} is not a real-valued field: search it with a grid or a choice")
    return Dimension(kind, (low, high))


CHECK_LIMIT = 4096
"""Beyond this many combinations of search values per task, preset and variant, `checked_values`
checks every combination of every three searched fields instead of all of them."""


def checked_values(spec: Spec):
    """(task, preset, variant index, search values): the trials to check as Configs before a sweep
    starts, so that a trial the sweep may make is invalid only if one of these is.

    Every task, preset and variant; with them, every combination of the searched fields' candidate
    values (a grid's and a choice's values, a range's two ends: `Config`'s checks are monotone in
    a real field, so a range is valid wherever its ends are). Past CHECK_LIMIT combinations,
    every combination of the values of every three searched fields, the others at their first
    value: no check of `Config` involves more than three fields (the widest relates noise_schedule,
    noise_sigma and noise_sigma_final), so a combination that fails has three fields that fail
    together, and this covers them. Bounded by C(fields, 3) x values^3.
    """
    names = list(spec.search)
    candidates = [spec.search[name].candidates() for name in names]
    if math.prod(len(c) for c in candidates) <= CHECK_LIMIT:
        points = [dict(zip(names, combination)) for combination in itertools.product(*candidates)]
    else:
        first = {name: c[0] for name, c in zip(names, candidates)}
        points = []
        for group in itertools.combinations(range(len(names)), 3):
            for combination in itertools.product(*(candidates[i] for i in group)):
                points.append({**first, **{names[i]: value for i, value in zip(group, combination)}})
    for task, preset, variant in itertools.product(spec.tasks, spec.presets, range(len(spec.variants))):
        for point in points:
            yield task, preset, variant, point


def longest_trial(spec: Spec) -> int:
    """The most environment steps a trial of the spec runs (ASHA's max_t): over every task, preset
    and variant, and every searched value of total_steps."""
    searched = spec.search["total_steps"].candidates() if "total_steps" in spec.search else (None,)
    return max(trial_config(spec, task, preset, {**variant, **({} if steps is None else {"total_steps": steps})}).total_steps
               for task, preset, variant in itertools.product(spec.tasks, spec.presets, spec.variants)
               for steps in searched)


def first_seeds(spec: Spec) -> tuple[int, ...]:
    """The first seed of each block of seeds (one trial each)."""
    return spec.first_seed if isinstance(spec.first_seed, tuple) else (spec.first_seed,)


def trial_config(spec: Spec, task: str, preset: str, values: dict[str, Any], first_seed: int | None = None) -> Config:
    """The Config of a trial: the preset for the task, then the spec's fields, the task's, the trial's
    variant and point of the search space (`values`); its seed is the first of its block."""
    seed = first_seeds(spec)[-1] if first_seed is None else first_seed
    return from_preset(preset, task, **{**spec.config, **spec.tasks[task], **values, "seed": seed})


def trials_in_grid(spec: Spec) -> int:
    """How many trials the spec makes (grid points x samples x tasks x presets x variants x seed blocks)."""
    grid = math.prod(len(d.values) for d in spec.search.values() if d.kind == "grid")
    return len(spec.tasks) * len(spec.presets) * len(spec.variants) * len(first_seeds(spec)) * grid * spec.samples


def grid_cells(spec: Spec) -> list[dict[str, Any]]:
    """Every trial of a spec whose trials are all enumerable (no sampled fields, one sample), each as
    the parameters Tune gives it: task, preset, variant index, first seed and searched grid values."""
    if spec.scheduler is not None:
        raise SpecError("a spec with a scheduler stops trials by how they compare as they run: its trials cannot "
                        "be split over sweeps; run it whole")
    if spec.samples > 1 or any(d.kind != "grid" for d in spec.search.values()):
        raise SpecError("a spec with sampled fields (choice, uniform, loguniform, or samples > 1) has no fixed set "
                        "of trials to skip: run it whole, or make its searched fields grids")
    names = list(spec.search)
    return [{"task": task, "preset": preset, "variant": variant, "first_seed": first_seed, **dict(zip(names, point))}
            for first_seed, variant, preset, task, point in itertools.product(
                first_seeds(spec), range(len(spec.variants)), spec.presets, spec.tasks,
                itertools.product(*(spec.search[n].values for n in names)))]


def trial_key(task: str, preset: str, values: dict[str, Any], first_seed: int) -> str:
    """What identifies a trial across sweeps of the same trials (`same_trials`): its task, preset,
    first seed, and the fields its variant and point of the search space set."""
    return json.dumps([task, preset, first_seed, sorted(values.items())], default=str)


def finished_trials(sweep_dir: Path) -> list[dict[str, Any]]:
    """The records (trials/<trial>.json) of the trials of a sweep whose every seed was evaluated at
    its last step: a sweep directory `ddpgx sweep` wrote, or its compact form (benchmarks/compact.py:
    trials/, configs.json and curves.csv, without the run directories)."""
    sweep_dir = Path(sweep_dir)
    if (sweep_dir / "curves.csv").exists():  # the compact form
        configs = _read_json(sweep_dir / "configs.json")
        last: dict[str, dict[int, int]] = {}
        with open(sweep_dir / "curves.csv", newline="") as f:
            for line in csv.DictReader(f):
                seeds = last.setdefault(line["trial"], {})
                seeds[int(line["seed"])] = max(seeds.get(int(line["seed"]), 0), int(float(line["step"])))
        done = []
        for trial_file in sorted((sweep_dir / "trials").glob("*.json")):
            trial, seeds = _read_json(trial_file), last.get(trial_file.stem, {})
            if trial_file.stem in configs and len(seeds) == trial.get("seeds", 1) and \
                    min(seeds.values()) >= configs[trial_file.stem]["total_steps"]:
                done.append(trial)
        return done
    return [{k: v for k, v in row.items() if k in ("trial", "task", "preset", "params", "seeds", "first_seed", "cores")}
            for row in trial_rows(sweep_dir)
            if len(row["returns"]) == row.get("seeds", 1) and row["step"] >= row["total_steps"]]


def remaining_cells(spec: Spec, done_dirs: list[Path]) -> tuple[list[dict[str, Any]], int]:
    """The spec's trials (`grid_cells`) that none of `done_dirs`, sweeps of the same trials
    (`same_trials`), finished; and how many were skipped. Lets a sweep go on from another machine's
    results without its checkpoints: the trials that had not finished there start again."""
    cells = grid_cells(spec)
    done = set()
    for sweep_dir in done_dirs:
        if not (Path(sweep_dir) / "spec.json").exists():
            raise SpecError(f"{sweep_dir} holds no sweep (no spec.json): give a sweep directory or its compact form")
        theirs = Spec.from_json(_read_json(Path(sweep_dir) / "spec.json"))
        if not same_trials(theirs, spec):
            raise SpecError(f"{sweep_dir} is a sweep whose trials differ from this spec's (in the fields of every "
                            f"trial, the seeds per trial, the trainable or a task's fields): only a sweep with the "
                            f"same ones tells which trials are finished")
        done |= {trial_key(t["task"], t["preset"], t.get("params", {}), t["first_seed"])
                 for t in finished_trials(Path(sweep_dir))}
    left = [c for c in cells if trial_key(c["task"], c["preset"], _values(spec, c), c["first_seed"]) not in done]
    return left, len(cells) - len(left)


def same_trials(a: Spec, b: Spec) -> bool:
    """Whether a trial of spec `a` and one of `b` with the same task, preset, fields and first seed
    are the same trial: the same fields for every trial, seeds per trial and trainable, and the same
    overrides for the tasks both have. Their variants, search, first seeds, tasks and presets may
    differ (a spec that grew), and their names and resources."""
    return (a.config, a.seeds, trainable_identity(a.trainable)) == \
        (b.config, b.seeds, trainable_identity(b.trainable)) and \
        all(a.tasks[task] == b.tasks[task] for task in a.tasks.keys() & b.tasks.keys())


def trainable_identity(trainable: str) -> str:
    """A trainable as it names itself in any clone: a file is stored by its absolute path, which
    differs where the repository sits on another machine, so only its file name and function count."""
    file, _, function = trainable.rpartition(":")
    return f"{Path(file).name}:{function}" if file.endswith(".py") else trainable


def _values(spec: Spec, params: dict[str, Any]) -> dict[str, Any]:
    """The fields a trial's variant and point of the search space set (as its trials/<trial>.json records)."""
    point = {k: v for k, v in params.items() if k not in ("task", "preset", "variant", "first_seed")}
    return {**spec.variants[params.get("variant", 0)], **point}


# ----------------------------------------------------------------------------- a trial


def ddpgx_trainable(config: Config, run_dir: Path, num_seeds: int, on_evaluation: Callable, print_fn=print) -> None:
    """Train one trial's ddpgx run, or resume it if every seed has a checkpoint (a retried trial).
    A run directory without one (the trial died before its first checkpoint) starts again."""
    from ddpgx import checkpoint as ckpt
    from ddpgx.loop import train
    from ddpgx.rundir import RunDir

    seed_dirs = RunDir(run_dir, [config.seed + k for k in range(num_seeds)]).seed_dirs
    resume = all(ckpt.latest_checkpoint(d) is not None for d in seed_dirs)
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)
    train(None if resume else config, run_dir, num_seeds=num_seeds, resume=resume, progress=False,
          print_fn=print_fn, on_evaluation=on_evaluation)


def run_trial(spec: Spec, params: dict[str, Any], sweep_dir: Path, trial_id: str,
              report: Callable[[dict[str, Any], Path | None], None], print_fn=print, cores: list[int] | None = None) -> Path:
    """Run one trial without knowing about Ray: `report(metrics, checkpoint_dir)` receives every
    evaluation. `cores` (the cores the trial's process is pinned to) is recorded with the trial.
    Returns the trial's run directory."""
    task, preset = params["task"], params["preset"]
    values = _values(spec, params)
    first_seed = params.get("first_seed", first_seeds(spec)[0])
    config = trial_config(spec, task, preset, values, first_seed)
    sweep_dir = Path(sweep_dir)
    run_dir, trials = sweep_dir / "runs" / trial_id, sweep_dir / "trials"
    trials.mkdir(parents=True, exist_ok=True)
    write_json(trials / f"{trial_id}.json", {"trial": trial_id, "task": task, "preset": preset, "params": values,
                                              "seeds": spec.seeds, "first_seed": first_seed, "cores": cores})
    pointer = trials / f"{trial_id}.tune"

    def on_evaluation(evaluation) -> None:
        per_seed = evaluation.returns.mean(axis=1)
        metrics = {"step": int(evaluation.step), "mean_return": float(per_seed.mean()),
                   "worst_seed_return": float(per_seed.min())}
        if evaluation.success is not None and all(math.isfinite(v) for v in evaluation.success.ravel()):
            metrics["success_rate"] = float(evaluation.success.mean())
        checkpoint = None
        if evaluation.checkpointed:  # Tune copies this directory: it names the ddpgx checkpoint, tiny
            pointer.mkdir(exist_ok=True)
            write_json(pointer / "ddpgx.json", {"run_dir": str(run_dir), "step": int(evaluation.step)})
            checkpoint = pointer
        report(metrics, checkpoint)

    trainable = ddpgx_trainable if spec.trainable == "ddpgx" else load_trainable(spec.trainable)
    trainable(config, run_dir, spec.seeds, on_evaluation, print_fn=print_fn)
    return run_dir


def load_trainable(path: str) -> Callable:
    """The function `module:function`, or `/path/file.py:function`."""
    module, _, name = path.partition(":")
    try:
        if module.endswith(".py"):
            found = importlib.util.spec_from_file_location(Path(module).stem, module)
            loaded = importlib.util.module_from_spec(found)
            found.loader.exec_module(loaded)
        else:
            loaded = importlib.import_module(module)
        function = getattr(loaded, name)
    except (ImportError, AttributeError, OSError, SyntaxError) as error:
        raise SpecError(f"cannot load the trainable {path}: {' '.join(str(error).split())}") from None
    if not callable(function):
        raise SpecError(f"the trainable {path} is not a function")
    return function


def _tune_trainable(params: dict[str, Any], spec_json: dict[str, Any], sweep_dir: str, cpus: int) -> None:
    """A trial as Ray Tune runs it, in a worker process of its own."""
    from ddpgx import cluster

    cores = cluster.pin_cpus(max(1, cpus))  # before JAX starts: XLA sizes its threads by the cores it may use
    from ray import tune

    def report(metrics: dict[str, Any], checkpoint: Path | None) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(checkpoint)) if checkpoint else None)

    params = {**params.get("cell", {}), **{k: v for k, v in params.items() if k != "cell"}}  # `grid_cells`' trials
    run_trial(Spec.from_json(spec_json), params, Path(sweep_dir), tune.get_context().get_trial_id(), report,
              cores=cores)


def _trial_dirname(trial: Any) -> str:
    return trial.trial_id


# ----------------------------------------------------------------------------- the driver


@dataclass
class SweepResult:
    sweep_dir: Path
    trials: int
    errors: int
    table: list[dict[str, Any]]
    interrupted: bool = False
    """Ctrl-C stopped the sweep: `unfinished` trials resume with `--resume`."""
    unfinished: int = 0


def check_resources(spec: Spec) -> None:
    """A trial must fit on this machine (a local Ray): otherwise Ray would wait for ever for the
    CPUs or GPUs it asks for. Checked before Ray starts."""
    from ddpgx.cluster import local_cpus, local_gpus

    cpus, gpus = local_cpus(), local_gpus()
    if spec.cpus_per_trial > cpus:
        raise SpecError(f"cpus_per_trial={spec.cpus_per_trial:g} is more than this machine's {cpus} CPUs: lower it, "
                        f"or join a cluster that has them (--address)")
    if spec.gpus_per_trial > gpus:
        raise SpecError(f"gpus_per_trial={spec.gpus_per_trial:g} is more than this machine's {gpus} GPUs (counted from "
                        f"CUDA_VISIBLE_DEVICES, or else from NVIDIA's driver): lower it, or join a cluster that has "
                        f"them (--address)")


def sweep(spec: str | Path | dict[str, Any] | Spec, storage_path: str | Path = "sweeps", *, address: str | None = None,
          resume: bool = False, skip_finished: Sequence[str | Path] = (),
          print_fn: Callable[[str], None] = print) -> SweepResult:
    """Run a sweep on Ray: a local Ray on 127.0.0.1 (address None) or the cluster at `address`.
    `resume` continues the sweep in STORAGE_PATH/NAME whose driver died or was interrupted.
    `skip_finished` (sweep directories of the same trials, `same_trials`, full or compact) starts a
    new sweep of the trials none of them finished: a spec's trials spread over machines or sessions,
    or the new trials of a spec that grew.

    Ctrl-C stops the trials at their last report and saves the experiment: the result says
    `interrupted`, and the report marks the trials that had not ended as unfinished. A second
    Ctrl-C stops at once."""
    from ddpgx import cluster
    from ddpgx.rundir import release_lock, take_lock

    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    sweep_dir = Path(storage_path).resolve() / spec.name
    tune_dir = sweep_dir / "tune"
    if resume and not (sweep_dir / "spec.json").exists():
        raise SpecError(f"cannot resume {sweep_dir}: it holds no sweep (no spec.json)")
    if not resume and sweep_dir.exists() and any(p.name != ".lock" for p in sweep_dir.iterdir()):
        raise SpecError(f"the sweep directory {sweep_dir} exists: pass --resume to continue that sweep, or give "
                        f"the sweep another name")
    cells = None
    if skip_finished:
        if resume:
            raise SpecError("--skip-finished starts a new sweep; --resume continues one with the trials it began with: "
                            "give one of them")
        cells, skipped = remaining_cells(spec, [Path(d) for d in skip_finished])
        if not cells:
            raise SpecError(f"every trial of {spec.name} is finished in {', '.join(map(str, skip_finished))}: "
                            f"nothing to run")
        print_fn(f"{skipped} trials finished elsewhere are skipped; {len(cells)} to run")
    if address is None:
        check_resources(spec)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = take_lock(sweep_dir, print_fn, what="the sweep directory")
    try:
        if resume:
            saved = Spec.from_json(json.loads((sweep_dir / "spec.json").read_text()))
            if saved != spec:
                raise SpecError(f"cannot resume {sweep_dir} with another spec: give the spec it was started with")
            previous = _read_json(sweep_dir / "driver.json")
            if previous.get("tag"):  # what the dead driver's Ray left running
                cluster.stop_processes(previous["tag"], previous.get("processes", []), previous.get("temp_dir"))
        ray_cluster = cluster.start(address, num_cpus=None if address else cluster.local_cpus(),
                                    num_gpus=None if address else cluster.local_gpus())
        try:
            if not resume:  # written once Ray runs: a sweep that could not start leaves nothing to resume
                write_json(sweep_dir / "spec.json", spec.to_json())
            write_json(sweep_dir / "driver.json", {"pid": os.getpid(), "address": ray_cluster.address,
                                                   "tag": ray_cluster.tag, "temp_dir": ray_cluster.temp_dir,
                                                   "processes": list(ray_cluster.processes)})
            results, interrupted = _run_tune(spec, sweep_dir, tune_dir, resume and _can_restore(tune_dir), print_fn,
                                             cells)
        finally:
            cluster.stop(ray_cluster)
        table = report(sweep_dir, print_fn=print_fn)
        unfinished = 0
        if interrupted:  # the trials not in the table never began
            unfinished = len(results) - sum(row["status"] != "unfinished" for row in table)
            print_fn(f"the sweep was interrupted: {unfinished} of {len(results)} trials unfinished")
        return SweepResult(sweep_dir, len(results), results.num_errors, table, interrupted, unfinished)
    finally:
        release_lock(lock)


def _can_restore(tune_dir: Path) -> bool:
    from ray import tune

    return tune.Tuner.can_restore(str(tune_dir))


OUTCOMES = "outcomes.json"
"""In a sweep directory: how each trial that ended ended, as the driver saw it: "completed" (it
returned, or ASHA stopped it) or "failed" (its retries spent)."""


def _outcomes(sweep_dir: Path) -> Any:
    """A Tune callback, in the driver, that records how trials end in OUTCOMES. A trial that Ctrl-C
    stopped does not end this way: it stays unrecorded, unfinished."""
    from ray import tune

    def record(trial: Any, outcome: str) -> None:
        path = sweep_dir / OUTCOMES
        write_json(path, {**_read_json(path), trial.trial_id: outcome})

    class Outcomes(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            record(trial, "completed")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            record(trial, "failed")

    return Outcomes()


class _Interrupt:
    """Ctrl-C during Tune's run: the first asks Tune to stop the trials and save the experiment
    (Tune's own stop, which it also gives SIGUSR1), the second stops at once (KeyboardInterrupt).
    Tune's message naming `Tuner.restore` is held back: `ddpgx sweep --resume` is the way back."""

    def __init__(self, print_fn: Callable[[str], None]):
        self.print_fn, self.requested = print_fn, False

    def __enter__(self) -> _Interrupt:
        import logging
        import signal
        import threading

        self.environ = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # SIGINT stays ours
        self.logger = logging.getLogger("ray.tune.tune")
        self.logger.addFilter(self._no_restore_hint)
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.usr1 = signal.getsignal(signal.SIGUSR1)  # Tune's stop, once its run begins
        return self

    def _handle(self, sig: int, frame: Any) -> None:
        import signal

        tune_stop = signal.getsignal(signal.SIGUSR1)
        if self.requested or tune_stop is self.usr1 or not callable(tune_stop):  # a second Ctrl-C, or Tune not yet running
            raise KeyboardInterrupt
        self.requested = True
        self.print_fn("interrupted: stopping the trials and saving the sweep (Ctrl-C again to stop at once)")
        tune_stop(sig, frame)

    @staticmethod
    def _no_restore_hint(record: Any) -> bool:
        return "Tuner.restore" not in record.getMessage()

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            signal.signal(signal.SIGUSR1, self.usr1)  # no stale stop of this run for the next one
        self.logger.removeFilter(self._no_restore_hint)
        if self.environ is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self.environ


def _search_space(spec: Spec) -> dict[str, Any]:
    """Tune's parameter space of the whole spec: every task, preset, variant and block of seeds,
    crossed with the searched fields."""
    from ray import tune

    space: dict[str, Any] = {"task": tune.grid_search(list(spec.tasks)), "preset": tune.grid_search(list(spec.presets))}
    if len(spec.variants) > 1:
        space["variant"] = tune.grid_search(list(range(len(spec.variants))))
    if len(first_seeds(spec)) > 1:
        space["first_seed"] = tune.grid_search(list(first_seeds(spec)))
    for name, dim in spec.search.items():
        space[name] = {"grid": tune.grid_search, "choice": tune.choice}[dim.kind](list(dim.values)) \
            if dim.kind in ("grid", "choice") else getattr(tune, dim.kind)(*dim.values)
    return space


def trial_space(spec: Spec, cells: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Tune's parameter space of a new sweep: `cells` (`grid_cells`' trials) when given, else every
    trial of a spec without sampled fields or a scheduler, in `grid_cells`' order: each first seed on
    every task, preset and variant before the next, on every machine the spec's trials run on.
    Specs with sampled fields or a scheduler get the spec's whole space (`_search_space`)."""
    from ray import tune

    if cells is None:
        try:
            cells = grid_cells(spec)
        except SpecError:
            return _search_space(spec)
    return {"cell": tune.grid_search(cells)}


def _run_tune(spec: Spec, sweep_dir: Path, tune_dir: Path, restore: bool, print_fn: Callable[[str], None],
              cells: list[dict[str, Any]] | None = None):
    """Tune's run of the spec's trials (a new experiment, or the one in `tune_dir` restored), and
    whether Ctrl-C stopped it. `cells` (`grid_cells`) runs those trials only, one grid point each."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    cpus = max(1, math.ceil(spec.cpus_per_trial))
    trainable = tune.with_resources(
        tune.with_parameters(_tune_trainable, spec_json=spec.to_json(), sweep_dir=str(sweep_dir), cpus=cpus),
        {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
    if restore:
        print_fn(f"resuming the sweep in {sweep_dir}")
        tuner = tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True, resume_errored=True)
    else:
        space = trial_space(spec, cells)
        scheduler = None
        if spec.scheduler is not None:
            scheduler = ASHAScheduler(time_attr="step", max_t=longest_trial(spec), grace_period=spec.scheduler.grace_period,
                                      reduction_factor=spec.scheduler.reduction_factor)
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(metric="mean_return", mode="max", scheduler=scheduler,
                                        # the generator limits the trials side by side: Tune ignores
                                        # max_concurrent_trials beside a generator given as search_alg
                                        search_alg=BasicVariantGenerator(random_state=spec.sample_seed,
                                                                         max_concurrent=spec.max_concurrent),
                                        num_samples=spec.samples,
                                        trial_dirname_creator=_trial_dirname),
            run_config=tune.RunConfig(storage_path=str(sweep_dir), name="tune", verbose=0,
                                      callbacks=[_outcomes(sweep_dir)],
                                      failure_config=tune.FailureConfig(max_failures=spec.max_failures)))
    # Tune keeps every checkpoint a trial registers (no num_to_keep): each is one small file naming a
    # ddpgx checkpoint, and a limit would force a snapshot of the experiment at every registration
    with _Interrupt(print_fn) as interrupt:
        results = tuner.fit()
    return results, interrupt.requested


# ----------------------------------------------------------------------------- the report


def trial_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every trial of a sweep with its noise-free returns per seed: every evaluation's and the last one."""
    from ddpgx.logging import read_csv
    from ddpgx.rundir import find_run, seed_dirs

    rows = []
    for trial_file in sorted((Path(sweep_dir) / "trials").glob("*.json")):
        trial = _read_json(trial_file)
        run_dir = Path(sweep_dir) / "runs" / trial_file.stem
        try:
            config, num_seeds = find_run(run_dir)
        except ConfigError:
            continue  # a trial that has not written its config yet
        # a trial of several seeds keeps each in seed_N/, also while only its first has begun (SB3 trials
        # run their seeds one after the other)
        dirs = [run_dir] if max(num_seeds, trial.get("seeds", 1)) == 1 else list(seed_dirs(run_dir).values())
        returns, steps, success = [], [], []
        for d in dirs:
            evals = read_csv(d / "eval.csv") if (d / "eval.csv").exists() else []
            if evals:
                returns.append([float(e["mean_return"]) for e in evals])
                steps.append(int(float(evals[-1]["step"])))
                if all(e.get("success_rate", "") != "" for e in evals):
                    success.append({int(float(e["step"])): float(e["success_rate"]) for e in evals})
        success = success if returns and len(success) == len(returns) else []
        rows.append({**trial, "run_dir": run_dir, "total_steps": config.total_steps, "returns": returns,
                     "final_returns": [r[-1] for r in returns], "step": min(steps) if steps else 0,
                     "success": success, "final_success": [s[max(s)] for s in success]})
    return rows


def varying_keys(rows: list[dict[str, Any]]) -> list[str]:
    """What tells the trials apart: the preset and the block of seeds where they differ, the fields
    a trial sets."""
    return [k for k in ("preset", "first_seed") if len({r.get(k) for r in rows}) > 1] + sorted(
        {k for r in rows for k in r["params"]})


def label(trial: dict[str, Any], varying: list[str]) -> str:
    """The trial's values of the varying keys (a variant's fields only where the trial sets them)."""
    parts = [f"{k}={_short(trial['params'].get(k, trial.get(k)))}" for k in varying
             if k in trial["params"] or k in trial]
    return ", ".join(parts) or trial["preset"]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def report(sweep_dir: str | Path, print_fn: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Write results.md, results.csv and curves.png of a sweep: per task, one row per trial with the
    mean, interquartile mean and 95% stratified bootstrap intervals over seeds (rliable)."""
    from ddpgx.stats import summarize

    sweep_dir = Path(sweep_dir)
    rows = [r for r in trial_rows(sweep_dir) if r["final_returns"]]
    spec = _read_json(sweep_dir / "spec.json")
    outcomes = _read_json(sweep_dir / OUTCOMES)
    varying = varying_keys(rows)
    table = []
    lines = [f"# Sweep {spec.get('name', sweep_dir.name)}", "",
             "Final noise-free return of each seed (the mean of its last evaluation's episodes); over seeds: the "
             "mean and the interquartile mean (IQM), each with its 95% stratified bootstrap interval (rliable), "
             "the median, the worst and the best seed.", ""]
    for task in sorted({r["task"] for r in rows}):
        task_rows = sorted((r for r in rows if r["task"] == task), key=lambda r: label(r, varying))
        summaries = summarize({r["trial"]: r["final_returns"] for r in task_rows})
        goal = all(r["final_success"] for r in task_rows)
        lines += [f"## {task}", "", "| trial | setting | seeds | step | mean | 95% CI | IQM | 95% CI | median | worst | best |"
                  + (" success | steps to 0.95 |" if goal else ""),
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if goal else "")]
        for r in task_rows:
            s = summaries[r["trial"]]
            status = trial_status(r, outcomes)
            mark = "" if status == "finished" else f" ({status})"
            entry = {"task": task, "trial": r["trial"], "setting": label(r, varying), "seeds": s.seeds,
                     "step": r["step"], "status": status, "stopped": status == "stopped", "mean": s.mean,
                     "mean_ci_low": s.mean_ci[0], "mean_ci_high": s.mean_ci[1], "iqm": s.iqm, "iqm_ci_low": s.iqm_ci[0],
                     "iqm_ci_high": s.iqm_ci[1], "median": s.median, "worst": s.worst, "best": s.best,
                     "per_seed": " ".join(f"{v:.1f}" for v in r["final_returns"]), "run_dir": str(r["run_dir"])}
            success = ""
            if goal:
                entry.update(success=sum(r["final_success"]) / len(r["final_success"]),
                             success_per_seed=" ".join(f"{v:.2f}" for v in r["final_success"]),
                             steps_to_95=steps_to(r["success"], 0.95))
                reached = "-" if entry["steps_to_95"] is None else f"{entry['steps_to_95']:,}"
                success = f" {entry['success']:.3f} | {reached} |"
            table.append(entry)
            lines.append(f"| {r['trial']} | {entry['setting']} | {s.seeds} | {r['step']}{mark} | {s.mean:.1f} | "
                         f"[{s.mean_ci[0]:.1f}, {s.mean_ci[1]:.1f}] | {s.iqm:.1f} | [{s.iqm_ci[0]:.1f}, {s.iqm_ci[1]:.1f}] | "
                         f"{s.median:.1f} | {s.worst:.1f} | {s.best:.1f} |{success}")
        lines.append("")
    if any("success" in entry for entry in table):
        lines += ["On goal tasks, `success` is the mean over seeds of the last evaluation's success rate (each "
                  "episode's final info['is_success']), and `steps to 0.95` the first evaluation step at which the "
                  "mean over seeds reached 0.95.", ""]
    (sweep_dir / "results.md").write_text("\n".join(lines) + "\n")
    with open(sweep_dir / "results.csv", "w", newline="") as f:
        fields = list(dict.fromkeys(key for entry in table for key in entry)) or ["task"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(table)
    goal = bool(rows) and all(r["final_success"] for r in rows)
    if rows:
        plot_sweep(sweep_dir, sweep_dir / "curves.png")
        if goal:
            plot_sweep(sweep_dir, sweep_dir / "success.png", "success")
    print_fn(f"wrote {sweep_dir / 'results.md'}, results.csv" + (", curves.png" if rows else "")
             + (", success.png" if goal else ""))
    return table


def trial_status(row: dict[str, Any], outcomes: dict[str, str]) -> str:
    """finished (it reached its total_steps), stopped (by ASHA), failed (its retries spent), or
    unfinished (Ctrl-C, a dead driver, or still running)."""
    if row["step"] >= row["total_steps"]:
        return "finished"
    return {"completed": "stopped", "failed": "failed"}.get(outcomes.get(row["trial"]), "unfinished")


def plot_sweep(sweep_dir: str | Path, out: str | Path, metric: str = "return") -> Path:
    """A sweep's learning curves (`metric`: "return" or "success"): one panel per task, one line
    (mean over seeds) per trial."""
    from ddpgx.plot import check_metric, draw_run, finish_figure, new_figure

    check_metric(metric)
    rows = [r for r in trial_rows(Path(sweep_dir)) if r["final_returns"]]
    if not rows:
        raise ConfigError(f"{sweep_dir} has no evaluated trial yet")
    varying = varying_keys(rows)
    tasks = sorted({r["task"] for r in rows})
    plt, fig, axes = new_figure(len(tasks))
    for ax, task in zip(axes, tasks):
        for r in rows:
            if r["task"] == task:
                draw_run(ax, r["run_dir"], label(r, varying), metric)
    return finish_figure(plt, fig, axes, tasks, out, metric)


def steps_to(success: list[dict[int, float]], level: float) -> int | None:
    """The first evaluation step, among those every seed has, at which the mean success rate over
    seeds reached `level`; None if it never did."""
    steps = sorted(set.intersection(*(set(s) for s in success))) if success else []
    for step in steps:
        if sum(s[step] for s in success) / len(success) >= level:
            return step
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
