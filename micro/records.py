"""Typed, versioned JSON records: a frozen dataclass whose annotations are its file's schema.

`micro.volumes` declares the records of the files the services share on this base. Reading is
strict about the schema version only: a field of the wrong type reads as None (or its default),
so a reader shows what it can of a file another version or a broken writer left.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from micro.errors import UserError


class SchemaError(UserError):
    """A shared file in a schema version this micro does not read."""


def check_schema(data: Mapping[str, Any], what: str, version: int, key: str) -> None:
    """SchemaError unless `data[key]` is `version` (absent: a file from before the stamp, 1)."""
    found = data.get(key, 1)
    if found != version:
        raise SchemaError(
            f"{what}: schema version {found!r}, this micro reads version {version}; "
            "run the micro version that wrote it, or remove the file"
        )


@dataclass(frozen=True)
class Record:
    """A typed record of a shared file: its annotations are its schema.

    `from_dict` reads each field by its annotation and forgives a foreign value: an `int | None`
    that holds text reads as None, a sub-record that is not an object as None (or its default),
    so a reader shows "–" where a writer of another kind left something odd. Only the version
    is strict. A record with `SCHEMA` None is a part of another record and has no version.
    """

    SCHEMA: ClassVar[int | None] = None
    WHAT: ClassVar[str] = ""  # the file, as a refusal names it
    VERSION_KEY: ClassVar[str] = "schema_version"
    SERVICE: ClassVar[str | None] = None  # written as "service" beside the version
    EXTRA: ClassVar[bool] = False  # keep unnamed keys in an `extra` field, written flat

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {} if self.SCHEMA is None else {self.VERSION_KEY: self.SCHEMA}
        if self.SERVICE is not None:
            head["service"] = self.SERVICE
        body = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        extra = body.pop("extra", {}) if self.EXTRA else {}
        return {**head, **body, **extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if cls.SCHEMA is not None:
            check_schema(data, cls.WHAT, cls.SCHEMA, cls.VERSION_KEY)
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra" and cls.EXTRA:
                named = {g.name for g in dataclasses.fields(cls)}
                header = {cls.VERSION_KEY, "service"}
                values["extra"] = {k: v for k, v in data.items() if k not in named | header}
            elif f.name in data:
                value = read_field(hints[f.name], data[f.name])
                if value is not None or _optional(hints[f.name]):
                    values[f.name] = value
        return cls(**values)


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (types.UnionType, typing.Union) and type(None) in (
        typing.get_args(hint)
    )


def read_field(hint: Any, value: Any) -> Any:
    """`value` as the annotation `hint` wants it, or None where it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [a for a in args if a is not type(None)]
        return read_field(inner, value)
    if hint is Any:
        return value
    if hint is bool:
        return value if isinstance(value, bool) else None
    if hint is int:
        if isinstance(value, bool):
            return None
        if isinstance(value, numbers.Integral):
            return int(value)
        return int(value) if isinstance(value, float) and value.is_integer() else None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
        return float(value) if math.isfinite(float(value)) else None
    if hint is str:
        return value if isinstance(value, str) else None
    if origin is dict:
        if not isinstance(value, dict):
            return None
        items = {k: read_field(args[1], v) for k, v in value.items() if isinstance(k, str)}
        keep_none = args[1] is Any or _optional(args[1])
        return {k: v for k, v in items.items() if v is not None or keep_none}
    if origin is tuple:
        if not isinstance(value, list):
            return None
        return tuple(x for v in value if (x := read_field(args[0], v)) is not None)
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_dict(value) if isinstance(value, dict) else None
    raise TypeError(f"a record field cannot be annotated {hint!r}")


def _plain(value: Any) -> Any:
    """A field's value as JSON-able data (sub-records by their own to_dict)."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
