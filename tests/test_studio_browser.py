"""The studio's pages in a real browser: headless Chromium (Debian's package) driven by
Playwright, against a real `genforge studio` process, clicking as a person would.

(a) images: upload a zip of small PNGs, see the audit, record a licence, train, watch the
    progress bar move and a preview appear, generate 8, download the zip, `genforge verify` calls
    its files intact, and the Provenance page says so too; (d) a reload during the training
    changes nothing; (b) music: chorales, a short discrete training, generate, the audio element
    plays a WAV, the MIDI download parses; (c) levels: Sokoban levels, generate playable levels,
    a badge says playable and the XSB downloads, complete a drawn level, evaluate with the report
    in the page; (e) a bad upload shows its message (and the page fits a 390 px phone).
Along the way: stop and resume a run, an interpolation GIF, harmonize a melody, Provenance.
GENFORGE_SCREENSHOTS=docs/studio writes the README's screenshots from these same pages.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from browser_tools import (fill, generate, require_browser, shot, studio, browser_page, train,  # noqa: E402
                           upload_dataset, wait_for, wait_for_audit, wait_for_state)

require_browser()
pytestmark = pytest.mark.usefixtures("one_thread")
LEVELS = Path(__file__).parent / "fixtures" / "levels" / "sokoban" / "tiny.xsb"
MELODY = Path(__file__).parent / "fixtures" / "music" / "melody.mid"
CHORALES = ("bwv253", "bwv267", "bwv281", "bwv347")  # four-part 4/4 chorales in music21's corpus


def garments_zip(folder: Path) -> Path:
    """24 distinct 12x12 PNGs in two class folders, and one exact copy (the audit shows it)."""
    rng = np.random.default_rng(0)
    entries = {}
    for i in range(24):
        pixels = (rng.random((12, 12)) * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "L").save(buffer, format="PNG")
        entries[f"{('shirt', 'shoe')[i % 2]}/{i:02d}.png"] = buffer.getvalue()
    entries["shirt/copy-of-00.png"] = entries["shirt/00.png"]
    path = folder / "garments.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_images_upload_audit_licence_train_generate_download_verify(tmp_path):
    """(a) and (d): the whole image path by clicking; a reload during training changes nothing."""
    from genforge.cli import main
    with studio(tmp_path / "home") as server, browser_page(server.url) as page:
        upload_dataset(page, [garments_zip(tmp_path)])
        wait_for_audit(page)
        assert "Exact duplicates" in page.locator("#audit").inner_text()
        assert page.locator(".thumbs img").count() > 0  # a sample of the uploaded images
        # record the licence: saved, and the audit runs again with it
        fill(page, {"f-licence": "CC0-1.0", "f-source": "drawn by the test",
                    "f-consent": "the test's own"})
        with page.expect_navigation():  # saved: the page reloads with the new audit queued
            page.get_by_role("button", name="Save (the audit runs again)").click()
        wait_for_audit(page)
        assert page.locator("#f-licence").input_value() == "CC0-1.0"
        assert "licence, source, consent" not in page.locator("#audit").inner_text()
        shot(page, "dataset")

        job = train(page, {"f-options-resolution": "12", "f-options-steps": "200",
                           "f-options-sample-every": "40"}, check="new-run")
        # the progress bar moves and a preview appears
        bar = page.locator("#job progress")
        seen = wait_for(lambda: (v := int(bar.get_attribute("value") or 0)) > 0 and v < 100 and v,
                        120, "the progress bar to move")
        page.locator("#job [data-preview]").wait_for(state="visible")
        # (d) a reload during training: the same job goes on, picked up where it is
        jobs_before = json.loads(page.request.get("/api/jobs").text())["counts"]
        page.reload()
        assert int(page.locator("#job").get_attribute("data-job-id")) == job
        again = wait_for(lambda: int(bar.get_attribute("value") or 0), 30, "progress after reload")
        assert again >= seen
        assert json.loads(page.request.get(f"/api/jobs/{job}").text())["attempts"] == 1
        counts = json.loads(page.request.get("/api/jobs").text())["counts"]
        assert sum(counts.values()) == sum(jobs_before.values())  # no job added by reloading
        # stop (a checkpoint, then stopped), then resume from it to the end
        with page.expect_navigation():  # each button calls the API, then shows the new state
            page.get_by_role("button", name="Stop").click()
        assert wait_for_state(page, ("stopped",)) == "stopped"
        with page.expect_navigation():
            page.get_by_role("button", name="Resume").click()
        assert wait_for_state(page) == "done"
        assert bar.get_attribute("value") == "100"
        assert "run/samples/step-0000200.png" in page.locator("#job [data-preview]").get_attribute("src")
        log = page.request.get(f"/api/jobs/{job}/log").text()
        assert "resuming" in log, log[-2000:]
        shot(page, "run")

        page.get_by_role("link", name="Open the model").click()
        generate(page, {"f-params-n": "8", "f-sampling-steps": "4"})
        assert page.locator("#generated .item img").count() == 8
        shot(page, "model-images")
        with page.expect_download() as download:
            page.locator("#generated [data-download-zip]").click()
        archive = tmp_path / "samples.zip"
        download.value.save_as(archive)
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp_path / "samples")
        pngs = sorted(p for p in (tmp_path / "samples").rglob("*.png")
                      if re.fullmatch(r"\d{6}(-display)?\.png", p.name))
        assert len(pngs) == 16  # 8 images and their display copies, big enough to carry a mark
        assert main(["verify", *map(str, pngs)]) == 0  # every file intact and signed
        # an interpolation walk: an animated GIF
        fill(page, {"f-interpolate-seeds": "1,2", "f-interpolate-frames": "3"})
        page.get_by_role("button", name="Make the walk").click()
        walk = page.locator("#walked img.walk")
        walk.wait_for()
        gif = page.request.get(walk.get_attribute("src")).body()
        assert gif[:6] == b"GIF89a" and Image.open(io.BytesIO(gif)).n_frames == 6  # 3 a pair, looped

        # the Provenance page says the same of files dropped on it, and finds the watermark
        page.goto("/provenance")
        first = next(p.parent for p in pngs) / "000000.png"
        page.set_input_files("#check-files", [str(first), str(first.with_name("000000-display.png"))])
        page.get_by_role("button", name="Check").click()
        page.locator(".verdict").nth(1).wait_for()
        original, display = (page.locator(".verdict").nth(i).inner_text() for i in (0, 1))
        assert "Trusted: intact" in original and "Seed\n0" in original
        assert "too small to carry genforge's watermark" in original  # 12 px: below its minimum
        assert "Trusted: intact" in display and "genforge's watermark found" in display
        shot(page, "provenance")

        page.goto(f"/compare?runs={job}")
        assert page.locator("svg.curve polyline").count() == 1
        shot(page, "compare")
        page.goto("/")
        assert page.locator(f"[data-live-job='{job}'] [data-state]").inner_text() == "done"
        shot(page, "home")


def test_music_chorales_train_generate_listen_and_download_midi(tmp_path):
    """(b) a few chorales, a short discrete training, generate; the WAV plays, the MIDI parses."""
    import mido
    from genforge.music import corpus
    paths = {p.name.split(".")[0]: p for p in corpus.bach_chorale_paths()}
    files = []
    for name in CHORALES:
        files.append(tmp_path / paths[name].name)
        shutil.copy(paths[name], files[-1])
    with studio(tmp_path / "home") as server, browser_page(server.url) as page:
        upload_dataset(page, files)
        wait_for_audit(page)
        assert page.locator("img.preview").count() == 1  # piano rolls of the chorales
        train(page, {"f-options-steps": "2", "f-options-bars": "2", "f-options-transpose": "1",
                     "f-options-split": "all"})
        assert wait_for_state(page) == "done"
        page.get_by_role("link", name="Open the model").click()
        generate(page, {"f-params-n": "2", "f-params-bars": "2", "f-params-audio": "true",
                        "f-sampling-steps": "3"})
        audio = page.locator("#generated audio").first
        src = audio.get_attribute("src")
        wav = page.request.get(src).body()
        assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
        duration = audio.evaluate("""a => new Promise((ok, no) => {
            a.addEventListener('loadedmetadata', () => ok(a.duration), {once: true});
            a.addEventListener('error', () => no(a.error && a.error.code), {once: true});
            a.preload = 'auto'; a.load(); })""")
        assert duration > 1.0  # the browser decodes it: two bars at the model's tempo
        midi = page.locator("#generated a", has_text="MIDI").first.get_attribute("href")
        song = mido.MidiFile(file=io.BytesIO(page.request.get(midi).body()))
        assert sum(1 for track in song.tracks for m in track if m.type == "note_on") > 0
        # harmonize a melody: the settings appear with their own files
        page.set_input_files("#melody", str(MELODY))
        fill(page, {"f-harmonize-params-n": "1", "f-inpaint-sampling-steps": "3"})
        page.get_by_role("button", name="Harmonize").click()
        page.locator("#harmonized .item a", has_text="MIDI").wait_for()
        shot(page, "model-music")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing sticks out
        for url in (page.url, f"/jobs/{page.url.rsplit('/', 1)[1]}"):
            page.goto(url)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, url


def test_levels_generate_playable_with_badge_and_xsb(tmp_path):
    """(c) Sokoban levels: generate playable levels; the badge says so and the XSB downloads;
    complete a level drawn in the page; evaluate, with the report in the page."""
    from genforge.levels import formats, sokoban
    with studio(tmp_path / "home") as server, browser_page(server.url) as page:
        upload_dataset(page, [LEVELS])
        wait_for_audit(page)
        train(page, {"f-options-steps": "120", "f-options-level-size": "8",
                     "f-options-sample-every": "60"})
        assert wait_for_state(page) == "done"
        page.get_by_role("link", name="Open the model").click()
        generate(page, {"f-params-n": "2", "f-params-repair": "true",
                        "f-params-playable-only": "true"})
        badge = page.locator("#generated .badge").first
        assert badge.inner_text().startswith("playable")
        href = page.locator("#generated .item a", has_text="XSB").first.get_attribute("href")
        level = formats.read_xsb(page.request.get(href).text())[0]
        assert sokoban.check(formats.parse_grid(level.board, formats.SOKOBAN)) is None
        # complete the level drawn in the page's text box: each completion keeps the given tiles
        fill(page, {"f-complete-params-n": "2"})
        page.get_by_role("button", name="Complete").click()
        page.locator("#completed .item").first.wait_for()
        assert page.locator("#completed .item").count() == 2
        href = page.locator("#completed .item a", has_text="XSB").first.get_attribute("href")
        board = formats.read_xsb(page.request.get(href).text())[0].board.splitlines()
        assert board[0] == "#######" and board[2][2:4] == "$@"  # the given tiles, kept
        shot(page, "model-levels")
        # evaluate as a job: its report embedded in the page
        page.locator("#evaluate-form summary").click()
        fill(page, {"f-evaluate-params-n": "20"})
        page.locator("#evaluate-form").get_by_role("button", name="Evaluate").click()
        report = page.frame_locator("#evaluated iframe").locator("body")
        assert "playab" in report.inner_text()  # the levels' own metrics


def test_a_bad_upload_shows_its_message(tmp_path):
    """(e) a file of the wrong kind, and a zip that climbs out of its folder: one clear message
    each, next to the file field, and nothing kept."""
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is no picture")
    climbing = tmp_path / "evil.zip"
    with zipfile.ZipFile(climbing, "w") as archive:
        archive.writestr("../../outside.png", b"x")
    with studio(tmp_path / "home") as server, browser_page(server.url) as page:
        for path, words in ((bad, "notes.png"), (climbing, "leave")):
            page.goto("/datasets/new")
            page.set_input_files("#files", str(path))
            page.get_by_role("button", name="Upload and audit").click()
            error = page.locator("#files-error")
            error.wait_for(state="visible")
            assert words in error.inner_text(), error.inner_text()
            assert page.url.endswith("/datasets/new")
        shot(page, "bad-upload", full=False)
        assert json.loads(page.request.get("/api/datasets").text())["datasets"] == []
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page still fits
        page.goto("/datasets/new")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "phone-new-dataset", full=False)
