"""OANDA's published OpenAPI description of v20, as a checker of the fake server's answers.

The file is `../shared/oanda/v20.json` beside the checkout (Swagger 2.0, OANDA's own, MIT):
never copied into the repository. `V20Schema.load()` is None when it is absent; tests that need
it skip with the path in the reason.

Swagger 2.0 schemas are JSON Schema draft 4, checked here with the `jsonschema` library. The
spec lists no required fields and allows any extra field, so the check is made stricter in two
ways that OANDA's documentation states in words: an object may hold only the properties its
definition lists (a misspelt or invented field is an error), and a `Transaction` or an `Order`
must be the concrete definition its `type` names (an ORDER_FILL is checked as an
OrderFillTransaction, with the type's value pinned: "Always set to ..." in the spec).

`check(definition, value)` checks one value; `check_response(method, path, status, body)` checks
an answer against the path's documented response (statuses the spec does not document, such as
an injected 503, are not checked); `check_stream_line` checks a pricing-stream line (a PRICE is a
ClientPrice, a HEARTBEAT a PricingHeartbeat). `watch(fake)` makes a running FakeOanda check
every answer and stream line it sends and record each mismatch in `fake.schema_violations`.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match

if TYPE_CHECKING:
    from tests.fakes.oanda_v20 import FakeOanda, Reply

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "oanda" / "v20.json"
BASE_PATH = "/v3"
_ALWAYS = re.compile(r'Always set to \\?"(\w+)\\?"')
_UNIONS = {"Transaction": "Transaction", "Order": "Order"}  # base definition -> name suffix
_UNION_REFS = {f"#/definitions/{base}": f"#/definitions/Any{base}" for base in _UNIONS}


class SchemaViolation(AssertionError):
    """An answer of the fake v20 server that OANDA's OpenAPI description does not allow."""


class V20Schema:
    """The v20 definitions and paths, made strict, with cached draft-4 validators."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.definitions = _strict_definitions(spec["definitions"])
        self.responses = spec.get("responses", {})
        self.paths = [
            (_path_pattern(BASE_PATH + template), operations)
            for template, operations in sorted(
                spec["paths"].items(), key=lambda item: item[0].count("{")
            )
        ]

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> V20Schema | None:
        """The spec at `path`, or None when the file is not there."""
        if not path.is_file():
            return None
        return _load(str(path))

    @property
    def cancel_reasons(self) -> list[str]:
        """Every OrderCancelReason the spec names."""
        return list(self.definitions["OrderCancelReason"]["enum"])

    def check(self, definition: str, value: Any) -> list[str]:
        """What in `value` does not match the definition (empty: it matches)."""
        return self._errors(json.dumps({"$ref": f"#/definitions/{definition}"}), value)

    def check_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """What in `body` does not match the documented answer (empty: it matches or is not
        documented)."""
        schema = self.response_schema(method, path, status)
        if schema is None:
            return []
        return self._errors(json.dumps(schema, sort_keys=True), body)

    def check_stream_line(self, line: Any) -> list[str]:
        """A pricing-stream line: PRICE as ClientPrice, HEARTBEAT as PricingHeartbeat."""
        kind = line.get("type") if isinstance(line, dict) else None
        if kind == "PRICE":
            return self.check("ClientPrice", line)
        if kind == "HEARTBEAT":
            return self.check("PricingHeartbeat", line)
        return [f"a stream line of unknown type {kind!r}"]

    def response_schema(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        """The schema of the documented `status` answer to `method path` (None: undocumented)."""
        for pattern, operations in self.paths:
            if not pattern.fullmatch(path):
                continue
            operation = operations.get(method.lower())
            if operation is None:
                return None
            response = operation.get("responses", {}).get(str(status))
            if response is None:
                return None
            if "$ref" in response:
                response = self.responses.get(response["$ref"].rsplit("/", 1)[-1], {})
            schema = response.get("schema")
            if schema is None:
                return None
            schema = _strict(copy.deepcopy(schema))
            _retarget(schema, _UNION_REFS)
            return schema
        return None

    def _errors(self, schema_text: str, value: Any) -> list[str]:
        validator = self._validator(schema_text)
        errors = list(validator.iter_errors(value))
        if not errors:
            return []
        out = []
        for error in errors:
            deepest = best_match([error]) if error.context else error
            where = ".".join(str(p) for p in deepest.absolute_path) or "(top)"
            out.append(f"{where}: {deepest.message}")
        return out

    @functools.lru_cache(maxsize=256)  # noqa: B019 (one schema object per test session)
    def _validator(self, schema_text: str) -> Draft4Validator:
        schema = json.loads(schema_text)
        schema["definitions"] = self.definitions  # local $refs resolve against the whole spec
        return Draft4Validator(schema)

    # ------------------------------------------------------------ the fake's hook

    def watch(self, fake: FakeOanda) -> None:
        """Check every answer and stream line `fake` sends; mismatches go to schema_violations."""
        fake.schema_violations = []
        fake.schema_check = functools.partial(_check_reply, self, fake)


@functools.lru_cache(maxsize=2)
def _load(path: str) -> V20Schema:
    with open(path, encoding="utf-8") as fh:
        return V20Schema(json.load(fh))


def _check_reply(schema: V20Schema, fake: FakeOanda, method: str, path: str, reply: Reply) -> None:
    """Check `reply` (wrapping its stream so each line is checked as it is sent)."""
    where = f"{method} {path} {reply.status}"
    if reply.stream is not None:
        reply.stream = _checked_lines(schema, fake, where, reply.stream)
        return
    for problem in schema.check_response(method, path, reply.status, reply.body):
        _violation(fake, f"{where}: {problem}")


def _checked_lines(
    schema: V20Schema, fake: FakeOanda, where: str, lines: Iterable[Any]
) -> Iterator[Any]:
    for line in lines:
        for problem in schema.check_stream_line(line):
            _violation(fake, f"{where} stream: {problem}")
        yield line


def _violation(fake: FakeOanda, text: str) -> None:
    """Record a mismatch where tests look: schema_violations, and errors (fixtures assert none)."""
    fake.schema_violations.append(text)
    fake.errors.append(SchemaViolation(f"fake v20 answer not as OANDA's OpenAPI says: {text}"))


# ---------------------------------------------------------------- making the spec strict


def _strict_definitions(definitions: dict[str, Any]) -> dict[str, Any]:
    """Definitions with closed objects, pinned `type` values and Transaction/Order unions."""
    out = copy.deepcopy(definitions)
    for schema in out.values():
        _strict(schema)
    for base, suffix in _UNIONS.items():
        members = []
        for name, schema in out.items():
            kind = schema.get("properties", {}).get("type", {})
            pinned = _ALWAYS.search(kind.get("description", ""))
            if name != base and name.endswith(suffix) and pinned:
                kind["enum"] = [pinned.group(1)]
                members.append({"$ref": f"#/definitions/{name}"})
        out[f"Any{base}"] = {"oneOf": members}
    _retarget(out, _UNION_REFS)
    return out


def _strict(schema: Any) -> Any:
    """Close every object schema that lists its properties (in place); returns `schema`."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


def _retarget(schema: Any, refs: dict[str, str]) -> None:
    """Point $refs at the unions (in place)."""
    if isinstance(schema, dict):
        if schema.get("$ref") in refs:
            schema["$ref"] = refs[schema["$ref"]]
        for value in schema.values():
            _retarget(value, refs)
    elif isinstance(schema, list):
        for value in schema:
            _retarget(value, refs)


def _path_pattern(template: str) -> re.Pattern[str]:
    """/v3/accounts/{accountID}/orders -> a regex matching such paths."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))
