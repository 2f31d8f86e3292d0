"""The checkpoint contract shared by trainer, validator and live trader: .pth + JSON sidecar.

`ckpt.pth` holds the weights, the features/model/data config sections as plain dicts, the
format version, the counters and the optional optimizer/trainer states (tensors and plain
containers only, so `torch.load(weights_only=True)` reads it). `ckpt.json` beside it holds what a
listing needs without torch: format_version, episode, learner_step, created_at (UTC), the
model/feature config hash, the sha256 of the .pth and the data fingerprint of the store it was
trained on (`micro.data.fingerprint`; also inside the .pth, so it is covered by the sha256).
Both are written atomically, the sidecar last, so a sidecar never names a missing file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from micro.atomic import read_json, write_json, write_with
from micro.config import LATER_KEYS, MODEL_SECTIONS, Config
from micro.errors import CheckpointError
from micro.features import FEATURE_VERSION
from micro.model.networks import StochasticMuZeroNet
from micro.volumes import sidecar_path

FORMAT_VERSION = 1
STORED_SECTIONS = ("features", "model", "data")  # config sections kept inside the .pth
SHA_RETRIES = 3  # a writer replaces the .pth, then its sidecar: a reader may land between the two
SHA_RETRY_SECONDS = 0.2

log = logging.getLogger(__name__)

_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class LoadedCheckpoint:
    net: StochasticMuZeroNet  # in eval mode, on map_location
    sidecar: dict[str, Any] | None  # None when the .pth had no readable sidecar
    optimizer_state: dict[str, Any] | None
    trainer_state: dict[str, Any] | None
    episode: int
    learner_step: int
    data_fingerprint: dict[str, Any] | None = None  # what it was trained on (None: not recorded)


def save_checkpoint(
    path: Path,
    net: torch.nn.Module,
    config: Config,
    *,
    episode: int,
    learner_step: int,
    optimizer_state: dict[str, Any] | None = None,
    trainer_state: dict[str, Any] | None = None,
    data_fingerprint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `path` (.pth) then its sidecar, each atomically; returns the sidecar.

    `data_fingerprint`: the store's (`micro.data.fingerprint.read_fingerprint`), kept in both.
    """
    path = Path(path)
    plain_config = config.to_dict(redact=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "feature_version": FEATURE_VERSION,
        "episode": int(episode),
        "learner_step": int(learner_step),
        "config": {section: plain_config[section] for section in STORED_SECTIONS},
        "state_dict": {k: v.detach() for k, v in net.state_dict().items()},
        "optimizer_state": optimizer_state,
        "trainer_state": trainer_state,
        "data_fingerprint": data_fingerprint,
    }
    _check_loadable(payload, "checkpoint")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    blob = buffer.getvalue()
    write_with(path, lambda fh: fh.write(blob))
    sidecar = {
        "format_version": FORMAT_VERSION,
        "file": path.name,
        "episode": int(episode),
        "learner_step": int(learner_step),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_config_hash": config.section_hash(*MODEL_SECTIONS),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size_bytes": len(blob),
        "data_fingerprint": data_fingerprint,
    }
    write_json(sidecar_path(path), sidecar)
    return sidecar


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar of checkpoint `path` (.pth or .json), or None when missing or broken."""
    sidecar = read_json(sidecar_path(Path(path)))
    if not isinstance(sidecar, dict) or not isinstance(sidecar.get("sha256"), str):
        return None
    return sidecar


def load_checkpoint(
    path: Path, config: Config, map_location: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Read, verify and rebuild a checkpoint; CheckpointError (one line) when it cannot be used."""
    path = Path(path)
    blob, sidecar = _read_verified(path)
    try:
        payload = torch.load(io.BytesIO(blob), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds of error for a broken file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: torch cannot read it ({reason[:200]}): the file is truncated or corrupt; "
            "use another checkpoint"
        ) from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(f"{path}: not a micro checkpoint (no state_dict); use another file")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version!r}, this micro reads format {FORMAT_VERSION}; "
            "use the micro version that wrote it or retrain"
        )
    features = payload.get("feature_version", 1)  # format 1 files before the stamp: version 1
    if features != FEATURE_VERSION:
        raise CheckpointError(
            f"{path}: trained on features of version {features!r}, this micro computes version "
            f"{FEATURE_VERSION}; retrain (`micro train`) on data prepared by this version"
        )
    differences = config_differences(payload.get("config", {}), config)
    if differences:
        raise CheckpointError(
            f"{path}: incompatible with the running config ({'; '.join(differences)}); "
            "run with the config it was trained with or retrain"
        )
    net = StochasticMuZeroNet(config.model, config.features.window)
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        lines = str(exc).splitlines()[1:2] or [str(exc)]
        raise CheckpointError(
            f"{path}: its weights do not fit this version's network ({lines[0].strip()[:200]}): "
            "it is corrupt or from another micro version; use another checkpoint or retrain"
        ) from None
    net.to(map_location).eval()
    return LoadedCheckpoint(
        net=net,
        sidecar=sidecar,
        optimizer_state=payload.get("optimizer_state"),
        trainer_state=payload.get("trainer_state"),
        episode=int(payload.get("episode", 0)),
        learner_step=int(payload.get("learner_step", 0)),
        data_fingerprint=_fingerprint(payload.get("data_fingerprint")),
    )


def _fingerprint(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def config_differences(stored: dict[str, Any], config: Config) -> list[str]:
    """Each model/features setting that differs ('model.tcn_channels: checkpoint 128, ...')."""
    running = config.to_dict(redact=False)
    out = []
    for section in MODEL_SECTIONS:
        theirs = stored.get(section, {}) if isinstance(stored, dict) else {}
        ours = running[section]
        for key in sorted(set(theirs) | set(ours)):
            if key not in theirs and LATER_KEYS.get(section, {}).get(key, theirs) == ours[key]:
                continue  # written before the setting existed, with its behaviour then
            if key not in theirs:
                out.append(f"{section}.{key}: not in checkpoint, running {ours[key]!r}")
            elif key not in ours:
                out.append(f"{section}.{key}: checkpoint {theirs[key]!r}, unknown to this micro")
            elif theirs[key] != ours[key]:
                out.append(f"{section}.{key}: checkpoint {theirs[key]!r}, running {ours[key]!r}")
    return out


def _read_verified(path: Path) -> tuple[bytes, dict[str, Any] | None]:
    """The .pth bytes and its sidecar, the sha256 checked when there is a sidecar."""
    for attempt in range(SHA_RETRIES):
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(
                f"{path}: checkpoint not found; check the path (or train one first)"
            ) from None
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot be read ({exc.strerror}); check it") from None
        sidecar = read_sidecar(path)
        if sidecar is None:
            log.warning(
                "%s: no readable sidecar %s; sha256 check skipped", path, sidecar_path(path)
            )
            return blob, None
        if hashlib.sha256(blob).hexdigest() == sidecar["sha256"]:
            return blob, sidecar
        if attempt + 1 < SHA_RETRIES:
            time.sleep(SHA_RETRY_SECONDS)  # a writer may be between replacing .pth and sidecar
    size = sidecar.get("size_bytes", "?") if sidecar is not None else "?"
    raise CheckpointError(
        f"{path}: sha256 does not match {sidecar_path(path).name} ({len(blob)} bytes, sidecar "
        f"says {size}): the file is truncated or corrupt; "
        "use another checkpoint"
    )


def _check_loadable(obj: Any, where: str) -> None:
    """Refuse at save time what `torch.load(weights_only=True)` would refuse at load time."""
    if isinstance(obj, (torch.Tensor, *_PLAIN)):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, _PLAIN):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}, not plain")
            _check_loadable(value, f"{where}.{key}")
        return
    if isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            _check_loadable(value, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__name__}: a checkpoint holds only tensors and plain "
        "containers (convert numpy arrays with torch.from_numpy, objects to dicts)"
    )
