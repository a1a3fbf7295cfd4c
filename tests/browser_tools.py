"""What the browser tests share: Debian's Chromium driven by Playwright (never Playwright's own
browser download), a real `genforge studio` process per test, the tiny model's form fields, and
screenshots for the README (GENFORGE_SCREENSHOTS=docs/studio writes them)."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from studio_tools import Server, wait_for

CHROMIUM = os.environ.get("GENFORGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = os.environ.get("GENFORGE_SCREENSHOTS")
TIMEOUT_MS = 120_000  # one job on 2 shared cores: a worker process starts, imports torch, runs

# tests/tiny.py's model, as a person would type it into the New run form (field ids)
TINY_FORM = {"f-options-model-channels": "8", "f-options-channel-mult": "1,2",
             "f-options-num-blocks": "1", "f-options-attn-resolutions": "none",
             "f-options-batch-size": "8", "f-options-preview-count": "4",
             "f-options-device": "cpu", "f-options-checkpoint-every": "50",
             "f-options-log-every": "5"}


def require_browser():
    """Skip (with the reason) where the browser or its driver is missing."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                        "(pip install playwright; its browser download is not needed)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (CI's .ci/run does)",
                    allow_module_level=True)


@contextmanager
def studio(home: Path):
    """A real studio process on loopback; stopped with Ctrl-C at the end."""
    server = Server(home, "--workers", "1")
    try:
        yield server
    finally:
        server.kill(signal.SIGINT)
        try:
            server.wait(30)
        except Exception:
            server.kill(signal.SIGKILL)
            server.wait(10)


@contextmanager
def browser_page(url: str, width: int = 1280, height: int = 900):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(base_url=url, viewport={"width": width, "height": height},
                                          accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.js_errors = errors
            yield page
            assert not errors, f"JavaScript errors: {errors}"
        finally:
            browser.close()


def shot(page, name: str, *, full: bool = True) -> None:
    """A screenshot for the README (only with GENFORGE_SCREENSHOTS=FOLDER), kept small: 64
    colours, at most 1800 px tall."""
    if not SHOTS:
        return
    image = Image.open(io.BytesIO(page.screenshot(full_page=full)))
    image = image.crop((0, 0, image.width, min(image.height, 1800)))
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").quantize(64).save(folder / f"{name}.png", optimize=True)


def open_all(page) -> None:
    """Unfold the advanced options (a person clicks each group's summary)."""
    folded = page.locator("details:not([open]) > summary")
    while folded.count():
        folded.first.click()


def fill(page, values: dict[str, str]) -> None:
    for field_id, value in values.items():
        control = page.locator(f"#{field_id}")
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def upload_dataset(page, files: list[Path]) -> int:
    """The New model page: choose files, upload; returns the dataset id (its page is open)."""
    page.goto("/")
    page.get_by_role("link", name="New model").first.click()
    page.set_input_files("#files", [str(f) for f in files])
    page.get_by_role("button", name="Upload and audit").click()
    page.wait_for_url(re.compile(r".*/datasets/\d+$"))
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def wait_for_audit(page) -> None:
    """The dataset page reloads itself when the audit finishes; then training is offered."""
    page.get_by_role("link", name="Train a model on it").wait_for()


def train(page, values: dict[str, str], check: str | None = None) -> int:
    """From a dataset page: the New run form, filled with values; returns the job id (its page is
    open). check: first show the resolved configuration, and screenshot it under this name."""
    page.get_by_role("link", name="Train a model on it").click()
    open_all(page)
    fill(page, {**TINY_FORM, **values})
    if check:
        page.get_by_role("button", name="Show the resolved configuration").click()
        resolved = page.locator("[data-resolved]")
        resolved.wait_for(state="visible")
        config = json.loads(resolved.inner_text())
        assert config["config"]["train"]["steps"] == int(values["f-options-steps"]), config
        shot(page, check)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def wait_for_state(page, states: tuple[str, ...] = ("done", "failed", "stopped")) -> str:
    return wait_for(lambda: (s := page.locator("#job").get_attribute("data-job-state")) in states
                    and s, TIMEOUT_MS / 1000, f"a job state in {states}")


def generate(page, values: dict[str, str], target: str = "#generated") -> None:
    """The model page's Generate form; waits for the results to be shown."""
    fill(page, values)
    page.locator("#generate-form").get_by_role("button", name="Generate").click()
    page.locator(f"{target} .outputs").wait_for()
