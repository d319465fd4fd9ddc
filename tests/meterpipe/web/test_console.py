"""The console in a real browser (Debian's Chromium driven by Playwright) over a real
`meterpipe up`. Each test saves a screenshot of every page it visits in its tmp dir."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import expected_totals
from tests.meterpipe.web.conftest import Server
from tests.processes import run_cli
from tests.rows import VALID_CELLS

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
FINAL_MS = 180_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run deploy/install-tools.sh")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.url, accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=tmp_path / "screenshots" / f"{name}.png", full_page=True)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _send(page: Page, path: Path, **fields: str) -> None:
    """Open the upload form, fill it in (by its labels) and send it."""
    page.goto("/upload")
    _fill_and_send(page, path, **fields)


def _fill_and_send(page: Page, path: Path, **fields: str) -> None:
    page.get_by_label("File", exact=True).set_input_files(path)
    for label, value in fields.items():
        page.get_by_label(label.capitalize(), exact=True).fill(value)
    page.get_by_role("button", name="Upload").click()


def test_upload_through_the_form_and_watch_it_finish(
    page: Page, server: Server, tmp_path: Path
) -> None:
    source = tmp_path / "october.csv"
    write_sample_file(source, SampleSpec(rows=30_000, seed=21, accounts=40))
    page.goto("/upload")
    _shot(page, tmp_path, "upload-form")
    page.evaluate("window.stillTheSamePage = true")
    _fill_and_send(
        page, source, name="October usage", description="all accounts", reference="oct-2026"
    )
    status = page.locator("#result-status")
    expect(status).to_have_text("Processing")
    _shot(page, tmp_path, "upload-processing")
    expect(status).to_have_text("Done", timeout=FINAL_MS)
    expect(page.locator("#result-records")).to_have_text("30000")
    assert page.evaluate("window.stillTheSamePage") is True  # never reloaded
    _shot(page, tmp_path, "upload-done")
    page.get_by_role("link", name="oct-2026").click()
    expect(page.locator('#upload [data-field="accepted"]')).to_have_text(
        str(sum(row["events"] for row in expected_totals(source)))
    )
    _shot(page, tmp_path, "upload-page")
    page.get_by_role("link", name="Files").click()
    row = page.locator('tr[data-reference="oct-2026"]')
    expect(row).to_contain_text("October usage")
    expect(row).to_contain_text("all accounts")
    expect(row.locator('[data-field="status"]')).to_have_text("Done")
    _shot(page, tmp_path, "files")
    page.get_by_role("link", name="Totals").click()
    expect(page.locator("#totals tbody tr")).to_have_count(len(expected_totals(source)))
    _shot(page, tmp_path, "totals")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(_text(download.value.path()))))
    assert len(rows) == len(expected_totals(source))
    page.get_by_role("link", name="Periods").click()
    first = page.locator("#periods tbody tr").first
    period = first.get_attribute("data-period")
    expect(first).to_contain_text("open")
    page.get_by_role("button", name=f"Close {period}").click()
    expect(page.locator(f'tr[data-period="{period}"]')).to_contain_text("closed")
    _shot(page, tmp_path, "periods")


def test_files_refresh_while_processing(page: Page, server: Server, tmp_path: Path) -> None:
    source = tmp_path / "big.csv"
    write_sample_file(source, SampleSpec(rows=30_000, seed=22, accounts=40))
    with httpx.Client(base_url=server.url) as client:
        sent = client.post(
            "/v1/uploads",
            params={"reference": "watched"},
            headers={"Content-Type": "text/csv"},
            content=source.read_bytes(),
        )
    assert sent.status_code == 202
    page.goto("/")
    status = page.locator('tr[data-reference="watched"] [data-field="status"]')
    expect(status).to_have_text("Processing")
    expect(status).to_have_text("Done", timeout=FINAL_MS)
    expect(page.locator('tr[data-reference="watched"] [data-field="records"]')).to_have_text(
        "30000"
    )
    _shot(page, tmp_path, "files-refreshed")


def test_download_a_template(page: Page, tmp_path: Path) -> None:
    page.goto("/upload")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the appdirect template").click()
    assert download.value.suggested_filename == "appdirect-template.csv"
    header = Path(download.value.path()).read_text(encoding="utf-8").strip()
    assert header.split(",") == list(VALID_CELLS)
    _shot(page, tmp_path, "templates")


def test_a_bad_file_shows_its_errors(page: Page, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(VALID_CELLS))
        writer.writeheader()
        writer.writerow(VALID_CELLS)
        writer.writerow({**VALID_CELLS, "eventId": "evt-2", "quantity": "-3"})
    _send(page, path, reference="bad-one")
    expect(page.locator("#result-status")).to_have_text("Error", timeout=FINAL_MS)
    page.get_by_role("link", name="bad-one").click()
    errors = page.locator("#errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("quantity")
    expect(errors.first).to_contain_text("-3")
    _shot(page, tmp_path, "upload-errors")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the error report").click()
    report = list(csv.DictReader(io.StringIO(_text(download.value.path()))))
    assert [(r["row"], r["column"]) for r in report] == [("3", "quantity")]


def test_sign_in_and_out(page: Page, server: Server, tmp_path: Path) -> None:
    created = run_cli(server.env, "keys", "create", "--name", "alice", "--scope", "read",
                      "--scope", "upload", "--json")  # fmt: skip
    key = json.loads(created.stdout)["key"]
    page.goto("/")
    expect(page).to_have_url(f"{server.url}/sign-in?next=/")
    page.keyboard.press("Tab")  # the first stop is the brand link, the key field follows
    page.keyboard.press("Tab")
    page.keyboard.type("mpk_not-a-key")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("That key is not valid.")
    _shot(page, tmp_path, "sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header")).to_contain_text("Signed in as alice")
    (cookie,) = page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    # Sending through the form carries the sign-in's CSRF token.
    upload = tmp_path / "small.csv"
    write_sample_file(upload, SampleSpec(rows=10, seed=23, accounts=2))
    _send(page, upload, reference="signed")
    expect(page.locator("#result-status")).to_have_text("Done", timeout=FINAL_MS)
    # Another site cannot use the sign-in, even with the cookie.
    with httpx.Client(base_url=server.url, cookies={cookie["name"]: cookie["value"]}) as client:
        forged = client.post("/v1/uploads", headers={"Content-Type": "text/csv"}, content=b"a\n")
        cross = client.post("/sign-out", headers={"Origin": "https://evil.example"})
    assert (forged.status_code, cross.status_code) == (403, 403)
    page.goto("/")
    _shot(page, tmp_path, "files-signed-in")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/sign-in")
    assert page.context.cookies() == []
    page.goto("/totals")
    expect(page).to_have_url(f"{server.url}/sign-in?next=/totals")
