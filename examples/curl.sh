#!/usr/bin/env bash
# chatgate from the command line: one curl call per feature, each with what it shows.
#
#   examples/curl.sh                          # against http://127.0.0.1:8000 (make run)
#   BASE_URL=https://chat.example.org API_KEY=cg-... examples/curl.sh
#   ADMIN_TOKEN=... examples/curl.sh           # also the admin API (the server's ADMIN_TOKEN)
#
# Every call prints the body, then "-> HTTP <status>". Copy any curl line to use it on its own.
set -euo pipefail

BASE_URL="${BASE_URL:-http://127.0.0.1:8000}"
AUTH=()
# A client key is needed only when the server runs with AUTH_MODE=keys.
if [ -n "${API_KEY:-}" ]; then AUTH=(-H "Authorization: Bearer $API_KEY"); fi

# Quiet but with errors shown, the key when there is one, and the status after each body.
curl() { command curl -sS ${AUTH[@]+"${AUTH[@]}"} -w '\n-> HTTP %{http_code}\n' "$@"; }
section() { printf '\n## %s\n' "$1"; }

section "health: is the server up, and ready to answer?"
curl "$BASE_URL/healthz"
curl "$BASE_URL/readyz"

section "chat: a prompt in, a JSON reply out (only prompt is required)"
curl "$BASE_URL/chat" -H 'Content-Type: application/json' \
  -d '{"prompt": "Tell me about the solar system."}'

section "chat: personal data in a reply is replaced by a typed placeholder"
# The offline model replies with the text after "echo:", so the reply holds an e-mail address;
# the response filter turns it into [EMAIL] and says so in "filter".
curl "$BASE_URL/chat" -H 'Content-Type: application/json' \
  -d '{"prompt": "echo: write to me at jane.doe@example.com"}'

section "chat: a system message and sampling settings"
curl "$BASE_URL/chat" -H 'Content-Type: application/json' \
  -d '{"prompt": "Summarise the plot of Hamlet.", "system": "You are a concise assistant.",
       "temperature": 0.7, "top_p": 1, "max_tokens": 256}'

section "streaming: server-sent events, printed as they arrive (-N turns off curl's buffering)"
curl -N "$BASE_URL/chat" -H 'Content-Type: application/json' \
  -d '{"prompt": "Tell me about Saturn.", "stream": true}'

section "conversations: continue with the conversation_id of the first reply"
first=$(curl "$BASE_URL/chat" -H 'Content-Type: application/json' -d '{"prompt": "Remember the word apricot."}')
echo "$first"
conversation_id=$(printf '%s' "$first" | sed -n 's/.*"conversation_id":"\([A-Za-z0-9_-]*\)".*/\1/p')
if [ -z "$conversation_id" ]; then echo "the reply carried no conversation_id" >&2; exit 1; fi
curl "$BASE_URL/chat" -H 'Content-Type: application/json' \
  -d "{\"prompt\": \"Which word did I ask you to remember?\", \"conversation_id\": \"$conversation_id\"}"
# Read it back, with every message.
curl "$BASE_URL/conversations/$conversation_id"
# Delete it: its messages are erased, and reading it again is a 404.
curl -X DELETE "$BASE_URL/conversations/$conversation_id"
curl "$BASE_URL/conversations/$conversation_id"
# Your conversations, most recently active first, one page at a time (?cursor=<next_cursor> for more).
curl "$BASE_URL/conversations?limit=5"
# Requests and tokens by day and model.
curl "$BASE_URL/usage?days=7"

section "OpenAI-compatible: the same gateway in OpenAI's format (SDKs work with base_url=$BASE_URL/v1)"
curl "$BASE_URL/v1/models"
curl "$BASE_URL/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}'

section "errors: one shape everywhere, {\"error\": {message, type, param, code}}"
# 400: a value out of range; "param" names the field.
curl "$BASE_URL/chat" -H 'Content-Type: application/json' -d '{"prompt": "Hi", "temperature": 3}'
# 400: an unknown field is refused, not ignored.
curl "$BASE_URL/chat" -H 'Content-Type: application/json' -d '{"prompt": "Hi", "temprature": 0.5}'
# 400: types are strict: "0.5" is a string, not a number.
curl "$BASE_URL/chat" -H 'Content-Type: application/json' -d '{"prompt": "Hi", "temperature": "0.5"}'
# 404: a conversation that does not exist (or is not yours).
curl "$BASE_URL/chat" -H 'Content-Type: application/json' -d '{"prompt": "Hi", "conversation_id": "no-such-id"}'
# 405: /chat takes POST only; the Allow header says so (-i shows headers).
curl -i "$BASE_URL/chat"
# 415: the body must be JSON.
curl "$BASE_URL/chat" -H 'Content-Type: text/plain' -d 'prompt=Hi'
# 401 (only with AUTH_MODE=keys): a missing or wrong key.  429: a rate limit, with Retry-After.

if [ -n "${ADMIN_TOKEN:-}" ]; then
  section "admin: issue, change, rotate and revoke client keys (the server must have ADMIN_TOKEN)"
  admin() { command curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" -w '\n-> HTTP %{http_code}\n' "$@"; }
  # Issue a key for one end user: limits, a daily budget, metadata. Its "key" is in this answer only.
  CREATED=$(admin "$BASE_URL/admin/keys" -H 'Content-Type: application/json' \
    -d '{"rate_limit": "60/minute", "max_streams": 2, "budget_usd_day": 1.5, "metadata": {"user": "42"}}')
  echo "$CREATED"
  KEY_ID=$(printf '%s' "$CREATED" | sed -n 's/^{"object":"client_key","id":\([0-9]*\),.*/\1/p')
  # Keys are listed by prefix only, filtered on metadata, a page at a time (?after=<next_after> for more).
  admin "$BASE_URL/admin/keys?metadata.user=42&limit=20"
  # One key, with its requests, tokens and cost today and this month.
  admin "$BASE_URL/admin/keys/$KEY_ID"
  # Change a limit and clear the budget (null): every worker applies it within seconds.
  admin -X PATCH "$BASE_URL/admin/keys/$KEY_ID" -H 'Content-Type: application/json' \
    -d '{"rate_limit": "30/minute", "budget_usd_day": null}'
  # A new key; the old one keeps working for a minute. Usage and budgets stay with the id.
  admin "$BASE_URL/admin/keys/$KEY_ID/rotate" -H 'Content-Type: application/json' -d '{"grace_seconds": 60}'
  # Revoke it: clients get 401 key_revoked within seconds.
  admin -X DELETE "$BASE_URL/admin/keys/$KEY_ID"
  # Every admin action, oldest first: who (a token fingerprint), what, which key, when, from where.
  admin "$BASE_URL/admin/audit?key_id=$KEY_ID"
  # 401: a wrong admin token (repeated, the address gets 429).
  command curl -sS -H 'Authorization: Bearer not-the-admin-token' -w '\n-> HTTP %{http_code}\n' "$BASE_URL/admin/keys"
fi
