"""Data into the studio: uploads of every content kind (files or zips) are checked before they
are kept, each bad one refused in one line with nothing left behind; an audit job starts when a
dataset arrives; the manifest is set through the API; a level dataset goes all the way from
upload to completed levels."""
from __future__ import annotations

import io
import random
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import mido
import pytest
from PIL import Image

pytest.importorskip("fastapi")

from genforge.studio.uploads import Limits  # noqa: E402
from studio_tools import TINY, client, ok, run_queued, zip_bytes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
FIXTURES = Path(__file__).parent / "fixtures"
SMALL = Limits(max_files=40, max_bytes=4 << 20, max_file_bytes=2 << 20, max_ratio=50,
               ratio_floor=64 << 10)


def png(size=(16, 16), value=128, claim=None) -> bytes:
    """A grey PNG; with claim, its header says another size (as tests/test_untrusted_media.py)."""
    buffer = io.BytesIO()
    Image.new("L", size, value).save(buffer, format="PNG")
    data = buffer.getvalue()
    if claim:
        body = struct.pack(">II", *claim) + data[24:29]
        data = data[:16] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + data[33:]
    return data


def midi() -> bytes:
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                            mido.Message("note_off", note=60, time=480)])
    buffer = io.BytesIO()
    mido.MidiFile(tracks=[track]).save(file=buffer)
    return buffer.getvalue()


def with_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.png", png())
        link = zipfile.ZipInfo("b.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def encrypted() -> bytes:
    """A zip whose entry says it is encrypted (zipfile cannot write one: the flag is set by hand
    in the local and central headers)."""
    data = bytearray(zip_bytes({"a.png": png()}))
    for signature, offset in ((b"PK\3\4", 6), (b"PK\1\2", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    return bytes(data)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    with client(tmp_path_factory.mktemp("uploads") / "home", limits=SMALL) as c:
        yield c


def upload(c, files: list[tuple[str, bytes]], **form):
    return c.post("/api/datasets", files=[("files", f) for f in files], data=form)


BAD = {
    "zip-slip": ([("d.zip", zip_bytes({"../evil.png": png()}))], {}, "may not leave its folder"),
    "absolute path": ([("d.zip", zip_bytes({"/tmp/evil.png": png()}))], {}, "not a relative path"),
    "a file name that climbs": ([("../../evil.png", png())], {}, "may not leave its folder"),
    "an absolute file name": ([("/etc/evil.png", png())], {}, "not a relative path"),
    "windows traversal": ([("d.zip", zip_bytes({"..\\evil.png": png()}))], {}, "leave its folder"),
    "symlink": ([("d.zip", with_symlink())], {}, "a symbolic link"),
    "encrypted": ([("d.zip", encrypted())], {}, "encrypted"),
    "zip bomb": ([("d.zip", zip_bytes({"a.png": b"\0" * (1 << 20)}))], {}, "possible zip bomb"),
    "too large": ([("d.zip", zip_bytes({f"{i}.png": random.Random(i).randbytes(3 << 19)
                                        for i in range(3)}))], {}, "unpacks to"),
    "too many files": ([("d.zip", zip_bytes({f"{i}.png": png() for i in range(41)}))], {},
                       "at most 40"),
    "not a zip": ([("d.zip", b"PK\3\4 not really")], {}, "not a readable zip"),
    "decompression bomb": ([("bomb.png", png(claim=(30000, 30000)))], {}, "bomb.png"),
    "over the pixel budget": ([("big.png", png(claim=(6000, 5000)))], {}, "megapixels"),
    "not an image": ([("fake.png", b"just text")], {}, "fake.png"),
    "wrong kind": ([("a.png", png()), ("notes.txt", b"hello")], {"kind": "image"},
                   "notes.txt: not a image file"),
    "mixed kinds": ([("a.png", png()), ("b.mid", midi())], {}, "holds image"),
    "fake midi": ([("tune.mid", b"<xml>not midi</xml>")], {}, "no MThd header"),
    "not music xml": ([("s.musicxml", b"MThd binary")], {}, "not XML"),
    "bad legend": ([("a.txt", b"XX\nXX\n"), ("legend.json", b"{\"tiles\": 3}")], {"kind": "level"},
                   "legend.json"),
    "binary level": ([("a.xsb", b"#\0#")], {}, "binary data"),
    "nothing but junk": ([("d.zip", zip_bytes({"__MACOSX/._a.png": b"x", ".DS_Store": b"x"}))],
                         {}, "no data files"),
    "a name twice": ([("a.png", png()), ("a.png", png())], {}, "given twice"),
    "a bad manifest": ([("a.png", png()), ("genforge-dataset.json", b"[1, 2]")], {},
                       "object of text fields"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_upload_is_refused_in_one_line_and_nothing_is_kept(studio, case):
    files, form, words = BAD[case]
    before = ok(studio.get("/api/datasets"))["datasets"]
    response = upload(studio, files, **form)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert words in error and "\n" not in error and str(studio.studio.home.root) not in error, error
    assert ok(studio.get("/api/datasets"))["datasets"] == before
    home = studio.studio.home
    assert not list(home.tmp.iterdir())
    assert sorted(p.name for p in home.datasets.iterdir()) == sorted(str(d["id"]) for d in before)


def test_images_arrive_as_files_with_class_folders_and_are_audited(studio):
    files = [(f"{cls}/{i}.png", png(value=v + i)) for cls, v in (("shirt", 40), ("shoe", 200))
             for i in range(3)] + [("__MACOSX/._x.png", b"fork")]
    made = ok(upload(studio, files, licence="CC0-1.0", consent="my own photos"), 201)
    dataset, audit = made["dataset"], made["audit"]
    assert dataset["kind"] == "image" and dataset["files"] == 6 and made["ignored"] == 1
    assert audit["kind"] == "audit" and audit["state"] == "queued"
    assert ok(studio.get(f"/api/datasets/{dataset['id']}/manifest"))["licence"] == "CC0-1.0"
    run_queued(studio)
    done = ok(studio.get(f"/api/jobs/{audit['id']}"))
    assert done["state"] == "done", done["error"]
    assert "6" in done["result"]["text"] and done["result"]["file"] == "audit.json"
    shown = ok(studio.get(f"/api/datasets/{dataset['id']}"))["audit"]
    assert shown["job"] == audit["id"] and shown["state"] == "done" and shown["text"]
    listed = {f["path"] for f in ok(studio.get(f"/api/datasets/{dataset['id']}/files"))["files"]}
    assert {"shirt/0.png", "shoe/2.png"} <= listed
    assert studio.get(f"/api/datasets/{dataset['id']}/files/../../studio.db").status_code in (400, 404, 422)
    assert studio.get(f"/api/datasets/{dataset['id']}/files/..%2F..%2Fstudio.db").status_code in (400, 404)


def test_a_zip_of_images_and_the_manifest_through_the_api(studio):
    made = ok(upload(studio, [("garments.zip", zip_bytes({f"x/{i}.png": png(value=i * 9)
                                                          for i in range(4)}))]), 201)
    dataset = made["dataset"]
    assert dataset["name"] == "garments" and dataset["files"] == 4
    assert ok(studio.get(f"/api/datasets/{dataset['id']}/manifest")) == {
        "licence": None, "source": None, "consent": None}
    changed = ok(studio.put(f"/api/datasets/{dataset['id']}/manifest",
                            json={"licence": "CC-BY-4.0", "source": "https://example.org"}))
    assert changed["manifest"]["licence"] == "CC-BY-4.0" and changed["audit"]["state"] == "queued"
    assert studio.put(f"/api/datasets/{dataset['id']}/manifest",
                      json={"owner": "me"}).status_code == 422
    named = ok(studio.post("/api/datasets/named", json={"name": "fashion-mnist-sample"}), 201)
    assert studio.put(f"/api/datasets/{named['dataset']['id']}/manifest",
                      json={"licence": "mine"}).status_code == 400  # built in
    for job in studio.studio.store.jobs(state="queued"):
        studio.post(f"/api/jobs/{job['id']}/stop")  # the audits need not run here
    assert studio.delete(f"/api/datasets/{dataset['id']}").status_code == 400  # no confirm
    ok(studio.delete(f"/api/datasets/{dataset['id']}", params={"confirm": dataset["id"]}))
    assert not (studio.studio.home.datasets / str(dataset["id"])).exists()


def test_music_arrives_and_a_dataset_in_use_is_not_deleted(studio):
    made = ok(upload(studio, [("a.mid", midi()), ("b.krn", (FIXTURES / "music" / "good" /
                                                            "cadence.krn").read_bytes())]), 201)
    assert made["dataset"]["kind"] == "music"
    dataset = made["dataset"]["id"]
    refused = studio.delete(f"/api/datasets/{dataset}", params={"confirm": dataset})
    assert refused.status_code == 409 and "unfinished job" in refused.json()["error"]
    studio.post(f"/api/jobs/{made['audit']['id']}/stop")
    ok(studio.delete(f"/api/datasets/{dataset}", params={"confirm": dataset}))


def test_levels_from_upload_to_completed_levels(studio):
    """XSB upload -> audit -> train -> an uploaded partial level completed, kept tiles exact."""
    made = ok(upload(studio, [("tiny.xsb", (FIXTURES / "levels" / "sokoban" / "tiny.xsb")
                               .read_bytes())]), 201)
    dataset = made["dataset"]
    assert dataset["kind"] == "level"
    train = ok(studio.post("/api/jobs/train", json={
        "data": dataset["id"], "options": {"steps": 2, "level_size": "8",
                                           **{k: v for k, v in TINY.items() if k != "resolution"}}}), 201)
    run_queued(studio)
    assert ok(studio.get(f"/api/jobs/{made['audit']['id']}"))["state"] == "done"
    assert ok(studio.get(f"/api/jobs/{train['id']}"))["state"] == "done"
    partial = ok(studio.post("/api/inputs", files={"file": ("p.xsb", b"#####\n#@??#\n#?.?#\n#####\n")},
                             data={"kind": "level"}), 201)
    wrong = studio.post("/api/jobs/harmonize", json={"model": train["id"], "input": partial["id"]})
    assert wrong.status_code == 400 and "level file" in wrong.json()["error"]
    job = ok(studio.post("/api/jobs/complete", json={"model": train["id"], "input": partial["id"],
                                                     "params": {"n": 2}, "sampling": {"steps": 3}}), 201)
    run_queued(studio)
    done = ok(studio.get(f"/api/jobs/{job['id']}"))
    assert done["state"] == "done", done["error"]
    log = studio.get(f"/api/jobs/{job['id']}/files/out/generation.json").json()
    assert len(log["items"]) == 2 and log["c2pa"]["signed"]
    bad_input = studio.post("/api/inputs", files={"file": ("p.zip", zip_bytes({"a.xsb": b"#"}))})
    assert bad_input.status_code == 400


def test_a_legend_is_a_game_or_a_file_of_the_dataset(studio):
    grids = FIXTURES / "levels" / "grids"
    made = ok(upload(studio, [("a.txt", (grids / "a.txt").read_bytes()),
                              ("b.txt", (grids / "b.txt").read_bytes()),
                              ("legend.json", (grids / "legend.json").read_bytes())],
                     kind="level"), 201)
    dataset = made["dataset"]["id"]
    for legend in ("/etc/passwd", "../../token", "../1/legend.json"):
        response = studio.post("/api/jobs/audit", json={"data": dataset, "options": {"legend": legend}})
        assert response.status_code == 400 and "legend" in response.json()["error"], response.text
    ok(studio.post("/api/jobs/audit", json={"data": dataset, "options": {"legend": "legend.json"}}), 201)
    ok(studio.post("/api/jobs/audit", json={"data": dataset, "options": {"legend": "sokoban"}}), 201)
    named = studio.post("/api/jobs/audit", json={"data": "sokoban", "options": {"legend": "x.json"}})
    assert named.status_code == 400
    for job in studio.studio.store.jobs(state="queued"):
        studio.post(f"/api/jobs/{job['id']}/stop")
