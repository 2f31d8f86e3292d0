"""An import checks a file a chunk at a time: the same answers as one pass over the whole file.

`stage_file` with chunks of a few rows: checks of order see the row before a chunk, a failing
row's count covers the whole file, and only passing rows are staged.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from micro.data.importers import CandleChecks, stage_file
from micro.errors import DataError

MINUTES = pd.date_range("2022-01-04 00:00", periods=40, freq="1min")  # a Tuesday, no weekend


def rows() -> list[str]:
    return [f"{t:%Y.%m.%d,%H:%M},170.100,170.200,170.000,170.150,5" for t in MINUTES]


def stage(tmp_path: Path, lines: list[str], chunk: int = 8) -> tuple[CandleChecks, pd.DataFrame]:
    path = tmp_path / "file.csv"
    path.write_text("\n".join(lines) + "\n")
    staged = tmp_path / "staged.duckdb"
    checks, _ = stage_file(path, staged, "mt4", None, None, rows=chunk)
    with duckdb.connect(str(staged), read_only=True) as con:
        return checks, con.execute("SELECT * FROM candles ORDER BY ts").df()


def test_every_row_is_staged_across_chunks(tmp_path: Path) -> None:
    checks, staged = stage(tmp_path, rows())
    assert len(staged) == 40 and staged["ts"].tolist() == list(MINUTES)
    assert checks.rows_read == 40 and checks.duplicates_dropped == 0


def test_an_identical_duplicate_across_a_chunk_boundary_is_dropped(tmp_path: Path) -> None:
    lines = rows()
    lines.insert(8, lines[7])  # line 9 repeats line 8, the last row of the first chunk
    checks, staged = stage(tmp_path, lines)
    assert len(staged) == 40
    assert checks.duplicates_dropped == 1 and checks.first_duplicate_line == 9


def test_a_conflict_across_a_chunk_boundary_is_refused(tmp_path: Path) -> None:
    lines = rows()
    lines.insert(8, lines[7].replace("170.150,5", "170.160,5"))
    with pytest.raises(DataError, match=r"line 9: duplicate timestamp with different values"):
        stage(tmp_path, lines)


def test_a_timestamp_going_backwards_at_a_chunk_boundary_is_refused(tmp_path: Path) -> None:
    lines = rows()
    lines[8], lines[7] = lines[7], lines[8]  # line 9 (a chunk's first) before line 8
    with pytest.raises(DataError, match=r"line 9: timestamp goes backwards \(2022-01-04 00:07"):
        stage(tmp_path, lines)


def test_the_count_of_bad_rows_covers_every_chunk(tmp_path: Path) -> None:
    lines = rows()
    for i in (3, 12, 30, 39):  # in the first, second, fourth and fifth chunk
        lines[i] = lines[i].replace("170.200", "170.120")  # high below the close
    lines[20] = lines[20].replace("170.000", "170.160")  # another check: not in the count
    with pytest.raises(DataError) as refused:
        stage(tmp_path, lines)
    message = str(refused.value)
    assert "line 4: high is below max(open, close)" in message
    assert "3 more row(s) like it" in message and "nothing was imported" in message
