"""Docker cannot run here: the Dockerfile and compose file are checked against the real CLI."""

from __future__ import annotations

import re
import shlex
import subprocess
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
            assert service["entrypoint"] == ["tensorboard"] and name == "tensorboard"
            continue
        parses(service["command"])


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
    assert text.index("torch==2.13.0") < text.index("pip install .")
    assert re.search(r"^USER micro$", text, re.M)
    assert 'ENTRYPOINT ["micro"]' in text
    assert "MICRO_HOME=/micro" in text


def test_env_example_documents_the_secrets_and_env_is_ignored() -> None:
    example = (REPO / ".env.example").read_text()
    assert "OANDA_TOKEN=" in example and "OANDA_ACCOUNT=" in example
    assert "MICRO_LIVE__OANDA__ENVIRONMENT" in example
    ignored = subprocess.run(["git", "check-ignore", ".env"], cwd=REPO, capture_output=True)
    assert ignored.returncode == 0
