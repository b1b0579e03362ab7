"""The offline model's embeddings: deterministic unit vectors, one per input text.

Each vector is seeded by a hash of the model and the text, so the same text
always gets the same vector and different texts get (almost surely)
different ones; nothing about meaning is modelled.
"""
from __future__ import annotations

import base64
import hashlib
import math
import random
import struct

# The sizes OpenAI's models return by default; any other model gets the small model's size.
DEFAULT_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
                      "text-embedding-ada-002": 1536}


def vector(model: str, text: str, dimensions: int) -> list[float]:
    """A unit vector of ``dimensions`` floats, the same for the same model and text."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "big")
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def encode_base64(values: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32, then base64."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def offline_embeddings(payload: dict) -> tuple[int, dict]:
    """(status, body) of an embeddings call, in OpenAI's format."""
    if not isinstance(payload, dict):
        payload = {}
    model = payload.get("model")
    inputs = payload.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(model, str) or not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
        return 400, {"error": {"message": "'input' must be a string or a list of strings and 'model' a string.",
                               "type": "invalid_request_error", "param": "input", "code": "invalid_value"}}
    dimensions = payload.get("dimensions") or DEFAULT_DIMENSIONS.get(model, 1536)
    as_base64 = payload.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        values = vector(model, text, dimensions)
        embedding = encode_base64(values) if as_base64 else values
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(math.ceil(len(text) / 4) for text in inputs)
    return 200, {"object": "list", "data": data, "model": model,
                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
