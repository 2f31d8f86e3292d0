"""The repository layout (volumes, ignores, pinned installs) and the two README commands."""

from __future__ import annotations

import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]


def test_runtime_volumes_track_only_a_readme() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "data", "checkpoints", "validation", "live", "monitoring"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for volume in ("data", "checkpoints", "validation", "live", "monitoring"):
        assert (REPO / volume / "README.md").is_file()
        assert all(
            path == f"{volume}/README.md" for path in tracked if path.startswith(volume + "/")
        )


def test_runtime_volume_contents_are_ignored() -> None:
    probe = ["data/market.duckdb", "checkpoints/latest.pth", "live/journal.jsonl", ".env"]
    result = subprocess.run(
        ["git", "check-ignore", *probe], cwd=REPO, capture_output=True, text=True
    )
    assert sorted(result.stdout.split()) == sorted(probe)


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    head = text[: text.index("make test") + 20]
    assert "make up" in head and "make test" in head
    assert text.index("make up") < 400


def test_readme_links_the_architecture_map_in_the_repository() -> None:
    readme = (REPO / "README.md").read_text()
    assert "(ARCHITECTURE.md)" in readme and (REPO / "ARCHITECTURE.md").is_file()
    assert "DESIGN.md" not in readme and "STYLE.md" not in readme  # no design notes outside


def test_ci_runs_make_test() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_makefile_installs_pinned_torch_before_the_package() -> None:
    text = (REPO / "Makefile").read_text()
    assert text.index("torch==2.13.0") < text.index("-e '.[test,ray]'")


def test_make_installs_every_package_from_the_constraints_file() -> None:
    text = (REPO / "Makefile").read_text()
    assert "--constraint $(CONSTRAINTS)" in text and "CONSTRAINTS := constraints.txt" in text
    assert "\nlock:" in text  # `make lock` regenerates it


def pins() -> dict[str, str]:
    """constraints.txt as {canonical name: version}."""
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            out[canonicalize_name(name)] = version.strip()
    return out


def wanted(requirements: list[str], extras: set[str]) -> list[Requirement]:
    """The requirements that apply on this platform with `extras` asked for."""
    out = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            out.append(req)
    return out


def test_constraints_pin_every_dependency_direct_and_transitive_within_its_range() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    direct = project["dependencies"] + project["optional-dependencies"]["test"]
    pinned = pins()
    todo, seen = wanted(direct, set()), set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in constraints.txt: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside {req}: run `make lock`"
        )
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        try:  # what the installed release needs (the lock was made from the same releases)
            todo += wanted(metadata.requires(name) or [], set(req.extras))
        except metadata.PackageNotFoundError:
            continue
