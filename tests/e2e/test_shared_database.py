"""Two gunicorn servers on one PostgreSQL database: a conversation lives on either."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import requests
from cryptography.fernet import Fernet
from dbfixtures import pg_schema
from support import LiveServer, wait_for


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
            # Started on one instance, continued on the other: the history travels through PostgreSQL.
            first = requests.post(one.url + "/chat", json={"prompt": "echo: Bonjour !", "system": "Answer in French."},
                                  timeout=30).json()
            conv = first["conversation_id"]
            second = requests.post(two.url + "/chat", json={"prompt": "What did we say?", "conversation_id": conv},
                                   timeout=30).json()
            assert second["conversation_id"] == conv
            assert "message 2" in second["reply"] and "system instructions" in second["reply"]
            bodies = [requests.get(f"{server.url}/conversations/{conv}", timeout=10) for server in (one, two)]
            assert [b.status_code for b in bodies] == [200, 200]
            assert bodies[0].json() == bodies[1].json()
            assert bodies[0].json()["system"] == "Answer in French."
            assert [m["content"] for m in bodies[1].json()["messages"]][:2] == ["echo: Bonjour !", "Bonjour !"]
            assert len(bodies[1].json()["messages"]) == 4
            listed = requests.get(two.url + "/conversations", timeout=10).json()
            assert [c["id"] for c in listed["data"]] == [conv]
            # Erasure through one is seen by the other.
            assert requests.delete(f"{one.url}/conversations/{conv}", timeout=10).json()["deleted"] is True
            gone = requests.get(f"{two.url}/conversations/{conv}", timeout=10)
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "conversation_not_found"
            # Each instance writes its own usage rows; both see the total of both.
            assert wait_for(lambda: all(
                sum(d["requests"] for d in requests.get(server.url + "/usage", timeout=10).json()["data"]) == 2
                for server in (one, two)))
            logs = one.output() + two.output()
        assert "Traceback" not in logs
