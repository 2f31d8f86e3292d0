"""How `micro train --backend ray` finds the cluster it joins, before Ray is asked anything."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from micro.config import ray_address_ok
from micro.errors import UserError
from micro.train import ray_backend
from micro.train.ray_backend import head_address, is_loopback, probe


def test_an_empty_address_means_a_private_ray_and_host_port_is_taken_as_is() -> None:
    assert head_address("") is None
    assert head_address("10.0.0.5:6379") == "10.0.0.5:6379"


def test_auto_reads_ray_address_then_the_note_ray_start_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_backend, "RAY_TMP", tmp_path)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")
    assert head_address("auto") == "10.0.0.7:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    (tmp_path / "ray_current_cluster").write_text("127.0.0.1:6380\n")
    assert head_address("auto") == "127.0.0.1:6380"


def test_auto_without_a_cluster_on_this_machine_says_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_backend, "RAY_TMP", tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(UserError, match="ray start --head"):
        head_address("auto")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("[::1]", True), ("10.0.0.5", False), ("h", False)],
)
def test_loopback_hosts_are_recognised(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_probe_passes_a_listening_head_and_names_a_silent_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe(f"127.0.0.1:{port}")
    with pytest.raises(UserError, match=f"--address 127.0.0.1:{port}: no Ray head answers"):
        probe(f"127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("", True),
        ("auto", True),
        ("head:6379", True),
        ("[::1]:6379", True),
        ("head", False),
        ("head:0", False),
        ("head:65536", False),
        (":6379", False),
        ("head:port", False),
    ],
)
def test_ray_address_setting_is_checked(address: str, ok: bool) -> None:
    assert ray_address_ok(address) is ok
