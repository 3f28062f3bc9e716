"""The page's files are served without a token (they hold no data), and a missing
one is an ordinary 404 in the API's error shape."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_page_and_its_files_are_public(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/web/app.js">' in page.text
    for name, media in [("app.js", "javascript"), ("style.css", "text/css")]:
        r = client.get(f"/web/{name}")
        assert r.status_code == 200
        assert media in r.headers["content-type"]


def test_every_module_the_page_imports_exists(client: TestClient) -> None:
    """A renamed module would break the page with nothing but a console error."""
    seen: set[str] = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        seen.add(name)
        r = client.get(f"/web/{name}")
        assert r.status_code == 200, name
        todo += [m for m in re.findall(r'from "\./([\w.]+)"', r.text) if m not in seen]
    assert {"api.js", "importer.js", "exporter.js", "filters.js", "jobs.js"} <= seen


def test_a_missing_file_is_a_404_in_the_error_shape(client: TestClient) -> None:
    r = client.get("/web/nothing.js")
    assert r.status_code == 404
    assert r.json()["code"] == "NOT_FOUND"
