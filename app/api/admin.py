"""The admin API: /admin/keys and /admin/audit, served only when ADMIN_TOKEN is set.

Without the token the blueprint is never registered, so its paths answer the
ordinary 404 of an unknown route. With it, every request must carry
``Authorization: Bearer <ADMIN_TOKEN>`` (compared in constant time); an
address that keeps failing is refused with 429 before any comparison, as
for client keys. The routes never answer cross-origin: no CORS headers, and
a preflight is refused. What each route does is ``app.access.key_admin``'s,
which the ``keys`` commands call too.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from ..access.key_admin import KeyView, Page, same_token
from ..errors import AuthenticationFailed, InvalidRequest, MethodNotAllowed
from ..ops.record import current
from .admin_schemas import KeyCreateRequest, KeyRotateRequest, KeyUpdateRequest
from .admission import services
from .body import read_json_object, validate
from .conversations import query_args, timestamp

bp = Blueprint("admin", __name__, url_prefix="/admin")
AUTH_PREFIX = "admin:"  # failed admin authentications are counted apart from client keys'
MAX_PAGE = 100


@bp.before_request
def authenticate() -> None:
    """Refuse preflights and anything without the admin token; a repeatedly failing address gets 429 first."""
    if request.method == "OPTIONS":
        raise MethodNotAllowed("the admin API does not answer cross-origin requests")
    found = services()
    address = request.remote_addr or "unknown"
    found.limiter.check_auth_failures(AUTH_PREFIX + address)
    sent = request.headers.get("Authorization", "")
    token = current_app.config["ADMIN_TOKEN"].reveal()
    if not (sent.startswith("Bearer ") and same_token(sent[len("Bearer "):], token)):
        found.limiter.count_auth_failure(AUTH_PREFIX + address)
        raise AuthenticationFailed("the admin API needs Authorization: Bearer <ADMIN_TOKEN>",
                                   code="invalid_admin_token",
                                   headers={"WWW-Authenticate": 'Bearer realm="chatgate admin"'})
    g.admin = found.key_admin.fingerprint(token)
    record = current()
    if record is not None:
        record.key = g.admin  # the token's fingerprint, for the log line; never the token


@bp.after_request
def no_store(response: Response) -> Response:
    """Admin answers hold key material once; no cache may keep them."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/keys")
def create_key():
    """Make a key; the only answer that ever shows it."""
    query_args()
    fields = validate(KeyCreateRequest, read_json_object(request)).model_dump(exclude_unset=True)
    key, view = services().key_admin.create(fields, actor=g.admin, address=request.remote_addr)
    return jsonify({**key_json(view), "key": key}), 201


@bp.get("/keys")
def list_keys():
    """Keys by id, one page at a time, filtered by metadata.<name>=<value>."""
    meta = {name[len("metadata."):]: value for name, value in request.args.items() if name.startswith("metadata.")}
    args = query_args("limit", "after", *(f"metadata.{name}" for name in meta))
    page = services().key_admin.keys(limit=_int(args, "limit", 20, MAX_PAGE), after=_int(args, "after", None),
                                     metadata=meta)
    return jsonify(page_json(page, key_json))


@bp.get("/keys/<int:key_id>")
def get_key(key_id: int):
    """One key with its usage today and this month."""
    query_args()
    admin = services().key_admin
    view = admin.get(key_id)
    return jsonify({**key_json(view), "usage": admin.usage(key_id)})


@bp.patch("/keys/<int:key_id>")
def update_key(key_id: int):
    """Change limits, budgets, expiry, name or metadata; null puts a field back to the default."""
    query_args()
    fields = validate(KeyUpdateRequest, read_json_object(request)).model_dump(exclude_unset=True)
    if not fields:
        raise InvalidRequest("give at least one field to change", code="empty_update")
    view = services().key_admin.update(key_id, fields, actor=g.admin, address=request.remote_addr)
    return jsonify(key_json(view))


@bp.post("/keys/<int:key_id>/rotate")
def rotate_key(key_id: int):
    """A new secret for the key; the old one works for grace_seconds more. The body is optional."""
    query_args()
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    body = KeyRotateRequest(grace_seconds=0) if not request.content_length and not chunked \
        else validate(KeyRotateRequest, read_json_object(request))
    key, view = services().key_admin.rotate(key_id, body.grace_seconds, actor=g.admin, address=request.remote_addr)
    return jsonify({**key_json(view), "key": key})


@bp.delete("/keys/<int:key_id>")
def revoke_key(key_id: int):
    """Revoke the key: every worker refuses it within seconds."""
    query_args()
    return jsonify(key_json(services().key_admin.revoke(key_id, actor=g.admin, address=request.remote_addr)))


@bp.get("/audit")
def audit():
    """Admin actions oldest first, one page at a time, optionally for one key."""
    args = query_args("limit", "after", "key_id")
    page = services().key_admin.audit(limit=_int(args, "limit", 50, MAX_PAGE), after=_int(args, "after", None),
                                      key_id=_int(args, "key_id", None))
    return jsonify(page_json(page, lambda row: {
        "id": row.id, "at": timestamp(row.at), "actor": row.actor, "action": row.action, "key_id": row.key_id,
        "address": row.address, "detail": row.detail}))


def key_json(view: KeyView) -> dict:
    """A key as the admin API shows it: everything but the secret (its prefix stands in)."""
    row = view.row
    return {"object": "client_key", "id": row.id, "name": row.name, "prefix": row.prefix, "state": view.state,
            "created_at": _when(row.created_at), "last_used_at": _when(row.last_used_at),
            "expires_at": _when(row.expires_at), "revoked_at": _when(row.revoked_at),
            "rotated_at": _when(row.rotated_at), "previous_key_expires_at": _when(row.previous_expires_at),
            "rate_limit": row.rate_limit, "token_rate_limit": row.token_rate_limit,
            "daily_token_quota": row.daily_token_quota, "max_streams": row.max_streams,
            "budget_usd_day": _dollars(row.budget_day_micros), "budget_usd_month": _dollars(row.budget_month_micros),
            "metadata": view.metadata}


def page_json(page: Page, show) -> dict:
    """A list page: its items, whether more follow, and the ``after`` that fetches them."""
    return {"object": "list", "data": [show(item) for item in page.items], "has_more": page.next_after is not None,
            "next_after": page.next_after}


def _int(args: dict[str, str], name: str, default: int | None, high: int = 2**31 - 1) -> int | None:
    raw = args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be a whole number from 1 to {high}", param=name)
    return int(raw)


def _when(moment) -> str | None:
    return timestamp(moment) if moment is not None else None


def _dollars(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000
