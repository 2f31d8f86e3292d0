from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import micro_env, run_micro


def test_help_lists_the_commands(home: Path) -> None:
    result = run_micro(home, "--help")
    assert result.returncode == 0
    for command in ("data", "config", "up"):
        assert command in result.stdout


def test_config_show_prints_the_effective_config_with_secrets_redacted(home: Path) -> None:
    (home / "micro.toml").write_text('[live.oanda]\naccount = "101-001-7777777-001"\n')
    env = micro_env(home, MICRO_MCTS__SIMULATIONS="21", OANDA_TOKEN="tok-secret-abcdef")
    result = run_micro(home, "config", "show", "--format", "json", "--set", "train.seed=9", env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["mcts"]["simulations"] == 21
    assert shown["train"]["seed"] == 9
    assert shown["live"]["oanda"]["account"] == "***"
    assert "7777777" not in result.stdout and "tok-secret" not in result.stdout


def test_config_show_toml_output_is_valid_toml(home: Path) -> None:
    import tomllib

    result = run_micro(home, "config", "show")
    assert result.returncode == 0, result.stderr
    parsed = tomllib.loads(result.stdout)
    assert parsed["env"]["spread_pips"]["GBP_JPY"] == 4.0
    assert parsed["live"]["oanda"]["environment"] == "practice"


def test_home_option_and_env_choose_the_volume_root(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "micro.toml").write_text("[mcts]\nsimulations = 33\n")
    by_flag = run_micro(home, "--home", str(other), "config", "show", "--format", "json")
    assert json.loads(by_flag.stdout)["mcts"]["simulations"] == 33
    after = run_micro(home, "config", "show", "--format", "json", "--home", str(other))
    assert json.loads(after.stdout)["mcts"]["simulations"] == 33
    by_env = run_micro(home, "config", "show", "--format", "json", env=micro_env(other))
    assert json.loads(by_env.stdout)["mcts"]["simulations"] == 33


def test_bad_config_is_one_line_exit_2_no_traceback(home: Path) -> None:
    result = run_micro(home, "config", "show", "--set", "mcts.simulations=lots")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "mcts.simulations must be int" in lines[0]
    assert "Traceback" not in result.stderr


def test_broken_toml_is_one_line_exit_2(home: Path) -> None:
    (home / "micro.toml").write_text("[mcts\nsimulations = 3\n")
    result = run_micro(home, "config", "show")
    assert result.returncode == 2
    assert "micro.toml: not valid TOML" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_home_that_is_a_file_is_refused(home: Path) -> None:
    not_a_dir = home / "file"
    not_a_dir.write_text("x")
    result = run_micro(home, "--home", str(not_a_dir), "config", "show")
    assert result.returncode == 2
    assert "not a directory" in result.stderr


def _one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_micro_toml_that_is_not_utf8_is_one_line_exit_2(home: Path) -> None:
    (home / "micro.toml").write_bytes(b"[risk]\n# Verlustgrenze f\xfcr den Tag\n")
    line = _one_line_exit_2(run_micro(home, "config", "show"))
    assert "micro.toml: not UTF-8 text (byte 0xfc" in line and "save the file as UTF-8" in line


def test_a_value_set_as_a_section_is_one_line_exit_2(home: Path) -> None:
    line = _one_line_exit_2(run_micro(home, "config", "show", "--set", "data.instrument.x=1"))
    assert "data.instrument is a value, not a section" in line


def test_an_infinite_stop_loss_is_one_line_exit_2(home: Path) -> None:
    (home / "micro.toml").write_text("[risk]\nstop_loss_pips = inf\n")
    line = _one_line_exit_2(run_micro(home, "config", "show", "--format", "json"))
    assert "risk.stop_loss_pips must be a finite number" in line


def test_config_show_json_is_strict_json(home: Path) -> None:
    (home / "micro.toml").write_text("[risk]\nmax_drawdown_pips = 1e300\n")
    result = run_micro(home, "config", "show", "--format", "json")
    assert result.returncode == 0, result.stderr

    def refuse(name: str) -> None:
        raise AssertionError(f"not JSON: {name}")

    shown = json.loads(result.stdout, parse_constant=refuse)
    assert shown["risk"]["max_drawdown_pips"] == 1e300


def test_a_misspelt_environment_setting_is_warned_about(home: Path) -> None:
    env = micro_env(home, MICRO_DATA_SESSION_BARS="100")
    result = run_micro(home, "config", "show", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert "MICRO_DATA_SESSION_BARS is not a micro setting" in result.stderr
    assert "did you mean MICRO_DATA__SESSION_BARS" in result.stderr
    assert json.loads(result.stdout)["data"]["session_bars"] == 360
