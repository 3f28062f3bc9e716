"""The import/export page (issue 9), driven end to end in headless Chromium.

A real server (uvicorn on a free port, a fresh SQLite database, jobs run inside the
server) and a real browser (Debian's ``chromium``, driven by Playwright, no browser
download): nothing of the API is mocked. The browser tests run on SQLite only; the
API under the page is tested on SQLite and PostgreSQL elsewhere.

Skipped when chromium or the playwright package is missing, except under
``CI=true``, where that is a failure (``make test`` installs both).

Each step saves a screenshot, in ``$KASAR_SCREENSHOTS_DIR`` when set (the README's
pictures come from ``KASAR_SCREENSHOTS_DIR=docs/screenshots``), else in a
temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kasar.auth.service import create_token, create_user
from kasar.db.engine import make_engine, write_transaction
from kasar.db.migrate import upgrade
from support import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PEOPLE_CSV = (
    "First Name,last name,Email,Company,Role,Favourite colour\n"
    "Alice,Martin,alice@example.com,Acme Corp,CEO,blue\n"
    "Bob,Dupont,bob@startup.io,,CTO,red\n"  # a duplicate of the stored Bob
    "Zoé,Lambert,not-an-email,,Designer,green\n"  # a bad row
    "Carla,Rossi,carla@example.com,Acme Corp,,\n"
)


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; under CI the browser tests must run (make test installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        _missing("chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Server:
    url: str
    token: str
    member_token: str
    bob_id: str = ""

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        r = httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        r.raise_for_status()
        return r.json()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``kasar serve``'s app in uvicorn, on a fresh SQLite database with an admin
    (Ada) and a member (Max), their tokens made by the library, and one stored
    contact (Bob)."""
    db_url = f"sqlite:///{tmp_path / 'kasar.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    with write_transaction(engine) as conn:
        admin = create_user(conn, "ada@example.com", name="Ada Admin", role="admin")
        token = create_token(conn, admin)
        member = create_user(conn, "max@example.com", name="Max Member", role="member")
        member_token = create_token(conn, member)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "KASAR_DATABASE_URL": db_url,
        "KASAR_RUN_JOBS": "true",
        "KASAR_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "uvicorn", "kasar.app:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        srv = Server(url, token, member_token)
        bob = {"first_name": "Bob", "last_name": "Dupont", "email": "bob@startup.io"}
        srv.bob_id = srv.api("POST", "/api/v1/records/contacts", json=bob)["id"]
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    chosen = os.environ.get("KASAR_SCREENSHOTS_DIR")
    path = Path(chosen) if chosen else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(20_000)
    pg.goto(server.url + "/")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page: Any, token: str) -> None:
    page.fill("#token", token)
    page.press("#token", "Enter")  # the keyboard is enough
    page.wait_for_selector("#who-name:has-text('Signed in as Ada Admin')")


def wait_dry_run(page: Any, previous: str | None) -> None:
    """Until the preview shows a dry run other than ``previous``."""
    try:
        page.wait_for_function(
            "prev => { const p = document.querySelector('#import-preview');"
            " return !p.hidden && p.dataset.job && p.dataset.job !== prev; }",
            arg=previous or "",
        )
    except Exception:
        pytest.fail("no new dry run; the import section shows:\n" + page.inner_text("#import"))


def saved(download: Any) -> str:
    return Path(download.path()).read_bytes().decode("utf-8")  # keeps the CRLFs


def test_sign_in_import_export_undo(page: Any, server: Server, shots: Path, tmp_path: Path) -> None:
    # Sign in: a wrong token gets the API's message; the right one shows who is in.
    page.wait_for_selector("#token")
    page.screenshot(path=shots / "01-sign-in.png")
    page.fill("#token", "ksr_not-a-real-token")
    page.click("#sign-in-submit")
    error = page.wait_for_selector("#sign-in-error:not([hidden])")
    assert "UNAUTHENTICATED" in error.inner_text()
    sign_in(page, server.token)
    assert page.evaluate("sessionStorage.getItem('kasar.token')") == server.token

    # Import: choosing the file runs a dry run that matches the columns to fields.
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE_CSV, encoding="utf-8")
    page.set_input_files("#import-file", people)
    wait_dry_run(page, None)
    field = "#import-mapping-rows select[aria-label='Field for column {}']"
    assert page.input_value(field.format("First Name")) == "first_name"
    assert page.input_value(field.format("last name")) == "last_name"
    assert page.input_value(field.format("Company")) == "company_name"  # a usual header
    assert page.input_value(field.format("Role")) == ""  # no such field: ignored
    page.select_option(field.format("Role"), "job_title")
    assert page.is_visible("#import-stale")
    page.screenshot(path=shots / "02-columns.png", full_page=True)

    # The dry run again, with the edited mapping: what would happen to each row.
    first = page.get_attribute("#import-preview", "data-job")
    page.click("#import-dry-run")
    wait_dry_run(page, first)
    assert page.is_hidden("#import-stale")
    rows = page.locator("#import-preview-rows tr")
    assert rows.count() == 4
    outcomes = [rows.nth(i).get_attribute("data-outcome") for i in range(4)]
    assert outcomes == ["created", "duplicate", "failed", "created"]
    assert "Acme Corp" in rows.nth(0).inner_text()
    assert "CEO" in rows.nth(0).inner_text()
    duplicate = rows.nth(1).inner_text()
    assert "Duplicate of Bob Dupont" in duplicate and "email" in duplicate
    assert "valid email" in rows.nth(2).inner_text()
    summary = page.inner_text("#import-preview-summary")
    assert "4 rows read: 2 would be created, 1 is a duplicate" in summary
    assert "1 would be rejected" in summary
    assert server.api("GET", "/api/v1/records/contacts")["total"] == 1  # nothing written
    page.screenshot(path=shots / "03-dry-run.png", full_page=True)

    # The import itself, as a job: final counters, then the per-row report.
    page.click("#import-run")
    page.wait_for_selector("#import-result:not([hidden])")
    assert page.text_content("#import-job .state") == "completed"
    counters = {
        key: page.inner_text(f"#import-job [data-counter={key}] dd")
        for key in ("rows_read", "created", "updated", "duplicates", "failed")
    }
    assert counters == {
        "rows_read": "4",
        "created": "2",
        "updated": "0",
        "duplicates": "1",
        "failed": "1",
    }
    page.screenshot(path=shots / "04-imported.png", full_page=True)
    with page.expect_download() as report:
        page.click("text=Download the report (CSV)")
    assert saved(report.value) == (
        "row,outcome,record_id,duplicate_of,matched_on,error_code,message\r\n"
        f"2,duplicate,,{server.bob_id},email name,,\r\n"
        "3,failed,,,,VALIDATION_ERROR,Field 'email' must be a valid email address\r\n"
    )
    stored = server.api("GET", "/api/v1/records/contacts", params={"limit": 10})
    assert stored["total"] == 3

    # Export: chosen fields, an OR filter with a nested AND group, sorted, as CSV.
    page.click("#tab-export")
    page.click("#export-fields [data-select=none]")
    for key in ("first_name", "last_name", "email", "job_title", "company_name"):
        page.check(f"#export-field-list input[value={key}]")
    add = page.locator("#export-filters button[aria-label='Add a condition']")
    add.focus()
    page.keyboard.press("Enter")  # the new condition's field takes the focus
    assert page.evaluate("document.activeElement.dataset.part") == "field"
    root = page.locator("#export-filters .depth-1")
    root.locator("select[data-part=operator]").first.select_option("or")
    first_condition = root.locator(".condition").first
    first_condition.locator("[data-part=field]").select_option("email")
    first_condition.locator("[data-part=op]").select_option("ends_with")
    first_condition.locator("[data-part=value]").fill("@example.com")
    page.click("#export-filters button[aria-label='Add a group']")
    group = page.locator("#export-filters .depth-2")
    group.locator("[data-part=field]").first.select_option("last_name")
    group.locator("[data-part=value]").first.fill("dupont")
    group.locator("button[aria-label='Add a condition to this group']").click()
    second = group.locator(".condition").nth(1)
    second.locator("[data-part=field]").select_option("first_name")
    second.locator("[data-part=value]").fill("Bob")
    page.select_option("#export-sort-by", "last_name")
    page.select_option("#export-sort-dir", "asc")
    page.select_option("#export-format", "csv")
    with page.expect_download() as export:
        page.click("#export-submit")
    assert export.value.suggested_filename == "contacts_export.csv"
    assert saved(export.value) == (
        "first_name,last_name,email,job_title,company_name\r\n"
        "Bob,Dupont,bob@startup.io,,\r\n"
        "Alice,Martin,alice@example.com,CEO,Acme Corp\r\n"
        "Carla,Rossi,carla@example.com,,Acme Corp\r\n"
    )
    page.wait_for_selector("#export-status:has-text('3 records exported')")
    page.screenshot(path=shots / "05-export.png", full_page=True)

    # NDJSON goes through an export job (as do exports over 10,000 records).
    page.select_option("#export-format", "ndjson")
    with page.expect_download() as export:
        page.click("#export-submit")
    assert export.value.suggested_filename == "contacts_export.ndjson"
    lines = [json.loads(line) for line in saved(export.value).splitlines()]
    assert [(r["last_name"], r["company_name"]) for r in lines] == [
        ("Dupont", None),
        ("Martin", "Acme Corp"),
        ("Rossi", "Acme Corp"),
    ]
    assert page.text_content("#export-job .state") == "completed"
    assert "3 of 3 rows" in page.inner_text("#export-job")
    page.screenshot(path=shots / "05b-export-job.png", full_page=True)

    # A filter the API refuses (a date filter without a date): its code and message.
    group.locator("[data-part=field]").first.select_option("created_at")
    page.click("#export-submit")
    refused = page.wait_for_selector("#export-error:not([hidden])").inner_text()
    assert "VALIDATION_ERROR" in refused and "created_at" in refused

    # Undo from the history: the two created records go, Bob stays.
    page.click("#tab-import")
    job = page.locator("#import-history-rows tr", has_text="import, skip")
    page.once("dialog", lambda dialog: dialog.accept())
    job.locator("button", has_text="Undo").click()
    page.wait_for_selector("#import-history-status:has-text('Undone: 2 records deleted')")
    status = page.inner_text("#import-history-status")
    assert "companies it created: 1 deleted" in status  # Acme Corp, named by the import
    assert "undone" in page.locator("#import-history-rows tr", has_text="import, skip").inner_text()
    left = server.api("GET", "/api/v1/records/contacts")
    assert [r["id"] for r in left["data"]] == [server.bob_id]
    assert server.api("GET", "/api/v1/records/companies")["total"] == 0
    page.screenshot(path=shots / "06-undone.png", full_page=True)

    # Phone width: the same page, one column, tables as cards.
    page.set_viewport_size(PHONE)
    previous = page.get_attribute("#import-preview", "data-job")
    page.set_input_files("#import-file", people)
    wait_dry_run(page, previous)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=shots / "07-phone-import.png", full_page=True)
    page.click("#tab-export")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=shots / "08-phone-export.png", full_page=True)


def test_sign_out_refused_token_and_member(page: Any, server: Server) -> None:
    """Signing out forgets the token; a token the server refuses (revoked, say)
    sends the page back to the sign-in form with the API's message; a member is
    told that import and export need an admin."""
    sign_in(page, server.token)
    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('kasar.token')") is None
    sign_in(page, server.token)
    page.reload()  # the tab keeps its session
    page.wait_for_selector("#who-name:has-text('Signed in as Ada Admin')")
    page.evaluate("sessionStorage.setItem('kasar.token', 'ksr_revoked')")
    page.click("#import-history-refresh")
    message = page.wait_for_selector("#sign-in-error:not([hidden])").inner_text()
    assert "UNAUTHENTICATED" in message
    assert page.is_hidden("#workspace")
    page.fill("#token", server.member_token)
    page.press("#token", "Enter")
    page.wait_for_selector("#who-name:has-text('Signed in as Max Member')")
    assert "need an admin" in page.inner_text("#not-admin")
    assert page.is_hidden("#import") and page.is_hidden("#export")
