"""One filter over every string a model returns: content, refusal, tool-call arguments, custom tool input.

Tool-call arguments are JSON: they are redacted inside their string values
only, so arguments that were valid JSON stay valid JSON. A blocked term
anywhere blocks the whole choice. Findings count every place. Streams give
each tool call (by its index) a filter of its own, with the same guarantee as
text: whatever the chunking, the concatenated output equals the whole-reply
filter's output.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..filter import ContentFilter, FilterResult
from ..filter.result import ACTION_BLOCKED, ACTION_NONE, ACTION_REDACTED, make_findings


def combine(results: Iterable[FilterResult], text: str = "") -> FilterResult:
    """One verdict for several filtered strings: blocked if any is, redacted if any is; findings summed."""
    counts: Counter = Counter()
    action = ACTION_NONE
    for result in results:
        for finding in result.findings:
            counts[finding["type"]] += finding["count"]
        if result.action == ACTION_BLOCKED:
            action = ACTION_BLOCKED
        elif result.action == ACTION_REDACTED and action == ACTION_NONE:
            action = ACTION_REDACTED
    return FilterResult("" if action == ACTION_BLOCKED else text, action, make_findings(counts))


@dataclass
class FilteredMessage:
    """A reply message after the filter: what the client may see, and the verdict."""

    content: str
    refusal: str | None
    tool_calls: list | None
    function_call: dict | None
    result: FilterResult


def filter_message(content_filter: ContentFilter, message: dict) -> FilteredMessage:
    """Filter every string of a whole reply message."""
    results = []
    raw = message.get("content")
    text = content_filter.apply(raw if isinstance(raw, str) else "")
    results.append(text)
    refusal = None
    if isinstance(message.get("refusal"), str):
        refused = content_filter.apply(message["refusal"])
        results.append(refused)
        refusal = refused.text
    tool_calls = None
    if isinstance(message.get("tool_calls"), list):
        tool_calls = []
        for call in message["tool_calls"]:
            clean, result = _filter_call(content_filter, call)
            tool_calls.append(clean)
            results.append(result)
    function_call = None
    if isinstance(message.get("function_call"), dict):
        fn = message["function_call"]
        args = content_filter.apply_arguments(str(fn.get("arguments") or ""))
        results.append(args)
        function_call = {**fn, "arguments": args.text}
    verdict = combine(results, text.text)
    if verdict.action == ACTION_BLOCKED:
        return FilteredMessage("", None, None, None, verdict)
    return FilteredMessage(text.text, refusal, tool_calls, function_call, verdict)


def _filter_call(content_filter: ContentFilter, call: Any) -> tuple[Any, FilterResult]:
    if not isinstance(call, dict):
        return call, FilterResult("", ACTION_NONE)
    if isinstance(call.get("function"), dict):
        fn = call["function"]
        args = content_filter.apply_arguments(str(fn.get("arguments") or ""))
        return {**call, "function": {**fn, "arguments": args.text}}, args
    if isinstance(call.get("custom"), dict):
        custom = call["custom"]
        given = content_filter.apply(str(custom.get("input") or ""))
        return {**call, "custom": {**custom, "input": given.text}}, given
    return call, FilterResult("", ACTION_NONE)


class StreamReplyFilter:
    """Incremental filters for one streamed choice: its text, its refusal and each of its tool calls."""

    def __init__(self, content_filter: ContentFilter):
        self._content_filter = content_filter
        self.text = content_filter.stream()
        self._text_open = True
        self._texts: list[Any] = []           # text filters finished early, when a tool call began
        self._refusal: Any = None
        self._calls: dict[int, Any] = {}     # tool-call index -> its argument (or custom input) filter
        self._custom: set[int] = set()

    @property
    def blocked(self) -> bool:
        """True once any of the choice's strings hit the block list."""
        return (self.text.blocked or any(t.blocked for t in self._texts)
                or (self._refusal is not None and self._refusal.blocked)
                or any(f.blocked for f in self._calls.values()))

    def feed_text(self, piece: str) -> str:
        """The next piece of the reply text; returns what is safe to emit."""
        if not self._text_open:
            # More text after a tool call: a new run of its own.
            self._texts.append(self.text)
            self.text, self._text_open = self._content_filter.stream(), True
        return self.text.feed(piece)

    def end_text(self) -> str:
        """The text so far is complete (a tool call is starting): its held-back rest, filtered."""
        if not self._text_open:
            return ""
        self._text_open = False
        return self.text.finish()

    def is_new_call(self, delta: Any) -> bool:
        """True when ``delta`` starts a tool call not seen before."""
        return isinstance(delta, dict) and delta.get("index", 0) not in self._calls

    def refusal(self, piece: str) -> str:
        """The next piece of a refusal; returns what is safe to emit."""
        if self._refusal is None:
            self._refusal = self._content_filter.stream()
        return self._refusal.feed(piece)

    def tool_call(self, delta: Any) -> dict | None:
        """One tool-call delta, with its argument piece filtered (None when there is nothing to send yet)."""
        if not isinstance(delta, dict):
            return None
        index = delta.get("index", 0)
        out = {k: v for k, v in delta.items() if k not in ("function", "custom")}
        custom = isinstance(delta.get("custom"), dict) or index in self._custom
        inner_key, piece_key = ("custom", "input") if custom else ("function", "arguments")
        given = delta.get(inner_key)
        inner: dict = given if isinstance(given, dict) else {}
        stream = self._calls.get(index)
        if stream is None:
            # Custom tools take free text; function arguments are JSON.
            stream = self._content_filter.stream() if custom else self._content_filter.stream_arguments()
            self._calls[index] = stream
            if custom:
                self._custom.add(index)
        piece = inner.get(piece_key)
        safe = stream.feed(piece) if isinstance(piece, str) and piece else ""
        meta = {k: v for k, v in inner.items() if k != piece_key}
        if not (safe or meta or len(out) > 1):
            return None
        out[inner_key] = {**meta, piece_key: safe}
        return out

    def finish(self) -> tuple[str, str, list[dict]]:
        """The held-back rest of the text, of the refusal, and of each tool call (as deltas)."""
        text = self.end_text()
        refusal = self._refusal.finish() if self._refusal is not None else ""
        tails = []
        for index, stream in self._calls.items():
            rest = stream.finish()
            if rest:
                inner_key, piece_key = ("custom", "input") if index in self._custom else ("function", "arguments")
                tails.append({"index": index, inner_key: {piece_key: rest}})
        return text, refusal, tails

    def result(self) -> FilterResult:
        """The whole choice's verdict so far (text: the emitted reply text)."""
        texts = [t.result() for t in (*self._texts, self.text)]
        parts = list(texts)
        if self._refusal is not None:
            parts.append(self._refusal.result())
        parts.extend(stream.result() for stream in self._calls.values())
        return combine(parts, "".join(t.text for t in texts))
