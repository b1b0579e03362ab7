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

    def models(self) -> Iterator[tuple[str, JsonSchemaMode]]:
        """(model name, json-schema mode) for every schema this operation names."""
        if self.body:
            yield self.body, "validation"
        for _, kinds in self.ok.values():
            for media_type, names in kinds:
                for name in (names or "").split("|"):
                    if name and media_type != HTML:
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

OPERATIONS: tuple[Op, ...] = (
    Op("post", "/chat", "chat", "Send a prompt, get the filtered reply", "chat",
       {200: ("The filtered reply: JSON, or server-sent events when `stream` is true.",
              ((JSON, "ChatResponse"), (SSE, "ChatStreamDelta|ChatStreamEnd")))},
       description=CHAT_DESCRIPTION,
       body="ChatRequest", body_examples=CHAT_EXAMPLES, errors=(*BODY_ERRORS, 404, 422, *UPSTREAM_ERRORS),
       headers=(("Idempotency-Key", {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
                 "Makes a retry safe: the same key with the same body within IDEMPOTENCY_TTL answers the stored "
                 + "reply (with `Idempotent-Replayed: true`) instead of storing a second turn; the same key "
                 + "with another body is a 422."),),
       links={"GetConversation": ("getConversation", "$response.body#/conversation_id"),
              "DeleteConversation": ("deleteConversation", "$response.body#/conversation_id")}),
    Op("post", "/v1/chat/completions", "createChatCompletion", "OpenAI-compatible chat completion", "openai",
       {200: ("An OpenAI chat.completion, or chat.completion.chunk events when `stream` is true.",
              ((JSON, "ChatCompletion"), (SSE, "ChatCompletionChunk")))},
       description="The same pipeline as POST /chat behind OpenAI's request and response shapes.",
       body="ChatCompletionRequest", body_examples=COMPLETION_EXAMPLES, errors=BODY_ERRORS + UPSTREAM_ERRORS),
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
    Op("get", "/usage", "getUsage", "Your requests and tokens by day and model", "conversations",
       {200: ("The caller's usage, oldest day first.", ((JSON, "UsageReport"),))}, errors=(400,),
       query=(("days", {"type": "integer", "minimum": 1, "maximum": 366, "default": 30},
               "How many days back, today included."),)),
    Op("get", "/healthz", "healthz", "Liveness: the process is up", "health",
       {200: ("Alive.", ((JSON, "Health"),))}, auth=False),
    Op("get", "/readyz", "readyz", "Readiness: an upstream (or the offline model) is configured", "health",
       {200: ("Ready.", ((JSON, "Readiness"),)), 503: ("Not ready; `checks` says what is missing.",
                                                      ((JSON, "Readiness"),))}, auth=False),
    Op("get", "/openapi.json", "openapi", "This OpenAPI 3.1 description", "meta",
       {200: ("The document.", ((JSON, None),))}, auth=False),
    Op("get", "/docs", "docs", "Readable API docs rendered from /openapi.json", "meta",
       {200: ("An HTML page.", ((HTML, None),))}, auth=False),
    Op("get", "/", "chatPage", "A small chat page for trying the gateway in a browser", "meta",
       {200: ("An HTML page.", ((HTML, None),))}, auth=False),
)
