"""Faults and bad input: every case gets a clear one-line error, and no fault loses the last good checkpoint."""

import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

import ddpgx
from ddpgx import checkpoint as ckpt
from ddpgx.cli import main
from tests.conftest import quiet, small_config

# ----------------------------------------------------------------------------- environments that misbehave


class Spaces(gym.Env):
    """A one-step environment with the given spaces (for the space errors)."""

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


class Faulty(gym.Env):
    """Box spaces; at step `at` returns a faulty observation or reward."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, fault, at=5):
        self.fault, self.at, self.t = fault, at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        obs, reward = np.zeros(3, np.float32), 0.0
        if self.t == self.at:
            if self.fault == "shape":
                obs = np.zeros(4, np.float32)
            elif self.fault == "dtype":
                obs = np.zeros(3, np.float64)
            elif self.fault == "nan_obs":
                obs = np.array([0.0, np.nan, 0.0], np.float32)
            elif self.fault == "nan_reward":
                reward = float("nan")
        return obs, reward, False, self.t >= 20, {}


box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
SPACE_CASES = {
    "discrete action": (box, gym.spaces.Discrete(3), "action space Discrete(3)"),
    "multidiscrete action": (box, gym.spaces.MultiDiscrete([2, 3]), "action space MultiDiscrete([2 3])"),
    "dict observation": (gym.spaces.Dict({"a": box, "mode": gym.spaces.Discrete(2)}), box,
                         "whose key 'mode' is Discrete(2)"),
    "unbounded action": (box, gym.spaces.Box(-np.inf, np.inf, (2,), np.float32), "with infinite bounds"),
    "2-d action": (box, gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32), "of shape (2, 2)"),
}
FAULT_CASES = {
    "wrong observation shape": ("shape", "EnvError", "observation (ndarray of shape (4,), dtype float32) that does not match"),
    "wrong observation dtype": ("dtype", "EnvError", "dtype float64) that does not match its observation space"),
    "NaN observation": ("nan_obs", "FloatingPointError", "step 5: env (episode step 5) returned a non-finite observation"),
    "NaN reward": ("nan_reward", "FloatingPointError", "step 5: env (episode step 5) returned a non-finite reward nan"),
}


@pytest.mark.parametrize("case", SPACE_CASES)
def test_unsupported_spaces(tmp_path, case):
    obs_space, action_space, message = SPACE_CASES[case]
    with pytest.raises(ddpgx.EnvError) as error:
        ddpgx.train(small_config(), tmp_path / "run", make_env=lambda: Spaces(obs_space, action_space),
                    progress=False, print_fn=quiet)
    assert message in str(error.value)
    assert ("ddpgx supports a Box observation space (or a Dict, possibly nested, of Boxes) and a one-dimensional Box "
            "action space") in str(error.value)


@pytest.mark.parametrize("case", FAULT_CASES)
def test_faulty_environment_stops_with_the_step_and_keeps_the_checkpoint(tmp_path, case):
    fault, kind, message = FAULT_CASES[case]
    run = tmp_path / "run"
    config = small_config(total_steps=60, learning_starts=10, batch_size=4, checkpoint_every=2, env_id="env")
    with pytest.raises((ddpgx.EnvError, FloatingPointError)) as error:
        ddpgx.train(config, run, make_env=lambda: gym.wrappers.TimeLimit(Faulty(fault), 50),
                    progress=False, print_fn=quiet)
    assert type(error.value).__name__ == kind
    assert message in str(error.value), str(error.value)
    assert ckpt.Checkpoint(ckpt.latest_checkpoint(run)).step == 4  # the last good one, before step 5


def test_diverging_losses_stop_training_and_keep_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    config = small_config(total_steps=400, learning_starts=100, checkpoint_every=50, critic_lr=1e30, actor_lr=1e30)
    with pytest.raises(FloatingPointError, match=r"step \d+: .*became non-finite") as error:
        ddpgx.train(config, run, progress=False, print_fn=quiet)
    assert "last good checkpoint" in str(error.value) or "last good one is kept" in str(error.value)
    kept = ckpt.Checkpoint(ckpt.latest_checkpoint(run))
    assert kept.step >= 50
    assert all(np.isfinite(v).all() for k, v in kept.arrays.items() if k.startswith(".agent"))


def test_full_disk_during_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_write = ckpt._write
    calls = {"n": 0}

    def write(path, fn):
        calls["n"] += 1
        if "0000000200" in str(path.parent):
            raise OSError(28, "No space left on device")
        real_write(path, fn)

    monkeypatch.setattr(ckpt, "_write", write)
    with pytest.raises(ckpt.CheckpointError) as error:
        ddpgx.train(small_config(total_steps=300, checkpoint_every=100), run, progress=False, print_fn=quiet)
    assert "cannot write the checkpoint" in str(error.value) and "No space left on device" in str(error.value)
    assert "step_0000000100 is kept" in str(error.value)
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_0000000100"]
    assert not list((run / "checkpoints").glob(".tmp-*"))


# ----------------------------------------------------------------------------- the command line, as a new user

def cli_error(capsys, *args):
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_unknown_env_suggests_close_names(capsys, tmp_path):
    err = cli_error(capsys, "train", "--run-dir", tmp_path / "r", "--env", "HalfCheetah-v9")
    assert "unknown environment 'HalfCheetah-v9'" in err and "HalfCheetah-v5" in err


def test_mujoco_task_without_mujoco_says_how_to_install(capsys, tmp_path, monkeypatch):
    for name in list(sys.modules):
        if name == "mujoco" or name.startswith(("mujoco.", "gymnasium.envs.mujoco.")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco now fails
    err = cli_error(capsys, "train", "--run-dir", tmp_path / "r", "--env", "Hopper-v5")
    assert "pip install 'ddpgx[mujoco]'" in err


@pytest.mark.parametrize("args, message", [
    (["--env", "CartPole-v1"], "CartPole-v1 has action space Discrete(2)"),
    (["--tau", "0"], "invalid tau=0.0: must be in (0, 1]"),
    (["--tau", "1.5"], "invalid tau=1.5"),
    (["--gamma", "-0.1"], "invalid gamma=-0.1: must be in [0, 1]"),
    (["--batch-size", "300", "--buffer-size", "200"], "invalid batch_size=300: is larger than buffer_size=200"),
    (["--total-steps", "-1"], "invalid total_steps=-1: must be zero or positive"),
    (["--learning-starts", "-1"], "invalid learning_starts=-1"),
    (["--num-envs", "0"], "invalid num_envs=0: must be at least 1"),
    (["--actor-lr", "nan"], "invalid actor_lr=nan: must be a finite number"),
    (["--resume"], "--resume needs --run-dir"),
    (["--preset", "papr"], "unknown preset 'papr': choose one of default, paper, td3-paper, extended"),
    (["--critic-action-layer", "2"], "invalid critic_action_layer=2: must be between 0 and 1"),
])
def test_invalid_values(capsys, tmp_path, args, message):
    extra = [] if "--resume" in args else ["--run-dir", tmp_path / "r"]
    assert message in cli_error(capsys, "train", *extra, *args)


def test_bad_flag_values_are_argparse_errors(capsys):
    for args, message in [(["--noise", "pink"], "invalid choice: 'pink'"), (["--total-steps", "lots"], "not an integer")]:
        with pytest.raises(SystemExit) as exit_:
            main(["train", *args])
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_existing_run_dir_is_refused(capsys, tmp_path):
    ddpgx.train(small_config(total_steps=250), tmp_path / "run", progress=False, print_fn=quiet)
    err = cli_error(capsys, "train", "--run-dir", tmp_path / "run")
    assert "exists and is not empty: pass --resume to continue that run, --overwrite to replace it" in err


def test_read_only_run_dir(capsys, tmp_path):
    if os.geteuid() == 0:  # root writes anywhere on a normal file system; sysfs refuses everyone
        target = "/sys/ddpgx-read-only-test/run"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "run"
    err = cli_error(capsys, "train", "--run-dir", target)
    assert "cannot write to the run directory" in err


def test_resume_with_another_config(capsys, tmp_path):
    ddpgx.train(small_config(total_steps=250), tmp_path / "run", progress=False, print_fn=quiet)
    err = cli_error(capsys, "train", "--run-dir", tmp_path / "run", "--resume", "--gamma", "0.5")
    assert "cannot resume" in err and "gamma: 0.99 -> 0.5" in err


@pytest.mark.slow
def test_incompatible_or_damaged_checkpoints(capsys, tmp_path):
    run = tmp_path / "run"
    ddpgx.train(small_config(total_steps=250), run, progress=False, print_fn=quiet)
    meta = ckpt.latest_checkpoint(run) / "meta.json"
    original = meta.read_text()
    meta.write_text(original.replace('"format": 2', '"format": 99'))
    err = cli_error(capsys, "eval", run)
    assert "meta.json has checkpoint format 99; this ddpgx reads format 2" in err
    meta.write_text(original[:40])
    err = cli_error(capsys, "train", "--run-dir", run, "--resume")
    assert "meta.json is unreadable or corrupted" in err
    meta.write_text(original)
    (ckpt.latest_checkpoint(run) / "replay.npz").write_bytes(b"PK\x03\x04 truncated")
    err = cli_error(capsys, "train", "--run-dir", run, "--resume", "--total-steps", "300")
    assert "replay.npz is truncated or corrupted" in err


def test_eval_of_a_directory_without_checkpoint(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "has no checkpoint" in cli_error(capsys, "eval", tmp_path / "empty")


# ----------------------------------------------------------------------------- killed and interrupted processes

def start_training(run, *extra):
    args = [sys.executable, "-m", "ddpgx.cli", "train", "--run-dir", str(run), "--no-progress", "--no-tensorboard",
            "--total-steps", "100000", "--learning-starts", "100000", "--checkpoint-every", "100",
            "--keep-checkpoints", "2", "--eval-every", "0", "--actor-hidden", "32", "--critic-hidden", "32", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(run, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ckpt.latest_checkpoint(run) is not None:
            return
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_a_readable_checkpoint(tmp_path):
    """Kill training with SIGKILL at different moments (checkpoints every 100 steps, many per second)."""
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    for attempt in range(4):
        process = start_training(run, *(["--resume"] if attempt else []))
        wait_for_checkpoint(run)
        time.sleep(rng.uniform(0.0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        latest = ckpt.latest_checkpoint(run)
        checkpoint = ckpt.Checkpoint(latest)  # complete and readable
        assert checkpoint.has_replay and len(checkpoint.replay()["data"]) == checkpoint.step
    resumed = ckpt.Checkpoint(ckpt.latest_checkpoint(run)).step
    done = subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", "--run-dir", str(run), "--resume",
                           "--total-steps", str(resumed + 200), "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert ckpt.Checkpoint(ckpt.latest_checkpoint(run)).step == resumed + 200


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    process = start_training(run, "--checkpoint-every", "0")  # only the checkpoint Ctrl-C writes
    deadline = time.time() + 120
    while not (run / "episodes.csv").exists() or len((run / "episodes.csv").read_text().splitlines()) < 3:
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted at step" in out and "resume with: ddpgx train --run-dir" in out
    step = ckpt.Checkpoint(ckpt.latest_checkpoint(run)).step
    assert 400 <= step < 100_000
    done = subprocess.run([sys.executable, "-m", "ddpgx.cli", "train", "--run-dir", str(run), "--resume",
                           "--total-steps", str(step + 100), "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert ckpt.Checkpoint(ckpt.latest_checkpoint(run)).step == step + 100


@pytest.mark.slow
def test_logs_after_sigkill_and_ctrl_c_at_several_points_read_as_one_run(tmp_path):
    """A run stopped by Ctrl-C once and by SIGKILL at two random moments, resumed each time, writes the
    same eval.csv, metrics.csv, episodes.csv and TensorBoard scalars as an uninterrupted run."""
    from tests.logs import assert_same_logs

    flags = ["--total-steps", "1500", "--learning-starts", "300", "--checkpoint-every", "70", "--eval-every", "250",
             "--eval-episodes", "2", "--log-every", "100", "--actor-hidden", "32", "--critic-hidden", "32",
             "--batch-size", "32", "--no-progress"]
    assert main(["train", "--run-dir", str(tmp_path / "straight"), *flags]) == 0
    run = tmp_path / "run"
    rng = np.random.default_rng(1)
    for attempt, sig in enumerate([signal.SIGKILL, signal.SIGINT, signal.SIGKILL]):
        args = ["--resume", "--total-steps", "1500", "--no-progress"] if attempt else flags
        process = subprocess.Popen([sys.executable, "-m", "ddpgx.cli", "train", "--run-dir", str(run), *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start = ckpt.Checkpoint(ckpt.latest_checkpoint(run)).step if attempt else 0
        deadline = time.time() + 120
        while (ckpt.latest_checkpoint(run) is None or ckpt.Checkpoint(ckpt.latest_checkpoint(run)).step <= start):
            assert time.time() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(sig)
        _, err = process.communicate(timeout=120)
        assert process.returncode in (-signal.SIGKILL, 130), err
    assert main(["train", "--run-dir", str(run), "--resume", "--total-steps", "1500", "--no-progress"]) == 0
    assert_same_logs(run, tmp_path / "straight")


def test_a_kill_right_after_a_flush_loses_no_tensorboard_event(tmp_path):
    """What `RunLogger.flush` returns from is in the event file: a process killed right after it (here
    `os._exit`, which stops every thread as SIGKILL does) leaves TensorBoard every scalar written before."""
    from tests.logs import tb_scalars

    script = ("import os, sys; from pathlib import Path; from ddpgx.logging import RunLogger\n"
              "logger = RunLogger(Path(sys.argv[1]), True)\n"
              "for step in range(200):\n"
              "    logger.write('episodes', {'step': step, 'env': 0, 'return': float(step), 'length': 1})\n"
              "logger.flush()\n"
              "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    assert tb_scalars(tmp_path)["train/episode_return"] == [(step, float(step)) for step in range(200)]


@pytest.mark.slow
def test_two_writers_on_one_run_directory(tmp_path, capsys):
    """The second is refused with the owner's PID; once the owner is gone, its lock is taken over."""
    run = tmp_path / "run"
    process = start_training(run)
    wait_for_checkpoint(run)
    owner = f"process {process.pid} on "
    assert (run / ".lock").read_text().startswith(owner)
    with pytest.raises(ddpgx.RunLocked) as error:
        ddpgx.resume(run, progress=False, print_fn=quiet)
    assert f"the run directory {run} is in use by {owner}" in str(error.value)
    assert "wait for it to end, or stop it" in str(error.value)
    err = cli_error(capsys, "train", "--run-dir", run, "--resume")
    assert f"is in use by {owner}" in err
    err = cli_error(capsys, "train", "--run-dir", run, "--overwrite")  # nor may it be replaced meanwhile
    assert f"is in use by {owner}" in err
    process.send_signal(signal.SIGKILL)
    process.wait()
    notes = []
    step = ckpt.Checkpoint(ckpt.latest_checkpoint(run)).step
    result = ddpgx.resume(run, total_steps=step + 50, progress=False, print_fn=notes.append)
    assert result.step == step + 50
    assert any(f"note: {run} was left by {owner}" in n and "which is gone; its lock is taken over" in n for n in notes)
    assert (run / ".lock").read_text() == ""  # released at the end
