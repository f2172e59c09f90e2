"""The command line, run as a user runs it: in a subprocess."""

import csv
import dataclasses
import subprocess
import sys

import pytest

SMALL = ["--total-steps", "400", "--learning-starts", "200", "--batch-size", "32", "--actor-hidden", "32", "32",
         "--critic-hidden", "32", "32", "--eval-every", "200", "--eval-episodes", "2", "--no-tensorboard"]


def ddpgx(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "ddpgx.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_help_lists_every_config_field_with_its_doc():
    out = ddpgx("train", "--help").stdout
    for flag in ("--env", "--total-steps", "--seed", "--run-dir", "--resume", "--tau", "--gamma", "--noise",
                 "--num-seeds", "--save-buffer", "--max-episode-steps"):
        assert flag in out
    assert "Polyak rate of the target networks" in out
    assert "{gaussian,ou,param}" in out  # choices come from the field's type


@pytest.mark.slow
def test_train_resume_eval_plot(tmp_path):
    run = tmp_path / "run"
    result = ddpgx("train", "--run-dir", run, *SMALL)
    assert "final evaluation, seed 0, 2 noise-free episodes: mean return" in result.stdout
    assert f"run saved in {run}" in result.stdout
    rows = list(csv.DictReader(open(run / "eval.csv")))
    assert [int(r["step"]) for r in rows] == [200, 400]

    result = ddpgx("train", "--run-dir", run, "--resume", "--total-steps", "600", "--no-progress")
    assert [int(r["step"]) for r in csv.DictReader(open(run / "eval.csv"))] == [200, 400, 600]

    result = ddpgx("eval", run, "--episodes", "3")
    assert "Pendulum-v1, step 600, 3 noise-free episodes: mean return" in result.stdout
    assert len(result.stdout.splitlines()[-1].split()) == 4  # "returns:" and three numbers

    result = ddpgx("plot", run, "--out", tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result = ddpgx("eval", run, "--episodes", "1", "--video", tmp_path / "video")
    videos = list((tmp_path / "video").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


@pytest.mark.slow
def test_num_seeds_writes_one_directory_per_seed_and_resumes_across_a_digit_boundary(tmp_path):
    ddpgx("train", "--run-dir", tmp_path / "multi", "--num-seeds", "2", "--seed", "9", *SMALL)
    for seed in (9, 10):
        assert (tmp_path / "multi" / f"seed_{seed}" / "eval.csv").exists()
    result = ddpgx("plot", tmp_path / "multi", "--out", tmp_path / "plots" / "multi.png")  # parents are made
    assert "wrote" in result.stdout
    ddpgx("train", "--run-dir", tmp_path / "multi", "--resume", "--total-steps", "600", "--no-progress")
    for seed in (9, 10):
        steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "multi" / f"seed_{seed}" / "eval.csv"))]
        assert steps == [200, 400, 600]
    for extra, message in [(["--preset", "paper"], "--preset sets up a new run; a resumed run keeps the config"),
                           (["--num-seeds", "2"], "--num-seeds sets up a new run; a resumed run keeps its seeds"),
                           (["--total-steps", "500"], "its checkpoint is at step 600; give a total_steps of at least")]:
        result = ddpgx("train", "--run-dir", tmp_path / "multi", "--resume", *extra, check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize("args, message", [
    (["--env", "Pendulm-v1"], "unknown environment 'Pendulm-v1'"),
    (["--env", "CartPole-v1"], "action space Discrete(2)"),
    (["--tau", "0"], "invalid tau=0.0: must be in (0, 1]"),
    (["--gamma", "1.5"], "invalid gamma=1.5"),
    (["--batch-size", "512", "--buffer-size", "256"], "invalid batch_size=512"),
    (["--total-steps", "-5"], "invalid total_steps=-5"),
    (["--seed", "-1"], "invalid seed=-1: must lie in [0, 2**32 - 1]"),
    (["--seed", "4294967296"], "invalid seed=4294967296: must lie in [0, 2**32 - 1]"),
    (["--buffer-size", "1e13"], "the replay buffer needs 327.4 TiB"),
])
@pytest.mark.slow
def test_bad_input_gets_a_one_line_error_and_leaves_nothing(tmp_path, args, message):
    result = ddpgx("train", "--run-dir", tmp_path / "run", "--no-progress", *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # so the corrected command is not refused


def test_existing_run_dir_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    result = ddpgx("train", "--run-dir", tmp_path / "run", check=False)
    assert result.returncode == 2 and "pass --resume" in result.stderr


def test_flag_type_errors_come_from_argparse():
    result = ddpgx("train", "--total-steps", "many", check=False)
    assert result.returncode == 2 and "'many' is not an integer" in result.stderr


def test_help_shows_what_runs_for_each_preset():
    """The default each flag shows is the value the run gets, for the default preset and for another one."""
    import ddpgx as api
    from ddpgx.cli import shown_default

    for preset in ("default", "paper", "td3-paper", "extended"):
        config = api.from_preset(preset, "HalfCheetah-v5")
        for field in dataclasses.fields(api.Config):
            shown = shown_default(field.name, preset)
            if field.name == "learning_starts" and preset != "paper":
                assert shown == ("1000 on Pendulum-v1, Hopper-v5, Walker2d-v5, InvertedPendulum-v5, "
                                 "InvertedDoublePendulum-v5, Reacher-v5, gymnax/Pendulum-v1, brax/hopper, "
                                 "brax/walker2d; 10000 on other tasks")
                assert config.learning_starts == 10_000
                assert api.from_preset(preset, "Hopper-v5").learning_starts == 1_000
            elif field.name in ("noise_decay_steps", "priority_beta_steps"):  # the schedules last the run
                assert shown == "the run's total_steps"
                assert getattr(config, field.name) == config.total_steps
                assert getattr(config.replace(total_steps=123), field.name) == 123
            else:
                assert shown.split(", from the")[0] == repr(getattr(config, field.name)) or field.name == "env_id", \
                    (preset, field.name, shown)
    out = ddpgx("train", "--preset", "paper", "--help").stdout
    assert "--actor-lr X" in out and "(default: 0.0001, from the paper preset)" in out
    assert "(default: 0.0003)" in ddpgx("train", "--help").stdout


@pytest.mark.slow
def test_config_for_a_task_is_what_the_command_line_runs_for_it(tmp_path):
    """`Config(env_id=E)` and `ddpgx train --env E` give the same config, task-dependent defaults included."""
    import ddpgx as api

    for env_id in ("Pendulum-v1", "Hopper-v5", "HalfCheetah-v5"):
        ddpgx("train", "--env", env_id, "--run-dir", tmp_path / env_id, "--total-steps", "0", "--no-progress",
              "--eval-episodes", "1")
        saved = api.Config.load(tmp_path / env_id / "config.json")
        assert saved == api.Config(env_id=env_id, total_steps=0, eval_episodes=1)
        assert saved == api.from_preset("default", env_id, total_steps=0, eval_episodes=1)
    assert api.Config().learning_starts == 1_000  # Pendulum-v1, the default task
    assert api.Config().replace(env_id="HalfCheetah-v5").learning_starts == 10_000  # follows the task
    assert api.Config(learning_starts=5).replace(env_id="HalfCheetah-v5").learning_starts == 5  # set: kept


@pytest.mark.slow
def test_eval_rejects_a_bad_seed_and_export_makes_its_directory(tmp_path):
    run = tmp_path / "run"
    ddpgx("train", "--run-dir", run, *SMALL)
    result = ddpgx("eval", run, "--seed", "-3", check=False)
    assert result.returncode == 2 and "invalid --seed=-3: seeds must lie in [0, 2**32 - 1]" in result.stderr
    result = ddpgx("export", run, "--format", "numpy", "--out", tmp_path / "new" / "dir" / "policy.npz")
    assert (tmp_path / "new" / "dir" / "policy.npz").exists()


@pytest.mark.slow
def test_plain_training_never_imports_ray_and_the_numpy_loader_never_imports_jax(tmp_path):
    script = ("import sys; from ddpgx.cli import main; "
              f"main(['train', '--run-dir', {str(tmp_path / 'run')!r}, *{SMALL!r}, '--no-progress']); "
              "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    done = subprocess.run([sys.executable, "-c", "import sys, ddpgx.numpy_policy, ddpgx.workers, ddpgx.replay; "
                           "print('jax' in sys.modules)"], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr


def test_a_bad_value_is_refused_before_jax_is_imported():
    """A typo in a value costs the user no wait: the config is checked before the training loop
    (and JAX) is imported."""
    script = "import sys; from ddpgx.cli import main; code = main(['train', '--tau', '0']); print(code, 'jax' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "2 False" and "invalid tau=0.0" in done.stderr, done.stderr
