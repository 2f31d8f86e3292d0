"""`micro data import|download|synth|prepare|info`: the only writers of data/market.duckdb."""

from __future__ import annotations

import argparse

from micro.runtime import Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    data = sub.add_parser("data", parents=[common], help="import, download, synthesise, prepare")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True

    imp = data_sub.add_parser(
        "import",
        parents=[common],
        help="import a candle file (MT4/MT5, HistData, OANDA JSON/CSV, generic CSV)",
        description=(
            "Import 1-minute candles into data/market.duckdb. Default source time zones: "
            "mt4 UTC (pass --tz for a broker's server time, e.g. Etc/GMT-2), histdata EST "
            "without daylight saving (Etc/GMT+5), oanda UTC (RFC3339 carries its zone), "
            "csv UTC unless the timestamps carry an offset. All-or-nothing: a bad row stops "
            "the import with its line number and nothing is written."
        ),
    )
    imp.add_argument("file", metavar="FILE", help="the candle file (1-minute bars)")
    imp.add_argument(
        "--format",
        choices=("auto", "mt4", "histdata", "oanda", "csv"),
        default="auto",
        help="the file's format (default: auto, told from its first lines)",
    )
    imp.add_argument(
        "--instrument", default=None, help="instrument of the candles (default: data.instrument)"
    )
    imp.add_argument(
        "--tz",
        default=None,
        help=(
            "time zone of the file's timestamps: an IANA name (Etc/GMT-3 is UTC+3), an offset "
            "(+02:00), or America/New_York+7 for MT4 broker server time (default: the format's "
            "zone; a file whose weeks do not fit the FX week in UTC is refused without --tz)"
        ),
    )
    imp.add_argument(
        "--columns",
        default=None,
        metavar="MAP",
        help="generic CSV column mapping, header names (time=Date,open=O,high=H,low=L,close=C,"
        "volume=V) or column numbers for a file without a header (time=1,open=2,...) "
        "(default: found from common header names or the field count)",
    )
    imp.add_argument(
        "--replace",
        action="store_true",
        help="replace every stored bar in the file's time range (widened by a whole-hour zone "
        "shift of an earlier import of it) with the file's bars; default: refuse conflicts",
    )
    imp.set_defaults(handler=_import)

    dl = data_sub.add_parser(
        "download",
        parents=[common],
        help="download OANDA M1 mid candles (incremental; token from OANDA_TOKEN)",
    )
    dl.add_argument(
        "--instrument", default=None, help="instrument to download (default: data.instrument)"
    )
    dl.add_argument(
        "--from",
        dest="start",
        default=None,
        help="first day (UTC, YYYY-MM-DD); needed on the first run (default: resume after the "
        "last stored bar)",
    )
    dl.add_argument("--to", dest="end", default=None, help="end (UTC, exclusive; default: now)")
    dl.set_defaults(handler=_download)

    syn = data_sub.add_parser(
        "synth", parents=[common], help="generate synthetic M1 candles with GBP_JPY-like statistics"
    )
    syn.add_argument(
        "--instrument", default=None, help="instrument to synthesise (default: data.instrument)"
    )
    syn.add_argument(
        "--days", type=int, default=None, help="calendar days (default: data.synth_days)"
    )
    syn.add_argument(
        "--seed", type=int, default=None, help="random seed (default: data.synth_seed)"
    )
    syn.add_argument(
        "--regime",
        choices=("random", "trend", "meanrevert"),
        default=None,
        help="market regime (default: data.synth_regime)",
    )
    syn.add_argument(
        "--drift-pips",
        type=float,
        default=None,
        metavar="PIPS",
        help=(
            "pips; trend: drift per bar while a trend lasts (default: 0.6); meanrevert: std per "
            "bar of the anchor's random walk, the part that never reverts (default: 0.2)"
        ),
    )
    syn.add_argument(
        "--regime-bars",
        type=float,
        default=None,
        metavar="BARS",
        help=(
            "bars; trend: mean length of a drift episode (default: 60); meanrevert: the OU time "
            "constant 1/θ (default: 120)"
        ),
    )
    syn.add_argument(
        "--noise-scale",
        type=float,
        default=None,
        metavar="X",
        help="multiplies the per-bar noise σ_base = 1.35 pips in every regime (default: 1.0)",
    )
    syn.add_argument(
        "--start", default="2022-01-03", help="first day (UTC, YYYY-MM-DD; default: 2022-01-03)"
    )
    syn.add_argument(
        "--replace",
        action="store_true",
        help="replace every stored bar in the generated time range; default: refuse conflicts",
    )
    syn.set_defaults(handler=_synth)

    prep = data_sub.add_parser(
        "prepare", parents=[common], help="compute features, outcome labels, sessions and splits"
    )
    prep.add_argument("--force", action="store_true", help="rebuild even when up to date")
    prep.add_argument(
        "--resplit",
        action="store_true",
        help=(
            "place the train/validation/test boundaries again from data.train_fraction and "
            "data.validation_fraction (they are fixed in UTC at the first prepare); checkpoints "
            "and reports of the old split are refused afterwards"
        ),
    )
    prep.add_argument(
        "--default-if-empty",
        action="store_true",
        help="with no candles: synthesise the default data first (data.synth_*), and say so",
    )
    prep.set_defaults(handler=_prepare)

    info = data_sub.add_parser("info", parents=[common], help="what the store holds")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=_info)


def _import(ctx: Context) -> int:
    from micro.data.importers import run_import

    return run_import(ctx)


def _download(ctx: Context) -> int:
    from micro.data.download import run_download

    return run_download(ctx)


def _synth(ctx: Context) -> int:
    from micro.data.synth import run_synth

    return run_synth(ctx)


def _prepare(ctx: Context) -> int:
    from micro.data.prepare import run_prepare

    return run_prepare(ctx)


def _info(ctx: Context) -> int:
    from micro.data.info import run_info

    return run_info(ctx)
