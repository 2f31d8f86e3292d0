"""`micro data import` through the real CLI: real files, broken copies, every format."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from micro.data import store
from tests.conftest import run_micro

EURUSD = "EURUSD_M1_2022_mt4.csv"
CADJPY = "CADJPY_M1_2022_mt4.csv"


def stored(home: Path, instrument: str) -> pd.DataFrame:
    """The bars the store holds for `instrument` (empty when there is no store)."""
    path = home / "data" / "market.duckdb"
    if not path.exists():
        return pd.DataFrame(columns=["ts", "open", "high", "low", "close", "volume"])
    con = duckdb.connect(str(path), read_only=True)
    try:
        return store.read_candles(con, instrument)
    finally:
        con.close()


def error_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused command (and that it is a clean refusal)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("micro: error: ")
    return lines[0]


def test_real_eurusd_file_imports_every_row_and_reimport_changes_nothing(
    home: Path, shared_data: Path
) -> None:
    first = run_micro(home, "data", "import", str(shared_data / EURUSD), "--instrument", "EUR_USD")
    assert first.returncode == 0, first.stderr
    assert "34342 new bars, 0 already stored" in first.stderr
    bars = stored(home, "EUR_USD")
    assert len(bars) == 34342
    assert bars["ts"].iloc[0] == pd.Timestamp("2022-08-15 10:06")
    assert bars["ts"].iloc[-1] == pd.Timestamp("2022-10-25 16:16")
    assert bars.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        1.02340,
        1.02359,
        1.02340,
        1.02348,
        105.0,
    ]
    again = run_micro(home, "data", "import", str(shared_data / EURUSD), "--instrument", "EUR_USD")
    assert again.returncode == 0, again.stderr
    assert "0 new bars, 34342 already stored" in again.stderr
    assert stored(home, "EUR_USD").equals(bars)


def test_real_cadjpy_file_in_broker_time_is_converted_to_utc(home: Path, shared_data: Path) -> None:
    result = run_micro(
        home,
        "data",
        "import",
        str(shared_data / CADJPY),
        "--instrument",
        "CAD_JPY",
        "--tz",
        "Etc/GMT-2",
    )
    assert result.returncode == 0, result.stderr
    bars = stored(home, "CAD_JPY")
    assert len(bars) == 2048
    assert bars["ts"].iloc[0] == pd.Timestamp("2022-09-29 11:43")  # 13:43 at UTC+2
    assert bars["ts"].iloc[-1] == pd.Timestamp("2022-09-30 21:58")
    log_file = home / "data" / "logs" / "data.log"
    assert "2048 new bars" in log_file.read_text()


def broken_copy(shared_data: Path, tmp_path: Path, edit) -> Path:
    """The CADJPY file with `edit(lines)` applied, written to tmp_path."""
    lines = (shared_data / CADJPY).read_text().splitlines()
    edit(lines)
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def garble(lines: list[str]) -> None:
    lines[99] = "2022.09.29,15:22,105.6##,105.7,105.5,105.6,12"


def backwards(lines: list[str]) -> None:
    lines[199] = "2022.09.29,10:00" + lines[199][16:]


def conflict(lines: list[str]) -> None:
    fields = lines[299].split(",")
    fields[5] = f"{float(fields[5]) + 0.001:.3f}"
    fields[3] = f"{max(float(fields[3]), float(fields[5])):.3f}"
    lines.insert(300, ",".join(fields))


def high_below_close(lines: list[str]) -> None:
    fields = lines[399].split(",")
    fields[3] = f"{float(fields[5]) - 0.01:.3f}"
    lines[399] = ",".join(fields)


def zero_price(lines: list[str]) -> None:
    fields = lines[499].split(",")
    fields[4] = "0"
    lines[499] = ",".join(fields)


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (garble, 100, "cannot read the row"),
        (backwards, 200, "timestamp goes backwards"),
        (conflict, 301, "duplicate timestamp with different values"),
        (high_below_close, 400, "high is below max(open, close)"),
        (zero_price, 500, "a price is zero, negative or infinite"),
    ],
)
def test_broken_file_is_refused_with_its_line_and_nothing_is_written(
    home: Path, shared_data: Path, tmp_path: Path, edit, line: int, words: str
) -> None:
    path = broken_copy(shared_data, tmp_path, edit)
    result = run_micro(home, "data", "import", str(path), "--instrument", "CAD_JPY")
    message = error_line(result)
    assert f"{path}, line {line}: {words}" in message
    assert "nothing was imported" in message
    assert not (home / "data" / "market.duckdb").exists()


def test_refused_file_leaves_an_existing_store_unchanged(
    home: Path, shared_data: Path, tmp_path: Path
) -> None:
    good = run_micro(home, "data", "import", str(shared_data / CADJPY), "--instrument", "CAD_JPY")
    assert good.returncode == 0, good.stderr
    before = stored(home, "CAD_JPY")

    def shift_late_rows(lines: list[str]) -> None:  # new bars, then a garbled one
        lines[:] = [line.replace("2022.09.30", "2022.10.03") for line in lines[-600:]]
        lines[-1] = "2022.10.03,23:59,x,y,z,w,1"

    path = broken_copy(shared_data, tmp_path, shift_late_rows)
    result = run_micro(home, "data", "import", str(path), "--instrument", "CAD_JPY")
    assert "line 600: cannot read the row" in error_line(result)
    assert stored(home, "CAD_JPY").equals(before)


def test_identical_duplicates_are_dropped_and_counted(
    home: Path, shared_data: Path, tmp_path: Path
) -> None:
    def duplicate(lines: list[str]) -> None:
        lines.insert(10, lines[9])
        lines.insert(20, lines[19])

    path = broken_copy(shared_data, tmp_path, duplicate)
    result = run_micro(home, "data", "import", str(path), "--instrument", "CAD_JPY")
    assert result.returncode == 0, result.stderr
    assert "2 identical duplicates dropped" in result.stderr
    assert "first at line 11" in result.stderr
    assert len(stored(home, "CAD_JPY")) == 2048


def test_many_bad_rows_report_the_first_line_and_the_count(
    home: Path, shared_data: Path, tmp_path: Path
) -> None:
    def break_many(lines: list[str]) -> None:
        for i in range(1000, 2048):
            lines[i] = lines[i].replace(",", ";", 2).replace(";", ",", 1)

    path = broken_copy(shared_data, tmp_path, break_many)
    result = run_micro(home, "data", "import", str(path), "--instrument", "CAD_JPY")
    message = error_line(result)
    assert ", line 1001: " in message
    assert "1047 more row(s) like it" in message


def test_eurusd_imported_as_gbpjpy_is_refused_as_a_price_scale_mistake(
    home: Path, shared_data: Path
) -> None:
    result = run_micro(home, "data", "import", str(shared_data / EURUSD))  # default GBP_JPY
    message = error_line(result)
    assert "prices look like 0.98" in message
    assert "GBP_JPY trades near 170: wrong --instrument or a price scale off by 10^-2" in message
    assert not (home / "data" / "market.duckdb").exists()


def test_bars_that_conflict_with_stored_ones_need_replace(
    home: Path, shared_data: Path, tmp_path: Path
) -> None:
    assert (
        run_micro(
            home, "data", "import", str(shared_data / CADJPY), "--instrument", "CAD_JPY"
        ).returncode
        == 0
    )

    def nudge_first_close(lines: list[str]) -> None:
        fields = lines[0].split(",")
        fields[5] = f"{float(fields[5]) + 0.002:.3f}"
        fields[3] = f"{max(float(fields[3]), float(fields[5])):.3f}"
        lines[:] = [",".join(fields)]

    path = broken_copy(shared_data, tmp_path, nudge_first_close)
    refused = run_micro(home, "data", "import", str(path), "--instrument", "CAD_JPY")
    assert "conflict with bars already stored" in error_line(refused)
    replaced = run_micro(home, "data", "import", str(path), "--instrument", "CAD_JPY", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "1 replaced" in replaced.stderr
    assert stored(home, "CAD_JPY")["close"].iloc[0] == pytest.approx(105.583)


def test_histdata_file_is_read_as_est_without_daylight_saving(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "DAT_ASCII_GBPJPY_M1_2022.csv"
    path.write_text(
        "20220103 170000;155.100;155.200;155.000;155.150;0\n"
        "20220103 170100;155.150;155.250;155.100;155.200;0\n"
    )
    result = run_micro(home, "data", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "(histdata, source zone Etc/GMT+5)" in result.stderr
    assert stored(home, "GBP_JPY")["ts"].tolist() == [
        pd.Timestamp("2022-01-03 22:00"),
        pd.Timestamp("2022-01-03 22:01"),
    ]


def test_oanda_json_and_csv_files_import(home: Path, tmp_path: Path) -> None:
    candles = [
        {
            "complete": True,
            "volume": 12,
            "time": f"2022-01-03T00:0{i}:00.000000000Z",
            "mid": {"o": "155.100", "h": "155.200", "l": "155.000", "c": f"155.1{i}0"},
        }
        for i in range(3)
    ]
    candles[-1]["complete"] = False
    doc = {"instrument": "GBP_JPY", "granularity": "M1", "candles": candles}
    json_path = tmp_path / "candles.json"
    json_path.write_text(json.dumps(doc))
    result = run_micro(home, "data", "import", str(json_path))
    assert result.returncode == 0, result.stderr
    assert "skipped 1 incomplete candle" in result.stderr
    csv_path = tmp_path / "candles.csv"
    csv_path.write_text(
        "time,o,h,l,c,volume\n"
        "2022-01-03T00:01:00.000000000Z,155.100,155.200,155.000,155.110,12\n"
        "2022-01-03T00:02:00.000000000Z,155.100,155.200,155.000,155.120,12\n"
    )
    result = run_micro(home, "data", "import", str(csv_path), "--format", "oanda")
    assert result.returncode == 0, result.stderr
    assert "1 new bars, 1 already stored" in result.stderr
    bars = stored(home, "GBP_JPY")
    assert bars["close"].tolist() == [155.10, 155.11, 155.12]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_generic_csv_with_semicolon_or_tab_imports_in_the_given_zone(
    home: Path, tmp_path: Path, sep: str
) -> None:
    rows = [
        ["Date", "Time", "Open", "High", "Low", "Close", "Volume"],
        ["2022-07-04", "10:00", "1.1000", "1.1010", "1.0990", "1.1005", "5"],
        ["2022-07-04", "10:01", "1.1005", "1.1012", "1.1001", "1.1010", "7"],
    ]
    path = tmp_path / "generic.txt"
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n")
    result = run_micro(
        home, "data", "import", str(path), "--instrument", "EUR_USD", "--tz", "America/New_York"
    )
    assert result.returncode == 0, result.stderr
    assert "(csv, source zone America/New_York)" in result.stderr
    assert stored(home, "EUR_USD")["ts"].tolist() == [
        pd.Timestamp("2022-07-04 14:00"),
        pd.Timestamp("2022-07-04 14:01"),
    ]


def test_undetectable_file_lists_the_formats(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my trading notes\n")
    message = error_line(run_micro(home, "data", "import", str(path)))
    assert "pass --format: mt4" in message and "histdata" in message and "csv" in message


def test_unknown_instrument_skips_the_scale_check_with_a_warning(
    home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "sek.csv"
    path.write_text("2022.01.03,00:00,10.1,10.2,10.0,10.15,1\n")
    result = run_micro(home, "data", "import", str(path), "--instrument", "USD_SEK")
    assert result.returncode == 0, result.stderr
    assert "no typical price known for USD_SEK" in result.stderr
    assert len(stored(home, "USD_SEK")) == 1
