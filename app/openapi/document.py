"""GET /openapi.json: the OpenAPI 3.1 description, built from the schemas validation uses.

Request and response bodies come from the pydantic models in ``app.api.schemas``
and ``app.api.openai_schemas`` (the same classes ``app.api.body.validate``
checks against) and ``bodies``; error examples come from
the ``errors`` classes; limits and model names come from this app's settings.
An operation is listed only while a Flask route serves it, so the document
describes what this server answers, never more.
"""
from __future__ import annotations

import re

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .. import errors
from ..api import admin_schemas, embeddings_schemas, openai_messages, openai_schemas, responses_schemas, schemas
from ..core.bounds import MAX_EMBEDDING_INPUTS
from .bodies import DOC_MODELS
from .operations import OPERATIONS, Op

bp = Blueprint("openapi", __name__)

API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
# Every character str.isspace() accepts: a prompt made only of these is refused as empty.
PY_SPACES = "".join(("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680", "".join(map(chr, range(0x2000, 0x200B))),
                     "\u2028\u2029\u202f\u205f\u3000"))
DESCRIPTION = " ".join((
    "A JSON gateway to OpenAI-compatible chat models: it validates prompts, keeps the upstream key on the server,",
    "filters replies for personal data and blocked content, and answers in JSON or as server-sent events.",
    "Every error has one shape (ErrorBody) and every response carries X-Request-ID.",
))
X_CACHE = " ".join((
    "With the response cache on (CACHE_TTL): HIT (answered from the cache, filtered as a fresh reply), MISS",
    "(from the upstream) or BYPASS (Cache-Control kept the cache from being read). Absent when the cache is off.",
))
BEARER = " ".join((
    "A client key made with `flask --app wsgi keys create NAME`, sent as `Authorization: Bearer <key>`.",
    "Required when the server runs with AUTH_MODE=keys (the production default); ignored otherwise.",
))
ADMIN_BEARER = " ".join((
    "The admin token (ADMIN_TOKEN), sent as `Authorization: Bearer <token>`; never a client key. Failed attempts",
    "are throttled per address (AUTH_FAILURE_LIMIT).",
))
STREAM = " ".join((
    "One server-sent event. Data events carry the reply in pieces, then one end event, then `[DONE]`.",
    "A failure after the stream has begun is one ErrorBody event, then the stream closes.",
))


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 document for this server."""
    doc = current_app.extensions.get("chatgate.openapi")
    if doc is None:
        doc = current_app.extensions["chatgate.openapi"] = build_document(current_app)
    return jsonify(doc)


def model_named(name: str) -> type[BaseModel] | None:
    """The schema class called ``name``, or None while it does not exist yet."""
    # Validated models win: a documentation model steps aside once a validated one exists.
    for module in (schemas, openai_schemas, openai_messages, responses_schemas, embeddings_schemas, admin_schemas):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return DOC_MODELS.get(name)


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    """(method, path template) for every route the app serves, HEAD/OPTIONS and assets aside."""
    found = set()
    for rule in app.url_map.iter_rules():
        # Asset folders (the app's and a blueprint's, such as Swagger UI's) are files, not API.
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.add((method.lower(), _template(rule.rule)))
    return found


def _template(path: str) -> str:
    # Flask "<int:id>" and OpenAPI "{id}" both become "{}", so names may differ between the two.
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def build_document(app: Flask) -> dict:
    """Build the whole OpenAPI document for ``app``."""
    settings = app.config["SETTINGS"]
    routed = routed_operations(app)
    ops = [op for op in OPERATIONS if (op.method, _template(op.path)) in routed]
    components = _schemas(ops, settings)
    keys = settings.AUTH_MODE == "keys"
    paths: dict = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op, keys, {o.operation_id for o in ops})
    return {
        "openapi": "3.1.0",
        "info": {"title": "chatgate", "version": API_VERSION, "description": DESCRIPTION},
        "tags": [{"name": name, "description": text} for name, text in _TAGS
                 if any(op.tag == name for op in ops)],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {name: _error_response(status) for status, name in _ERROR_NAMES.items()},
            "headers": {
                "X-Request-ID": {"description": "This request's id: quote it when reporting a problem.",
                                 "required": True, "schema": {"type": "string"}},
                "Retry-After": {"description": "Seconds to wait before trying again.",
                                "required": True, "schema": {"type": "string", "pattern": r"^\d+$"}},
                "X-Cache": {"description": X_CACHE, "schema": {"type": "string", "enum": ["HIT", "MISS", "BYPASS"]}},
                "Age": {"description": "On a hit: seconds since the reply was stored.",
                        "schema": {"type": "string", "pattern": r"^\d+$"}},
                "X-Chatgate-Upstream": {
                    "description": "The upstream that answered: its name in UPSTREAMS_FILE (`default`, or "
                                   + "`offline`, without the file). Absent when no upstream answered (a reply "
                                   + "from the response cache, a replayed Idempotency-Key, or every upstream "
                                   + "unavailable).",
                    "required": False, "schema": {"type": "string"}},
            },
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": BEARER + ("" if keys else " This server runs with AUTH_MODE=open.")},
                **({"adminToken": {"type": "http", "scheme": "bearer", "description": ADMIN_BEARER}}
                   if any(op.admin for op in ops) else {})},
        },
    }


_TAGS = (("chat", "Prompt in, filtered reply out."),
         ("conversations", "A client's own stored history and usage."),
         ("openai", "OpenAI-compatible endpoints: the official SDKs work against them."),
         ("health", "Probes for load balancers and orchestrators."),
         ("meta", "This description, its docs page and the chat page."),
         ("admin", "Issue, change, rotate and revoke client keys; the audit trail. Only with ADMIN_TOKEN."))

_ERROR_NAMES = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
                408: "RequestTimeout", 409: "Conflict", 413: "PayloadTooLarge", 415: "UnsupportedMediaType",
                422: "IdempotencyKeyReused", 429: "RateLimited",
                502: "UpstreamError", 503: "ServiceUnavailable", 504: "UpstreamTimeout"}

# One real error per status, made by the same classes the handlers raise.
_ERROR_EXAMPLES = {
    400: errors.InvalidRequest("temperature must be between 0 and 2", param="temperature"),
    401: errors.AuthenticationFailed(),
    404: errors.NotFound("conversation not found", param="conversation_id", code="conversation_not_found"),
    405: errors.MethodNotAllowed(),
    408: errors.RequestTimeout(),
    409: errors.Conflict("this key is revoked; create a new one", param="id", code="key_revoked"),
    413: errors.PayloadTooLarge(),
    415: errors.UnsupportedMediaType(),
    422: errors.IdempotencyKeyReused(),
    429: errors.RateLimited(),
    502: errors.UpstreamError(),
    503: errors.UpstreamUnavailable("every upstream serving model 'gpt-4o-mini' is cooling down after failures; "
                                    + "retry later"),
    504: errors.UpstreamTimeout(),
}
_RETRY_AFTER_503 = {"description": "With upstream_unavailable: seconds until the soonest upstream's circuit "
                                   + "cool-down ends.", "required": False,
                    "schema": {"type": "string", "pattern": r"^\d+$"}}


def _error_response(status: int) -> dict:
    example = _ERROR_EXAMPLES[status]
    headers: dict[str, dict] = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
    if status == 429:
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    description = f"{(example.__doc__ or '').rstrip('.')} ({example.type})."
    if status == 503:
        headers["Retry-After"] = _RETRY_AFTER_503
        description = ("Unavailable (service_unavailable): upstream_unavailable when every upstream serving the "
                       + "model is cooling down or failed; also upstream_not_configured, database_unavailable, "
                       + "limits_unavailable.")
    return {"description": description,
            "headers": headers,
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")},
                                             "example": example.to_dict()}}}


def _schemas(ops: list[Op], settings) -> dict:
    """Component schemas: every model the listed operations name, plus the error shape."""
    wanted: dict[str, tuple[type[BaseModel], JsonSchemaMode]] = {"ErrorBody": (schemas.ErrorBody, "serialization")}
    for op in ops:
        for name, mode in op.models():
            model = model_named(name)
            if model is not None:
                wanted[name] = (model, mode)
    _, top = models_json_schema(list(wanted.values()), ref_template=REF)
    defs = top.get("$defs", {})
    _describe_checks(defs, settings)
    return dict(sorted(defs.items()))


# (schema, property) -> must the text have a non-space character? validation.check_text runs on each.
TEXT_FIELDS = {("ChatRequest", "prompt"): True, ("ChatRequest", "system"): False,
               ("UserMessage", "content"): True, ("SystemMessage", "content"): False,
               ("DeveloperMessage", "content"): False,
               ("ResponsesRequest", "input"): True, ("ResponsesRequest", "instructions"): False,
               ("InputText", "text"): False, ("OutputText", "text"): False, ("MessageItem", "content"): False,
               ("FunctionCallOutputItem", "output"): False,
               ("AssistantMessage", "content"): False, ("ToolMessage", "content"): False,
               ("TextPart", "text"): False}
MODEL_FIELDS = (("ChatRequest", "model"), ("ChatCompletionRequest", "model"), ("ResponsesRequest", "model"))
REPLY_CAP_FIELDS = (("ChatRequest", "max_tokens"), ("ChatCompletionRequest", "max_tokens"),
                    ("ChatCompletionRequest", "max_completion_tokens"), ("ResponsesRequest", "max_output_tokens"))


def _describe_checks(defs: dict, settings) -> None:
    """Add what the gateway checks beyond the models: text limits, the model allow-list, reply caps."""
    limit = settings.MAX_PROMPT_CHARS
    spaces = "".join(f"\\u{ord(c):04x}" for c in PY_SPACES)
    for (model, prop), required in TEXT_FIELDS.items():
        for branch in _branches(defs, model, prop, "string"):
            branch["maxLength"] = limit
            branch["pattern"] = (rf"^[^\u0000]*[^\u0000{spaces}][^\u0000]*$" if required
                                 else r"^[^\u0000]*$")
        if required and model in defs:
            field = defs[model]["properties"][prop]
            note = f"Not blank, no NUL characters, at most {limit} characters."
            field["description"] = f"{field.get('description', '')} {note}".strip()
    for model, prop in MODEL_FIELDS:
        for branch in _branches(defs, model, prop, "string"):
            branch["enum"] = list(settings.ALLOWED_MODELS)
    for branch in _branches(defs, "EmbeddingsRequest", "model", "string"):
        branch["enum"] = list(settings.ALLOWED_EMBEDDING_MODELS)
    # Every embedding input is checked like a prompt: not blank, no NUL, at most MAX_PROMPT_CHARS.
    required_text = {"type": "string", "maxLength": limit,
                     "pattern": rf"^[^\u0000]*[^\u0000{spaces}][^\u0000]*$"}
    for branch in _branches(defs, "EmbeddingsRequest", "input", "string"):
        branch.update(required_text)
    for branch in _branches(defs, "EmbeddingsRequest", "input", "array"):
        branch["items"] = dict(required_text)
        branch["maxItems"] = MAX_EMBEDDING_INPUTS
    _refused(defs)
    for model, prop in REPLY_CAP_FIELDS:
        for branch in _branches(defs, model, prop, "integer"):
            branch["maximum"] = settings.MAX_TOKENS_CAP
    messages = defs.get("ChatCompletionRequest", {}).get("properties", {}).get("messages")
    if messages is not None:
        messages["maxItems"] = settings.MAX_MESSAGES
        messages["description"] = f"At most {settings.MAX_TOTAL_CHARS} characters of text in all."
    if "ChatCompletionRequest" in defs:
        # n > 1 cannot be streamed.
        defs["ChatCompletionRequest"]["if"] = {"properties": {"stream": {"const": True}}, "required": ["stream"]}
        defs["ChatCompletionRequest"]["then"] = {"properties": {"n": {"anyOf": [{"type": "null"},
                                                                                 {"maximum": 1}]}}}


# Documented fields whose only accepted value is "not set" (or false): each has a reason in its schema module.
REFUSED_VALUES: dict[tuple[str, str], tuple[dict, str]] = {
    ("ResponsesRequest", "previous_response_id"): ({"type": "null"}, "chatgate stores no responses."),
    ("ResponsesRequest", "store"): ({"anyOf": [{"const": False}, {"type": "null"}]},
                                    "chatgate stores no responses."),
    ("ChatCompletionRequest", "audio"): ({"type": "null"},
                                         "Audio output is refused: a spoken reply cannot pass the reply filter."),
    ("ChatCompletionRequest", "modalities"): (
        {"anyOf": [{"type": "array", "items": {"const": "text"}, "minItems": 1, "maxItems": 2}, {"type": "null"}]},
        "Text only: a spoken reply cannot pass the reply filter."),
}


def _refused(defs: dict) -> None:
    """Narrow the fields chatgate refuses some values of to what it accepts, saying why."""
    for (model, prop), (schema, why) in REFUSED_VALUES.items():
        props = defs.get(model, {}).get("properties", {})
        if prop in props:
            props[prop] = {**schema, "description": why}


def _branches(defs: dict, model: str, prop: str, kind: str) -> list[dict]:
    """The parts of one property's schema (itself, or its anyOf branches) of JSON type ``kind``."""
    schema = defs.get(model, {}).get("properties", {}).get(prop)
    if schema is None:
        return []
    return [b for b in schema.get("anyOf", [schema]) if b.get("type") == kind]


CACHE_CONTROL = {"name": "Cache-Control", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": " ".join((
                     "For the response cache (CACHE_TTL): `no-cache` skips the lookup but stores the reply,",
                     "`no-store` neither looks up nor stores, `max-age=N` takes only an entry at most N seconds",
                     "old. Anything else is ignored.")),
                 "examples": {"fresh": {"summary": "Do not answer from the cache", "value": "no-cache"},
                              "recent": {"summary": "At most ten minutes old", "value": "max-age=600"}}}


def _operation(op: Op, keys: bool, present: set[str]) -> dict:
    """One operation object."""
    out: dict = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    params = [_path_param(name) for name in op.path_params]
    params += [{"name": name, "in": "query", "required": False, "schema": schema, "description": text}
               for name, schema, text in op.query]
    params += [{"name": name, "in": "header", "required": False, "schema": schema, "description": text}
               for name, schema, text in op.headers]
    if op.cached:
        params.append(CACHE_CONTROL)
    if params:
        out["parameters"] = params
    if op.body:
        media = {"schema": _ref_or_object(op.body)}
        if op.body_examples:
            media["examples"] = {k: {"summary": s, "value": v} for k, (s, v) in op.body_examples.items()}
        out["requestBody"] = {"required": True, "content": {"application/json": media}}
    out["responses"] = _responses(op)
    links = {name: {"operationId": target, "parameters": {"conversation_id": expr}}
             for name, (target, expr) in op.links.items() if target in present}
    if links:
        out["responses"]["200"]["links"] = links
    # Open endpoints override the keys-mode requirement; in open mode nothing requires a key.
    out["security"] = ([{"adminToken": []}] if op.admin else [{"bearerAuth": []}] if (keys and op.auth)
                       else [{}])
    return out


def _responses(op: Op) -> dict:
    request_id = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
    if op.served:
        request_id["X-Chatgate-Upstream"] = {"$ref": "#/components/headers/X-Chatgate-Upstream"}
    responses: dict = {}
    for status, (description, kinds) in op.ok.items():
        content = {}
        for media_type, name in kinds:
            if media_type == "text/event-stream":
                content[media_type] = _event_stream(name or "")
            elif media_type == "text/html":
                content[media_type] = {"schema": {"type": "string"}}
            else:
                content[media_type] = {"schema": _ref_or_object(name)}
        headers = dict(request_id)
        if op.cached:
            headers["X-Cache"] = {"$ref": "#/components/headers/X-Cache"}
            headers["Age"] = {"$ref": "#/components/headers/Age"}
        responses[str(status)] = {"description": description, "headers": headers}
        if content:
            responses[str(status)]["content"] = content
    errs = set(op.errors) | ({401, 429} if op.auth or op.admin else set())
    for status in sorted(errs):
        responses[str(status)] = {"$ref": f"#/components/responses/{_ERROR_NAMES[status]}"}
    return responses


def _event_stream(names: str) -> dict:
    """Each server-sent event: its data is JSON (one of the named models or an error) or [DONE]."""
    events = [{"$ref": REF.format(model=n)} for n in names.split("|") if model_named(n)]
    events.append({"$ref": REF.format(model="ErrorBody")})
    data = {"anyOf": [{"const": "[DONE]", "description": "The last event of a stream that finished."},
                      {"type": "string", "contentMediaType": "application/json",
                       "contentSchema": {"oneOf": events}}]}
    return {"schema": {
        "type": "object", "required": ["data"], "properties": {"data": data, "event": {"type": "string"}},
        "description": STREAM}}


def _ref_or_object(name: str | None) -> dict:
    # A model still being written is described loosely until it exists.
    if name and model_named(name):
        return {"$ref": REF.format(model=name)}
    return {"type": "object"}


def _path_param(name: str) -> dict:
    if name == "key_id":
        return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1},
                "description": "The key's id (from POST /admin/keys or GET /admin/keys)."}
    if name == "model":
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
                "description": "A model id from GET /v1/models."}
    # Ids in paths follow the same rule as conversation_id in request bodies.
    field = schemas.ChatRequest.model_fields["conversation_id"]
    pattern = next((m.pattern for m in field.metadata if getattr(m, "pattern", None)), None)
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "pattern": pattern or r"^[A-Za-z0-9_-]{1,64}$"}}
