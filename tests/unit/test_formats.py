"""Each candle format parses to UTC minute bars; detection picks the right parser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from micro.data import formats, lines
from micro.errors import DataError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def stamps(raw: formats.RawCandles) -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M:%S") for t in raw.frame["ts"]]


MT4 = (
    "2022.09.29,13:43,105.572,105.591,105.572,105.581,64\n"
    "2022.09.29,13:44,105.586,105.586,105.572,105.572,47\n"
)


def test_mt4_rows_parse_as_utc_by_default(tmp_path: Path) -> None:
    raw = formats.parse(write(tmp_path, "a.csv", MT4), "auto")
    assert raw.format == "mt4" and raw.zone == "UTC"
    assert stamps(raw) == ["2022-09-29 13:43:00", "2022-09-29 13:44:00"]
    assert raw.frame["close"].tolist() == [105.581, 105.572]
    assert raw.frame["volume"].tolist() == [64.0, 47.0]
    assert raw.frame["line"].tolist() == [1, 2]


def test_mt4_broker_server_time_is_converted_with_tz(tmp_path: Path) -> None:
    raw = formats.parse(write(tmp_path, "a.csv", MT4), "mt4", tz="Etc/GMT-2")
    assert stamps(raw)[0] == "2022-09-29 11:43:00"


def test_mt4_tab_separated_with_seconds(tmp_path: Path) -> None:
    text = (
        "2022.01.03\t00:00:00\t1.1\t1.2\t1.0\t1.15\t5\n"
        "2022.01.03\t00:01:00\t1.1\t1.2\t1.0\t1.1\t6\n"
    )
    raw = formats.parse(write(tmp_path, "a.txt", text), "auto")
    assert raw.format == "mt4"
    assert stamps(raw) == ["2022-01-03 00:00:00", "2022-01-03 00:01:00"]


def test_mt5_export_with_header_uses_tick_volume(tmp_path: Path) -> None:
    text = (
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2022.01.03\t00:00:00\t155.100\t155.200\t155.000\t155.150\t42\t0\t12\n"
        "2022.01.03\t00:01:00\t155.150\t155.250\t155.100\t155.200\t17\t0\t12\n"
    )
    raw = formats.parse(write(tmp_path, "mt5.csv", text), "auto")
    assert raw.format == "mt4"
    assert stamps(raw) == ["2022-01-03 00:00:00", "2022-01-03 00:01:00"]
    assert raw.frame["volume"].tolist() == [42.0, 17.0]
    assert raw.frame["line"].tolist() == [2, 3]


def test_histdata_est_without_dst_is_utc_minus_five(tmp_path: Path) -> None:
    text = "20220103 170000;1.130000;1.130500;1.129900;1.130200;0\n"
    text += "20220703 170000;1.130000;1.130500;1.129900;1.130200;0\n"  # July: still UTC-5
    raw = formats.parse(write(tmp_path, "DAT_ASCII_EURUSD_M1_2022.csv", text), "auto")
    assert raw.format == "histdata" and raw.zone == "Etc/GMT+5"
    assert stamps(raw) == ["2022-01-03 22:00:00", "2022-07-03 22:00:00"]


def oanda_candle(time: str, close: str, complete: bool = True, **sides: dict) -> dict:
    candle = {"complete": complete, "volume": 7, "time": time}
    candle.update(sides or {"mid": {"o": close, "h": close, "l": close, "c": close}})
    return candle


def test_oanda_json_takes_mid_and_skips_incomplete(tmp_path: Path) -> None:
    doc = {
        "instrument": "GBP_JPY",
        "granularity": "M1",
        "candles": [
            oanda_candle("2022-01-03T00:00:00.000000000Z", "155.123"),
            oanda_candle("2022-01-03T00:01:00.000000000Z", "155.130"),
            oanda_candle("2022-01-03T00:02:00.000000000Z", "155.140", complete=False),
        ],
    }
    raw = formats.parse(write(tmp_path, "c.json", json.dumps(doc)), "auto")
    assert raw.format == "oanda" and raw.unit == "candle"
    assert stamps(raw) == ["2022-01-03 00:00:00", "2022-01-03 00:01:00"]
    assert raw.frame["close"].tolist() == [155.123, 155.13]
    assert raw.skipped_incomplete == 1


def test_oanda_json_averages_bid_and_ask_when_there_is_no_mid(tmp_path: Path) -> None:
    bid = {"o": "155.100", "h": "155.200", "l": "155.000", "c": "155.100"}
    ask = {"o": "155.120", "h": "155.220", "l": "155.020", "c": "155.140"}
    doc = {"candles": [oanda_candle("2022-01-03T00:00:00.000000000Z", "", bid=bid, ask=ask)]}
    raw = formats.parse(write(tmp_path, "c.json", json.dumps(doc)), "oanda")
    row = raw.frame.iloc[0]
    assert (row["open"], row["high"], row["low"], row["close"]) == pytest.approx(
        (155.11, 155.21, 155.01, 155.12)
    )


def test_oanda_json_reads_unix_times_and_one_response_per_line(tmp_path: Path) -> None:
    first = {"candles": [oanda_candle("1641168000.000000000", "155.1")]}
    second = {"candles": [oanda_candle("1641168060.000000000", "155.2")]}
    text = json.dumps(first) + "\n" + json.dumps(second) + "\n"
    raw = formats.parse(write(tmp_path, "c.jsonl", text), "auto")
    assert stamps(raw) == ["2022-01-03 00:00:00", "2022-01-03 00:01:00"]


@pytest.mark.parametrize("header", ["time,open,high,low,close,volume", "time,o,h,l,c,volume"])
def test_oanda_csv_headers_are_recognised(tmp_path: Path, header: str) -> None:
    text = header + "\n2022-01-03T00:00:00.000000000Z,155.1,155.2,155.0,155.15,10\n"
    raw = formats.parse(write(tmp_path, "o.csv", text), "auto")
    assert raw.format == "oanda"
    assert stamps(raw) == ["2022-01-03 00:00:00"]
    assert raw.frame["close"].tolist() == [155.15]


def test_generic_csv_semicolon_with_date_and_time_columns_in_tz(tmp_path: Path) -> None:
    text = "Date;Time;Open;High;Low;Close;Volume\n03.01.2022;10:00;1.1;1.2;1.0;1.15;3\n"
    raw = formats.parse(write(tmp_path, "g.csv", text), "auto", tz="Europe/London")
    assert raw.format == "csv"
    assert stamps(raw) == ["2022-01-03 10:00:00"]  # GMT in winter
    raw = formats.parse(
        write(tmp_path, "g.csv", text.replace("03.01", "04.07")), "csv", tz="Europe/London"
    )
    assert stamps(raw) == ["2022-07-04 09:00:00"]  # BST in summer


def test_generic_csv_tab_with_offsets_honours_them_and_ignores_tz(tmp_path: Path) -> None:
    text = (
        "timestamp\to\th\tl\tc\n"
        "2022-03-27T00:59:00+00:00\t1.1\t1.2\t1.0\t1.15\n"
        "2022-03-27T03:00:00+02:00\t1.1\t1.2\t1.0\t1.15\n"
    )
    raw = formats.parse(write(tmp_path, "g.tsv", text), "csv", tz="Asia/Tokyo")
    assert raw.zone == "offsets in file"
    assert stamps(raw) == ["2022-03-27 00:59:00", "2022-03-27 01:00:00"]
    assert raw.frame["volume"].tolist() == [0.0, 0.0]  # no volume column


def test_generic_csv_columns_option_maps_unusual_headers(tmp_path: Path) -> None:
    text = "When,First,Top,Bottom,Final,Ticks\n2022-01-03 00:00:00,1.1,1.2,1.0,1.15,9\n"
    raw = formats.parse(
        write(tmp_path, "g.csv", text),
        "csv",
        columns="time=When,open=First,high=Top,low=Bottom,close=Final,volume=Ticks",
    )
    assert stamps(raw) == ["2022-01-03 00:00:00"]
    assert raw.frame.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        1.1,
        1.2,
        1.0,
        1.15,
        9.0,
    ]


def test_generic_csv_reads_dukascopy_local_time_with_gmt_offset(tmp_path: Path) -> None:
    text = (
        "Local time,Open,High,Low,Close,Volume\n"
        "03.01.2022 02:00:00.000 GMT+0200,1.1,1.2,1.0,1.15,100.5\n"
    )
    raw = formats.parse(write(tmp_path, "d.csv", text), "auto")
    assert stamps(raw) == ["2022-01-03 00:00:00"]


def test_generic_csv_with_an_unmappable_header_names_the_missing_columns(tmp_path: Path) -> None:
    text = "Date,Price\n2022-01-03,1.1\n"
    with pytest.raises(DataError, match="no column for open, high, low, close"):
        formats.parse(write(tmp_path, "g.csv", text), "csv")


def test_columns_option_naming_a_missing_header_is_refused(tmp_path: Path) -> None:
    text = "time,open,high,low,close\n2022-01-03 00:00,1.1,1.2,1.0,1.15\n"
    with pytest.raises(DataError, match="has no column 'Shut'"):
        formats.parse(write(tmp_path, "g.csv", text), "csv", columns="close=Shut")


def test_unknown_layout_is_refused_with_the_list_of_formats(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "hello world\nthis is not a candle file\n")
    with pytest.raises(DataError) as caught:
        formats.parse(path, "auto")
    message = str(caught.value)
    for name in ("mt4", "histdata", "oanda", "csv"):
        assert name in message
    assert "\n" not in message


def test_unparsable_fields_become_nan_with_their_line_numbers(tmp_path: Path) -> None:
    text = MT4 + "2022.09.29,13:45,oops,105.6,105.5,105.55,3\n\n2022.09.29,13:4x,1,1,1,1,1\n"
    raw = formats.parse(write(tmp_path, "a.csv", text), "mt4")
    frame = raw.frame
    assert frame["line"].tolist() == [1, 2, 3, 5]  # the blank line 4 is skipped
    assert np.isnan(frame["open"].iloc[2])
    assert pd.isna(frame["ts"].iloc[3])


def test_a_row_with_too_many_fields_is_reported_by_line(tmp_path: Path) -> None:
    text = MT4 + "2022.09.29,13:45,105.5,105.6,105.5,105.55,3,99\n"
    with pytest.raises(DataError, match=r"line 3: 8 fields where 7 were expected"):
        formats.parse(write(tmp_path, "a.csv", text), "mt4")


def test_a_local_time_skipped_by_daylight_saving_is_refused_with_its_line(tmp_path: Path) -> None:
    text = "2022.03.27,00:59,1,1,1,1,1\n2022.03.27,01:30,1,1,1,1,1\n"
    with pytest.raises(DataError, match=r"line 2: .*does not exist in Europe/London"):
        formats.parse(write(tmp_path, "a.csv", text), "mt4", tz="Europe/London")


@pytest.mark.parametrize(
    ("zone", "hour"), [("+02:00", 8), ("UTC+2", 8), ("GMT-3", 13), ("Etc/GMT-2", 8)]
)
def test_fixed_offsets_are_accepted_as_tz(tmp_path: Path, zone: str, hour: int) -> None:
    raw = formats.parse(write(tmp_path, "a.csv", "2022.01.03,10:00,1,1,1,1,1\n"), "mt4", tz=zone)
    assert raw.frame["ts"].iloc[0].hour == hour


def test_unknown_tz_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown time zone"):
        formats.parse(write(tmp_path, "a.csv", MT4), "mt4", tz="Mars/Olympus")


def test_columns_option_is_refused_for_other_formats(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--columns applies to --format csv only"):
        formats.parse(write(tmp_path, "a.csv", MT4), "auto", columns="time=Date")


def test_missing_and_empty_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        formats.parse(tmp_path / "absent.csv", "auto")
    with pytest.raises(DataError, match="empty"):
        formats.parse(write(tmp_path, "e.csv", "\n\n"), "auto")


def test_histdata_with_commas_is_sniffed_and_read(tmp_path: Path) -> None:
    text = "20200501 000000,1.0950,1.0960,1.0940,1.0955,0\n"
    text += "20200501 000100,1.0955,1.0960,1.0940,1.0950,0\n"
    raw = formats.parse(write(tmp_path, "DAT_ASCII_EURUSD_M1_202005.csv", text), "auto")
    assert raw.format == "histdata" and raw.zone == "Etc/GMT+5"
    assert stamps(raw) == ["2020-05-01 05:00:00", "2020-05-01 05:01:00"]
    assert raw.frame["close"].tolist() == [1.0955, 1.0950]


@pytest.mark.parametrize(
    ("text", "layout"),
    [
        (
            "2022-01-03\t00:00\t1.1\t1.2\t1.0\t1.15\t5\n2022-01-03\t00:01\t1.1\t1.2\t1.0\t1.15\t5\n",
            "date<tab>time<tab>open<tab>high<tab>low<tab>close<tab>volume (no header)",
        ),
        (
            "2022-01-03,00:00,1.1,1.2,1.0,1.15,5\n2022-01-03,00:01,1.1,1.2,1.0,1.15,5\n",
            "date,time,open,high,low,close,volume (no header)",
        ),
        (
            "2022-01-03 00:00:00,1.1,1.2,1.0,1.15,5\n2022-01-03 00:01:00,1.1,1.2,1.0,1.15,5\n",
            "time,open,high,low,close,volume (no header)",
        ),
        (
            "2022-01-03,00:00,1.1,1.2,1.0,1.15\n2022-01-03,00:01,1.1,1.2,1.0,1.15\n",
            "date,time,open,high,low,close (no header)",
        ),
    ],
)
def test_csv_without_a_header_keeps_its_first_row(tmp_path: Path, text: str, layout: str) -> None:
    raw = formats.parse(write(tmp_path, "plain.csv", text), "auto")
    assert raw.format == "csv" and raw.layout == layout
    assert stamps(raw) == ["2022-01-03 00:00:00", "2022-01-03 00:01:00"]
    assert raw.frame["close"].tolist() == [1.15, 1.15]
    assert raw.frame["line"].tolist() == [1, 2]


def test_csv_without_a_header_maps_columns_by_number(tmp_path: Path) -> None:
    raw = formats.parse(  # volume second, prices reversed, two extra columns
        write(tmp_path, "odd.csv", "2022-01-03 00:00,5,1.15,1.0,1.2,1.1,x,y\n"),
        "csv",
        columns="time=1,volume=2,close=3,low=4,high=5,open=6",
    )
    assert stamps(raw) == ["2022-01-03 00:00:00"]
    assert raw.frame[["open", "high", "low", "close", "volume"]].iloc[0].tolist() == [
        1.1,
        1.2,
        1.0,
        1.15,
        5.0,
    ]
    with pytest.raises(DataError, match=r"--columns date=1,time=2"):
        formats.parse(write(tmp_path, "odd2.csv", "2022-01-03 00:00,5,1,1,1,1,1,1\n"), "csv")


def test_a_line_over_the_limit_is_refused_wherever_it_lies(tmp_path: Path) -> None:
    rows = "2022.01.03,00:00,1,1,1,1,1\n" * 50_000  # the long line starts past the first MiB
    path = write(tmp_path, "long.csv", rows + "x" * (lines.MAX_LINE_BYTES + 1) + "\n")
    with pytest.raises(DataError, match=r"line 50001: longer than 4096 bytes \(no line break\?\)"):
        formats.parse(path, "auto")
    lines.check_line_lengths(write(tmp_path, "ok.csv", rows))  # short lines pass
    one_line_json = write(tmp_path, "c.json", json.dumps({"candles": [{}] * 5000}))
    lines.check_line_lengths(one_line_json)  # OANDA's one-line JSON is exempt


# ---------------------------------------------------------------- streaming in chunks


def _whole_and_chunked(path: Path, fmt: str, rows: int, **kw: str) -> tuple[pd.DataFrame, list]:
    whole = formats.parse(path, fmt, **kw).frame
    chunks = list(formats.read_chunks(path, fmt, rows=rows, **kw))
    return whole, chunks


def test_chunks_read_the_same_rows_as_the_whole_file(tmp_path: Path) -> None:
    minutes = pd.date_range("2022-01-03 00:00", periods=1000, freq="1min")
    text = "".join(f"{t:%Y.%m.%d,%H:%M},1.1,1.2,1.0,1.15,{i}\n" for i, t in enumerate(minutes))
    text = text.replace("\n", "\n\n", 1)  # a blank line 2
    whole, chunks = _whole_and_chunked(write(tmp_path, "a.csv", text), "mt4", 64, tz="Etc/GMT-2")
    assert len(chunks) == 16 and all(len(c.frame) <= 64 for c in chunks)
    joined = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert joined.equals(whole) and len(whole) == 1000
    assert joined["line"].iloc[:3].tolist() == [1, 3, 4]
    assert {c.zone for c in chunks} == {"Etc/GMT-2"}


def test_a_repeated_autumn_hour_cut_by_a_chunk_is_resolved_from_both_passes(
    tmp_path: Path,
) -> None:
    """Europe/London 30 Oct 2022: 01:00-01:59 twice (BST, then GMT); chunks end inside it."""
    utc = pd.date_range("2022-10-29 23:00", "2022-10-30 03:00", freq="1min", inclusive="left")
    local = utc.tz_localize("UTC").tz_convert("Europe/London").tz_localize(None)
    text = "".join(f"{t:%Y.%m.%d,%H:%M},1.1,1.2,1.0,1.15,1\n" for t in local)
    path = write(tmp_path, "london.csv", text)
    for rows in (90, 150, 200, 1000):  # cut in the first pass, the second, right after
        chunks = list(formats.read_chunks(path, "mt4", tz="Europe/London", rows=rows))
        joined = pd.concat([c.frame for c in chunks], ignore_index=True)
        assert joined["ts"].tolist() == list(utc), rows


def test_a_bad_price_in_a_later_chunk_reads_as_nan_on_its_line(tmp_path: Path) -> None:
    minutes = pd.date_range("2022-01-03 00:00", periods=300, freq="1min")
    rows = [f"{t:%Y.%m.%d,%H:%M},1.1,1.2,1.0,1.15,1" for t in minutes]
    rows[250] = rows[250].replace("1.2", "oops", 1)
    path = write(tmp_path, "a.csv", "\n".join(rows) + "\n")
    joined = pd.concat([c.frame for c in formats.read_chunks(path, "mt4", rows=100)])
    assert len(joined) == 300 and joined["line"].tolist() == list(range(1, 301))
    assert joined["high"].isna().tolist() == [i == 250 for i in range(300)]


def test_a_row_with_too_many_fields_in_a_later_chunk_names_its_line(tmp_path: Path) -> None:
    minutes = pd.date_range("2022-01-03 00:00", periods=300, freq="1min")
    rows = [f"{t:%Y.%m.%d,%H:%M},1.1,1.2,1.0,1.15,1" for t in minutes]
    rows[270] += ",9"
    path = write(tmp_path, "a.csv", "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"line 271: 8 fields where 7 were expected"):
        list(formats.read_chunks(path, "mt4", rows=100))


def test_a_generic_csv_keeps_the_first_chunks_day_first_layout(tmp_path: Path) -> None:
    """Days 13-31 make the first chunk day-first; the later chunk (days <= 12) must not flip."""
    days = [f"{d:02d}.01.2022" for d in (13, 14, 17)] + [f"{d:02d}.02.2022" for d in (1, 2, 3)]
    text = "Date,Open,High,Low,Close\n" + "".join(f"{d} 10:00,1.1,1.2,1.0,1.15\n" for d in days)
    whole, chunks = _whole_and_chunked(write(tmp_path, "g.csv", text), "csv", 3)
    joined = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert [f"{t:%m-%d}" for t in joined["ts"]] == [
        "01-13",
        "01-14",
        "01-17",
        "02-01",
        "02-02",
        "02-03",
    ]
    assert joined["line"].tolist() == [2, 3, 4, 5, 6, 7]
    assert joined.equals(whole)


def test_a_csv_with_only_its_header_yields_one_empty_chunk(tmp_path: Path) -> None:
    chunks = list(
        formats.read_chunks(write(tmp_path, "h.csv", "time,open,high,low,close\n"), "csv")
    )
    assert len(chunks) == 1 and chunks[0].frame.empty
