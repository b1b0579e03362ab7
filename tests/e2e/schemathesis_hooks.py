"""Schemathesis hooks for the OpenAPI fuzz test (loaded through SCHEMATHESIS_HOOKS)."""
from __future__ import annotations

import schemathesis

# Integer fields of the request bodies. JSON Schema counts 256.0 as an integer and schemathesis
# sends such values on purpose, but the gateway's strict validation (no type coercion, as the
# design asks) refuses a float where an integer belongs; no JSON Schema keyword can say so.
INTEGER_FIELDS = frozenset({"max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs",
                            "max_output_tokens", "dimensions"})


@schemathesis.hook
def map_body(context, body):
    """Spell whole-number floats in integer fields as integers, leaving everything else alone."""
    if isinstance(body, dict):
        for name in INTEGER_FIELDS.intersection(body):
            value = body[name]
            if isinstance(value, float) and value.is_integer():
                body[name] = int(value)
    return body


# Refusals of schema-valid requests that no JSON Schema keyword can foresee: (code, param).
UNDESCRIBABLE = {
    # A cursor is opaque: any string fits its schema, only the server's own pass.
    ("invalid_cursor", "cursor"),
    # MAX_TOTAL_CHARS bounds the sum of all message texts, a sum across fields (and of all embedding inputs).
    ("too_long", "messages"),
    ("too_long", "input"),
    # An embeddings reply is bounded by inputs x dimensions x encoding, a product across fields.
    ("reply_too_large", "input"),
}


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep every failure except a refusal listed in UNDESCRIBABLE."""
    if failure.code != "ST202" or response.status_code != 400:
        return True
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return True
    return (error.get("code"), error.get("param")) not in UNDESCRIBABLE
