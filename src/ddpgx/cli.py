"""The command line: `ddpgx train | sweep | eval | plot | export`.

`ddpgx train` has one flag per Config field, generated from the dataclass: the flag's type and
choices come from the field's type, its help text from the field's metadata, and the default it
shows from the preset that `--preset` names (`ddpgx train --preset paper --help` shows the paper's
values): what `--help` shows is what runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

from ddpgx.config import GENERAL_DEFAULTS, RUN_LENGTH_DEFAULTS, TASK_DEFAULTS, Config, ConfigError, check_seed

EPILOG = "Errors exit with status 2 and one line that says what was wrong."


def parse_int(text: str) -> int:
    """An integer, also written as 1e6 or 1_000_000."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    return int(value)


def shown_default(name: str, preset: str) -> str:
    """The default of a field as `--help` shows it under `preset`."""
    from ddpgx.presets import PRESETS, preset_values

    values = preset_values(preset)
    by_task: dict[str, Any] = {}
    if name in values:
        others = values[name]
    elif name in GENERAL_DEFAULTS:
        others = GENERAL_DEFAULTS[name]
        by_task = {env_id: task_values[name] for env_id, task_values in TASK_DEFAULTS.items() if name in task_values}
    elif name in RUN_LENGTH_DEFAULTS:
        return "the run's total_steps"
    else:
        others = next(f.default for f in dataclasses.fields(Config) if f.name == name)
    by_task.update({env_id: task_values[name] for env_id, task_values in PRESETS[preset].tasks.items()
                    if name in task_values})
    by_task = {env_id: value for env_id, value in by_task.items() if value != others}
    set_here = name in values or any(name in task_values for task_values in PRESETS[preset].tasks.values())
    source = f", from the {preset} preset" if set_here and preset != "default" else ""
    if not by_task:
        return f"{others!r}{source}"
    by_value: dict[Any, list[str]] = {}
    for env_id, value in by_task.items():
        by_value.setdefault(value, []).append(env_id)
    per_task = "; ".join(f"{value!r} on {', '.join(envs)}" for value, envs in by_value.items())
    return f"{per_task}; {others!r} on other tasks{source}"


def add_config_flags(parser: argparse.ArgumentParser, preset: str) -> None:
    hints = typing.get_type_hints(Config)
    title = "every field of ddpgx.Config, with the " + ("Config defaults" if preset == "default" else
                                                        f"values of the {preset} preset")
    group = parser.add_argument_group("config", title)
    for field in dataclasses.fields(Config):
        hint = hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{field.metadata['help']} (default: {shown_default(field.name, preset)})".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": field.name, "default": None, "help": help_text}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is typing.Literal:
            kwargs["choices"] = typing.get_args(hint)
        elif typing.get_origin(hint) is tuple:
            kwargs.update(type=parse_int, nargs="+", metavar="N")
        elif hint in (int, int | None):
            kwargs.update(type=parse_int, metavar="N")
        elif hint is float:
            kwargs.update(type=float, metavar="X")
        else:
            kwargs.update(type=str, metavar="TEXT")
        flags = ["--env", flag] if field.name == "env_id" else [flag]
        group.add_argument(*flags, **kwargs)


def config_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The Config fields given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}


def build_parser(preset: str = "default") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddpgx", description="Deep Deterministic Policy Gradient on JAX.",
                                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"ddpgx {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train an agent (Pendulum-v1 by default)",
                                description="Train DDPG agents; every Config field is a flag.", epilog=EPILOG)
    train.add_argument("--run-dir", type=Path, help="where the run is written (default: runs/ENV__seedN__TIME)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --run-dir from its latest checkpoint, with its saved config and "
                            "seeds; flags may change only what is logged and saved, and raise --total-steps")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run in --run-dir")
    train.add_argument("--num-seeds", type=parse_int, default=None, metavar="N",
                       help="train N independent agents (seeds SEED..SEED+N-1) in one process, one directory each "
                            "(default: 1)")
    train.add_argument("--preset", default=None, metavar="NAME",
                       help="a cited hyperparameter set: default, paper (Lillicrap et al. 2016), td3-paper "
                            "(Fujimoto et al. 2018's DDPG), extended (default with observation normalization and 3-step "
                            "returns), modern (extended with Adam 1e-3 and a layer-normalized critic), mujoco (values per "
                            "MuJoCo locomotion task), multigoal (HER, for goal tasks), fasttd3 (Seo et al. 2025's "
                            "thousands of environments and large batches, for gymnax/ and brax/ tasks on an "
                            "accelerator); flags override single fields; --preset NAME --help shows its values "
                            "(default: default)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--address", default=None, metavar="HOST:PORT",
                       help="with --workers: the Ray cluster to run them on (default: start Ray on this machine, on "
                            "127.0.0.1)")
    add_config_flags(train, preset)

    ev = commands.add_parser("eval", help="evaluate a trained run without exploration noise", epilog=EPILOG)
    ev.add_argument("run_dir", type=Path, help="a run directory (or one checkpoint directory)")
    ev.add_argument("--episodes", type=parse_int, default=10, metavar="K", help="episodes to run (default: 10)")
    ev.add_argument("--seed", type=parse_int, default=None, metavar="N",
                    help="seed of the evaluation environments (default: the run's seed)")
    ev.add_argument("--video", type=Path, default=None, metavar="DIR",
                    help="also record the episodes as MP4 files in DIR (needs: pip install 'ddpgx[video]')")

    sweep = commands.add_parser(
        "sweep", help="run a hyperparameter sweep on Ray Tune (needs: pip install 'ddpgx[ray]')", epilog=EPILOG,
        description="Run the trials of a spec (tasks x presets x search space, several seeds per trial) on Ray "
                    "Tune, then write a table per task (mean, IQM, bootstrap intervals) and learning curves.")
    sweep.add_argument("spec", type=Path, help="the sweep's spec, a YAML file (see docs/sweeps.md)")
    sweep.add_argument("--storage-path", type=Path, default=Path("sweeps"),
                       help="where the sweep's directory is made, STORAGE_PATH/NAME; a cluster needs a directory "
                            "every node sees (default: sweeps)")
    sweep.add_argument("--address", default=None, metavar="HOST:PORT",
                       help="join the Ray cluster at HOST:PORT (default: start Ray on this machine, on 127.0.0.1)")
    sweep.add_argument("--resume", action="store_true",
                       help="continue the sweep whose driver died: finished trials stay, the others resume")
    sweep.add_argument("--skip-finished", type=Path, nargs="+", default=[], metavar="SWEEP_DIR",
                       help="start the sweep with only the trials that none of these sweeps finished (their "
                            "directories, or compact copies of them; the same fields per trial, seeds per trial "
                            "and task fields): to go on elsewhere with a sweep whose checkpoints stayed on another "
                            "machine, or to run only the new trials of a spec that grew")

    plot = commands.add_parser("plot", help="plot learning curves of runs to a PNG", epilog=EPILOG)
    plot.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                      help="run directories; one with seed_* subdirectories is drawn as mean and range over seeds; "
                           "a sweep directory gives one panel per task and one line per trial")
    plot.add_argument("--out", type=Path, default=Path("learning_curve.png"), help="output PNG (default: learning_curve.png)")
    plot.add_argument("--title", default=None, help="plot title")
    plot.add_argument("--metric", default="return", choices=("return", "success"),
                      help="what to draw: the noise-free return, or the success rate of a goal task (its "
                           "info['is_success']) (default: return)")

    export = commands.add_parser(
        "export", help="write a run's policy as an ONNX model or as numpy weights", epilog=EPILOG,
        description="Write the deterministic policy of a run: observation in, action in the environment's units "
                    "out, any batch size. The default MLP actor only (batch norm is folded in).")
    export.add_argument("run_dir", type=Path, help="a run directory (one seed's) or one checkpoint directory")
    export.add_argument("--format", required=True, choices=("onnx", "numpy"),
                        help="onnx: a model for onnxruntime (needs: pip install 'ddpgx[export]'); "
                             "numpy: an .npz of weights for ddpgx.numpy_policy.load")
    export.add_argument("--out", type=Path, default=None,
                        help="the file to write (default: RUN_DIR/policy.onnx or RUN_DIR/policy.npz)")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    changes = config_changes(args)
    if args.resume:
        if args.run_dir is None:
            raise ConfigError("--resume needs --run-dir: the run to continue")
        if args.preset is not None:
            raise ConfigError("--preset sets up a new run; a resumed run keeps the config saved in its directory "
                              "(leave --preset out)")
        if args.num_seeds is not None:
            raise ConfigError("--num-seeds sets up a new run; a resumed run keeps its seeds (leave --num-seeds out)")
        from ddpgx.loop import resume

        result = resume(args.run_dir, progress=not args.no_progress, address=args.address, **changes)
    else:
        from ddpgx.presets import from_preset

        config = from_preset(args.preset or "default", changes.pop("env_id", Config.env_id), **changes)
        from ddpgx.loop import train  # JAX: after the config is checked, so that a bad value is refused at once

        result = train(config, args.run_dir, num_seeds=args.num_seeds, overwrite=args.overwrite,
                       progress=not args.no_progress, address=args.address)
    if result.interrupted:
        print(f"resume with: ddpgx train --run-dir {result.run_dir} --resume")
        return 130
    print(f"run saved in {result.run_dir}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import shlex

    from ddpgx.sweeps import load_spec, sweep

    again = ["ddpgx", "sweep", str(args.spec), "--storage-path", str(args.storage_path)] + \
        (["--address", args.address] if args.address else []) + ["--resume"]
    try:
        result = sweep(args.spec, args.storage_path, address=args.address, resume=args.resume,
                       skip_finished=args.skip_finished)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the trials began
        started = (args.storage_path / load_spec(args.spec).name / "spec.json").exists()
        print("ddpgx sweep: interrupted; " + (f"resume with: {shlex.join(again)}" if started else
                                              "the sweep had not started"), file=sys.stderr)
        return 130
    print(f"sweep saved in {result.sweep_dir}: {result.trials} trials, {result.errors} failed"
          + (f", {result.unfinished} unfinished" if result.interrupted else ""))
    if result.interrupted:
        print(f"resume with: {shlex.join(again)}")
        return 130
    return 1 if result.errors else 0


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from ddpgx.envs import env_factory
    from ddpgx.evaluate import evaluate
    from ddpgx.jax_envs import is_jax_env
    from ddpgx.policy import load_policy

    checkpoint = args.run_dir if (args.run_dir / "meta.json").exists() else None
    policy = load_policy(args.run_dir, checkpoint)
    if args.episodes < 1:
        raise ConfigError(f"invalid --episodes {args.episodes}: must be at least 1")
    seed = policy.config.seed if args.seed is None else args.seed
    check_seed(seed, "--seed")
    if is_jax_env(policy.config.env_id):  # a task written in JAX: its episodes run on the device
        from ddpgx.device_loop import evaluate_policy
        from ddpgx.networks import as_network

        if args.video is not None:
            raise ConfigError(f"--video records Gymnasium environments; {policy.config.env_id} is written in JAX "
                              f"(leave --video out)")
        returns = evaluate_policy(as_network(policy.actor, "actor").apply, policy.params, policy.config.env_id,
                                  policy.config.max_episode_steps, seed, args.episodes)
    else:
        make_env = env_factory(policy.config.env_id, policy.config.max_episode_steps)
        returns = evaluate(lambda obs: policy.act_unit(obs[0])[None], make_env, [seed], args.episodes,
                           policy.config.env_id)[0]
    print(f"{policy.config.env_id}, step {policy.step}, {args.episodes} noise-free episodes: "
          f"mean return {returns.mean():.2f} +- {returns.std():.2f} (min {returns.min():.2f}, max {returns.max():.2f})")
    print("returns: " + " ".join(f"{r:.2f}" for r in returns))
    if args.video is not None:
        from ddpgx.envs import record_video

        paths = record_video(policy, policy.config.env_id, args.video, args.episodes, seed,
                             policy.config.max_episode_steps)
        print(f"videos: {', '.join(str(p) for p in paths)}")
    return 0 if np.isfinite(returns).all() else 1


def cmd_plot(args: argparse.Namespace) -> int:
    if len(args.run_dirs) == 1 and (args.run_dirs[0] / "spec.json").exists():  # a sweep
        from ddpgx.sweeps import plot_sweep

        out = plot_sweep(args.run_dirs[0], args.out, args.metric)
    else:
        from ddpgx.plot import plot_runs

        out = plot_runs(args.run_dirs, args.out, args.title, metric=args.metric)
    print(f"wrote {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ddpgx.export import export

    out = export(args.run_dir, args.format, args.out)
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_preset_of(argv)).parse_args(argv)
    try:
        commands = {"train": cmd_train, "sweep": cmd_sweep, "eval": cmd_eval, "plot": cmd_plot, "export": cmd_export}
        return commands[args.command](args)
    except Exception as error:
        if not isinstance(error, user_errors()):
            raise
        print(f"ddpgx {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ddpgx: interrupted", file=sys.stderr)
        return 130


def user_errors() -> tuple[type[Exception], ...]:
    """The errors that are the user's to fix, reported in one line. Those of modules not imported
    cannot have been raised: the check imports nothing (JAX least of all)."""
    classes = [getattr(sys.modules[module], name) for module, name in
               [("ddpgx.envs", "EnvError"), ("ddpgx.checkpoint", "CheckpointError"), ("ddpgx.export", "ExportError")]
               if module in sys.modules]
    return (ConfigError, FloatingPointError, OSError, *classes)


def _preset_of(argv: list[str]) -> str:
    """The preset named on the command line, so that `--help` can show its values."""
    from ddpgx.presets import PRESETS

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default="default")
    known, _ = pre.parse_known_args(argv)
    return known.preset if known.preset in PRESETS else "default"


def _version() -> str:
    from ddpgx import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
