"""The checkpoint contract: .pth + sidecar round trip, integrity and compatibility checks."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from micro.config import MODEL_SECTIONS, Config, replace
from micro.errors import CheckpointError
from micro.model import checkpoint as ckpt
from micro.model.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    read_sidecar,
    save_checkpoint,
)
from micro.model.networks import StochasticMuZeroNet
from micro.volumes import sidecar_path

SMALL = {
    "model.tcn_channels": 16,
    "model.static_hidden": 8,
    "model.hidden": 24,
    "model.mlp_hidden": 32,
    "features.window": 16,
}


@pytest.fixture
def config() -> Config:
    return replace(Config(), **SMALL)


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ckpt, "SHA_RETRY_SECONDS", 0.0)


def _net(config: Config, seed: int = 0) -> StochasticMuZeroNet:
    torch.manual_seed(seed)
    return StochasticMuZeroNet(config.model, config.features.window)


def _inputs(config: Config) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    window = torch.randn(4, config.features.window, 9, generator=g)
    return window, torch.randn(4, 6, generator=g)


def _trained_optimizer(net: StochasticMuZeroNet, config: Config) -> torch.optim.Optimizer:
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    state = net.represent(*_inputs(config))
    net.predict(state).value_logits.sum().backward()
    optimizer.step()
    return optimizer


def test_round_trip_restores_weights_outputs_counters_and_states(
    tmp_path: Path, config: Config
) -> None:
    net = _net(config)
    optimizer = _trained_optimizer(net, config)
    rng = np.random.default_rng(9)
    trainer_state = {
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
        "episodes_done": 1234,
        "temperature": 0.5,
    }
    path = tmp_path / "ckpt_ep0000050.pth"
    save_checkpoint(
        path,
        net,
        config,
        episode=50,
        learner_step=777,
        optimizer_state=optimizer.state_dict(),
        trainer_state=trainer_state,
    )
    loaded = load_checkpoint(path, config)
    assert loaded.episode == 50 and loaded.learner_step == 777
    assert not loaded.net.training
    for (name, theirs), ours in zip(
        loaded.net.state_dict().items(), net.state_dict().values(), strict=True
    ):
        assert torch.equal(theirs, ours), name
    window, static = _inputs(config)
    before, after = (
        net.initial_inference(window, static),
        loaded.net.initial_inference(window, static),
    )
    assert torch.equal(before.state, after.state)
    assert torch.equal(before.value, after.value)
    # The optimizer resumes exactly: same moments, same step count.
    resumed = torch.optim.AdamW(loaded.net.parameters(), lr=1e-3)
    resumed.load_state_dict(loaded.optimizer_state)
    for a, b in zip(resumed.state.values(), optimizer.state.values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["step"], b["step"])
    assert torch.equal(loaded.trainer_state["torch_rng"], trainer_state["torch_rng"])
    restored = np.random.default_rng()
    restored.bit_generator.state = loaded.trainer_state["numpy_rng"]
    assert restored.integers(1 << 62) == rng.integers(1 << 62)
    assert loaded.trainer_state["episodes_done"] == 1234


def test_sidecar_describes_the_checkpoint_without_torch(tmp_path: Path, config: Config) -> None:
    path = tmp_path / "latest.pth"
    returned = save_checkpoint(path, _net(config), config, episode=3, learner_step=40)
    sidecar = read_sidecar(path)
    assert sidecar == returned
    assert sidecar_path(path) == tmp_path / "latest.json"
    assert sidecar["format_version"] == FORMAT_VERSION
    assert sidecar["episode"] == 3 and sidecar["learner_step"] == 40
    assert sidecar["model_config_hash"] == config.section_hash(*MODEL_SECTIONS)
    assert sidecar["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    created = datetime.fromisoformat(sidecar["created_at"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - created).total_seconds()) < 3600
    assert read_sidecar(tmp_path / "latest.json") == sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "latest.pth"]


def test_read_sidecar_returns_none_for_a_missing_or_broken_sidecar(tmp_path: Path) -> None:
    assert read_sidecar(tmp_path / "nothing.pth") is None
    (tmp_path / "broken.json").write_text('{"episode": 3, "sha2')
    assert read_sidecar(tmp_path / "broken.pth") is None
    (tmp_path / "list.json").write_text("[1, 2]")
    assert read_sidecar(tmp_path / "list.pth") is None


def test_overwriting_a_checkpoint_updates_file_and_sidecar_together(
    tmp_path: Path, config: Config
) -> None:
    path = tmp_path / "latest.pth"
    save_checkpoint(path, _net(config, seed=1), config, episode=1, learner_step=1)
    save_checkpoint(path, _net(config, seed=2), config, episode=2, learner_step=9)
    loaded = load_checkpoint(path, config)
    assert loaded.sidecar["episode"] == 2 and loaded.learner_step == 9
    assert torch.equal(
        loaded.net.state_dict()["value_logits.weight"],
        _net(config, seed=2).state_dict()["value_logits.weight"],
    )


def test_a_missing_checkpoint_is_refused_with_its_path(tmp_path: Path, config: Config) -> None:
    with pytest.raises(CheckpointError, match=r"best\.pth: checkpoint not found"):
        load_checkpoint(tmp_path / "best.pth", config)


def test_a_truncated_checkpoint_is_refused(tmp_path: Path, config: Config) -> None:
    path = tmp_path / "latest.pth"
    save_checkpoint(path, _net(config), config, episode=1, learner_step=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="sha256 does not match latest.json.*truncated"):
        load_checkpoint(path, config)


def test_a_truncated_checkpoint_without_sidecar_is_refused(tmp_path: Path, config: Config) -> None:
    path = tmp_path / "latest.pth"
    save_checkpoint(path, _net(config), config, episode=1, learner_step=1)
    sidecar_path(path).unlink()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="torch cannot read it"):
        load_checkpoint(path, config)


def test_a_flipped_byte_is_refused(tmp_path: Path, config: Config) -> None:
    path = tmp_path / "latest.pth"
    save_checkpoint(path, _net(config), config, episode=1, learner_step=1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 does not match.*corrupt") as info:
        load_checkpoint(path, config)
    assert "\n" not in str(info.value)


def test_a_checkpoint_of_another_model_size_names_the_differing_setting(
    tmp_path: Path, config: Config
) -> None:
    path = tmp_path / "best.pth"
    save_checkpoint(path, _net(config), config, episode=1, learner_step=1)
    running = replace(config, **{"model.tcn_channels": 24, "features.outcome_threshold": 0.5})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, running)
    message = str(info.value)
    assert "model.tcn_channels: checkpoint 16, running 24" in message
    assert "features.outcome_threshold: checkpoint 0.33, running 0.5" in message
    assert "trained with or retrain" in message
    assert "model.hidden" not in message and "\n" not in message


def test_settings_outside_the_model_sections_do_not_block_loading(
    tmp_path: Path, config: Config
) -> None:
    path = tmp_path / "best.pth"
    save_checkpoint(path, _net(config), config, episode=1, learner_step=1)
    running = replace(config, **{"mcts.simulations": 50, "train.learning_rate": 0.1})
    assert load_checkpoint(path, running).episode == 1


def test_a_checkpoint_without_sidecar_loads_with_a_warning(
    tmp_path: Path, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ckpt_ep0000100.pth"
    net = _net(config)
    save_checkpoint(path, net, config, episode=100, learner_step=5)
    copy = tmp_path / "copied" / "mine.pth"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    with caplog.at_level(logging.WARNING, logger="micro.model.checkpoint"):
        loaded = load_checkpoint(copy, config)
    assert loaded.sidecar is None and loaded.episode == 100
    assert "sha256 check skipped" in caplog.text
    window, static = _inputs(config)
    assert torch.equal(
        loaded.net.initial_inference(window, static).state,
        net.initial_inference(window, static).state,
    )


def test_a_reader_between_the_writers_two_replaces_retries_and_loads(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "latest.pth"
    save_checkpoint(path, _net(config, seed=1), config, episode=1, learner_step=1)
    old_sidecar = sidecar_path(path).read_bytes()
    save_checkpoint(path, _net(config, seed=2), config, episode=2, learner_step=2)
    new_sidecar = sidecar_path(path).read_bytes()
    sidecar_path(path).write_bytes(old_sidecar)  # the writer has replaced the .pth only

    def writer_finishes(_: float) -> None:
        sidecar_path(path).write_bytes(new_sidecar)

    monkeypatch.setattr(ckpt.time, "sleep", writer_finishes)
    assert load_checkpoint(path, config).episode == 2


def test_a_non_checkpoint_file_is_refused(tmp_path: Path, config: Config) -> None:
    path = tmp_path / "weights.pth"
    torch.save({"something": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a micro checkpoint"):
        load_checkpoint(path, config)


def test_state_torch_cannot_load_safely_is_refused_at_save_time(
    tmp_path: Path, config: Config
) -> None:
    path = tmp_path / "latest.pth"
    with pytest.raises(TypeError, match=r"trainer_state\.rng is a ndarray"):
        save_checkpoint(
            path,
            _net(config),
            config,
            episode=1,
            learner_step=1,
            trainer_state={"rng": np.zeros(3)},
        )
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_from_before_a_later_setting_loads_at_that_setting_s_old_behaviour(
    tmp_path: Path, config: Config
) -> None:
    # `model.support_mean` came after checkpoints were first written: one without it was made
    # with `h`, so it loads under `h` (and a config at `h` hashes as before the setting) and is
    # refused, naming the setting, under `pips`.
    path = tmp_path / "old.pth"
    save_checkpoint(path, _net(config), config, episode=7, learner_step=1)
    payload = torch.load(path, weights_only=True)
    del payload["config"]["model"]["support_mean"]
    torch.save(payload, path)
    sidecar_path(path).unlink()  # its sha256 is of the file before the edit
    assert load_checkpoint(path, config).episode == 7
    with pytest.raises(CheckpointError, match="model.support_mean: not in checkpoint"):
        load_checkpoint(path, replace(config, **{"model.support_mean": "pips"}))
    plain = {s: config.to_dict(redact=False)[s] for s in MODEL_SECTIONS}
    del plain["model"]["support_mean"]
    before = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]
    assert config.section_hash(*MODEL_SECTIONS) == before
    assert replace(config, **{"model.support_mean": "pips"}).section_hash(*MODEL_SECTIONS) != before
