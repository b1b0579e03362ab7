"""The operations the OpenAPI document may list, each naming its schema classes.

An entry only shows up in /openapi.json while a Flask route serves it, so an
endpoint can be described here before it lands. Model names refer to classes in
``app.api.schemas`` or ``app.api.openai_schemas`` (validated) or ``app.openapi.bodies``
(response bodies built with jsonify); a name that does not exist yet is
described as a plain object.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic.json_schema import JsonSchemaMode

JSON = "application/json"
SSE = "text/event-stream"
HTML = "text/html"
TEXT = "text/plain"

# status -> (description, ((media type, model name or None), ...))
Responses = dict[int, tuple[str, tuple[tuple[str, str | None], ...]]]

UPSTREAM_ERRORS = (502, 503, 504)
BODY_ERRORS = (400, 408, 413, 415)


@dataclass(frozen=True)
class Op:
    """One documented operation."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    ok: Responses
    description: str = ""
    body: str | None = None
    body_examples: dict = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    auth: bool = True
    path_params: tuple[str, ...] = ()
    # (name, JSON schema, description) of each query parameter, and of each request header
    query: tuple[tuple[str, dict, str], ...] = ()
    headers: tuple[tuple[str, dict, str], ...] = ()
    # link name -> (target operationId, runtime expression for its conversation_id)
    links: dict = field(default_factory=dict)
    # Answered from the response cache when it is on: Cache-Control in, X-Cache and Age out.
    cached: bool = False
    served: bool = False  # answers name their upstream in X-Chatgate-Upstream
    admin: bool = False  # needs the admin token (ADMIN_TOKEN), never a client key

    def models(self) -> Iterator[tuple[str, JsonSchemaMode]]:
        """(model name, json-schema mode) for every schema this operation names."""
        if self.body:
            yield self.body, "validation"
        for _, kinds in self.ok.values():
            for media_type, names in kinds:
                for name in (names or "").split("|"):
                    if name and media_type not in (HTML, TEXT):
                        yield name, "serialization"


CHAT_DESCRIPTION = " ".join((
    "Only `prompt` is required. Types are strict (`true` is not a number), ranges are checked and unknown",
    "fields are refused, naming the field in `error.param`. `filter.action` tells whether personal data was",
    "redacted (typed placeholders such as `[EMAIL]`) or the reply was blocked (`finish_reason` is",
    "`content_filter`). With `conversation_id` the prompt continues that conversation.",
))

CHAT_EXAMPLES = {
    "simple": ("Only prompt is required", {"prompt": "Tell me about the solar system."}),
    "stream": ("Stream the reply as server-sent events", {"prompt": "Tell me about Saturn.", "stream": True}),
    "tuned": ("System message and sampling settings",
              {"prompt": "Summarise the plot of Hamlet.", "system": "You are a concise assistant.",
               "temperature": 0.7, "top_p": 1, "max_tokens": 256, "presence_penalty": 0,
               "frequency_penalty": 0}),
    "continue": ("Continue a conversation with the id an earlier reply returned",
                 {"prompt": "And how many moons does it have?", "conversation_id": "c_3f9a1b2c"}),
    "redaction": ("The offline model echoes text after 'echo:'; the reply filter redacts the address",
                  {"prompt": "echo: write to me at jane.doe@example.com"}),
}

COMPLETION_EXAMPLES = {
    "simple": ("An OpenAI-style request",
               {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}),
}

RESPONSES_DESCRIPTION = " ".join((
    "The subset of OpenAI's Responses API that SDKs use for chat, served over the upstream's chat completions with",
    "the same keys, limits, guard, filter and ledger: `input` (text, or messages, function calls and their",
    "outputs), `instructions`, sampling fields, `max_output_tokens`, function `tools`, `tool_choice`,",
    "`text.format`, `metadata`, `stream`. chatgate keeps no responses: `previous_response_id` and `store: true`",
    "are refused, as is any field outside the subset, naming it.",
))

RESPONSES_EXAMPLES = {
    "simple": ("A string input", {"model": "gpt-4o-mini", "input": "Say hello."}),
    "instructions": ("Instructions and a message list",
                     {"model": "gpt-4o-mini", "instructions": "Be brief.",
                      "input": [{"role": "user", "content": [{"type": "input_text", "text": "Name a planet."}]}]}),
}

EMBEDDINGS_DESCRIPTION = " ".join((
    "Text in, vectors out. Inputs go through the prompt guard (the block list refuses, `PROMPT_REDACT` types are",
    "replaced) and count toward the token limits; token-id arrays are refused, since the guard cannot read them.",
    "The model must be one of `ALLOWED_EMBEDDING_MODELS`.",
))

EMBEDDINGS_EXAMPLES = {
    "one": ("One text", {"model": "text-embedding-3-small", "input": "The solar system."}),
    "many": ("Several texts, 256 dimensions, base64",
             {"model": "text-embedding-3-small", "input": ["Mercury", "Venus"], "dimensions": 256,
              "encoding_format": "base64"}),
}

ADMIN_NOTE = " ".join((
    "Admin API: served only when ADMIN_TOKEN is set (otherwise 404), with `Authorization: Bearer <ADMIN_TOKEN>`;",
    "never cross-origin. Every action is logged and kept in the audit trail.",
))
KEY_EXAMPLES = {
    "user": ("A key for one end user, with limits, a budget, an expiry and metadata",
             {"name": "user-42", "rate_limit": "30/minute", "daily_token_quota": 200000, "max_streams": 2,
              "budget_usd_day": 1.5, "expires_at": "2030-01-31T00:00:00Z", "metadata": {"user": "42"}}),
    "defaults": ("The server's default limits, a made-up name", {}),
}
KEY_PATCH_EXAMPLES = {
    "limit": ("A lower request rate, no daily budget", {"rate_limit": "10/minute", "budget_usd_day": None}),
}
ADMIN_PAGE = (("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Page size (keys: 20, audit: 50)."),
              ("after", {"type": "integer", "minimum": 1}, "next_after from the previous page."))
KEY_ERRORS = (400, 404, 409, 413, 415)


def _admin(method: str, path: str, operation_id: str, summary: str, ok: Responses, **kw) -> Op:
    params = ("key_id",) if "{key_id}" in path else ()
    return Op(method, path, operation_id, summary, "admin", ok, description=kw.pop("description", ADMIN_NOTE),
              auth=False, admin=True, path_params=params, **kw)


ADMIN_OPERATIONS: tuple[Op, ...] = (
    _admin("post", "/admin/keys", "createKey", "Issue a client key (shown once)",
           {201: ("The key with its id; `key` is never shown again.", ((JSON, "AdminKeyCreated"),))},
           body="KeyCreateRequest", body_examples=KEY_EXAMPLES, errors=(400, 409, 413, 415)),
    _admin("get", "/admin/keys", "listKeys", "Client keys by id, filtered by metadata",
           {200: ("One page of keys (prefixes only).", ((JSON, "AdminKeyList"),))}, errors=(400,),
           query=(*ADMIN_PAGE, ("metadata.user", {"type": "string"},
                                "Only keys whose metadata has this value for `user`; any `metadata.<name>` works."))),
    _admin("get", "/admin/keys/{key_id}", "getKey", "One key with its usage today and this month",
           {200: ("The key and its usage from the ledger.", ((JSON, "AdminKeyDetail"),))}, errors=(404,)),
    _admin("patch", "/admin/keys/{key_id}", "updateKey", "Change a key's limits, budgets, expiry or metadata",
           {200: ("The key as it now is; every worker applies it within seconds.", ((JSON, "AdminKey"),))},
           body="KeyUpdateRequest", body_examples=KEY_PATCH_EXAMPLES, errors=KEY_ERRORS),
    _admin("post", "/admin/keys/{key_id}/rotate", "rotateKey", "A new key; the old one works for grace_seconds",
           {200: ("The key with its new secret (shown once); usage, limits and conversations stay with its id.",
                  ((JSON, "AdminKeyCreated"),))},
           body="KeyRotateRequest", body_examples={"grace": ("Old key works one more hour", {"grace_seconds": 3600})},
           errors=KEY_ERRORS),
    _admin("delete", "/admin/keys/{key_id}", "revokeKey", "Revoke a key",
           {200: ("The revoked key; every worker refuses it (401 key_revoked) within seconds.",
                  ((JSON, "AdminKey"),))}, errors=(404,)),
    _admin("get", "/admin/audit", "listAudit", "The admin audit trail, oldest first",
           {200: ("One page of admin actions.", ((JSON, "AuditList"),))}, errors=(400,),
           query=(*ADMIN_PAGE, ("key_id", {"type": "integer", "minimum": 1}, "Only this key's actions."))),
)

OPERATIONS: tuple[Op, ...] = (
    Op("post", "/chat", "chat", "Send a prompt, get the filtered reply", "chat",
       {200: ("The filtered reply: JSON, or server-sent events when `stream` is true.",
              ((JSON, "ChatResponse"), (SSE, "ChatStreamDelta|ChatStreamEnd")))},
       description=CHAT_DESCRIPTION,
       body="ChatRequest", body_examples=CHAT_EXAMPLES, errors=(*BODY_ERRORS, 404, 422, *UPSTREAM_ERRORS), cached=True,
       headers=(("Idempotency-Key", {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
                 "Makes a retry safe: the same key with the same body within IDEMPOTENCY_TTL answers the stored "
                 + "reply (with `Idempotent-Replayed: true`) instead of storing a second turn; the same key "
                 + "with another body is a 422."),),
       links={"GetConversation": ("getConversation", "$response.body#/conversation_id"),
              "DeleteConversation": ("deleteConversation", "$response.body#/conversation_id")}, served=True),
    Op("post", "/v1/chat/completions", "createChatCompletion", "OpenAI-compatible chat completion", "openai",
       {200: ("An OpenAI chat.completion, or chat.completion.chunk events when `stream` is true.",
              ((JSON, "ChatCompletion"), (SSE, "ChatCompletionChunk")))},
       description="The same pipeline as POST /chat behind OpenAI's request and response shapes.",
       body="ChatCompletionRequest", body_examples=COMPLETION_EXAMPLES, errors=BODY_ERRORS + UPSTREAM_ERRORS,
       cached=True, served=True),
    Op("post", "/v1/responses", "createResponse", "OpenAI Responses API (stateless), over chat completions",
       "openai",
       {200: ("A response object, or the Responses event stream when `stream` is true.",
              ((JSON, "ResponseObject"), (SSE, "ResponseStreamEvent")))},
       description=RESPONSES_DESCRIPTION, body="ResponsesRequest", body_examples=RESPONSES_EXAMPLES,
       errors=BODY_ERRORS + UPSTREAM_ERRORS, cached=True, served=True),
    Op("post", "/v1/embeddings", "createEmbedding", "OpenAI-compatible embeddings", "openai",
       {200: ("One vector per input, in input order.", ((JSON, "EmbeddingList"),))},
       description=EMBEDDINGS_DESCRIPTION, body="EmbeddingsRequest", body_examples=EMBEDDINGS_EXAMPLES,
       errors=BODY_ERRORS + UPSTREAM_ERRORS, served=True),
    Op("get", "/v1/models", "listModels", "Models a client may use", "openai",
       {200: ("An OpenAI model list.", ((JSON, "ModelList"),))}),
    Op("get", "/v1/models/{model}", "getModel", "One model, if a client may use it", "openai",
       {200: ("The model.", ((JSON, "Model"),))}, errors=(404,), path_params=("model",)),
    Op("get", "/conversations", "listConversations", "Your conversations, most recently active first",
       "conversations", {200: ("One page of the caller's conversations.", ((JSON, "ConversationList"),))},
       errors=(400,), query=(
           ("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "Page size."),
           ("cursor", {"type": "string"}, "next_cursor from the previous page.")),
       links={"GetConversation": ("getConversation", "$response.body#/data/0/id")}),
    Op("get", "/conversations/{conversation_id}", "getConversation", "One conversation with its messages",
       "conversations", {200: ("The conversation, messages oldest first.", ((JSON, "Conversation"),))},
       errors=(404,), path_params=("conversation_id",)),
    Op("delete", "/conversations/{conversation_id}", "deleteConversation", "Delete a conversation",
       "conversations", {200: ("Deleted: its messages are erased, not flagged.", ((JSON, "ConversationDeleted"),))},
       errors=(404,), path_params=("conversation_id",)),
    Op("get", "/usage", "getUsage", "Your requests, tokens and spend by day and model", "conversations",
       {200: ("The caller's usage and its cost, oldest day first.", ((JSON, "UsageReport"),))}, errors=(400,),
       query=(("days", {"type": "integer", "minimum": 1, "maximum": 366, "default": 30},
               "How many days back, today included."),)),
    Op("get", "/healthz", "healthz", "Liveness: the process is up", "health",
       {200: ("Alive.", ((JSON, "Health"),))}, auth=False),
    Op("get", "/readyz", "readyz", "Readiness: an upstream (or the offline model) is configured", "health",
       {200: ("Ready.", ((JSON, "Readiness"),)), 503: ("Not ready; `checks` says what is missing.",
                                                      ((JSON, "Readiness"),))}, auth=False),
    Op("get", "/metrics", "metrics", "Prometheus metrics of this instance", "health",
       {200: ("Prometheus's text exposition format, summed over every worker.", ((TEXT, None),))},
       description="Needs `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set.",
       errors=(401,), auth=False),
    Op("get", "/openapi.json", "openapi", "This OpenAPI 3.1 description", "meta",
       {200: ("The document.", ((JSON, None),))}, auth=False),
    Op("get", "/docs", "docs", "Swagger UI for /openapi.json, with Try it out", "meta",
       {200: ("An HTML page.", ((HTML, None),))}, auth=False),
    Op("get", "/", "chatPage", "A small chat page for trying the gateway in a browser", "meta",
       {200: ("An HTML page.", ((HTML, None),))}, auth=False),
    *ADMIN_OPERATIONS,
)
