"""`micro data import` through the real CLI: real files, broken copies, every format.

The MT4 tests run on the sample shipped in tests/samples and, where the real broker exports lie
beside the checkout (CI; `SHARED_DATA` in tests/conftest.py), on the real CADJPY export too.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from micro.data import formats, store
from tests.conftest import run_micro
from tests.samples.make_samples import write_fx_weeks_mt4

EURUSD = "EURUSD_M1_2022_mt4.csv"
CADJPY = "CADJPY_M1_2022_mt4.csv"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"  # see tests/samples/make_samples.py
SAMPLE_BARS = 600
BROKER = "America/New_York+7"  # MT4 broker server time: UTC+2 in winter, UTC+3 in summer


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


@dataclass(frozen=True)
class Mt4File:
    """An MT4 export in a broker's server time (UTC+2) and what importing it must give."""

    path: Path
    instrument: str
    rows: int
    first_utc: pd.Timestamp
    last_utc: pd.Timestamp
    zone: str

    def import_args(self, path: Path | None = None) -> list[str]:
        """`micro data import` of this file (or of an edited copy at `path`) in its zone."""
        path_text = str(path or self.path)
        return ["data", "import", path_text, "--instrument", self.instrument, "--tz", self.zone]


@pytest.fixture(params=["shipped", "shared"])
def mt4_file(request: pytest.FixtureRequest) -> Mt4File:
    """The synthetic sample shipped in tests/samples, and the real CADJPY file in SHARED_DATA."""
    if request.param == "shipped":
        return Mt4File(
            SAMPLES / "GBPJPY_M1_synth_mt4.csv",
            "GBP_JPY",
            SAMPLE_BARS,
            pd.Timestamp("2022-01-03 00:00"),  # 02:00 at UTC+2
            pd.Timestamp("2022-01-03 10:01"),  # 600 bars: the generator left out 2 minutes
            "Etc/GMT-2",
        )
    shared = request.getfixturevalue("shared_data")
    return Mt4File(
        shared / CADJPY,
        "CAD_JPY",
        2048,
        pd.Timestamp("2022-09-29 10:43"),  # 13:43 at UTC+3 (summer server time)
        pd.Timestamp("2022-09-30 20:58"),  # its last bar closes the week at 21:00 UTC
        BROKER,
    )


def test_real_eurusd_file_imports_every_row_and_reimport_changes_nothing(
    home: Path, shared_data: Path
) -> None:
    args = ("data", "import", str(shared_data / EURUSD), "--instrument", "EUR_USD", "--tz", BROKER)
    first = run_micro(home, *args)
    assert first.returncode == 0, first.stderr
    assert "34342 new bars, 0 already stored" in first.stderr
    assert "weekly opens Sun 21:03 -> closes Fri 20:59 UTC" in first.stderr
    bars = stored(home, "EUR_USD")
    assert len(bars) == 34342
    assert bars["ts"].iloc[0] == pd.Timestamp("2022-08-15 07:06")  # 10:06 at UTC+3 (summer)
    assert bars["ts"].iloc[-1] == pd.Timestamp("2022-10-25 13:16")
    assert bars.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        1.02340,
        1.02359,
        1.02340,
        1.02348,
        105.0,
    ]
    again = run_micro(home, *args)
    assert again.returncode == 0, again.stderr
    assert "0 new bars, 34342 already stored" in again.stderr
    assert stored(home, "EUR_USD").equals(bars)


def test_mt4_file_in_broker_time_is_converted_to_utc(home: Path, mt4_file: Mt4File) -> None:
    result = run_micro(home, *mt4_file.import_args())
    assert result.returncode == 0, result.stderr
    bars = stored(home, mt4_file.instrument)
    assert len(bars) == mt4_file.rows
    assert bars["ts"].iloc[0] == mt4_file.first_utc
    assert bars["ts"].iloc[-1] == mt4_file.last_utc
    log_file = home / "data" / "logs" / "data.log"
    assert f"{mt4_file.rows} new bars" in log_file.read_text()


def test_the_shipped_sample_reads_the_same_in_every_format(home: Path) -> None:
    """MT4 (UTC+2), HistData (EST), OANDA JSON and CSV (UTC): the same 600 bars in UTC."""
    mt4 = run_micro(
        home, "data", "import", str(SAMPLES / "GBPJPY_M1_synth_mt4.csv"), "--tz", "Etc/GMT-2"
    )
    assert mt4.returncode == 0, mt4.stderr
    assert f"{SAMPLE_BARS} new bars, 0 already stored" in mt4.stderr
    bars = stored(home, "GBP_JPY")
    for name, kind in (
        ("DAT_ASCII_GBPJPY_M1_synth.csv", "(histdata, source zone Etc/GMT+5)"),
        ("GBPJPY_M1_synth_oanda.json", "skipped 1 incomplete candle"),
        ("GBPJPY_M1_synth_oanda.csv", "(oanda, source zone offsets in file)"),
    ):
        again = run_micro(home, "data", "import", str(SAMPLES / name))  # format sniffed
        assert again.returncode == 0, again.stderr
        assert kind in again.stderr
        assert f"0 new bars, {SAMPLE_BARS} already stored" in again.stderr  # no price differs
    assert stored(home, "GBP_JPY").equals(bars)


def broken_copy(mt4_file: Mt4File, tmp_path: Path, edit: Callable[[list[str]], None]) -> Path:
    """The MT4 file with `edit(lines)` applied, written to tmp_path."""
    lines = mt4_file.path.read_text().splitlines()
    edit(lines)
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def moved(line: str, by: timedelta) -> str:
    """An MT4 row with its `YYYY.MM.DD,HH:MM` stamp moved by `by`."""
    stamp = datetime.strptime(line[:16], "%Y.%m.%d,%H:%M") + by
    return f"{stamp:%Y.%m.%d,%H:%M}" + line[16:]


def garble(lines: list[str]) -> None:
    fields = lines[99].split(",")
    fields[2] = fields[2][:-2] + "##"
    lines[99] = ",".join(fields)


def backwards(lines: list[str]) -> None:
    lines[199] = moved(lines[199], -timedelta(days=7))  # before the file's first row


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
    home: Path, mt4_file: Mt4File, tmp_path: Path, edit, line: int, words: str
) -> None:
    path = broken_copy(mt4_file, tmp_path, edit)
    result = run_micro(home, *mt4_file.import_args(path))
    message = error_line(result)
    assert f"{path}, line {line}: {words}" in message
    assert "nothing was imported" in message
    assert not (home / "data" / "market.duckdb").exists()


def test_refused_file_leaves_an_existing_store_unchanged(
    home: Path, mt4_file: Mt4File, tmp_path: Path
) -> None:
    good = run_micro(home, *mt4_file.import_args())
    assert good.returncode == 0, good.stderr
    before = stored(home, mt4_file.instrument)

    def shift_late_rows(lines: list[str]) -> None:  # new bars a week later, then a garbled one
        lines[:] = [moved(line, timedelta(days=7)) for line in lines[-600:]]
        lines[-1] = lines[-1][:17] + "x,y,z,w,1"

    path = broken_copy(mt4_file, tmp_path, shift_late_rows)
    result = run_micro(home, *mt4_file.import_args(path))
    assert "line 600: cannot read the row" in error_line(result)
    assert stored(home, mt4_file.instrument).equals(before)


def test_identical_duplicates_are_dropped_and_counted(
    home: Path, mt4_file: Mt4File, tmp_path: Path
) -> None:
    def duplicate(lines: list[str]) -> None:
        lines.insert(10, lines[9])
        lines.insert(20, lines[19])

    path = broken_copy(mt4_file, tmp_path, duplicate)
    result = run_micro(home, *mt4_file.import_args(path))
    assert result.returncode == 0, result.stderr
    assert "2 identical duplicates dropped" in result.stderr
    assert "first at line 11" in result.stderr
    assert len(stored(home, mt4_file.instrument)) == mt4_file.rows


def test_many_bad_rows_report_the_first_line_and_the_count(
    home: Path, mt4_file: Mt4File, tmp_path: Path
) -> None:
    half = mt4_file.rows // 2

    def break_many(lines: list[str]) -> None:
        for i in range(half, len(lines)):
            lines[i] = lines[i].replace(",", ";", 2).replace(";", ",", 1)

    path = broken_copy(mt4_file, tmp_path, break_many)
    result = run_micro(home, *mt4_file.import_args(path))
    message = error_line(result)
    assert f", line {half + 1}: " in message
    assert f"{mt4_file.rows - half - 1} more row(s) like it" in message


def test_a_file_imported_as_the_wrong_instrument_is_refused_as_a_price_scale_mistake(
    home: Path, mt4_file: Mt4File
) -> None:
    args = mt4_file.import_args()
    args[args.index("--instrument") + 1] = "EUR_USD"
    message = error_line(run_micro(home, *args))
    assert "EUR_USD trades near 1.15: wrong --instrument or a price scale off by 10^2" in message
    assert not (home / "data" / "market.duckdb").exists()


def test_eurusd_imported_as_gbpjpy_is_refused_as_a_price_scale_mistake(
    home: Path, shared_data: Path
) -> None:
    result = run_micro(home, "data", "import", str(shared_data / EURUSD))  # default GBP_JPY
    message = error_line(result)
    assert "prices look like 0.98" in message
    assert "GBP_JPY trades near 170: wrong --instrument or a price scale off by 10^-2" in message
    assert not (home / "data" / "market.duckdb").exists()


def test_bars_that_conflict_with_stored_ones_need_replace(
    home: Path, mt4_file: Mt4File, tmp_path: Path
) -> None:
    assert run_micro(home, *mt4_file.import_args()).returncode == 0
    first = mt4_file.path.read_text().splitlines()[0].split(",")
    nudged = round(float(first[5]) + 0.002, 3)

    def nudge_first_close(lines: list[str]) -> None:
        fields = lines[0].split(",")
        fields[5] = f"{nudged:.3f}"
        fields[3] = f"{max(float(fields[3]), nudged):.3f}"
        lines[:] = [",".join(fields)]

    path = broken_copy(mt4_file, tmp_path, nudge_first_close)
    refused = run_micro(home, *mt4_file.import_args(path))
    assert "conflict with bars already stored" in error_line(refused)
    replaced = run_micro(home, *mt4_file.import_args(path), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "1 replaced" in replaced.stderr
    assert stored(home, mt4_file.instrument)["close"].iloc[0] == pytest.approx(nudged)


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


# ---------------------------------------------------------------- time zones and the FX week


def test_real_mt4_export_in_server_time_is_refused_without_tz(
    home: Path, shared_data: Path
) -> None:
    """Read as UTC its weeks run Monday 00:03 -> Friday 23:59: three hours late."""
    for name, instrument in ((EURUSD, "EUR_USD"), (CADJPY, "CAD_JPY")):
        result = run_micro(
            home, "data", "import", str(shared_data / name), "--instrument", instrument
        )
        message = error_line(result)
        assert "read in UTC" in message and "sit 3 h late of the FX week" in message
        assert f"pass --tz {BROKER}" in message
    assert "opens Mon 00:03 -> closes Fri 23:59 UTC (4 open(s), 5 close(s))" in error_line(
        run_micro(home, "data", "import", str(shared_data / EURUSD), "--instrument", "EUR_USD")
    )
    assert not (home / "data" / "market.duckdb").exists()


@pytest.mark.parametrize(
    ("zone", "first_sunday", "likely"),
    [
        (BROKER, "2022-01-09", BROKER),  # winter: UTC+2
        (BROKER, "2022-07-10", BROKER),  # summer: UTC+3
        ("Etc/GMT+5", "2022-01-09", "America/New_York"),  # HistData's EST read as UTC
        ("Asia/Tokyo", "2022-07-10", "Etc/GMT-9"),
    ],
)
def test_shifted_mt4_file_is_refused_naming_the_zone_and_imports_with_it(
    home: Path, tmp_path: Path, zone: str, first_sunday: str, likely: str
) -> None:
    path = tmp_path / "shifted.csv"
    utc = write_fx_weeks_mt4(path, first_sunday, 2, zone)
    message = error_line(run_micro(home, "data", "import", str(path)))
    assert f"pass --tz {likely}" in message and "nothing was imported" in message
    assert not (home / "data" / "market.duckdb").exists()
    result = run_micro(home, "data", "import", str(path), "--tz", zone)
    assert result.returncode == 0, result.stderr
    assert "as the FX week in UTC" in result.stderr
    assert stored(home, "GBP_JPY")["ts"].tolist() == list(utc)


def test_a_file_in_utc_imports_without_tz(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "utc.csv"
    utc = write_fx_weeks_mt4(path, "2022-03-06", 3)  # spans the US change on 13 March
    result = run_micro(home, "data", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "(2 open(s), 2 close(s)), as the FX week in UTC" in result.stderr
    assert len(stored(home, "GBP_JPY")) == len(utc)


def test_explicit_tz_wins_with_a_warning_when_the_weeks_do_not_fit(
    home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "shifted.csv"
    write_fx_weeks_mt4(path, "2022-07-10", 2, BROKER)
    result = run_micro(home, "data", "import", str(path), "--tz", "UTC")
    assert result.returncode == 0, result.stderr
    assert f"imported as asked (the likely zone is --tz {BROKER})" in result.stderr
    assert stored(home, "GBP_JPY")["ts"].iloc[0] == pd.Timestamp("2022-07-11 00:00")


# ---------------------------------------------------------------- formats without `;` or header


@pytest.mark.parametrize("sep", [",", "\t"])
def test_csv_without_header_imports_every_row(home: Path, tmp_path: Path, sep: str) -> None:
    path = tmp_path / "plain.csv"
    utc = write_fx_weeks_mt4(path, "2022-01-09", 2, sep=sep)  # 2022.01.09 dates: mt4
    rows = [line.split(sep) for line in path.read_text().splitlines()]
    path.write_text(  # ISO dates, no header: generic CSV
        "".join(sep.join([r[0].replace(".", "-"), *r[1:]]) + "\n" for r in rows)
    )
    result = run_micro(home, "data", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert f"read {len(utc)} bars from plain.csv (csv, source zone UTC)" in result.stderr
    assert stored(home, "GBP_JPY")["ts"].tolist() == list(utc)


def test_histdata_with_commas_imports(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "DAT_ASCII_GBPJPY_M1_2022.csv"
    path.write_text(
        "20220103 170000,155.100,155.200,155.000,155.150,0\n"
        "20220103 170100,155.150,155.250,155.100,155.200,0\n"
    )
    result = run_micro(home, "data", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "(histdata, source zone Etc/GMT+5)" in result.stderr
    assert stored(home, "GBP_JPY")["ts"].iloc[0] == pd.Timestamp("2022-01-03 22:00")


def test_a_huge_file_without_line_breaks_is_refused_at_once(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "no_newlines.csv"
    with open(path, "wb") as fh:  # 2 GiB, sparse: NUL bytes and no line break
        fh.truncate(2 << 30)
    result = run_micro(home, "data", "import", str(path), timeout=60)
    assert "line 1: longer than 4096 bytes (no line break?)" in error_line(result)
    assert not (home / "data" / "market.duckdb").exists()
    assert not (home / "data" / "logs" / "data.log").exists()  # a refusal leaves no log file


# ---------------------------------------------------------------- the same file in another zone


@pytest.mark.parametrize(("first_tz", "shift"), [("UTC", "+3"), ("Etc/GMT-5", "-2")])
def test_replace_after_another_zone_leaves_only_the_new_reading(
    home: Path, tmp_path: Path, first_tz: str, shift: str
) -> None:
    path = tmp_path / "broker.csv"
    utc = write_fx_weeks_mt4(path, "2022-07-10", 2, BROKER)  # UTC+3 in summer
    wrong = run_micro(home, "data", "import", str(path), "--tz", first_tz)
    assert wrong.returncode == 0, wrong.stderr
    message = error_line(run_micro(home, "data", "import", str(path), "--tz", BROKER))
    assert f"the stored bars repeat the new ones {shift} h away" in message
    assert "imported before in another zone" in message and "check --tz" in message
    assert stored(home, "GBP_JPY")["ts"].iloc[0] != utc[0]  # the refusal wrote nothing
    fixed = run_micro(home, "data", "import", str(path), "--tz", BROKER, "--replace")
    assert fixed.returncode == 0, fixed.stderr
    assert stored(home, "GBP_JPY")["ts"].tolist() == list(utc)  # no bar of the first reading
    counts = re.search(r"(\d+) new bars, (\d+) already stored, (\d+) replaced", fixed.stderr)
    assert counts is not None, fixed.stderr
    _, same, replaced = map(int, counts.groups())
    assert same + replaced == len(utc)  # every bar of the first reading went


def test_replace_keeps_the_bars_outside_the_file_range(home: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    early = write_fx_weeks_mt4(first, "2022-07-10", 1, BROKER)
    late = write_fx_weeks_mt4(second, "2022-07-17", 1, BROKER)
    for path in (first, second):
        assert run_micro(home, "data", "import", str(path), "--tz", BROKER).returncode == 0
    again = run_micro(home, "data", "import", str(second), "--tz", BROKER, "--replace")
    assert again.returncode == 0, again.stderr
    assert "0 replaced" in again.stderr
    assert stored(home, "GBP_JPY")["ts"].tolist() == [*early, *late]


# ---------------------------------------------------------------- a file of several chunks


def test_a_file_of_several_chunks_imports_whole_or_not_at_all(home: Path, tmp_path: Path) -> None:
    """36 FX weeks (259,200 rows) stream in two chunks; a bad row in the second writes nothing."""
    path = tmp_path / "weeks.csv"
    utc = write_fx_weeks_mt4(path, "2022-01-09", 36, BROKER)
    assert len(utc) > formats.CHUNK_ROWS
    lines = path.read_text().splitlines(keepends=True)
    bad_line = formats.CHUNK_ROWS + 1000
    broken = tmp_path / "broken.csv"
    broken.write_text(
        "".join(lines[: bad_line - 1])
        + lines[bad_line - 2]  # repeats the row before it: an identical duplicate
        + lines[bad_line - 1].replace(",5\n", ",-5\n")  # a negative volume
        + "".join(lines[bad_line:])
    )
    message = error_line(run_micro(home, "data", "import", str(broken), "--tz", BROKER))
    assert f"line {bad_line + 1}: volume is negative or infinite" in message
    assert not (home / "data" / "market.duckdb").exists()

    result = run_micro(home, "data", "import", str(path), "--tz", BROKER)
    assert result.returncode == 0, result.stderr
    assert f"{len(utc)} new bars" in result.stderr and "(35 open(s), 35 close(s))" in result.stderr
    bars = stored(home, "GBP_JPY")
    assert bars["ts"].tolist() == list(utc)
    again = run_micro(home, "data", "import", str(path), "--tz", BROKER)
    assert f"0 new bars, {len(utc)} already stored" in again.stderr
