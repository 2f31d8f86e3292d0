"""Docker cannot run here: the Dockerfile and compose file are checked against the real CLI."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from micro.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
VOLUMES = {f"./{v}:/micro/{v}" for v in ("data", "checkpoints", "validation", "live", "monitoring")}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def parses(argv: list[str]) -> None:
    """The micro CLI accepts `argv` (argparse exits on anything it does not know)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"micro {' '.join(argv)} is not a valid command") from exc


def test_compose_has_the_services_with_restart_volumes_and_limits(compose: dict) -> None:
    services = compose["services"]
    assert {"trainer", "validator", "live", "tensorboard", "dash", "data"} <= set(services)
    limits = {"trainer": ("6", "8g"), "validator": ("2", "4g"), "live": ("1", "2g")}
    for name, (cpus, memory) in limits.items():
        service = services[name]
        assert service["restart"] == "unless-stopped"
        assert set(service["volumes"]) == VOLUMES
        assert service["deploy"]["resources"]["limits"] == {"cpus": cpus, "memory": memory}
        assert service["environment"]["MICRO_SERVICE"] == name
        assert service["depends_on"]["data"]["condition"] == "service_completed_successfully"
    assert services["tensorboard"]["restart"] == "unless-stopped"
    assert all(p.startswith("127.0.0.1:") for p in services["tensorboard"]["ports"])
    assert services["dash"]["profiles"] == ["tools"]  # only with `docker compose run --rm dash`
    env_files = services["trainer"]["env_file"]
    assert env_files == [{"path": ".env", "required": False}]  # .env is optional


def test_every_command_compose_runs_exists_and_accepts_its_flags(compose: dict) -> None:
    for name, service in compose["services"].items():
        if service.get("entrypoint"):
            assert (name, service["entrypoint"][0]) in {
                ("tensorboard", "tensorboard"),
                ("ray-head", "sh"),  # checked by the ray profile's test
                ("ray-worker", "ray"),
            }
            continue
        parses(service["command"])


def ray_start_flags() -> set[str]:
    """The options the installed `ray start` accepts (from its --help)."""
    ray = Path(sys.executable).parent / "ray"
    shown = subprocess.run([str(ray), "start", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", shown.stdout))


def test_ray_profile_runs_the_trainer_on_the_head_and_scalable_workers(compose: dict) -> None:
    services = compose["services"]
    head, worker = services["ray-head"], services["ray-worker"]
    assert head["profiles"] == ["ray"] and worker["profiles"] == ["ray"]  # optional
    # The head: a Ray head node, then the trainer as its driver, writing the usual volumes.
    assert head["entrypoint"] == ["sh", "-c"] and len(head["command"]) == 1
    start, _, train = head["command"][0].partition("&&")
    start_argv = shlex.split(start)
    assert start_argv[:3] == ["ray", "start", "--head"] and "--port=6379" in start_argv
    train_argv = shlex.split(train)
    assert train_argv[:2] == ["exec", "micro"]
    parses(train_argv[2:])
    assert train_argv[2:] == ["train", "--backend", "ray", "--address", "auto"]
    assert set(head["volumes"]) == VOLUMES
    assert head["environment"]["MICRO_SERVICE"] == "trainer"  # its healthcheck: micro health
    assert head["restart"] == "unless-stopped"
    assert head["depends_on"]["data"]["condition"] == "service_completed_successfully"
    # Workers join the head by its service name; nothing pins them to one container.
    assert worker["entrypoint"] == ["ray"] and worker["command"][0] == "start"
    assert "--address=ray-head:6379" in worker["command"] and "--block" in worker["command"]
    assert "container_name" not in worker and "ports" not in worker  # --scale ray-worker=N
    assert "ports" not in head  # Ray's ports stay on the compose network
    flags = ray_start_flags()
    for argv in (start_argv[2:], worker["command"][1:]):
        for arg in argv:
            if arg.startswith("--"):
                assert arg.split("=")[0] in flags, f"ray start has no {arg}"
    for service in (head, worker):
        assert any(k.startswith("RAY_USAGE_STATS") for k in service["environment"])
        assert service["shm_size"]  # Ray's object store lives in /dev/shm
    readme = (REPO / "README.md").read_text()
    assert "docker compose --profile ray up" in readme and "--scale ray-worker=" in readme
    assert "--scale trainer=0" in readme  # one trainer writes checkpoints/


def test_the_healthcheck_command_exists_for_each_service(compose: dict) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    match = re.search(r"HEALTHCHECK.*?CMD (.+?)(?:\|\||$)", dockerfile, re.S)
    assert match, "Dockerfile has no HEALTHCHECK"
    command = shlex.split(match.group(1).replace("\\\n", " "))
    assert command[:2] == ["micro", "health"]
    for name in ("trainer", "validator", "live"):
        assert compose["services"][name]["environment"]["MICRO_SERVICE"] == name
        parses(["health", name])


def test_dockerfile_is_slim_cpu_torch_non_root_with_micro_as_entry_point() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "torch==2.13.0" in text and "whl/cpu" in text
    assert text.index("torch==2.13.0") < text.index('pip install ".[ray]"')  # the ray profile
    assert re.search(r"^USER micro$", text, re.M)
    assert 'ENTRYPOINT ["micro"]' in text
    assert "MICRO_HOME=/micro" in text


def test_env_example_documents_the_secrets_and_env_is_ignored() -> None:
    example = (REPO / ".env.example").read_text()
    assert "OANDA_TOKEN=" in example and "OANDA_ACCOUNT=" in example
    assert "MICRO_LIVE__OANDA__ENVIRONMENT" in example
    ignored = subprocess.run(["git", "check-ignore", ".env"], cwd=REPO, capture_output=True)
    assert ignored.returncode == 0
