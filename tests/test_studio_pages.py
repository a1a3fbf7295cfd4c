"""The studio's web pages through the test client: every page renders in every job state, the
forms are the declarations' (no option listed by hand), text from users is escaped, long
listings are paginated, and nothing on a page names the server's own paths."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("jinja2")

from genforge import api  # noqa: E402
from genforge.options import declarations  # noqa: E402
from genforge.studio.pages.render import markdown  # noqa: E402
from genforge.studio.schemas import SERVER_PATHS  # noqa: E402
from studio_tools import TINY, client, ok, run_queued, zip_bytes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A finished train job (1), a generate job from it (2), a failed job, a queued one."""
    with client(tmp_path_factory.mktemp("pages") / "home") as c:
        train = ok(c.post("/api/jobs/train", json={"data": "fashion-mnist-sample",
                                                   "options": {"steps": 2, **TINY}}), 201)
        run_queued(c)
        generate = ok(c.post("/api/jobs/generate", json={"model": train["id"],
                                                         "params": {"n": 3, "seed": 5}}), 201)
        run_queued(c)
        c.train, c.generate = train["id"], generate["id"]
        yield c


def page(c, url: str, status: int = 200) -> str:
    response = c.get(url)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert str(c.studio.home.root) not in response.text  # no server paths on a page
    return response.text


def test_every_page_renders(studio):
    home = page(studio, "/")
    assert f'href="/models/{studio.train}"' in home and 'data-live-job' in home
    assert "Run 1" in page(studio, f"/jobs/{studio.train}")
    job = page(studio, f"/jobs/{studio.generate}")
    assert job.count('class="item"') == 3 and "Download all (3 items, zip)" in job
    model = page(studio, f"/models/{studio.train}")
    assert 'id="generate-form"' in model and "Model card" in model and "walk-form" in model
    assert 'data-path="sampling.sampler"' in model and 'data-path="sampling.truncation"' not in model
    # an image model's form offers display copies, and none of music's or levels' options
    assert 'data-path="params.display_size"' in model
    for other in ("bars", "audio", "repair", "playable_only", "min_moves", "min_boxes"):
        assert f'data-path="params.{other}"' not in model
    compare = page(studio, f"/compare?runs={studio.train}")
    assert "<polyline" in compare and 'class="differs"' not in compare
    assert "Drop files here" in page(studio, "/provenance")
    assert "Upload and audit" in page(studio, "/datasets/new")
    assert "There is no job 999" in page(studio, "/jobs/999", 404)
    assert "There is no dataset 999" in page(studio, "/datasets/999", 404)
    assert "There is no model" in page(studio, f"/models/{studio.generate}", 404)


def test_a_queued_and_a_failed_job_render(studio):
    queued = ok(studio.post("/api/jobs/train", json={"data": "fashion-mnist-sample",
                                                     "options": {"steps": 1, **TINY}}), 201)
    text = page(studio, f"/jobs/{queued['id']}")
    assert 'data-job-state="queued"' in text and "<progress" in text
    ok(studio.post(f"/api/jobs/{queued['id']}/stop"))
    assert 'data-job-state="stopped"' in page(studio, f"/jobs/{queued['id']}")
    ok(studio.delete(f"/api/jobs/{queued['id']}", params={"confirm": queued["id"]}))


def test_the_new_run_form_is_the_declarations(studio):
    """Every training option a request may set has its control, and nothing else does."""
    dataset = ok(studio.post("/api/datasets/named", json={"name": "fashion-mnist-sample"}), 201)
    text = page(studio, f"/datasets/{dataset['dataset']['id']}/train")
    paths = set(re.findall(r'data-path="([\w.]+)"', text))
    kinds = api.data_sections()
    declared = {d.name for name, cls in api.config_sections().items() if name != "data"
                for d in declarations(cls)}
    declared |= {d.name for d in [*kinds["data"], *kinds["image"]]}
    expected = {f"options.{n}" for n in declared - set(SERVER_PATHS) - {"kind"}}
    assert paths == expected | {"preset", "family"}
    assert 'data-path="options.bars"' not in text  # music's options stay on music datasets
    assert "<details>" in text  # advanced options fold away


def test_dataset_page_escapes_names_and_shows_the_audit(studio):
    from io import BytesIO
    from PIL import Image
    buffer = BytesIO()
    Image.new("L", (8, 8), 7).save(buffer, format="PNG")
    upload = ok(studio.post("/api/datasets", data={"name": "<script>alert(1)</script>"},
                            files=[("files", ("a.zip", zip_bytes({"x/a.png": buffer.getvalue(),
                                                                  "x/b.png": buffer.getvalue()})))]),
                201)
    dataset = upload["dataset"]["id"]
    waiting = page(studio, f"/datasets/{dataset}")
    assert "<script>alert(1)</script>" not in waiting and "&lt;script&gt;" in waiting
    assert "Training is offered once the audit has finished" in waiting
    run_queued(studio)
    done = page(studio, f"/datasets/{dataset}")
    assert f'href="/datasets/{dataset}/train"' in done
    assert "Duplicates, side by side" in done  # two identical images
    assert done.count('<img src="/api/datasets/') >= 2


def test_listings_are_paginated(studio):
    for _ in range(27):
        studio.studio.store.enqueue({"kind": "train", "request": {"data": "x"}, "call": {}})
    first, second = page(studio, "/"), page(studio, "/?page=2")
    assert "page 1 of 2" in first and 'rel="next"' in first and "page 2 of 2" in second
    assert first.count("<tr data-live-job") == 25


def test_the_model_card_renders_as_html():
    html = markdown("---\nlicense: other\n---\n# Title\n\nsome `code` and <b>\n\n- one\n- two\n"
                    "| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<h2>Title</h2>" in html and "<code>code</code>" in html and "&lt;b&gt;" in html
    assert "<li>one</li>" in html and "<td>1</td>" in html and "license" not in html


def test_pages_use_nothing_from_elsewhere(studio):
    """Offline: no script, style, font or image from another host."""
    for url in ("/", f"/models/{studio.train}", f"/jobs/{studio.generate}", "/provenance"):
        text = page(studio, url)
        assert not re.search(r'(src|href)="(https?:)?//', text.replace('href="https://', 'X'))
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text)
    js = studio.get("/static/studio.js").text
    assert "http://" not in js and "https://" not in js


def test_job_files_show_inline_and_html_runs_sandboxed(studio):
    """The pages show what a job wrote (images, audio, an evaluation report in a frame); a
    dataset's files stay downloads."""
    response = studio.get(f"/api/jobs/{studio.generate}/files/out/000005.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("inline")
    assert response.headers["content-security-policy"] == "sandbox"


def test_a_diffusion_model_offers_a_few_step_version_that_becomes_a_model(studio):
    model = page(studio, f"/models/{studio.train}")
    assert 'id="distill-form"' in model and 'data-path="options.minutes"' in model
    tuned = ok(studio.post("/api/jobs/distill", json={"model": studio.train,
                                                      "options": {"steps": 2}}), 201)
    assert tuned["id"] in run_queued(studio, limit=100)  # and what other tests left queued
    assert ok(studio.get(f"/api/jobs/{tuned['id']}"))["state"] == "done"
    assert f'href="/models/{tuned["id"]}"' in page(studio, "/")
    assert f'href="/models/{tuned["id"]}"' in page(studio, f"/jobs/{tuned['id']}")
    page_of_tuned = page(studio, f"/models/{tuned['id']}")
    assert "A consistency model" in page_of_tuned and 'id="distill-form"' not in page_of_tuned
    assert f'value="{tuned["id"]}"' in page(studio, "/provenance")


def test_a_level_model_offers_its_filters_up_front():
    from genforge.studio.pages.routes import generate_params
    main, skipped = generate_params("level")
    assert {"playable_only", "min_moves", "min_boxes", "repair"} <= set(main)
    assert {"bars", "audio", "display_size"} <= set(skipped)
    assert "min_moves" in generate_params("image")[1]
