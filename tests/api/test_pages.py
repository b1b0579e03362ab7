"""The chat page and the docs page (Swagger UI): static, local, and loadable under the strict page CSP."""
from __future__ import annotations

import os
import re
from html.parser import HTMLParser

import pytest

from support import ROOT

from app.api.http import PAGE_CSP
from app.api.pages import SWAGGER_UI_DIST

STATIC = os.path.join(ROOT, "app", "static")
PAGES = ("/", "/docs")


class PageParser(HTMLParser):
    """Collects what the CSP and accessibility checks look at."""

    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []
        self.links: list[dict] = []
        self.inline: list[str] = []
        self.controls: list[dict] = []
        self.labels: set[str] = set()
        self.ids: set[str] = set()
        self.html_lang = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "html":
            self.html_lang = attrs.get("lang")
        if tag == "script":
            self.scripts.append(attrs)
        elif tag == "link":
            self.links.append(attrs)
        elif tag == "style":
            self.inline.append("<style>")
        elif tag == "label" and "for" in attrs:
            self.labels.add(attrs["for"])
        elif tag in ("input", "textarea", "select"):
            self.controls.append(attrs)
        self.inline += [f"{tag} {name}" for name in attrs if name == "style" or name.startswith("on")]


def parse(html: str) -> PageParser:
    """Parse one page."""
    parser = PageParser()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_html_under_the_strict_csp(client, path):
    resp = client.get(path)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert resp.headers["Content-Security-Policy"] == PAGE_CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["X-Request-ID"]
    page = parse(resp.get_data(as_text=True))
    assert page.html_lang == "en"
    # script-src/style-src 'self': no inline code, no inline styles, no event-handler attributes.
    assert page.inline == []
    assert page.scripts and all(s.get("src") for s in page.scripts)


@pytest.mark.parametrize("path", PAGES)
def test_every_asset_is_local_and_served_with_its_type(client, path):
    page = parse(client.get(path).get_data(as_text=True))
    assets = [s["src"] for s in page.scripts] + [link["href"] for link in page.links]
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for url in assets:
        assert not re.match(r"^(https?:)?//", url), f"{url} is not local"
        resp = client.get("/" + url.lstrip("/"))
        assert resp.status_code == 200, url
        assert resp.mimetype == types[os.path.splitext(url)[1]], url


def test_static_files_reach_nothing_outside():
    for name in os.listdir(STATIC):
        with open(os.path.join(STATIC, name), encoding="utf-8") as fh:
            text = fh.read()
        # The SVG namespace is an identifier, not a request.
        text = text.replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://|//cdn|@import", text), name
        assert "innerHTML" not in text and "eval(" not in text, name


def test_every_control_on_the_chat_page_has_a_label(client):
    page = parse(client.get("/").get_data(as_text=True))
    assert page.controls
    for control in page.controls:
        assert control.get("id") in page.labels or control.get("aria-label"), control
    # What the chat page's modules look up by id must exist on the page.
    wanted = set()
    for name in chat_modules():
        with open(os.path.join(STATIC, name), encoding="utf-8") as fh:
            wanted |= set(re.findall(r"\$\('([\w-]+)'\)", fh.read()))
    assert wanted and wanted <= page.ids, wanted - page.ids


def chat_modules() -> list[str]:
    """chat.js and every module it imports, directly or not."""
    found, todo = [], ["chat.js"]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.append(name)
        with open(os.path.join(STATIC, name), encoding="utf-8") as fh:
            todo += re.findall(r"^import .* from '\./([\w-]+\.js)';$", fh.read(), re.M)
    return found


def test_the_chat_page_modules_are_plain_files_served_as_javascript(client):
    # The page is ES modules loaded as they are: no bundler, no build step, no Node at run time.
    modules = chat_modules()
    assert {"markdown.js", "usage-chart.js", "conversations.js"} <= set(modules)
    for name in modules:
        resp = client.get(f"/static/{name}")
        assert resp.status_code == 200 and resp.mimetype == "text/javascript", name


def test_the_chat_page_has_a_live_region_for_replies(client):
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'id="log"[^>]*role="log"[^>]*aria-live="polite"', html)
    assert 'role="status"' in html


def test_docs_assets_are_swagger_ui_from_the_installed_package(client):
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        resp = client.get(f"/docs/assets/{name}")
        assert resp.status_code == 200, name
        with open(os.path.join(SWAGGER_UI_DIST, name), "rb") as fh:
            assert resp.data == fh.read(), name


def test_the_docs_page_starts_swagger_ui_from_a_file_and_keeps_requests_home():
    with open(os.path.join(STATIC, "swagger-init.js"), encoding="utf-8") as fh:
        init = fh.read()
    # The document is this server's; the default validator would send it to an outside service.
    assert "url: 'openapi.json'" in init and "validatorUrl: null" in init
    # A key typed into "Authorize" must not outlive the page.
    assert "persistAuthorization: false" in init


@pytest.mark.parametrize("path", ["/docs/", "/index.html", "/static/nope.js", "/docs/index.html", "/docs/assets/",
                                  "/docs/assets/nope.js", "/docs/assets/%2e%2e/flask_swagger_ui.py"])
def test_unknown_page_paths_are_json_404s(client, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert resp.json["error"]["code"] == "not_found"


def test_pages_answer_head_and_refuse_post(client):
    assert client.head("/").status_code == 200
    resp = client.post("/docs")
    assert resp.status_code == 405 and "GET" in resp.headers["Allow"]
