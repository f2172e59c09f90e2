"""Config validation: invalid values are named, edge values pass, JSON round trips are exact."""

import math

import pytest

from ddpgx.config import Config, ConfigError


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": 1.5}, "tau"),
        ({"tau": -0.1}, "tau"),
        ({"gamma": -0.1}, "gamma"),
        ({"gamma": 1.1}, "gamma"),
        ({"batch_size": 128, "buffer_size": 64}, "batch_size"),
        ({"total_steps": -1}, "total_steps"),
        ({"learning_starts": -5}, "learning_starts"),
        ({"num_envs": 0}, "num_envs"),
        ({"noise": "pink"}, "noise"),
        ({"actor_lr": math.nan}, "actor_lr"),
        ({"critic_lr": math.nan}, "critic_lr"),
        ({"critic_lr": math.inf}, "critic_lr"),
        ({"actor_lr": 0.0}, "actor_lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"noise_sigma": -0.1}, "noise_sigma"),
        ({"actor_hidden": (32, 0)}, "actor_hidden"),
        ({"total_steps": 1.5}, "total_steps"),
        ({"gamma": "0.99"}, "gamma"),
        ({"tensorboard": "yes"}, "tensorboard"),
        ({"env_id": ""}, "env_id"),
        ({"n_step": 0}, "n_step"),
        ({"priority_alpha": 1.5}, "priority_alpha"),
        ({"priority_beta": -0.1}, "priority_beta"),
        ({"priority_eps": 0.0}, "priority_eps"),
        ({"priority_beta_steps": -1}, "priority_beta_steps"),
        ({"reward_scale": 0.0}, "reward_scale"),
        ({"obs_norm_clip": 0.0}, "obs_norm_clip"),
        ({"obs_norm_until": -1}, "obs_norm_until"),
        ({"noise_schedule": "cosine"}, "noise_schedule"),
        ({"noise_decay_steps": -5}, "noise_decay_steps"),
        ({"param_noise_adapt_every": 0}, "param_noise_adapt_every"),
        ({"batch_norm": True, "critic_layer_norm": True}, "critic_layer_norm"),
        ({"noise_schedule": "exponential"}, "noise_sigma_final"),
        ({"noise_schedule": "linear", "noise_sigma_final": 0.5}, "noise_sigma_final"),
        ({"noise": "param", "noise_sigma": 0.0}, "noise_sigma"),
    ],
)
def test_invalid_values_name_the_field(changes, field):
    with pytest.raises(ConfigError) as error:
        Config(**changes)
    message = str(error.value)
    assert message.startswith(f"invalid {field}="), message


def test_messages_say_what_to_do():
    with pytest.raises(ConfigError, match=r"invalid tau=0\.0: must be in \(0, 1\]"):
        Config(tau=0)
    with pytest.raises(ConfigError, match=r"invalid gamma=1\.1: must be in \[0, 1\]"):
        Config(gamma=1.1)
    with pytest.raises(ConfigError, match="larger than buffer_size=64"):
        Config(batch_size=128, buffer_size=64)
    with pytest.raises(ConfigError, match=r"invalid actor_lr=nan: must be a finite number"):
        Config(actor_lr=float("nan"))
    with pytest.raises(ConfigError, match=r"choose one of gaussian, ou, param"):
        Config(noise="pink")
    with pytest.raises(ConfigError, match="cannot be combined with batch_norm: choose one normalization"):
        Config(batch_norm=True, actor_layer_norm=True)
    with pytest.raises(ConfigError, match=r"must be positive for the exponential schedule"):
        Config(noise_schedule="exponential", noise_sigma_final=0.0)


def test_the_extensions_are_off_by_default():
    """`default` stays the seed's plain algorithm."""
    config = Config()
    assert not (config.obs_norm or config.reward_norm or config.prioritized or config.actor_layer_norm
                or config.critic_layer_norm)
    assert config.reward_scale == 1.0 and config.n_step == 1 and config.noise_schedule == "constant"
    assert config.noise == "gaussian"


def test_schedule_lengths_follow_total_steps_until_saved(tmp_path):
    config = Config(total_steps=5_000)
    assert config.noise_decay_steps == config.priority_beta_steps == 5_000
    assert config.replace(total_steps=8_000).noise_decay_steps == 8_000  # still derived
    assert config.replace(noise_decay_steps=300).replace(total_steps=8_000).noise_decay_steps == 300  # given
    config.save(tmp_path / "config.json")
    saved = Config.load(tmp_path / "config.json")  # as a run stores it: a resumed run keeps its schedule
    assert saved.replace(total_steps=8_000).priority_beta_steps == 5_000


@pytest.mark.parametrize("changes", [{"tau": 1.0}, {"tau": 1}, {"gamma": 0.0}, {"gamma": 1.0},
                                     {"batch_size": 64, "buffer_size": 64}, {"total_steps": 0},
                                     {"learning_starts": 0}, {"noise_sigma": 0.0}])
def test_edge_values_are_accepted(changes):
    config = Config(**changes)
    for name, value in changes.items():
        assert getattr(config, name) == value
        assert type(getattr(config, name)) is type(getattr(Config(), name))  # ints given for floats become floats


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ConfigError) as error:
        Config.from_dict({"gamma": 0.9, "learning_rate": 1e-3, "taus": 0.1})
    message = str(error.value)
    assert "unknown config field(s): learning_rate, taus" in message
    assert "actor_lr" in message  # the known fields are listed


def test_save_load_round_trip(tmp_path):
    config = Config(env_id="HalfCheetah-v5", gamma=0.95, tau=0.01, actor_hidden=(64, 32), critic_hidden=(400, 300),
                    noise="ou", noise_sigma=0.2, total_steps=12_345, seed=7, tensorboard=False)
    path = tmp_path / "config.json"
    config.save(path)
    loaded = Config.load(path)
    assert loaded == config
    assert loaded.actor_hidden == (64, 32) and isinstance(loaded.actor_hidden, tuple)
    assert Config.from_dict(config.to_dict()) == config


def test_load_of_a_broken_file_is_a_config_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the config"):
        Config.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="does not hold a config object"):
        Config.load(path)


def test_replace_validates_and_rejects_unknown_fields():
    config = Config()
    assert config.replace(tau=0.5).tau == 0.5
    assert config.tau == 0.005  # frozen: the original is unchanged
    with pytest.raises(ConfigError, match=r"invalid tau=2\.0"):
        config.replace(tau=2.0)
    with pytest.raises(ConfigError, match=r"invalid batch_size=10"):
        Config(batch_size=10, buffer_size=10).replace(buffer_size=5)
    with pytest.raises(ConfigError, match="unknown config field"):
        config.replace(lr=1e-3)
