"""The command line, run as a user runs it: in a subprocess."""

import csv
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
                 "--num-seeds", "--save-buffer"):
        assert flag in out
    assert "Polyak rate of the target networks" in out


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


def test_num_seeds_writes_one_directory_per_seed(tmp_path):
    ddpgx("train", "--run-dir", tmp_path / "multi", "--num-seeds", "2", "--seed", "5", *SMALL)
    for seed in (5, 6):
        assert (tmp_path / "multi" / f"seed_{seed}" / "eval.csv").exists()
    result = ddpgx("plot", tmp_path / "multi", "--out", tmp_path / "multi.png")
    assert "wrote" in result.stdout
    ddpgx("train", "--run-dir", tmp_path / "multi", "--resume", "--total-steps", "600", "--no-progress")
    for seed in (5, 6):
        steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "multi" / f"seed_{seed}" / "eval.csv"))]
        assert steps == [200, 400, 600]


@pytest.mark.parametrize("args, message", [
    (["--env", "Pendulm-v1"], "unknown environment 'Pendulm-v1'"),
    (["--env", "CartPole-v1"], "action space Discrete(2)"),
    (["--tau", "0"], "invalid tau=0.0: must be in (0, 1]"),
    (["--gamma", "1.5"], "invalid gamma=1.5"),
    (["--batch-size", "512", "--buffer-size", "256"], "invalid batch_size=512"),
    (["--total-steps", "-5"], "invalid total_steps=-5"),
])
def test_bad_input_gets_a_one_line_error(tmp_path, args, message):
    result = ddpgx("train", "--run-dir", tmp_path / "run", "--no-progress", *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_run_dir_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    result = ddpgx("train", "--run-dir", tmp_path / "run", check=False)
    assert result.returncode == 2 and "pass --resume" in result.stderr


def test_flag_type_errors_come_from_argparse():
    result = ddpgx("train", "--total-steps", "many", check=False)
    assert result.returncode == 2 and "'many' is not an integer" in result.stderr
