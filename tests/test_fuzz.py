"""Fuzzing every reader of user files, the CI part of benchmarks/fuzz.py: seeded mutations of small
real inputs (images, MIDI, MusicXML, Humdrum, melodies, XSB, KGoldrunner, VGLC grids, legends,
exported model configs, safetensors, IDX), each run in a child limited in time and memory, must
load, fail in one genforge line naming the file, or be skipped with a reason. A failure prints
the case and the command that replays it."""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from genforge.music import corpus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fuzz  # noqa: E402

# Inputs per reader, sized so the whole file takes about a minute on two cores (each input costs
# a fork; music21 is the slow reader); benchmarks/fuzz.py --minutes N runs the same cases first,
# then far more.
COUNTS = {"image": 200, "midi": 40, "musicxml": 80, "humdrum": 24, "melody": 40, "xsb": 250,
          "kgoldrunner": 200, "vglc": 250, "legend": 250, "model-config": 250,
          "safetensors": 200, "idx": 200}
SECONDS = 8          # a hang: longer than this (music: longer than its parse budget + 2 s)
MEMORY_MIB = 1536    # address space an input may add before allocations fail
GROWTH_MIB = 768     # resident memory an input may add


@pytest.fixture(scope="module", autouse=True)
def warm():
    fuzz.warm_up([fuzz.TARGETS[name] for name in COUNTS])


@pytest.mark.parametrize("reader", sorted(COUNTS))
def test_every_mutated_input_loads_fails_cleanly_or_is_skipped(reader, monkeypatch):
    # A parse gets at most 3 s here (its size may allow minutes): the children inherit it.
    monkeypatch.setattr(corpus, "MAX_PARSE_SECONDS", 3.0)
    target, kinds, failures = fuzz.TARGETS[reader], Counter(), []
    for case in fuzz.cases(target, seed=0, count=COUNTS[reader]):
        outcome = fuzz.attempt(target, case, SECONDS, MEMORY_MIB)
        kinds[outcome.kind] += 1
        if outcome.kind in ("crash", "hang") or outcome.growth_mib > GROWTH_MIB:
            failures.append(f"{outcome.kind}: {outcome.detail[:300]} ({outcome.seconds:.1f} s, "
                            f"+{outcome.growth_mib:.0f} MiB)\n    {case.describe()}")
    assert not failures, f"{len(failures)} of {COUNTS[reader]} inputs:\n" + "\n".join(failures[:5])
    # Not vacuous: some mutated inputs still load, and some are refused or skipped.
    assert kinds["loaded"] >= 3 and kinds["error"] + kinds["skipped"] >= 3, dict(kinds)


def test_the_cases_are_the_same_every_run():
    target = fuzz.TARGETS["xsb"]
    first = [(c.recipe, c.data) for c in fuzz.cases(target, seed=0, count=50)]
    assert first == [(c.recipe, c.data) for c in fuzz.cases(target, seed=0, count=50)]
    assert first != [(c.recipe, c.data) for c in fuzz.cases(target, seed=1, count=50)]
    assert len({data for _, data in first}) > 40  # and they differ from each other


def _raise(folder, path, variant):
    return {"missing": 1}["key"]


def _sleep(folder, path, variant):
    time.sleep(60)


def _hoard(folder, path, variant):
    return len(bytearray(3 << 30))  # more than the child's address space allows


def _grow(folder, path, variant):
    block = bytearray(900 << 20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page: resident, not just mapped
    return "loaded"


def _unnamed(folder, path, variant):
    from genforge.errors import DataError
    raise DataError("something is wrong")


@pytest.mark.parametrize("run, kind, detail", [
    (_raise, "crash", "KeyError: 'key'"), (_sleep, "hang", "still running after 5 s"),
    (_hoard, "crash", "MemoryError"), (_grow, "loaded", ""),
    (_unnamed, "crash", "error names no file: something is wrong")])
def test_the_harness_reports_what_it_must(run, kind, detail):
    target = fuzz.Target("probe", lambda: [("x.txt", b"x")], [], run)
    outcome = fuzz.attempt(target, fuzz.Case("probe", "x.txt", [], b"x"), 5, MEMORY_MIB)
    assert (outcome.kind, outcome.detail) == (kind, detail)
    assert (outcome.growth_mib > GROWTH_MIB) == (run is _grow)
