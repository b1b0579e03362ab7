"""POST /v1/embeddings: OpenAI's embeddings, with the same keys, limits, guard and ledger as chat."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from .admission import current_caller, services
from .body import read_json_object, validate
from .embeddings_schemas import EMBEDDING_OPTIONS, EmbeddingsRequest

bp = Blueprint("embeddings", __name__, url_prefix="/v1")


@bp.post("/embeddings")
def embeddings():
    """Vectors for one text or a list of texts; inputs are guarded before they leave."""
    body = read_json_object(request)
    req = validate(EmbeddingsRequest, body)
    inputs = [req.input] if isinstance(req.input, str) else list(req.input)
    gw = services().gateway
    gw.bounds.check_inputs(inputs)
    payload: dict = {"model": gw.resolve_embedding_model(req.model), "input": gw.guard.texts(inputs)}
    payload.update({name: body[name] for name in EMBEDDING_OPTIONS if body.get(name) is not None})
    gw.bounds.check_embedding_reply(payload)
    if req.user is not None:
        payload["user"] = gw.guard.prose(req.user)
    return jsonify(gw.embed(payload, current_caller(), "/v1/embeddings"))
