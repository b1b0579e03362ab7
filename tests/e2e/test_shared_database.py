"""Two gunicorn servers on one PostgreSQL database: a conversation lives on either."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import requests
from cryptography.fernet import Fernet
from dbfixtures import pg_schema
from support import LiveServer

from app import create_app


def test_two_instances_share_conversations_through_postgresql():
    key = Fernet.generate_key().decode("ascii")
    with pg_schema() as url:
        env = {"DATABASE_URL": url, "DATA_ENCRYPTION_KEY": key}
        servers = [LiveServer(workers=2, **env) for _ in range(2)]
        # Started together: four workers migrate the empty schema at once, and the migration lock makes that safe.
        with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
            one, two = pool.map(stack.enter_context, servers)
            for server in (one, two):
                ready = requests.get(server.url + "/readyz", timeout=10)
                assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
            # /chat does not continue conversations yet, so a third process writes one through the store.
            writer = create_app({"APP_ENV": "testing", "DATABASE_URL": url, "DATA_ENCRYPTION_KEY": key,
                                 "DB_AUTO_MIGRATE": "false"})
            store = writer.extensions["store"]
            conv = store.open("anonymous", None, "Answer in French.")
            store.append_turn(conv, "Hello?", "Bonjour !", model="gpt-4o-mini", finish_reason="stop",
                              filter_action="none")
            bodies = [requests.get(f"{server.url}/conversations/{conv.id}", timeout=10) for server in (one, two)]
            assert [b.status_code for b in bodies] == [200, 200]
            assert bodies[0].json() == bodies[1].json()
            assert bodies[0].json()["system"] == "Answer in French."
            assert [m["content"] for m in bodies[1].json()["messages"]] == ["Hello?", "Bonjour !"]
            listed = requests.get(two.url + "/conversations", timeout=10).json()
            assert [c["id"] for c in listed["data"]] == [conv.id]
            # A turn added after both have read it shows on both; erasure through one is seen by the other.
            store.append_turn(store.open("anonymous", conv.id, None), "Merci", "De rien.", model="gpt-4o-mini",
                              finish_reason="stop", filter_action="none")
            assert len(requests.get(f"{one.url}/conversations/{conv.id}", timeout=10).json()["messages"]) == 4
            assert requests.delete(f"{one.url}/conversations/{conv.id}", timeout=10).json()["deleted"] is True
            gone = requests.get(f"{two.url}/conversations/{conv.id}", timeout=10)
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "conversation_not_found"
            store.record_usage(client_id="anonymous", model="gpt-4o-mini", prompt_tokens=5, completion_tokens=7,
                               latency_ms=3.0, status=200, filter_action="none", endpoint="/chat", stream=False)
            usage = [requests.get(server.url + "/usage", timeout=10).json()["data"] for server in (one, two)]
            assert usage[0] == usage[1] and usage[0][0]["total_tokens"] == 12
            writer.extensions["database"].dispose()
            logs = one.output() + two.output()
        assert "Traceback" not in logs
