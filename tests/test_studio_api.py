"""The studio's REST API through FastAPI's test client: jobs from queueing to files, progress,
the things out (downloads, verify, detect) written exactly as the CLI writes them, the schema
built from the library's declarations, the CLI parity, and the security rules."""
from __future__ import annotations

import io
import json
import os
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")

from genforge import api  # noqa: E402
from genforge.cli import build_parser, main  # noqa: E402
from genforge.studio import parity  # noqa: E402
from genforge.studio.security import ensure_token  # noqa: E402
from studio_tools import TINY, client, ok, run_queued  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A studio with a finished tiny train job (job 1) and a generate job from it (job 2)."""
    with client(tmp_path_factory.mktemp("studio") / "home") as c:
        train = ok(c.post("/api/jobs/train", json={"data": "fashion-mnist-sample",
                                                   "options": {"steps": 2, **TINY}}), 201)
        assert run_queued(c) == [train["id"]]
        generate = ok(c.post("/api/jobs/generate", json={"model": train["id"],
                                                         "params": {"n": 4, "seed": 3}}), 201)
        assert run_queued(c) == [generate["id"]]
        c.train, c.generate = train["id"], generate["id"]
        yield c


def test_a_train_job_runs_and_reports_its_progress(studio):
    job = ok(studio.get(f"/api/jobs/{studio.train}"))
    assert job["state"] == "done" and job["attempts"] == 1 and job["error"] is None
    assert job["config"]["config"]["train"]["steps"] == 2  # the configuration, copied at queueing
    assert job["result"]["status"] == "finished" and job["result"]["model"] == "run/model"
    events = ok(studio.get(f"/api/jobs/{studio.train}/events"))["events"]
    states = [e["state"] for e in events if e["event"] == "state"]
    assert states == ["queued", "running", "done"]
    train = [e for e in events if e.get("task") == "train"]
    assert train[0]["status"] == "start" and train[-1]["status"] == "end"
    assert train[-1]["done"] == 2 and train[-1]["total"] == 2
    previews = [e for e in train if "preview" in e["info"]]
    assert previews and previews[0]["info"]["preview"].startswith("run/samples/")
    assert previews[0]["preview_url"] == f"/api/jobs/{studio.train}/files/{previews[0]['info']['preview']}"
    # the newest preview, as a URL the pages can show
    after = ok(studio.get(f"/api/jobs/{studio.train}/events", params={"after": events[2]["id"]}))
    assert after["events"] == events[3:] and after["next"] == events[-1]["id"]


def test_the_preview_of_a_running_job_has_a_url(studio):
    job = studio.studio.store.job(studio.train)
    event = next(e for e in studio.studio.store.events(job_id=studio.train)
                 if "preview" in e.get("info", {}))
    from genforge.studio.routes.common import job_view
    view = job_view({**job, "last_event": event})
    assert view["progress"]["preview_url"] == f"/api/jobs/{studio.train}/files/{event['info']['preview']}"
    assert studio.get(view["progress"]["preview_url"]).headers["content-type"] == "image/png"


def test_a_job_s_stream_sends_every_event_then_ends(studio):
    with studio.stream("GET", f"/api/jobs/{studio.train}/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    ids = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("id: ")]
    events = studio.studio.store.events(job_id=studio.train)
    assert ids == [str(e["id"]) for e in events]
    data = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert data[-1]["state"] == "done"


def test_the_queue_stream_follows_every_job(studio):
    with studio.stream("GET", "/api/stream", params={"after": 0, "seconds": 0.5}) as response:
        text = "".join(response.iter_text())
    jobs = {json.loads(line[6:])["job"] for line in text.splitlines() if line.startswith("data: ")}
    assert {studio.train, studio.generate} <= jobs


def test_generated_files_are_exactly_what_the_cli_writes(studio, tmp_path):
    job = ok(studio.get(f"/api/jobs/{studio.generate}"))
    assert job["state"] == "done" and job["result"]["items"] == 4
    files = {f["path"]: f for f in ok(studio.get(f"/api/jobs/{studio.generate}/files"))["files"]}
    assert {"out/grid.png", "out/generation.json", "out/000003.png"} <= set(files)  # by seed
    model = studio.studio.home.job_folder(studio.train) / "run" / "model"
    # the studio shares what it makes: small images get a marked display copy by default
    assert {"out/000003-display.png", "out/000006-display.png"} <= set(files)
    assert main(["generate", str(model), "-n", "4", "--seed", "3", "--out", str(tmp_path / "cli"),
                 "--display-size", "256", "--progress", "none"]) == 0
    for name in ("000003.png", "000006.png"):
        mine = studio.get(files[f"out/{name}"]["url"]).content
        theirs = (tmp_path / "cli" / name).read_bytes()
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(mine))),
                              np.asarray(Image.open(io.BytesIO(theirs))))
        assert json.loads(Image.open(io.BytesIO(mine)).text["genforge"])["seed"] == \
            json.loads(Image.open(io.BytesIO(theirs)).text["genforge"])["seed"]
    log = studio.get(files["out/generation.json"]["url"]).json()
    cli = json.loads((tmp_path / "cli" / "generation.json").read_text())
    assert log.pop("created") and cli.pop("created")
    assert log == cli  # the same model, the same record: signer, watermark, items, sampling
    assert log["c2pa"]["signed"] and [i["seed"] for i in log["items"]] == [3, 4, 5, 6]


def test_verify_and_detect_take_uploaded_files(studio):
    url = f"/api/jobs/{studio.generate}/files/out/000003.png"
    png = studio.get(url).content
    verified = ok(studio.post("/api/verify", files=[("files", ("mine.png", png, "image/png"))]))
    assert verified["ok"] and verified["reports"][0]["path"] == "mine.png"
    assert verified["reports"][0]["claim_generator"].startswith("genforge")
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, format="PNG")
    unsigned = ok(studio.post("/api/verify", files=[("files", ("plain.png", plain.getvalue()))]))
    assert not unsigned["ok"]
    found = ok(studio.post("/api/detect", files=[("files", ("mine.png", png))],
                           data={"model": str(studio.train)}))["records"]
    assert found[0]["file"] == "mine.png" and found[0]["too_small"]  # 12x12: no room for a mark
    shown = studio.get(f"/api/jobs/{studio.generate}/files/out/000003-display.png").content
    found = ok(studio.post("/api/detect", files=[("files", ("shown.png", shown))],
                           data={"model": str(studio.train)}))["records"]
    assert found[0]["found"] and found[0]["matches_model"], found[0]
    bad = studio.post("/api/detect", files=[("files", ("x.png", b"not an image"))])
    assert bad.status_code == 400 and "not an image" in bad.json()["error"]
    assert not list(studio.studio.home.tmp.iterdir())  # the uploaded copies are gone


def test_models_info_quick_samples_and_downloads(studio):
    models = ok(studio.get("/api/models"))["models"]
    assert [m["id"] for m in models] == [studio.train]
    info = ok(studio.get(f"/api/models/{studio.train}"))["info"]
    assert info["family"] == "diffusion" and info["item_shape"] == [1, 12, 12]
    first = ok(studio.post(f"/api/models/{studio.train}/sample", json={"n": 2, "seed": 5}))
    assert {f["path"] for f in first["files"]} >= {"000005.png", "000006.png", "grid.png",
                                                   "generation.json"}
    again = ok(studio.post(f"/api/models/{studio.train}/sample", json={"n": 2, "seed": 5}))
    assert again == first  # kept, not drawn again
    log = studio.get(first["log"]).json()
    assert log["c2pa"]["signed"] and [i["seed"] for i in log["items"]] == [5, 6]
    too_many = studio.post(f"/api/models/{studio.train}/sample", json={"n": 17})
    assert too_many.status_code == 422 and too_many.json()["error"].startswith("n:")
    archive = zipfile.ZipFile(io.BytesIO(studio.get(f"/api/models/{studio.train}/download").content))
    names = set(archive.namelist())
    assert {"model/model.safetensors", "model/config.json", "model/manifest.json"} <= names
    job_zip = zipfile.ZipFile(io.BytesIO(
        studio.get(f"/api/jobs/{studio.generate}/download", params={"path": "out"}).content))
    assert "out/generation.json" in job_zip.namelist()
    assert not list(studio.studio.home.tmp.iterdir())  # the zips are removed once sent


def test_mistakes_are_one_line_4xx_errors(studio):
    cases = [
        (studio.post("/api/jobs/train", json={"data": "fashion-mnist-sample",
                                              "options": {"resolution": "big"}}), 422, "options.resolution"),
        (studio.post("/api/jobs/train", json={"data": "fashion-mnist-sample",
                                              "options": {"steps": 2, "lr": -1}}), 400, "lr"),
        (studio.post("/api/jobs/train", json={"data": "nowhere"}), 422, "neither a dataset id"),
        (studio.post("/api/jobs/train", json={"data": 99}), 404, "no dataset 99"),
        (studio.post("/api/jobs/train", json={"data": "sokoban", "options": {"bogus": 1}}), 422,
         "options.bogus"),
        (studio.post("/api/jobs/train", json={"data": "fashion-mnist-sample",
                                              "options": {"root": "/etc"}}), 422, "options.root"),
        (studio.post("/api/jobs/generate", json={"model": studio.generate}), 400,
         "a finished train or distill job is needed"),
        (studio.post("/api/jobs/generate", json={"model": 404}), 404, "no job 404"),
        (studio.post("/api/jobs/harmonize", json={"model": studio.train, "input": 7}), 404, "no input"),
        (studio.get("/api/jobs/12345"), 404, "no job 12345"),
        (studio.post(f"/api/jobs/{studio.train}/stop"), 409, "nothing to stop"),
        (studio.post(f"/api/jobs/{studio.generate}/resume"), 409, "only train and distill jobs resume"),
        (studio.delete(f"/api/jobs/{studio.generate}"), 400, f"?confirm={studio.generate}"),
        (studio.post("/api/jobs/train", content=b"{", headers={"content-type": "application/json"}),
         422, "JSON"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (words, response.text)
        error = response.json()["error"]
        assert words in error and "\n" not in error and "Traceback" not in error, error


def test_a_job_s_configuration_is_copied_when_it_is_queued(studio, tmp_path):
    body = {"data": "fashion-mnist-sample", "options": {"steps": 2, **TINY}}
    job = ok(studio.post("/api/jobs/train", json=body), 201)
    body["options"]["steps"] = 500  # the request changes afterwards: the job does not
    assert studio.studio.store.job(job["id"])["call"]["config"]["train"]["steps"] == 2
    assert ok(studio.post(f"/api/jobs/{job['id']}/stop"))["state"] == "stopped"
    resumed = ok(studio.post(f"/api/jobs/{job['id']}/resume"))
    assert resumed["state"] == "queued"
    ok(studio.post(f"/api/jobs/{job['id']}/stop"))
    assert ok(studio.delete(f"/api/jobs/{job['id']}", params={"confirm": job["id"]}))["deleted"]
    assert studio.get(f"/api/jobs/{job['id']}").status_code == 404
    assert not studio.studio.home.job_folder(job["id"]).exists()


def test_a_failed_job_says_why_in_one_line_and_can_be_retried(studio):
    job = ok(studio.post("/api/jobs/generate", json={"model": studio.train,
                                                     "sampling": {"truncation": 0.5}}), 201)
    run_queued(studio)
    failed = ok(studio.get(f"/api/jobs/{job['id']}"))
    assert failed["state"] == "failed" and "truncation" in failed["error"]
    assert "\n" not in failed["error"]
    assert ok(studio.post(f"/api/jobs/{job['id']}/retry"))["state"] == "queued"
    ok(studio.post(f"/api/jobs/{job['id']}/stop"))
    log = studio.get(f"/api/jobs/{job['id']}/log").text
    assert f"job {job['id']} (generate), attempt 1" in log


def test_no_path_parameter_leaves_the_studio_home(studio):
    home = studio.studio.home
    outside = home.root.parent / "secret.txt"
    outside.write_text("TOP-SECRET-CONTENT")
    run = home.job_folder(studio.train) / "run"
    os.symlink(outside, run / "link.txt")
    os.symlink(home.root.parent, run / "up")
    try:
        for path in ("../../studio.db", "..%2F..%2Fstudio.db", "%2e%2e/%2e%2e/token",
                     "run/../../../secret.txt", "/etc/passwd", "%2Fetc%2Fpasswd",
                     "run/link.txt", "run/up/secret.txt", "run/%00x"):
            raw = f"/api/jobs/{studio.train}/files/{path}"
            response = studio.get(raw)
            assert response.status_code in (400, 404, 422), (raw, response.status_code)
            assert "TOP-SECRET" not in response.text
        for path in ("../..", "/etc", "run/up"):
            response = studio.get(f"/api/jobs/{studio.train}/download", params={"path": path})
            assert response.status_code in (400, 404), (path, response.text)
        listed = {f["path"] for f in ok(studio.get(f"/api/jobs/{studio.train}/files"))["files"]}
        assert "run/link.txt" not in listed
    finally:
        (run / "link.txt").unlink()
        (run / "up").unlink()


def test_the_schema_comes_from_the_library_s_declarations(studio):
    schema = ok(studio.get("/openapi.json"))
    defs = schema["components"]["schemas"]
    declared = {d.name: d for group in api.data_sections().values() for d in group}
    for name in ("resolution", "bars", "legend", "level_fit"):
        field = defs["TrainOptions"]["properties"][name]
        assert field["description"].startswith(declared[name].help)
    assert defs["TrainOptions"]["properties"]["level_fit"]["enum"] == ["pad", "crop", "none"]
    assert "root" not in defs["TrainOptions"]["properties"]  # a server path: not offered
    sampling = {d.name for cls in api.sampling_declarations().values()
                for d in __import__("genforge.options").options.declarations(cls)}
    assert set(defs["SamplingOptions"]["properties"]) == sampling
    assert "seeds" in defs["InterpolateParams"]["required"]
    for kind in ("audit", "train", "features", "generate", "evaluate", "harmonize", "complete"):
        assert f"/api/jobs/{kind}" in schema["paths"]
    assert studio.get("/docs").status_code == 200


def test_every_cli_sub_command_has_an_endpoint_or_a_reason(studio):
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    mapped = set(parity.ENDPOINTS) | {c.split()[0] for c in parity.CLI_ONLY}
    assert commands == mapped
    routes = {f"{method.upper()} {path}" for path, methods in
              ok(studio.get("/openapi.json"))["paths"].items() for method in methods}
    for command, endpoints in parity.ENDPOINTS.items():
        for endpoint in endpoints:
            assert endpoint in routes, (command, endpoint)
    assert ok(studio.get("/api/parity"))["cli_only"].keys() == parity.CLI_ONLY.keys()


def test_request_bodies_are_limited(studio):
    huge = studio.post("/api/jobs/train", content=b" " * ((1 << 20) + 1),
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "larger than this endpoint" in huge.json()["error"]
    too_big = studio.post("/api/inputs", files={"file": ("m.mid", b"MThd" + b"\0" * (16 << 20))})
    assert too_big.status_code == 413


def test_loopback_refuses_other_hosts_and_cross_site_requests(studio):
    assert studio.get("/api/health", headers={"host": "evil.example"}).status_code == 403
    cross = studio.post("/api/jobs/train", json={"data": "sokoban"},
                        headers={"origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-site" in cross.json()["error"]
    for origin in ("null", "http://localhost:9999", "http://localhost:x", "http://127.0.0.1"):
        refused = studio.post("/api/jobs/train", json={"data": "sokoban"}, headers={"origin": origin})
        assert refused.status_code == 403, origin
    same = studio.post("/api/jobs/train", json={"data": 1234}, headers={"origin": "http://localhost"})
    assert same.status_code == 404  # let through: no dataset 1234


def test_another_host_requires_the_token(tmp_path):
    token, made = ensure_token(tmp_path / "token")
    assert made and stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert ensure_token(tmp_path / "token") == (token, False)  # made once
    with client(tmp_path / "home", token=token) as c:
        assert c.get("/api/health").status_code == 401
        assert c.get("/api/health", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert ok(c.get("/api/health", headers={"authorization": f"Bearer {token}"}))["status"] == "ok"
        assert c.get("/api/health", params={"token": token}).status_code == 200
        assert c.get("/openapi.json").status_code == 401  # every request


def test_no_pickles_anywhere_in_the_studio():
    source = "\n".join(p.read_text() for p in
                       (api.__file__ and __import__("pathlib").Path(api.__file__).parent / "studio")
                       .rglob("*.py"))
    for word in ("pickle", "torch.load", "marshal", "shelve"):
        assert word not in source


def test_features_then_evaluate_with_that_encoder(studio, monkeypatch):
    monkeypatch.setenv("GENFORGE_CACHE", str(studio.studio.home.cache))
    features = ok(studio.post("/api/jobs/features", json={
        "data": "fashion-mnist-sample", "params": {"steps": 2}, "options": {"resolution": 12}}), 201)
    run_queued(studio)
    encoder = ok(studio.get(f"/api/jobs/{features['id']}"))
    assert encoder["state"] == "done", encoder["error"]
    assert encoder["result"]["encoder"].startswith(str(studio.studio.home.cache))
    evaluation = ok(studio.post("/api/jobs/evaluate", json={
        "model": studio.train, "data": "fashion-mnist-sample", "features": features["id"],
        "params": {"n": 64, "fd_resamples": 2, "metrics": ["fd", "memorisation"]},
        "options": {"resolution": 12}, "sampling": {"steps": 4}}), 201)
    assert studio.post("/api/jobs/evaluate", json={
        "model": studio.train, "data": "fashion-mnist-sample", "features": studio.train}
    ).status_code == 400  # a train job is no encoder
    run_queued(studio)
    result = ok(studio.get(f"/api/jobs/{evaluation['id']}"))
    assert result["state"] == "done", result["error"]
    metrics = [r["metric"] for r in result["result"]["records"]]
    assert metrics[0] == "fd" and "memorised_share" in metrics
    assert result["result"]["report"] == "out/report.html"
    assert studio.get(f"/api/jobs/{evaluation['id']}/files/out/report.html").status_code == 200


def test_a_crash_between_keeping_files_and_recording_them_leaves_nothing(tmp_path):
    home = tmp_path / "home"
    with client(home):
        pass
    (home / "datasets" / "7").mkdir()   # moved into place, then the row never committed
    (home / "tmp" / "half-an-upload").mkdir()
    (home / "datasets" / "mine").mkdir()  # not the studio's: left alone
    with client(home):
        assert not (home / "datasets" / "7").exists() and not list((home / "tmp").iterdir())
        assert (home / "datasets" / "mine").exists()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_the_core_never_imports_the_web_packages(tmp_path):
    """The CLI and the library run without FastAPI; without it, `genforge studio` says what to
    install, in one line."""
    import subprocess
    import sys
    code = ("import sys, genforge.cli; genforge.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'uvicorn', 'starlette', 'pydantic')), flush=True); "
            "sys.modules['fastapi'] = None; "
            f"sys.exit(genforge.cli.main(['studio', '--home', {str(tmp_path)!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "[]" and out.returncode == 2, out.stderr
    assert out.stderr.strip() == ("genforge: error: the studio needs its extra packages (fastapi "
                                  "is missing): pip install 'genforge[studio]'")


def test_progress_updates_are_stored_at_most_once_a_second_but_never_a_new_preview(studio):
    from genforge.studio.worker import Worker
    job = studio.studio.store.enqueue({"kind": "train", "request": {}, "call": {}})
    worker = Worker(studio.studio.home, job["id"], "nobody", standalone=False)
    worker.folder.mkdir(parents=True, exist_ok=True)
    preview = str(worker.folder / "run" / "samples" / "step-0000010.png")
    for done, info in ((1, {}), (2, {}), (3, {"preview": preview}), (4, {"preview": preview}),
                       (5, {"preview": preview})):
        worker.report(api.Event("train", "update", done, 10, "step", info=info))
    worker.report(api.Event("train", "end", 10, 10, "step"))
    stored = [(e["done"], e["status"]) for e in studio.studio.store.events(job_id=job["id"])
              if e["event"] == "progress"]
    assert stored == [(1, "update"), (3, "update"), (10, "end")]
    last = studio.studio.store.events(job_id=job["id"])[-2]
    assert last["info"]["preview"] == "run/samples/step-0000010.png"  # relative to the job
    studio.post(f"/api/jobs/{job['id']}/stop")


def test_a_distill_job_tunes_a_trained_model_that_then_samples_in_one_step(studio):
    body = {"model": studio.train, "options": {"steps": 2, "stage_steps": 1, "batch_size": 8,
                                                "preview_count": 4, "device": "cpu",
                                                "precision": "fp32"}}
    job = ok(studio.post("/api/jobs/distill", json=body), 201)
    assert run_queued(studio) == [job["id"]]
    done = ok(studio.get(f"/api/jobs/{job['id']}"))
    assert done["state"] == "done" and done["result"]["model"] == "run/model"
    assert done["result"]["tuned_from"]["weights_sha256"]
    assert job["id"] in [m["id"] for m in ok(studio.get("/api/models"))["models"]]
    sample = ok(studio.post(f"/api/models/{job['id']}/sample",
                            json={"n": 2, "sampling": {"steps": 1}}))
    assert "grid.png" in {f["path"] for f in sample["files"]}
    # a distilled model cannot be distilled again, a bad step count is refused: one line each
    again = studio.post("/api/jobs/distill", json={"model": job["id"], "options": {"steps": 1}})
    assert again.status_code == 400 and "already consistency-tuned" in again.json()["error"]
    three = studio.post(f"/api/models/{job['id']}/sample", json={"n": 1, "sampling": {"steps": 3}})
    assert three.status_code == 400 and "1 or 2" in three.json()["error"]
    assert "\n" not in again.json()["error"] + three.json()["error"]
