"""The prepare stamp: what `micro data prepare` records, and the read-only check against it.

A prepare stamps the store's meta table with `feature_version`, `features_config_hash` (the
features and data sections, not the synth_* demo-data knobs nor the split fractions, which only
place the boundaries at the first prepare or a `--resplit`), `candles_fingerprint` (count,
first/last bar, checksum) and `split_boundaries` (the UTC instants fixed at the first prepare).
`staleness` says why a store does not match this code, config and candles, reading only: every
service that opens the store imports it from here, never the writer (`micro.data.prepare`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from micro.config import Config
from micro.data.store import connect, get_meta
from micro.errors import DataError
from micro.features import FEATURE_VERSION

STAMP_KEYS = ("feature_version", "features_config_hash", "candles_fingerprint")
SPLIT_FRACTIONS = ("train_fraction", "validation_fraction")  # used at the first prepare only


def features_config_hash(config: Config) -> str:
    """Hash of the settings that change the prepared tables (not the synth_* demo-data knobs,
    nor the split fractions: the boundaries they gave are kept in the store)."""
    data = {
        k: v
        for k, v in config.to_dict(redact=False)["data"].items()
        if not k.startswith("synth_") and k not in SPLIT_FRACTIONS
    }
    blob = json.dumps(
        {"features": config.to_dict(redact=False)["features"], "data": data}, sort_keys=True
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def candles_fingerprint(con: duckdb.DuckDBPyConnection, instrument: str) -> dict[str, Any]:
    """Count, first and last bar time and an xor of row hashes: changes when any candle does."""
    try:
        row = con.execute(
            """
            SELECT count(*), min(ts), max(ts), bit_xor(hash(ts, open, high, low, close, volume))
            FROM candles WHERE instrument = ?
            """,
            [instrument],
        ).fetchone()
    except duckdb.CatalogException:
        return {"bars": 0, "first": None, "last": None, "checksum": None}
    bars, first, last, checksum = row if row is not None else (0, None, None, None)
    return {
        "bars": int(bars),
        "first": None if first is None else pd.Timestamp(first).isoformat(),
        "last": None if last is None else pd.Timestamp(last).isoformat(),
        "checksum": None if checksum is None else int(checksum),
    }


def staleness(
    con: duckdb.DuckDBPyConnection, config: Config, fingerprint: dict[str, Any] | None = None
) -> str | None:
    """Why the prepared tables do not match this code, config and the candles; None if current."""
    version = get_meta(con, "feature_version")
    if version is None:
        return "features have not been prepared"
    if version != FEATURE_VERSION:
        return (
            f"features were prepared by feature version {version}, this code is {FEATURE_VERSION}"
        )
    if get_meta(con, "features_config_hash") != features_config_hash(config):
        return "the data/features config changed since the last prepare"
    if fingerprint is None:
        fingerprint = candles_fingerprint(con, config.data.instrument)
    if get_meta(con, "candles_fingerprint") != fingerprint:
        return "the candles changed since the last prepare"
    if get_meta(con, "split_boundaries") is None or get_meta(con, "split_candles") is None:
        return "the store was prepared before split boundaries were fixed in UTC"
    return None


def check_prepared(store_path: Path, config: Config) -> None:
    """DataError (one line) unless the store at `store_path` is prepared for this config."""
    con = connect(store_path, read_only=True)
    try:
        reason = staleness(con, config)
    finally:
        con.close()
    if reason is not None:
        raise DataError(
            f"{store_path}: {reason}; run `micro data prepare` to bring the store up to date"
        )
