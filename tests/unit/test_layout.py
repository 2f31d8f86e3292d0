"""The repository layout DESIGN.md promises, and the two README commands."""

from __future__ import annotations

import subprocess
from pathlib import Path

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


def test_ci_runs_make_test() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_makefile_installs_pinned_torch_before_the_package() -> None:
    text = (REPO / "Makefile").read_text()
    assert text.index("torch==2.13.0") < text.index("-e '.[test]'")
