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
        raise _to_invalid_request(err, model, data) from None
    except RecursionError:
        raise InvalidRequest("the JSON body is nested too deeply", code="invalid_json") from None


def _clean_loc(loc: tuple, data: object) -> list:
    """The client's own path to the problem: pydantic's union labels (tags, branch types) left out.

    A part is kept while it is a real key or index of the client's JSON; the
    last part is also kept when it names a key of an object (a missing or an
    unknown field), since that key is, by definition, not there or not ours.
    A tagged union's label is the object's own tag ("user" for a message whose
    role is "user"), even where a key has the same name ("text", "image_url").
    """
    out: list = []
    here = data
    tagged = False  # the current object's tag label was already passed
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(here, dict) and not tagged and not last and part in (here.get("type"), here.get("role")):
            tagged = True
            continue
        if isinstance(here, dict) and isinstance(part, str) and part in here:
            out.append(part)
            here, tagged = here[part], False
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            out.append(part)
            here, tagged = here[part], False
        elif last and isinstance(here, dict) and isinstance(part, str):
            out.append(part)
    return out


def _pick(errors: list, data: object) -> dict:
    # An unknown field is the most useful thing to name; otherwise the most specific path,
    # since a union reports one error per branch and the deepest is the branch the client meant.
    for error in errors:
        if error["type"] == "extra_forbidden":
            return error
    # On a tie, a type mismatch is usually just the branch the client did not mean.
    return max(errors, key=lambda e: (len(_clean_loc(e["loc"], data)), not e["type"].endswith("_type")))


def _to_invalid_request(err: ValidationError, model: type[BaseModel], data: object) -> InvalidRequest:
    first = _pick(err.errors(include_url=False, include_input=False), data)
    loc = _clean_loc(first["loc"], data)
    kind = first["type"]
    ctx = first.get("ctx") or {}
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = str(ctx.get("discriminator", "type")).strip("'")
        # A callable discriminator reports its function's name; what the client got wrong is the type.
        loc.append(tag if tag.isidentifier() else "type")
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
    if kind == "value_error" and ctx.get("error"):
        # A schema's own check (a field_validator) explains itself.
        return InvalidRequest(f"{name}: {ctx['error']}", param=param, code="unsupported_value")
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
