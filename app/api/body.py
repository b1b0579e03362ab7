"""Request bodies: the raw body read as a JSON object, then validated into a schema object, or a clear 4xx."""
from __future__ import annotations

import json
from typing import TypeVar

from flask import Request
from pydantic import BaseModel, ValidationError

from ..errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

_JSON_TYPES = ("application/json",)


def _reject_constant(name: str):
    # NaN and Infinity are not JSON, whatever Python's parser allows.
    raise ValueError(f"{name} is not valid JSON")


def read_json_object(request: Request) -> dict:
    """The request body as a JSON object, or InvalidRequest/UnsupportedMediaType."""
    mimetype = request.mimetype
    if mimetype not in _JSON_TYPES and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise UnsupportedMediaType()
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("the body must be UTF-8 JSON")
    raw = _read_body(request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not valid UTF-8", code="invalid_json") from None
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidRequest("the JSON body is nested too deeply", code="invalid_json") from None
    except ValueError as err:
        # ValueError covers JSONDecodeError, NaN/Infinity and over-long integer literals.
        detail = err.msg if isinstance(err, json.JSONDecodeError) else str(err).split(";")[0]
        raise InvalidRequest(f"malformed JSON: {detail}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the JSON body must be an object", code="invalid_json")
    return body


def _read_body(request: Request) -> bytes:
    if request.content_length is not None:
        return request.get_data(cache=False)  # Werkzeug answers 413 from Content-Length alone
    # A chunked body has no length to check up front, and Werkzeug would silently cut it at the
    # limit; read one byte past the limit so an over-long body is refused, not truncated.
    limit = request.max_content_length
    stream = request.environ["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    while True:
        part = stream.read(65536 if limit is None else min(65536, limit + 1 - size))
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
        if limit is not None and size > limit:
            raise PayloadTooLarge()


def validate(model: type[M], data: dict) -> M:
    """Validate ``data`` against ``model``; the first problem becomes InvalidRequest."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _to_invalid_request(err, model) from None
    except RecursionError:
        raise InvalidRequest("the JSON body is nested too deeply", code="invalid_json") from None


_MESSAGE_TAGS = frozenset({"system", "user", "assistant", "tool"})
_BRANCH_LABELS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _clean_loc(loc: tuple) -> list:
    """A field path without pydantic's union labels (tags, branch types, class names)."""
    out: list = []
    for i, part in enumerate(loc):
        if isinstance(part, str):
            prev = loc[i - 1] if i else None
            if part[:1].isupper() or "[" in part or "'" in part or part in _BRANCH_LABELS:
                continue
            if isinstance(prev, int) and part in _MESSAGE_TAGS:
                continue
            if prev == "response_format" and i == 1:
                continue
        out.append(part)
    return out


def _pick(errors: list) -> dict:
    # An unknown field is the most useful thing to name; otherwise the most specific path,
    # since a union reports one error per branch and the deepest is the branch the client meant.
    for error in errors:
        if error["type"] == "extra_forbidden":
            return error
    return max(errors, key=lambda e: len(_clean_loc(e["loc"])))


def _to_invalid_request(err: ValidationError, model: type[BaseModel]) -> InvalidRequest:
    first = _pick(err.errors(include_url=False, include_input=False))
    loc = _clean_loc(first["loc"])
    kind = first["type"]
    ctx = first.get("ctx") or {}
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        loc.append(str(ctx.get("discriminator", "type")).strip("'"))
    param = ".".join(str(p) for p in loc) or None
    name = param or "body"
    if kind == "union_tag_not_found":
        return InvalidRequest(f"{name} is required", param=param, code="missing_required")
    if kind == "union_tag_invalid":
        return InvalidRequest(f"{name} must be one of {ctx.get('expected_tags')}", param=param)
    if kind == "extra_forbidden":
        return InvalidRequest(f"unknown field: {name}", param=param, code="unknown_field")
    if kind == "missing":
        return InvalidRequest(f"{name} is required", param=param, code="missing_required")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        lo, hi = _bounds(model, param, ctx)
        if lo is not None and hi is not None:
            msg = f"{name} must be between {lo:g} and {hi:g}"
        else:
            msg = f"{name} must be at least {lo:g}" if lo is not None else f"{name} must be at most {hi:g}"
        return InvalidRequest(msg, param=param)
    if kind.endswith("_type") or kind in ("bool_parsing", "int_from_float"):
        expected = {"string_type": "a string", "float_type": "a number", "int_type": "an integer",
                    "bool_type": "true or false", "list_type": "an array", "dict_type": "an object",
                    "model_type": "an object", "model_attributes_type": "an object"}.get(kind, "of another type")
        return InvalidRequest(f"{name} must be {expected}", param=param, code="invalid_type")
    if kind in ("string_too_long", "too_long"):
        return InvalidRequest(f"{name} is too long (at most {ctx.get('max_length')})", param=param)
    if kind in ("string_too_short", "too_short"):
        return InvalidRequest(f"{name} needs at least {ctx.get('min_length', 1)} item(s)", param=param)
    if kind == "literal_error":
        return InvalidRequest(f"{name} must be one of {ctx.get('expected')}", param=param)
    if kind == "string_pattern_mismatch":
        return InvalidRequest(f"{name} has an invalid format", param=param)
    return InvalidRequest(f"{name} is invalid", param=param)


def _bounds(model: type[BaseModel], param: str | None, ctx: dict) -> tuple[float | None, float | None]:
    # Report both ends of a range at once, so a client fixes it in one try.
    lo = ctx.get("ge", ctx.get("gt"))
    hi = ctx.get("le", ctx.get("lt"))
    field = model.model_fields.get(param or "")
    for meta in getattr(field, "metadata", ()):
        lo = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else lo
        hi = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else hi
    return lo, hi
