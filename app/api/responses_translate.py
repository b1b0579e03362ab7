"""Responses API <-> chat completions: a /v1/responses request as a chat request, a completion as a response.

Pure translation of validated JSON; the gateway then runs the chat request
through the same bounds, guard, limits, upstream, filter and ledger as any
other door.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from ..core.gateway import Completion
from ..errors import InvalidRequest
from ..upstream.targets import reply_cap_field

# Copied across under the same name.
SAME_NAME = ("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier", "prompt_cache_key",
             "prompt_cache_retention", "service_tier")
# Reasoning models take max_completion_tokens (visible plus reasoning tokens); older models max_tokens.

STATUS = {"stop": ("completed", None), "tool_calls": ("completed", None), "function_call": ("completed", None),
          "length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")}


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: resp_…, msg_…, fc_…."""
    return f"{prefix}_{uuid.uuid4().hex}"


def chat_payload(body: dict, model: str) -> dict:
    """The chat-completions request that asks what ``body`` asks."""
    messages: list[dict] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    given = body["input"]
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    else:
        for item in given:
            _add_item(messages, item)
    payload: dict[str, Any] = {"model": model, "messages": messages}
    payload.update({name: body[name] for name in SAME_NAME if body.get(name) is not None})
    if body.get("max_output_tokens") is not None:
        payload[reply_cap_field(model)] = body["max_output_tokens"]
    if body.get("tools"):
        payload["tools"] = [{"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
                            for tool in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        payload["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif choice is not None:
        payload["tool_choice"] = choice
    text = body.get("text") or {}
    fmt = text.get("format")
    if fmt and fmt["type"] == "json_schema":
        payload["response_format"] = {"type": "json_schema",
                                      "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
    elif fmt:
        payload["response_format"] = {"type": fmt["type"]}
    if text.get("verbosity"):
        payload["verbosity"] = text["verbosity"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        payload["reasoning_effort"] = effort
    return payload


def _add_item(messages: list[dict], item: dict) -> None:
    kind = item.get("type") or "message"
    if kind == "function_call":
        call = {"id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]}}
        last = messages[-1] if messages else None
        # Calls made together in one turn are one assistant message with several tool_calls.
        if last and last["role"] == "assistant" and last.get("tool_calls") and not last.get("content"):
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item["output"]
        text = output if isinstance(output, str) else "".join(part["text"] for part in output)
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
    else:
        messages.append({"role": item["role"], "content": _content(item["role"], item["content"])})


def _content(role: str, content: Any) -> Any:
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        kind = part["type"]
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal":
            parts.append({"type": "refusal", "refusal": part["refusal"]} if role == "assistant"
                         else {"type": "text", "text": part["refusal"]})
        elif role != "user":
            raise InvalidRequest(f"{kind} content is only accepted in user messages", param="input",
                                 code="unsupported_value")
        else:
            image = {"url": part["image_url"], **({"detail": part["detail"]} if part.get("detail") else {})}
            parts.append({"type": "image_url", "image_url": image})
    return parts


# --- the other way


def usage(chat_usage: dict) -> dict:
    """Chat usage in the Responses API's shape."""
    prompt, completion = int(chat_usage.get("prompt_tokens") or 0), int(chat_usage.get("completion_tokens") or 0)
    out = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
           "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": prompt + completion}
    if "cost_usd" in chat_usage:
        out["cost_usd"] = chat_usage["cost_usd"]
    return out


def message_item(item_id: str, text: str, status: str) -> dict:
    """An assistant message output item holding ``text``."""
    return {"id": item_id, "type": "message", "role": "assistant", "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict:
    """A function call output item."""
    return {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def envelope(body: dict, response_id: str, created_at: int, model: str) -> dict:
    """Every field of a response object except status, output, usage and its outcome."""
    text = body.get("text") or {}
    # usage and user are left out until known: OpenAI's schema has no null for either.
    optional = {"user": body["user"]} if body.get("user") is not None else {}
    return {"id": response_id, "object": "response", "created_at": created_at, "completed_at": None,
            "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "model": model,
            "parallel_tool_calls": body.get("parallel_tool_calls", True), "previous_response_id": None,
            "reasoning": body.get("reasoning"), "service_tier": body.get("service_tier"), "store": False,
            "temperature": body.get("temperature", 1.0),
            "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
            "tool_choice": body.get("tool_choice", "auto"),
            # Echoed as OpenAI does: every function tool with its parameters and strictness, null if unset.
            "tools": [{"parameters": None, "strict": None, "description": None, **tool}
                      for tool in body.get("tools") or ()],
            "top_p": body.get("top_p", 1.0), "truncation": "disabled", "metadata": body.get("metadata") or {},
            "status": "in_progress", "output": [], **optional}


def finished(response: dict, finish_reason: str | None, output: list[dict], chat_usage: dict, report: dict) -> dict:
    """``response`` completed (or incomplete) with ``output``, its usage and chatgate's filter report."""
    status, reason = STATUS.get(finish_reason or "stop", ("completed", None))
    return {**response, "status": status, "completed_at": int(time.time()) if status == "completed" else None,
            "incomplete_details": {"reason": reason} if reason else None, "output": output,
            "usage": usage(chat_usage), "filter": report}


def response_object(body: dict, done: Completion) -> dict:
    """The whole response for a completed (not streamed) call."""
    choice = done.choices[0]
    status = "incomplete" if choice.finish_reason in ("length", "content_filter") else "completed"
    output = []
    if choice.reply or not choice.tool_calls:
        output.append(message_item(new_id("msg"), choice.reply, status))
    for call in choice.tool_calls or ():
        fn = call.get("function") or {}
        output.append(function_call_item(new_id("fc"), str(call.get("id") or new_id("call")), str(fn.get("name")),
                                         str(fn.get("arguments") or ""), "completed"))
    base = envelope(body, new_id("resp"), done.created, done.model)
    return finished(base, choice.finish_reason, output, done.usage, choice.filter.to_dict())
