"""Stable-Baselines3 DDPG as a trainable of `ddpgx sweep` (`trainable: sb3_trainable.py:train` in a
spec), for the returns benchmark only: ddpgx itself never imports torch.

It trains the trial's seeds one after the other with the ddpgx Config's hyperparameters mapped field
by field (`hyperparameters`; `her` becomes SB3's HerReplayBuffer with the MultiInputPolicy, which
relabels at sample time as ddpgx does), and evaluates as ddpgx does: without noise, on `eval_episodes`
episodes whose initial states are ddpgx's for the seed (`ddpgx.envs.env_seeds(seed, K, stream=1)`),
every `eval_every` steps and at the last step, with the success rate (each episode's final
info["is_success"]) of a goal task. Each seed writes `seed_<k>/config.json` and
`eval.csv` as a ddpgx run does, so the sweep's report and `ddpgx plot` read it unchanged. A config
SB3 cannot reproduce is refused with the reasons. A seed that finished keeps its evaluations
(`returns.npz`), so a trial that fails starts again from its first unfinished seed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np


class Unsupported(ValueError):
    """SB3 DDPG cannot train this config; the message gives the reasons."""


def hyperparameters(config) -> dict[str, Any]:
    """Stable-Baselines3 DDPG keyword arguments equal to a ddpgx Config."""
    reasons = []
    if config.actor_lr != config.critic_lr:
        reasons.append(f"SB3 has one learning rate for actor and critic (actor_lr={config.actor_lr:g}, "
                       f"critic_lr={config.critic_lr:g})")
    if config.batch_norm:
        reasons.append("SB3 DDPG has no batch normalization")
    if config.critic_action_layer != 0:
        reasons.append(f"SB3's critic takes the action at its input, not at hidden layer {config.critic_action_layer}")
    if config.critic_weight_decay > 0:
        reasons.append("SB3 has no weight decay for the critic alone")
    if config.final_init > 0:
        reasons.append("SB3 has no option for the final layers' initialization")
    if config.num_envs != 1:
        reasons.append(f"this trainable runs SB3 with one environment, not {config.num_envs}")
    if config.hidden_init != "fan_in_uniform":
        reasons.append(f"SB3 initializes as PyTorch does (fan_in_uniform), not {config.hidden_init}")
    if config.max_episode_steps:
        reasons.append("this trainable keeps the environments' own time limits")
    extensions = {"obs_norm": False, "reward_norm": False, "reward_scale": 1.0, "n_step": 1, "prioritized": False,
                  "actor_layer_norm": False, "critic_layer_norm": False, "noise_schedule": "constant"}
    for name, plain in extensions.items():
        if getattr(config, name) != plain:
            reasons.append(f"this trainable runs SB3 DDPG as it is, without ddpgx's {name}")
    if config.noise == "param":
        reasons.append("SB3 DDPG has no parameter-space noise")
    if reasons:
        raise Unsupported("; ".join(reasons))
    her = {}
    if config.her:  # SB3's her_ratio is 1 - 1 / (n_sampled_goal + 1), ddpgx's k / (k + 1)
        from stable_baselines3 import HerReplayBuffer

        her = {"replay_buffer_class": HerReplayBuffer,
               "replay_buffer_kwargs": {"n_sampled_goal": config.her_k, "goal_selection_strategy": config.her_strategy}}
    return {**her,
        "learning_rate": config.actor_lr, "buffer_size": config.buffer_size, "learning_starts": config.learning_starts,
        "batch_size": config.batch_size, "tau": config.tau, "gamma": config.gamma, "train_freq": config.train_freq,
        "gradient_steps": config.gradient_steps,
        "policy_kwargs": {"net_arch": {"pi": list(config.actor_hidden), "qf": list(config.critic_hidden)}},
        "device": "cpu",
    }


def action_noise(config, action_dim: int):
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    mean, sigma = np.zeros(action_dim), np.full(action_dim, config.noise_sigma)
    if config.noise == "gaussian":
        return NormalActionNoise(mean, sigma)
    return OrnsteinUhlenbeckActionNoise(mean, sigma, theta=config.ou_theta, dt=config.ou_dt)


def trial_cpus() -> int:
    """The CPUs Ray gave this trial (when the sweep could not pin it to cores of its own, the process
    may run on every core, and one PyTorch thread per core would oversubscribe the machine)."""
    cores = len(os.sched_getaffinity(0))
    try:
        import ray

        if ray.is_initialized():
            return max(1, min(cores, int(ray.get_runtime_context().get_assigned_resources().get("CPU", cores))))
    except ImportError:
        pass
    return max(1, cores)


def finished(seed_dir: Path, config) -> bool:
    """Whether this seed was trained to the end with this config (its evaluations are saved)."""
    from ddpgx.config import Config

    try:
        return (seed_dir / "returns.npz").exists() and Config.load(seed_dir / "config.json") == config
    except (OSError, ValueError):
        return False


def train(config, run_dir: Path, num_seeds: int, on_evaluation, print_fn=print) -> None:
    """The sweep's trainable interface (see `ddpgx.sweeps.ddpgx_trainable`)."""
    import gymnasium as gym
    import stable_baselines3
    import torch
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import BaseCallback

    from ddpgx.envs import env_factory, env_seeds
    from ddpgx.learner import Evaluation

    kwargs = hyperparameters(config)
    torch.set_num_threads(trial_cpus())
    seeds = [config.seed + k for k in range(num_seeds)]
    history: dict[int, list[np.ndarray]] = {}
    for seed in seeds:
        seed_dir = run_dir if num_seeds == 1 else run_dir / f"seed_{seed}"
        if finished(seed_dir, config.replace(seed=seed)):
            with np.load(seed_dir / "returns.npz") as done:
                for step, returns in zip(done["steps"], done["returns"]):
                    history.setdefault(int(step), []).append(returns)
            continue
        if seed_dir.exists():
            shutil.rmtree(seed_dir)
        seed_dir.mkdir(parents=True)
        config.replace(seed=seed).save(seed_dir / "config.json")
        (seed_dir / "sb3.json").write_text(json.dumps({"hyperparameters": kwargs, "torch_threads": torch.get_num_threads(),
                                                       "stable_baselines3": stable_baselines3.__version__,
                                                       "torch": torch.__version__}, indent=2,
                                                      default=lambda o: getattr(o, "__name__", str(o))) + "\n")
        make_env = env_factory(config.env_id)  # registers gymnasium-robotics' and Shimmy's tasks
        env = make_env()
        policy = "MultiInputPolicy" if isinstance(env.observation_space, gym.spaces.Dict) else "MlpPolicy"
        model = DDPG(policy, env, action_noise=action_noise(config, env.action_space.shape[0]), seed=seed,
                     verbose=0, **kwargs)
        eval_envs = [make_env() for _ in range(config.eval_episodes)]
        reset_seeds = env_seeds(seed, config.eval_episodes, stream=1)  # ddpgx's evaluation states
        successes: dict[int, np.ndarray] = {}

        def batch(observations: list) -> Any:
            if isinstance(observations[0], dict):
                return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
            return np.stack(observations)

        def evaluate() -> tuple[np.ndarray, np.ndarray]:
            obs = [e.reset(seed=s)[0] for e, s in zip(eval_envs, reset_seeds)]
            returns, success = np.zeros(len(eval_envs)), np.full(len(eval_envs), np.nan)
            running = np.ones(len(eval_envs), bool)
            while running.any():
                actions, _ = model.predict(batch(obs), deterministic=True)
                for i in np.flatnonzero(running):
                    obs[i], reward, terminated, truncated, info = eval_envs[i].step(actions[i])
                    returns[i] += reward
                    running[i] = not (terminated or truncated)
                    if not running[i] and "is_success" in info:
                        success[i] = float(info["is_success"])
            return returns, success

        log = open(seed_dir / "eval.csv", "w", newline="")
        writer = csv.writer(log)
        writer.writerow(["step", "mean_return", "std_return", "episodes", "min_return", "max_return", "success_rate"])

        class Protocol(BaseCallback):
            """ddpgx's schedule: evaluate after the updates of step t when t crosses a multiple of
            eval_every, and at the last step."""

            def _on_training_start(self) -> None:
                self.evaluated = 0

            def _on_step(self) -> bool:
                return True

            def _on_rollout_start(self) -> None:  # the updates of the previous step are done
                t = self.num_timesteps
                if config.eval_every > 0 and t // config.eval_every > self.evaluated // config.eval_every:
                    self._evaluate(t)

            def _on_training_end(self) -> None:
                if self.num_timesteps != self.evaluated:
                    self._evaluate(self.num_timesteps)

            def _evaluate(self, t: int) -> None:
                r, success = evaluate()
                rate = float(success.mean()) if np.isfinite(success).all() else ""
                writer.writerow([t, float(r.mean()), float(r.std()), len(r), float(r.min()), float(r.max()), rate])
                log.flush()
                history.setdefault(t, []).append(r)
                successes[t] = success
                self.evaluated = t

        model.learn(total_timesteps=config.total_steps, callback=Protocol())
        log.close()
        steps = sorted(history)
        np.savez(seed_dir / "returns.npz", steps=np.array(steps), returns=np.stack([history[t][-1] for t in steps]))
        for e in [env, *eval_envs]:
            e.close()
        print_fn(f"SB3 DDPG, {config.env_id}, seed {seed}: final mean return {np.mean(history[max(history)][-1]):.1f}")
    for step in sorted(history):  # every seed is done: report the evaluations as the seeds' together
        on_evaluation(Evaluation(step, np.stack(history[step]), False))
