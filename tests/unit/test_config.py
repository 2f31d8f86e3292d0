from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from micro.config import Config, load_config, replace
from micro.errors import ConfigError


def test_defaults_follow_the_design(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.data.instrument == "GBP_JPY"
    assert config.spread_pips() == 4.0
    assert config.features.window == 32
    assert config.model.tcn_channels == 64 and config.model.tcn_dilations == (1, 2, 4)
    assert config.train.unroll_steps == 5
    # Measured by bench/learning.py (README "Learning"): 2 unroll starts per position, mirrored.
    assert config.train.replay_ratio == 2.0 and config.train.mirror
    assert config.live.oanda.environment == "practice"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mcts.simulations = 3  # type: ignore[misc]


def test_toml_then_env_then_set_flags_in_that_order(tmp_path: Path) -> None:
    (tmp_path / "micro.toml").write_text(
        "[mcts]\nsimulations = 11\ndiscount = 0.9\n[live.oanda]\ntimeout_seconds = 3\n"
    )
    env = {"MICRO_MCTS__SIMULATIONS": "12", "MICRO_TRAIN__PRIORITIZED": "true"}
    config = load_config(tmp_path, ["mcts.simulations=13"], environ=env)
    assert config.mcts.simulations == 13
    assert config.mcts.discount == 0.9
    assert config.train.prioritized is True
    assert config.live.oanda.timeout_seconds == 3.0
    assert load_config(tmp_path, environ=env).mcts.simulations == 12
    assert load_config(tmp_path, environ={}).mcts.simulations == 11


def test_per_instrument_spread_table_can_be_overridden_by_key(tmp_path: Path) -> None:
    env = {"MICRO_ENV__SPREAD_PIPS__GBP_JPY": "3.5"}
    config = load_config(tmp_path, ["env.spread_pips.EUR_USD=0.8"], environ=env)
    assert config.spread_pips("GBP_JPY") == 3.5
    assert config.spread_pips("EUR_USD") == 0.8
    assert config.spread_pips("USD_JPY") == 1.5


def test_tuple_values_parse_from_text(tmp_path: Path) -> None:
    config = load_config(tmp_path, ["model.tcn_dilations=1,2,4,8"], environ={})
    assert config.model.tcn_dilations == (1, 2, 4, 8)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["mcts.simulation=5"], "unknown key mcts.simulation"),
        (["nosuch.key=5"], "unknown key nosuch"),
        (["mcts.simulations=five"], "mcts.simulations must be int"),
        (["mcts.simulations=0"], "mcts.simulations must be >= 1"),
        (["mcts.discount=1.5"], "mcts.discount must be <= 1.0"),
        (["env.reward=sharpe"], "env.reward must be one of"),
        (["train.prioritized=maybe"], "train.prioritized must be bool"),
        (["mcts.simulations"], "expected section.key=value"),
        (["data.train_fraction=0.9"], "train_fraction + data.validation_fraction"),
    ],
)
def test_bad_values_are_refused_with_the_key_and_what_is_expected(
    tmp_path: Path, sets: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+").replace(".", r"\.")):
        load_config(tmp_path, sets, environ={})


def test_wrong_type_in_toml_names_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "micro.toml").write_text('[train]\nbatch_size = "big"\n')
    with pytest.raises(ConfigError, match=r"micro\.toml: train\.batch_size must be int"):
        load_config(tmp_path, environ={})


def test_a_section_cannot_be_set_as_a_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="live.oanda is a section"):
        load_config(tmp_path, ["live.oanda=x"], environ={})


def test_secrets_are_redacted_from_dumps(tmp_path: Path) -> None:
    config = load_config(tmp_path, ["live.oanda.account=101-001-9999999-001"], environ={})
    dumped = str(config.to_dict())
    assert "9999999" not in dumped and "***" in dumped
    assert config.to_dict(redact=False)["live"]["oanda"]["account"] == "101-001-9999999-001"


def test_section_hash_changes_only_with_its_sections(tmp_path: Path) -> None:
    base = Config()
    assert base.section_hash("model") == replace(base, **{"mcts.simulations": 3}).section_hash(
        "model"
    )
    assert base.section_hash("model") != replace(base, **{"model.hidden": 64}).section_hash("model")


def test_replace_validates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        replace(Config(), **{"mcts.simulations": -1})
