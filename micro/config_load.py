"""Building a frozen dataclass tree from layered sources: a TOML file < env < --set flags.

The loader knows no particular tree: `micro.config` hands it the `Config` class, the file, the
environment prefix and the flags, and checks the cross-field rules itself. Values from
environment variables and `--set` are text and parsed to the field's type; TOML values must
already have it. Unknown keys, wrong types and out-of-range values (the field metadata `ge`,
`gt`, `le`, `lt`, `choices`) raise a `ConfigError` that names the source, the key and what is
expected.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from micro.errors import ConfigError

T = TypeVar("T")

log = logging.getLogger(__name__)


def layered(
    cls: type[T],
    path: Path,
    env_prefix: str,
    environ: Mapping[str, str],
    sets: Sequence[str] = (),
    env_not_settings: frozenset[str] = frozenset(),
) -> T:
    """`cls` from its defaults, then the TOML file `path`, then `{env_prefix}SECTION__KEY`
    variables, then `section.key=value` flags (later wins).

    A variable with the prefix but without `__` is no setting: unless it is one of
    `env_not_settings` (variables read elsewhere, e.g. MICRO_HOME) it is named in a warning, with
    the setting it nearly spells, rather than silently ignored."""
    tree: dict[str, Any] = {}
    if path.is_file():
        _merge(tree, _read_toml(path), source=str(path), from_text=False)
    for key in sorted(environ):
        if not key.startswith(env_prefix) or key in env_not_settings:
            continue
        if "__" not in key:
            log.warning(_not_a_setting(cls, key, env_prefix))
            continue
        dotted = ".".join(part.lower() for part in key[len(env_prefix) :].split("__"))
        _set_dotted(tree, dotted, environ[key], source=f"environment variable {key}")
    for item in sets:
        if "=" not in item:
            raise ConfigError(
                f"--set {item!r}: expected section.key=value, e.g. --set mcts.simulations=16"
            )
        dotted, value = item.split("=", 1)
        _set_dotted(tree, dotted.strip(), value.strip(), source=f"--set {dotted.strip()}")
    return typing.cast(T, _build(cls, tree, prefix=""))


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML file's tables; a file that cannot be read or parsed is a `ConfigError`."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start});"
            " save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); fix its permissions") from None


def _not_a_setting(cls: type, name: str, env_prefix: str) -> str:
    """The warning for a prefixed variable that names no setting, with the nearest spelling."""
    spelled = name[len(env_prefix) :].upper()
    for dotted, is_table in _leaf_keys(cls, ""):
        underscored = dotted.replace(".", "_").upper()
        if spelled == underscored or (is_table and spelled.startswith(underscored + "_")):
            entry = spelled[len(underscored) + 1 :] if spelled != underscored else ""
            right = env_prefix + "__".join(dotted.upper().split(".") + ([entry] if entry else []))
            return (
                f"environment variable {name} is not a micro setting and is ignored; "
                f"did you mean {right} (two underscores between section and key)?"
            )
    return (
        f"environment variable {name} is not a micro setting and is ignored; settings are "
        f"spelled {env_prefix}<SECTION>__<KEY> (e.g. {env_prefix}MCTS__SIMULATIONS)"
    )


def _leaf_keys(cls: type, prefix: str) -> list[tuple[str, bool]]:
    """Every settable dotted key of `cls` and whether it is a table (dict) of entries."""
    hints = typing.get_type_hints(cls)
    keys: list[tuple[str, bool]] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys += _leaf_keys(typing.cast(type, hint), f"{prefix}{f.name}.")
        else:
            keys.append((f"{prefix}{f.name}", _origin(hint) is dict))
    return keys


def from_plain(
    cls: type[T], plain: Mapping[str, Any], source: str, dotted: Mapping[str, Any] | None = None
) -> T:
    """`cls` from plain data (its `to_dict` output), then typed `dotted` keys changed, checked."""
    tree: dict[str, Any] = {}
    _merge(tree, plain, source=source, from_text=False)
    for key, value in (dotted or {}).items():
        _set_dotted(tree, key, value, source=key, from_text=False)
    return typing.cast(T, _build(cls, tree, prefix=""))


def _merge(tree: dict[str, Any], new: Mapping[str, Any], source: str, from_text: bool) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping):
            node = tree.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: {key} is not a section")
            _merge(node, value, source, from_text)
        else:
            tree[key] = _Raw(value, source, from_text)


def _set_dotted(
    tree: dict[str, Any], dotted: str, value: Any, source: str, from_text: bool = True
) -> None:
    parts = dotted.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"{source}: {dotted!r} is not section.key (e.g. mcts.simulations)")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {part} is not a section")
    node[parts[-1]] = _Raw(value, source, from_text)


@dataclass(frozen=True)
class _Raw:
    """A value from one source, and whether it is text to parse (env, --set) or typed (TOML)."""

    value: Any
    source: str
    from_text: bool


def _build(cls: type, tree: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in tree:
        if key not in fields:
            where = tree[key].source if isinstance(tree[key], _Raw) else "config"
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key {prefix}{key} (known here: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in tree:
            continue
        hint = hints[name]
        dotted = f"{prefix}{name}"
        value = tree[name]
        if dataclasses.is_dataclass(hint):
            if isinstance(value, _Raw):
                raise ConfigError(f"{value.source}: {dotted} is a section, set its keys instead")
            kwargs[name] = _build(typing.cast(type, hint), value, prefix=dotted + ".")
        elif _origin(hint) is dict:
            kwargs[name] = _coerce_dict(f, hint, value, dotted)
        elif not isinstance(value, _Raw):
            raise ConfigError(
                f"{_source_of(value)}: {dotted} is a value, not a section; "
                f"set it as {dotted}=<value>"
            )
        else:
            kwargs[name] = _coerce(hint, value, dotted)
    obj = cls(**kwargs)
    for name, f in fields.items():
        _check_range(f, getattr(obj, name), f"{prefix}{name}")
    return obj


def _source_of(node: Mapping[str, Any]) -> str:
    """Where the first value under a section came from (a file, a variable or a flag)."""
    for value in node.values():
        if isinstance(value, _Raw):
            return value.source
        if isinstance(value, Mapping):
            return _source_of(value)
    return "config"


def _origin(hint: Any) -> Any:
    return typing.get_origin(hint)


def _coerce_dict(f: dataclasses.Field[Any], hint: Any, value: Any, dotted: str) -> dict[str, Any]:
    factory = f.default_factory
    base: dict[str, Any] = dict(factory()) if factory is not dataclasses.MISSING else {}
    _, value_type = typing.get_args(hint)
    if isinstance(value, _Raw):
        raise ConfigError(f"{value.source}: {dotted} is a table; set {dotted}.<NAME>=<value>")
    for key, raw in value.items():
        if not isinstance(raw, _Raw):
            raise ConfigError(
                f"{_source_of(raw)}: {dotted}.{key} must be a {value_type.__name__}, not a section"
            )
        base[key.upper()] = _coerce(value_type, raw, f"{dotted}.{key}")
    return base


def _type_name(hint: Any) -> str:
    if _origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if _origin(hint) is tuple:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    return getattr(hint, "__name__", str(hint))


def _coerce(hint: Any, raw: _Raw, dotted: str) -> Any:
    value, source = raw.value, raw.source

    def bad() -> ConfigError:
        return ConfigError(f"{source}: {dotted} must be {_type_name(hint)}, got {value!r}")

    origin = _origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise bad()
        return value
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        items = value
        if raw.from_text and isinstance(value, str):
            text = value.strip().strip("[]()")
            items = [p.strip() for p in text.split(",") if p.strip()]
        if not isinstance(items, list | tuple):
            raise bad()
        return tuple(_coerce(item_type, _Raw(v, source, raw.from_text), dotted) for v in items)
    if origin in (types.UnionType, typing.Union):
        raise bad()
    if hint is bool:
        if isinstance(value, bool):
            return value
        if raw.from_text and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        raise bad()
    if hint is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if raw.from_text and isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                raise bad() from None
        raise bad()
    if hint is float:
        if isinstance(value, bool):
            raise bad()
        number = value
        if raw.from_text and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise bad() from None
        if not isinstance(number, int | float):
            raise bad()
        try:
            number = float(number)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(
                f"{source}: {dotted} must be a finite number, got {value!r}; "
                "give a number (a large one to loosen a limit)"
            )
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise bad()
    raise bad()


_BOUNDS: tuple[tuple[str, str, Callable[[Any, Any], bool]], ...] = (
    ("ge", ">=", lambda v, b: v >= b),
    ("gt", ">", lambda v, b: v > b),
    ("le", "<=", lambda v, b: v <= b),
    ("lt", "<", lambda v, b: v < b),
)


def _check_range(f: dataclasses.Field[Any], value: Any, dotted: str) -> None:
    """The field's metadata bounds on its value, each item of a list, each entry of a table."""
    meta = f.metadata
    if isinstance(value, dict):
        named = [(f"{dotted}.{k}", v) for k, v in value.items()]
    elif isinstance(value, tuple):
        if len(value) < meta.get("min_items", 0):
            raise ConfigError(
                f"config: {dotted} must list at least {meta['min_items']} value, got an empty list"
            )
        named = [(dotted, v) for v in value]
    else:
        named = [(dotted, value)]
    for name, v in named:
        if "choices" in meta and v not in meta["choices"]:
            raise ConfigError(f"config: {name} must be one of {meta['choices']}, got {v!r}")
        for key, sym, holds in _BOUNDS:
            if key in meta and not holds(v, meta[key]):
                raise ConfigError(f"config: {name} must be {sym} {meta[key]}, got {v!r}")
