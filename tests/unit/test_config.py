from __future__ import annotations

import dataclasses
import re
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
        (["train.session_end=bootstrap", "env.reward=amddp1"], "session_end = bootstrap needs"),
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


def test_a_value_cannot_be_set_as_a_section(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"--set data\.instrument\.x: data\.instrument is a value"
    ):
        load_config(tmp_path, ["data.instrument.x=1"], environ={})
    (tmp_path / "micro.toml").write_text("[data.instrument]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"micro\.toml: data\.instrument is a value, not a sec"):
        load_config(tmp_path, environ={})


def test_a_toml_file_that_is_not_utf8_is_refused_with_the_byte(tmp_path: Path) -> None:
    (tmp_path / "micro.toml").write_bytes(b"[mcts]\nsimulations = 3 # caf\xe9\n")
    with pytest.raises(ConfigError, match=r"micro\.toml: not UTF-8 text \(byte 0xe9 at offset 28"):
        load_config(tmp_path, environ={})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("risk.stop_loss_pips", "inf"),
        ("risk.daily_loss_limit_pips", "nan"),
        ("risk.max_drawdown_pips", "-inf"),
        ("validation.max_drawdown_pct", "nan"),
        ("env.spread_pips.GBP_JPY", "1e400"),
    ],
)
def test_non_finite_numbers_are_refused_from_every_source(
    tmp_path: Path, key: str, value: str
) -> None:
    message = re.escape(key) + " must be a finite number"
    with pytest.raises(ConfigError, match="--set .*" + message):
        load_config(tmp_path, [f"{key}={value}"], environ={})
    env_name = "MICRO_" + key.upper().replace(".", "__")
    with pytest.raises(ConfigError, match=f"(?i)environment variable {env_name}: {message}"):
        load_config(tmp_path, environ={env_name: value})
    section, name = key.rsplit(".", 1)
    (tmp_path / "micro.toml").write_text(f"[{section}]\n{name} = {value}\n")
    with pytest.raises(ConfigError, match=r"micro\.toml: " + message):
        load_config(tmp_path, environ={})


def test_every_config_value_is_finite_so_json_dumps_are_strict(tmp_path: Path) -> None:
    import json

    config = load_config(tmp_path, ["risk.stop_loss_pips=1e300"], environ={})
    json.dumps(config.to_dict(), allow_nan=False)  # raises on inf/nan


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["env.spread_pips.GBP_JPY=-0.5"], r"env\.spread_pips\.GBP_JPY must be >= 0\.0, got -0\.5"),
        (["env.spread_pips.GPB_JPY=2"], r"env\.spread_pips\.GPB_JPY names no known instrument"),
        (["model.tcn_dilations="], r"model\.tcn_dilations must list at least 1 value"),
        (["model.tcn_dilations=1,0"], r"model\.tcn_dilations must be >= 1, got 0"),
    ],
)
def test_spreads_and_dilations_are_checked(tmp_path: Path, sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, sets, environ={})


def test_the_traded_instrument_may_have_its_spread_in_the_table(tmp_path: Path) -> None:
    sets = ["data.instrument=NZD_CAD", "env.spread_pips.NZD_CAD=2.2"]
    assert load_config(tmp_path, sets, environ={}).spread_pips() == 2.2


def test_a_near_miss_environment_variable_is_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {
        "MICRO_DATA_SESSION_BARS": "100",
        "MICRO_ENV_SPREAD_PIPS_GBP_JPY": "2",
        "MICRO_NOSUCH": "1",
        "MICRO_HOME": "/tmp",
        "MICRO_SERVICE": "trainer",
    }
    with caplog.at_level("WARNING"):
        config = load_config(tmp_path, environ=env)
    assert config.data.session_bars == 360  # ignored, but not silently
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 3, warned
    assert "MICRO_DATA_SESSION_BARS is not a micro setting" in warned[0]
    assert "did you mean MICRO_DATA__SESSION_BARS" in warned[0]
    assert "did you mean MICRO_ENV__SPREAD_PIPS__GBP_JPY" in warned[1]
    assert "MICRO_NOSUCH is not a micro setting" in warned[2]
    assert "MICRO_<SECTION>__<KEY>" in warned[2]


def test_fuzzed_config_inputs_end_in_a_config_or_a_config_error(tmp_path: Path) -> None:
    """Random bytes as micro.toml, random keys and values through toml, env and --set."""
    import random

    rng = random.Random(15)
    keys = [
        "data.instrument",
        "risk.stop_loss_pips",
        "model.tcn_dilations",
        "env.spread_pips",
        "env.spread_pips.GBP_JPY",
        "mcts",
        "mcts.simulations",
        "live.oanda.timeout_seconds",
        "x",
        "data..x",
        ".",
        "data.instrument.x",
        "env.spread_pips.GBP_JPY.y",
        "train.mirror",
    ]
    values = [
        "",
        "1",
        "-1",
        "1e400",
        "inf",
        "nan",
        "[1,2]",
        "{}",
        "true",
        "x",
        "1,2,,",
        "\x00",
        '"q"',
        "[[1]]",
        "{a = 1}",
        "1979-05-27",
        "0x10",
        "9" * 400,
    ]
    for _ in range(400):
        kind = rng.choice(("bytes", "toml", "env", "set"))
        key, value = rng.choice(keys), rng.choice(values)
        (tmp_path / "micro.toml").unlink(missing_ok=True)
        sets: list[str] = []
        env: dict[str, str] = {}
        if kind == "bytes":
            (tmp_path / "micro.toml").write_bytes(rng.randbytes(rng.randint(0, 64)))
        elif kind == "toml":
            section, _, name = key.rpartition(".")
            text = f"[{section}]\n{name or 'k'} = {value}\n" if section else f"{key} = {value}\n"
            (tmp_path / "micro.toml").write_text(text)
        elif kind == "env":
            env = {"MICRO_" + key.upper().replace(".", "__"): value}
        else:
            sets = [f"{key}={value}"]
        try:
            load_config(tmp_path, sets, environ=env)
        except ConfigError as exc:
            assert "\n" not in str(exc).strip()
