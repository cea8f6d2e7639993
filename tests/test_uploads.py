"""What the browser may send and how a file's name comes back: each
uploader takes what the package takes (images 30 MB, zips of runs
200 MB), Streamlit's server cap is the largest of them, and a file's name
is drawn as the characters it has, never as Markdown."""

import re
import string
from pathlib import Path

import pytest
from helpers import app, as_drawn

from resexplorer.data import images
from resexplorer.runs import transfer
from ui.text import JOINER, literal

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_NAME = (
    "**bold** [link](http://example.com) www.example.org :red[red] $x^2$ :smile: `code` # heading\nicon@2x.png"
)


def _server_cap_mb() -> int:
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    return int(re.search(r"^maxUploadSize\s*=\s*(\d+)", config, re.M).group(1))


def test_each_uploader_takes_what_the_package_takes_and_the_server_no_more_than_the_largest():
    at = app("pages/runs.py")
    limits = {"import_zip": at.file_uploader(key="import_zip").proto.max_upload_size_mb}
    at = app("pages/tta.py")
    at.radio(key="tta_source").set_value("Upload").run()
    limits["tta_upload"] = at.file_uploader(key="tta_upload").proto.max_upload_size_mb
    at = app("pages/attributions.py")
    at.radio(key="attr_source").set_value("Upload").run()
    limits["attr_upload"] = at.file_uploader(key="attr_upload").proto.max_upload_size_mb
    assert limits == {"import_zip": transfer.UPLOAD_MB, "tta_upload": images.UPLOAD_MB, "attr_upload": images.UPLOAD_MB}
    assert images.UPLOAD_MB * 2**20 == images.MAX_UPLOAD_BYTES
    assert _server_cap_mb() == max(limits.values())


def test_literal_escapes_every_markdown_character_and_keeps_one_line():
    shown = literal(HOSTILE_NAME)
    assert "\n" not in shown
    unescaped = as_drawn(shown)
    assert unescaped == HOSTILE_NAME.replace("\n", " ")
    assert all(f"\\{c}" in literal(c) for c in string.punctuation)


@pytest.mark.slow
def test_an_uploads_name_is_drawn_as_text_on_the_tta_page(tmp_path):
    """In the browser: a broken upload with a name full of Markdown is named
    in its error exactly as it is called, with no bold, link, colour, maths,
    emoji or code drawn from it."""
    from playwright.sync_api import expect
    from test_browser import _fresh_app_in_chromium

    name = HOSTILE_NAME.replace("\n", " ")  # a browser's file name holds no newline
    upload = {"name": name, "mimeType": "image/png", "buffer": b"not an image at all"}
    with _fresh_app_in_chromium(tmp_path) as (browser, url):
        page = browser.new_page()
        page.goto(f"{url}/tta")
        page.get_by_role("radiogroup", name="Images", exact=True).get_by_text("Upload", exact=True).click()
        page.locator("input[type=file]").set_input_files(files=[upload])
        error = page.locator("[data-testid=stAlertContentError]").first
        expect(error).to_be_visible(timeout=60_000)
        assert name in error.inner_text().replace(JOINER, ""), error.inner_text()
        for tag in ("strong", "a", "code", "h1", "span.katex", "img"):
            assert error.locator(tag).count() == 0, tag
