"""The data fingerprint: what a checkpoint was trained on and a report was scored on.

A fingerprint is a JSON object stored in every checkpoint sidecar and every validation report:

    instrument, feature_version, prepare_config   the instrument, feature code, prepare settings
    candles                                       the whole store: bars, first/last, checksum
    splits                                        the split boundaries (UTC) and the embargo
    split_candles.{train,validation,test}         each split's candles: bars, first/last, checksum
    feature_scaling                               the min-max bounds fitted on the train split
    costs, stop_loss_pips                         spread/commission/slippage and the stop (pips)
    simulations, max_sessions                     searches per decision; sessions scored (0: all)
    keys.{training,validation,test}               a hash of each scope's parts (below)

Two fingerprints are compared by scope, over the parts that scope depends on:

- `training`: resuming a run and scoring a checkpoint: the bars the network learned from (the
  train split), how its inputs were scaled, the split it was held out by, its costs and stop.
  Appending candles (they fall into test) keeps it; prepending them, a `--resplit` or another
  spread does not.
- `validation` / `test`: comparing scores (the DSR's trials, the current best, PBO): the same
  sessions of that split, scaled alike, traded at the same costs, stop and simulations.

`differences` names each differing part in one line, e.g. "validation split start: checkpoint
2022-01-25T00:00:00+00:00, store 2022-01-28T00:00:00+00:00".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from micro.config import Config
from micro.data.stamp import features_config_hash
from micro.data.store import connect, get_meta

FINGERPRINT_VERSION = 1

# Each comparable part: a label for the user and its path in the fingerprint.
PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "instrument": ("instrument", ("instrument",)),
    "feature_version": ("feature version", ("feature_version",)),
    "prepare_config": ("data/features config (prepare)", ("prepare_config",)),
    "validation_start": ("validation split start", ("splits", "validation_start")),
    "test_start": ("test split start", ("splits", "test_start")),
    "embargo": ("embargo minutes", ("splits", "embargo_minutes")),
    "train_candles": ("train split candles", ("split_candles", "train")),
    "validation_candles": ("validation split candles", ("split_candles", "validation")),
    "test_candles": ("test split candles", ("split_candles", "test")),
    "feature_scaling": ("feature scaling", ("feature_scaling",)),
    "costs": ("costs", ("costs",)),
    "stop_loss_pips": ("risk.stop_loss_pips", ("stop_loss_pips",)),
    "simulations": ("simulations", ("simulations",)),
    "max_sessions": ("validation.max_sessions", ("max_sessions",)),
}
_COMMON = ("instrument", "feature_version", "prepare_config", "validation_start", "test_start")
_SCORED = ("embargo", "feature_scaling", "costs", "stop_loss_pips", "simulations", "max_sessions")
SCOPES: dict[str, tuple[str, ...]] = {
    "training": (
        *_COMMON,
        "embargo",
        "train_candles",
        "feature_scaling",
        "costs",
        "stop_loss_pips",
    ),
    "validation": (*_COMMON, "validation_candles", *_SCORED),
    "test": (*_COMMON, "test_candles", *_SCORED),
}


def fingerprint_of(
    con: duckdb.DuckDBPyConnection, config: Config, simulations: int
) -> dict[str, Any]:
    """The fingerprint of the prepared store behind `con`, traded as `config` trades it."""
    boundaries = get_meta(con, "split_boundaries") or {}
    body: dict[str, Any] = {
        "version": FINGERPRINT_VERSION,
        "instrument": config.data.instrument,
        "feature_version": get_meta(con, "feature_version"),
        "prepare_config": features_config_hash(config),
        "candles": get_meta(con, "candles_fingerprint"),
        "splits": {
            "validation_start": boundaries.get("validation_start"),
            "test_start": boundaries.get("test_start"),
            "embargo_minutes": config.data.embargo_minutes,
        },
        "split_candles": get_meta(con, "split_candles"),
        "feature_scaling": get_meta(con, "feature_scaling"),
        "costs": {
            "spread_pips": float(config.spread_pips()),
            "commission_pips": float(config.env.commission_pips),
            "slippage_pips": float(config.env.slippage_pips),
        },
        "stop_loss_pips": float(config.risk.stop_loss_pips),
        "simulations": int(simulations),
        "max_sessions": int(config.validation.max_sessions),
    }
    body["keys"] = {scope: scope_key(body, scope) for scope in SCOPES}
    return body


def read_fingerprint(store_path: Path, config: Config, simulations: int) -> dict[str, Any]:
    """`fingerprint_of` the store at `store_path`, opened read-only and closed again."""
    con = connect(store_path, read_only=True)
    try:
        return fingerprint_of(con, config, simulations)
    finally:
        con.close()


def _part(fingerprint: Mapping[str, Any], name: str) -> Any:
    value: Any = fingerprint
    for key in PARTS[name][1]:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def scope_key(fingerprint: Mapping[str, Any], scope: str) -> str:
    """sha256 (16 hex) of the parts `scope` compares."""
    parts = {name: _part(fingerprint, name) for name in SCOPES[scope]}
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def same_data(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, scope: str) -> bool:
    """Whether two fingerprints agree on `scope` (a missing fingerprint agrees with nothing)."""
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return False
    return scope_key(a, scope) == scope_key(b, scope)


def differences(
    theirs: Mapping[str, Any] | None,
    ours: Mapping[str, Any],
    scope: str,
    their_name: str = "checkpoint",
    our_name: str = "store",
) -> list[str]:
    """Each part of `scope` that differs, as "label: THEIR_NAME x, OUR_NAME y" ([]: same data)."""
    if not isinstance(theirs, Mapping):
        return [f"the {their_name} carries no data fingerprint (made before micro recorded one)"]
    out = []
    for name in SCOPES[scope]:
        a, b = _part(theirs, name), _part(ours, name)
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            label, shown_a, shown_b = PARTS[name][0], _show(a), _show(b)
            if shown_a == shown_b:  # same range, other values
                shown_b += " (other candle values)"
            out.append(f"{label}: {their_name} {shown_a}, {our_name} {shown_b}")
    return out


def _show(value: Any) -> str:
    """A part as a user reads it: a candle range by its bars and dates, a dict compactly."""
    if isinstance(value, Mapping) and "checksum" in value:
        return f"{value.get('bars')} bars {value.get('first')}..{value.get('last')}"
    if isinstance(value, Mapping):
        return ", ".join(
            f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()
        )
    return "none" if value is None else str(value)
