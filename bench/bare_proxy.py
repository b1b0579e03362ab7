"""The floor: Flask relaying chat completions through one pooled requests.Session.

No validation, auth, limits or filtering: just the cost of a Python proxy.
bench/run.py serves it with gunicorn using chatgate's worker class and count.
"""
import os

import requests
from flask import Flask, Response, request

UPSTREAM = os.environ.get("BARE_UPSTREAM", "http://127.0.0.1:9000/v1").rstrip("/") + "/chat/completions"
HEADERS = {"Content-Type": "application/json",
           "Authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", "sk-bench-not-a-real-key")}
session = requests.Session()
session.trust_env = False  # as chatgate's: no proxy/.netrc lookups on every call
session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=int(os.environ.get("BARE_POOL", "1024"))))
app = Flask(__name__)


@app.post("/v1/chat/completions")
def relay():
    """Send the body upstream and relay the answer, streaming it when it is a stream."""
    up = session.post(UPSTREAM, data=request.get_data(), headers=HEADERS, stream=True, timeout=(5, 60))
    ctype = up.headers.get("Content-Type", "application/json")
    if ctype.startswith("text/event-stream"):
        return Response(up.iter_content(chunk_size=None), up.status_code, content_type=ctype)
    return Response(up.content, up.status_code, content_type=ctype)
