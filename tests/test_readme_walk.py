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
