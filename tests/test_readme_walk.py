"""The README's music and game-level commands, run as written with tiny budgets: what a new user
types after the quick start must do what the README says, with no extra options."""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from genforge.cli import main

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
# The only changes to each command: a budget of a few steps on a tiny network, a handful of items.
# Levels get 150 steps (4 s here): with fewer, --playable-only rightly gives up as hopeless.
TINY = ["--model-channels", "16", "--channel-mult", "1", "--num-blocks", "1",
        "--attn-resolutions", "", "--batch-size", "16", "--preview-count", "2",
        "--sample-every", "1000", "--device", "cpu"]


def readme_commands(section: str) -> list[list[str]]:
    """The `genforge ...` lines of the first sh block under a README section, as argv lists."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", body, re.S).group(1)
    commands = []
    for line in block.splitlines():
        line = line.split("  #")[0].strip()
        words = shlex.split(line)
        while words and "=" in words[0]:  # an environment assignment in front
            words = words[1:]
        if words and words[0] == "genforge":
            commands.append(words[1:])
    return commands


def tiny(argv: list[str], tmp: Path, files: dict[str, Path], steps: int) -> list[str]:
    """argv with the budget and counts made tiny and every path under tmp."""
    out = []
    words = iter(argv)
    for word in words:
        if word == "--minutes":
            next(words)
            out += ["--steps", str(steps), *TINY]
        elif word == "-n":
            next(words)
            out += ["-n", "2" if argv[0] != "evaluate" else "6"]
        elif word.startswith("runs/") or word in ("pieces", "settings", "levels", "completed"):
            out.append(str(tmp / word))
        else:
            out.append(str(files.get(word, word)))
    if argv[0] == "train" and "--run" not in argv:
        out += ["--run", str(tmp / "runs" / argv[1])]
    return out + (["--no-sign"] if argv[0] in ("generate", "harmonize", "complete") else [])


def run_all(commands, tmp: Path, files: dict[str, Path], capsys, steps: int) -> list[str]:
    printed = []
    for argv in commands:
        code = main(tiny(argv, tmp, files, steps) + ["--progress", "none"])
        captured = capsys.readouterr()
        assert code == 0, f"genforge {' '.join(argv)}: {captured.err}"
        printed.append(captured.out)
    return printed


def test_the_music_commands(tmp_path, capsys):
    commands = readme_commands("Music")
    assert [c[0] for c in commands] == ["train", "generate", "harmonize", "evaluate"]
    printed = run_all(commands, tmp_path, {"melody.mid": FIXTURES / "music" / "melody.mid"},
                      capsys, steps=2)
    assert "discrete" in printed[0]  # --family auto picked the measured family for music
    pieces = tmp_path / "pieces"
    assert len(list(pieces.glob("*.mid"))) == 2 and len(list(pieces.glob("*.wav"))) == 2
    assert len(list((tmp_path / "settings").glob("*.mid"))) == 2
    assert "pitch_class_entropy" in printed[3]


@pytest.mark.skipif(not Path("/usr/share/games/cavepacker/maps").exists()
                    and not os.environ.get("GENFORGE_DATA"),
                    reason="Sokoban levels come from Debian's cavepacker-data (.ci/run installs it)")
def test_the_level_commands(tmp_path, capsys, monkeypatch):
    partial = tmp_path / "partial.xsb"
    partial.write_text("#####\n#@??#\n#???#\n#####\n")
    commands = readme_commands("Game levels")
    assert [c[0] for c in commands] == ["train", "generate", "complete", "evaluate", "train"]
    if not (Path(os.environ.get("GENFORGE_DATA", "/nonexistent")) / "kgoldrunner").exists():
        commands = commands[:-1]  # Lode Runner needs kgoldrunner's files (.ci/run unpacks them)
    printed = run_all(commands, tmp_path, {"partial.xsb": partial}, capsys, steps=150)
    assert "discrete" in printed[0]
    assert "playable: 2 of" in printed[1] and len(list((tmp_path / "levels").glob("*.xsb"))) == 2
    assert "2 completions" in printed[2]
    assert "level-playability" in printed[3] or "playable" in printed[3]


def readme_curls(section: str) -> list[list[str]]:
    """The `curl ...` lines of a README section's sh blocks, as argv lists ($S kept)."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("  #")[0].strip() for block in re.findall(r"```sh\n(.*?)```", body, re.S)
             for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("curl ")]


@pytest.mark.usefixtures("one_thread")
def test_the_studio_curl_commands(tmp_path, monkeypatch):
    """Upload, train, follow, generate and download as the README's curl lines say, through the
    test client (the jobs run in this process between the requests, with a tiny budget)."""
    pytest.importorskip("fastapi")
    import io
    import json
    import zipfile

    from PIL import Image
    from studio_tools import TINY, client, run_queued
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile(tmp_path / "garments.zip", "w") as archive:
        for i in range(6):
            image = io.BytesIO()
            Image.new("L", (16, 16), 40 * i).save(image, format="PNG")
            archive.writestr(f"{'shirt' if i % 2 else 'shoe'}/{i}.png", image.getvalue())
    tiny = {'"minutes": 30': json.dumps({"steps": 2, **TINY})[1:-1], '"n": 64': '"n": 2'}
    with client(tmp_path / "home") as c:
        for argv in readme_curls("Studio"):
            method, url, form, files, body, out, words = "GET", None, {}, {}, None, None, iter(argv)
            for word in words:
                if word == "-F":
                    key, value = next(words).split("=", 1)
                    if value.startswith("@"):
                        files[key] = (value[1:], open(value[1:], "rb").read())
                    else:
                        form[key] = value
                elif word == "-d":
                    body = next(words)
                    for old, new in tiny.items():
                        body = body.replace(old, new)
                elif word in ("-H", "-X", "-o"):
                    value = next(words)
                    method = value if word == "-X" else method
                    out = value if word == "-o" else out
                elif word.startswith("$S/"):
                    url = word[2:]
            if files or form or body:
                method = "POST"
            response = c.request(method, url, files=files or None, data=form or None,
                                 content=body, headers={"content-type": "application/json"}
                                 if body else None)
            assert response.status_code < 300, (argv, response.text)
            if out:
                assert zipfile.ZipFile(io.BytesIO(response.content)).namelist(), argv
            run_queued(c)  # what a worker would do meanwhile
        jobs = {j["id"]: j["state"] for j in c.get("/api/jobs").json()["jobs"]}
        assert jobs == {1: "done", 2: "done", 3: "done"}  # the audit, the training, the samples
