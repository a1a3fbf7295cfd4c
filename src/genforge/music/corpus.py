"""Reading symbolic music: folders or files of MusicXML, MIDI and Humdrum, or the Bach chorales
that ship inside music21 (`bach-chorales`), as whole pieces on the 16th-note grid.

Each readable piece becomes a `Piece` (name, integer grid [rows, T], the steps where full 4/4 bars
start). Files that are not music, have no notes, are not in 4/4, or (for SATB) are not strictly
four monophonic parts are skipped with a reason, never raised. Every file is parsed in a forked
child with a time budget (by its size) and a memory limit, so no upload can hang or exhaust the
process (music.bounded). music21 is slow (the 400-odd chorales take half a minute), so the
pieces are cached as one .npz under $GENFORGE_CACHE/music (or ~/.cache/genforge/music), keyed by
the music21 version, the representation and the file list.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io, progress
from . import representation as rep
from .bounded import Unreadable
from .bounded import run as bounded_run

EXTENSIONS = (".mid", ".midi", ".mxl", ".xml", ".musicxml", ".krn")
BACH = "bach-chorales"
CACHE_VERSION = 1  # bump when the encoding of cached pieces changes


@dataclass
class Piece:
    """One work on the grid: SATB codes [4, T] or a piano roll [88, T], and its full-bar starts."""

    name: str
    grid: np.ndarray
    bar_starts: np.ndarray  # int64 steps where a complete 4/4 bar begins


@dataclass
class Corpus:
    """The pieces that could be used, what was looked at, and why the others were skipped."""

    pieces: list[Piece]
    found: int
    skipped: list[tuple[str, str]]       # (path, reason)
    unreadable: int                      # of the skipped: files that are corrupt or not music
    seconds: float = 0.0                 # time to read (parse, or load from the cache)
    cached: bool = False


class Skip(Exception):
    """A file that is readable music but unsuitable (no notes, metre, parts): its reason."""


def find_music(root: Path) -> list[Path]:
    """Music files under root (or root itself), recursively, hidden files skipped, sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        found += [Path(folder, f) for f in filenames
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTENSIONS]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def bach_chorale_paths() -> list[Path]:
    """The Bach files in music21's corpus that hold notes (its .rntxt files are analyses).

    Found by location rather than through music21.corpus so that a cached open never imports
    music21 (about a second)."""
    from importlib.util import find_spec
    spec = find_spec("music21")
    if spec is None or spec.origin is None:
        raise ImportError("music21 is not installed: pip install music21")
    folder = Path(spec.origin).parent / "corpus" / "bach"
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS),
                  key=lambda p: p.name)


def work_name(path: Path, root: Path | None) -> str:
    """A piece's name: its path under root without the extension (the file stem for one file)."""
    rel = path.relative_to(root) if root is not None and root != path else Path(path.name)
    return rel.with_suffix("").as_posix()


def parse(path: Path):
    """A music21 score from a file; raises whatever music21 raises on a bad file. Never through
    music21's pickle cache (its scratch folder): genforge loads no pickles."""
    from music21 import converter, stream
    score = converter.parse(str(path), forceSource=True, storePickle=False)
    if not isinstance(score, stream.Score):  # a single part or an Opus: make it a score
        if isinstance(score, stream.Opus):
            score = score.scores[0] if score.scores else stream.Score()
        else:
            score = stream.Score([score])
    return score


def _check_metre(score) -> None:
    """Raise Skip unless every time signature is 4/4 (none at all counts as MIDI's default 4/4)."""
    from music21 import meter
    for ts in score.recurse().getElementsByClass(meter.TimeSignature):
        if (ts.numerator, ts.denominator) != (4, 4):
            raise Skip(f"time signature {ts.ratioString} not supported (4/4 only)")


def _step(quarters: float) -> int:
    """The grid step nearest an offset in quarter notes (triplets and 32nds are rounded)."""
    return int(round(float(quarters) * rep.STEPS_PER_QUARTER))


def part_notes(part, voice: int) -> list[rep.Note]:
    """Notes of one music21 part on the grid (ties merged, grace notes dropped, chords expanded)."""
    notes = []
    for el in part.stripTies().flatten().notes:
        start = _step(el.offset)
        end = _step(el.offset + el.quarterLength)
        if end <= start:
            continue  # grace notes and notes shorter than half a 16th
        for p in el.pitches:
            notes.append(rep.Note(int(p.midi), start, end, voice))
    return notes


def bar_starts(score, steps: int) -> np.ndarray:
    """Steps where a full 4/4 bar starts: each full measure, plus a bar split in two by a repeat
    (3 + 1 beats) when it lies on the same 16-step downbeat grid; a pickup is not a bar. Every 16
    steps when the score has no measures (MIDI)."""
    from music21 import stream
    measures = list(score.parts[0].getElementsByClass(stream.Measure)) if score.parts else []
    full = [_step(m.offset) for m in measures if abs(m.duration.quarterLength - 4.0) < 1e-6]
    if not full:
        return np.arange(0, steps - rep.STEPS_PER_BAR + 1, rep.STEPS_PER_BAR, dtype=np.int64)
    anchor = min(full)
    starts = set(full) | {s for s in (_step(m.offset) for m in measures)
                          if (s - anchor) % rep.STEPS_PER_BAR == 0}
    return np.array(sorted(s for s in starts if s + rep.STEPS_PER_BAR <= steps), dtype=np.int64)


def _named_voices(parts) -> list | None:
    """Parts placed by their names (soprano, alto, tenor, bass; None for a missing voice), or
    None unless every part is named as one distinct voice."""
    names = [(p.partName or "").strip().lower() for p in parts]
    if len(set(names)) != len(names) or not set(names) <= set(rep.VOICES):
        return None
    return [parts[names.index(v)] if v in names else None for v in rep.VOICES]


def encode_score(score, representation: str = "satb") -> tuple[np.ndarray, np.ndarray]:
    """A music21 score as (grid, full-bar starts); raises Skip when it does not fit."""
    _check_metre(score)
    parts = [p for p in score.parts if p.recurse().notes]
    if not parts:
        raise Skip("no notes")
    if len(score.parts) == len(rep.VOICES):
        parts = list(score.parts)  # four parts, one silent: still SATB (a generated rest voice)
    elif len(parts) < len(rep.VOICES) and _named_voices(parts) is not None:
        parts = _named_voices(parts)  # MIDI readers drop silent tracks; their names place the rest
    voices = [part_notes(p, v) if p is not None else [] for v, p in enumerate(parts)]
    steps = max((n.end for notes in voices for n in notes), default=0)
    steps = max(steps, _step(score.highestTime)) if steps else 0  # keep trailing rests
    if steps == 0:
        raise Skip("no notes")
    if representation == "pianoroll":
        grid = rep.notes_to_roll([n for notes in voices for n in notes], steps)
        return grid, bar_starts(score, steps)
    if len(parts) != len(rep.VOICES):
        raise Skip(f"{len(parts)} parts with notes (strict four-part SATB needs 4)")
    for v, notes in enumerate(voices):
        ordered = sorted(notes, key=lambda n: n.start)
        if any(b.start < a.end for a, b in zip(ordered, ordered[1:])):
            raise Skip(f"part {v + 1} has chords or overlapping notes (SATB parts are monophonic)")
        outside = [n.pitch for n in notes if not rep.PITCH_LOW <= n.pitch <= rep.PITCH_HIGH]
        if outside:
            raise Skip(f"pitch {outside[0]} outside {rep.PITCH_LOW}..{rep.PITCH_HIGH}")
    grid = rep.notes_to_satb([n for notes in voices for n in notes], steps)
    return grid, bar_starts(score, steps)


def read_piece(path: Path, name: str, representation: str = "satb") -> Piece:
    """One file as a Piece, parsed in a bounded child; raises Skip (unsuitable) or Unreadable."""
    def work(path: Path) -> dict[str, np.ndarray]:
        grid, starts = encode_score(parse_bounded(path), representation)
        return {"grid": grid, "bar_starts": starts}
    arrays = bounded(work, path)
    return Piece(name, arrays["grid"], arrays["bar_starts"])


def read_parts(path: Path) -> tuple[list[list[rep.Note]], np.ndarray]:
    """The notes of each part that has notes (voice: its index among them) and every full-bar
    start up to the last note, parsed in a bounded child; raises Skip or Unreadable."""
    def work(path: Path) -> dict[str, np.ndarray]:
        score = parse_bounded(path)
        parts = [part_notes(p, v) for v, p in enumerate(p for p in score.parts if p.recurse().notes)]
        steps = max((n.end for notes in parts for n in notes), default=0)
        arrays = {f"part{k}": np.array(notes, dtype=np.int64).reshape(-1, 4)
                  for k, notes in enumerate(parts)}
        return {**arrays, "bar_starts": bar_starts(score, steps)}
    arrays = bounded(work, path)
    parts = [[rep.Note(*map(int, row)) for row in arrays[f"part{k}"]]
             for k in range(len(arrays) - 1)]
    return parts, arrays["bar_starts"]


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())[:200]
    if isinstance(error, Unreadable):  # its text already says what went wrong
        return f"not readable music ({text})"
    return f"not readable music ({type(error).__name__}{': ' + text if text else ''})"


# ---- bounded parsing (music.bounded runs it in a child) -----------------------------------------

MAX_QUARTERS = 16_384   # 4,096 bars of 4/4 (2 h at 120 bpm); a roll is then 88 x 65,536 bytes
PARSE_MEMORY = 1 << 30  # address space a parse may add to the process's
PARSE_SECONDS = 5.0     # every file's budget, plus its size at 10x music21's slowest rates seen:
SECONDS_PER_KB = {".krn": 0.2, ".mxl": 0.15}  # Humdrum 12 KB/s; .mxl unzips 25x to 1 MB/s
OTHER_SECONDS_PER_KB = 0.02  # MusicXML and MIDI: 1 MB/s and more
MAX_PARSE_SECONDS = 600.0


def parse_seconds(path: Path) -> float:
    """The time a file may take to parse: PARSE_SECONDS plus its size at the rates above."""
    rate = SECONDS_PER_KB.get(path.suffix.lower(), OTHER_SECONDS_PER_KB)
    return min(MAX_PARSE_SECONDS, PARSE_SECONDS + rate * path.stat().st_size / 1024)


def bounded(work, path: Path) -> dict[str, np.ndarray]:
    """work(path) -> arrays in a child given parse_seconds(path) and PARSE_MEMORY (bounded.run);
    Skip comes back as Skip, anything else as Unreadable."""
    import mido  # noqa: F401 - imported once here, not again in every child
    from music21 import converter  # noqa: F401
    return bounded_run(work, path, parse_seconds(path), PARSE_MEMORY, Skip)


def parse_bounded(path: Path):
    """parse(), refusing (Skip) a piece longer than MAX_QUARTERS, and a MIDI file whose header
    and events say so before music21 expands them (that is what takes minutes)."""
    if path.suffix.lower() in (".mid", ".midi"):
        _check_midi(path)
    score = parse(path)
    if score.highestTime > MAX_QUARTERS:
        raise Skip(f"lasts {float(score.highestTime):,.0f} quarter notes; at most {MAX_QUARTERS:,}")
    return score


def _check_midi(path: Path) -> None:
    """Skip a MIDI file with no ticks per quarter or events past MAX_QUARTERS (mido reads
    the events in milliseconds without expanding them)."""
    import mido
    try:
        midi = mido.MidiFile(path, clip=True)
    except Exception:  # noqa: BLE001 - stricter than music21's reader: let music21 judge it
        return
    if not 1 <= midi.ticks_per_beat < 0x8000:  # 0x8000 and above: SMPTE time, not ticks per beat
        raise Skip(f"division {midi.ticks_per_beat} is not ticks per quarter note")
    ticks = max((sum(msg.time for msg in track) for track in midi.tracks), default=0)
    if ticks / midi.ticks_per_beat > MAX_QUARTERS:
        raise Skip(f"lasts {ticks / midi.ticks_per_beat:,.0f} quarter notes; at most "
                   f"{MAX_QUARTERS:,}")


def cache_dir() -> Path:
    """Where parsed corpora are cached: $GENFORGE_CACHE/music or ~/.cache/genforge/music."""
    return io.cache_dir("music")


def cache_key(paths: list[Path], representation: str) -> str:
    """sha256 over music21's version, the representation and each file's path, size and mtime."""
    from importlib.metadata import version  # cheaper than importing music21 (about a second)
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, version("music21"), representation,
                                        rep.PITCH_LOW, rep.PITCH_HIGH]).encode())
    for p in paths:
        st = p.stat()
        digest.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _save(path: Path, corpus: Corpus) -> None:
    grids = [p.grid for p in corpus.pieces]
    rows = grids[0].shape[0] if grids else 0
    arrays = {
        "names": np.array([p.name for p in corpus.pieces], dtype=str),
        "grid": np.concatenate(grids, axis=1) if grids else np.zeros((rows, 0), np.uint8),
        "lengths": np.array([g.shape[1] for g in grids], dtype=np.int64),
        "bar_starts": np.concatenate([p.bar_starts for p in corpus.pieces] or [np.zeros(0, np.int64)]),
        "bar_counts": np.array([len(p.bar_starts) for p in corpus.pieces], dtype=np.int64),
        "skipped": np.array(corpus.skipped, dtype=str).reshape(-1, 2),
        "counts": np.array([corpus.found, corpus.unreadable], dtype=np.int64),
    }

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez_compressed(f, **arrays)
    io.write_with(path, write)


def _load(path: Path) -> Corpus:
    with np.load(path) as z:
        ends, bar_ends = np.cumsum(z["lengths"]), np.cumsum(z["bar_counts"])
        pieces = [Piece(str(name), z["grid"][:, e - n:e], z["bar_starts"][b - m:b])
                  for name, e, n, b, m in zip(z["names"], ends, z["lengths"], bar_ends,
                                              z["bar_counts"])]
        found, unreadable = (int(x) for x in z["counts"])
        skipped = [(str(p), str(r)) for p, r in z["skipped"]]
    return Corpus(pieces, found, skipped, unreadable, cached=True)


def read_corpus(source: str | Path, representation: str = "satb", use_cache: bool = True,
                cache: Path | None = None) -> Corpus:
    """Every usable piece of `bach-chorales`, a folder or one file, parsed once then cached."""
    start = time.perf_counter()
    if str(source) == BACH:
        paths, root = bach_chorale_paths(), None
    else:
        root = Path(source).expanduser()
        paths = find_music(root)
    cache_file = (Path(cache) if cache else cache_dir()) / f"{cache_key(paths, representation)}.npz"
    if use_cache and cache_file.exists():
        try:
            corpus = _load(cache_file)
            corpus.seconds = time.perf_counter() - start
            return corpus
        except Exception:  # a damaged cache is rebuilt, not trusted
            pass
    pieces, skipped, unreadable = [], [], 0
    with progress.task("parse", total=len(paths), unit="file", source=str(source)) as task:
        for done, path in enumerate(paths, 1):
            try:
                pieces.append(read_piece(path, work_name(path, root), representation))
            except Skip as why:
                skipped.append((str(path), str(why)))
            except Exception as e:  # music21's readers raise many types on corrupt input
                skipped.append((str(path), _reason(e)))
                unreadable += 1
            task.update(done, pieces=len(pieces), skipped=len(skipped))
    corpus = Corpus(pieces, len(paths), skipped, unreadable)
    if use_cache and paths:
        _save(cache_file, corpus)
    corpus.seconds = time.perf_counter() - start
    return corpus


def work_split(name: str) -> str:
    """A split fixed by a name: sha256(name) mod 10 is 0 for test, 1 for validation, else train."""
    bucket = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


TUNE_NOTES = 12  # soprano notes whose intervals name a tune


def tune_key(piece: Piece) -> str:
    """What decides a piece's split: for SATB the intervals of the soprano's first TUNE_NOTES
    notes (the same chorale tune harmonised in several cantatas, in any key, shares one key:
    the 328 four-four chorales hold 233 tunes), else the piece's name."""
    if piece.grid.shape[0] != len(rep.VOICES):
        return piece.name
    soprano = [n.pitch for n in rep.satb_to_notes(piece.grid[:1])][:TUNE_NOTES + 1]
    if len(soprano) < 2:
        return piece.name
    return "tune:" + ",".join(str(b - a) for a, b in zip(soprano, soprano[1:]))


def piece_split(piece: Piece) -> str:
    """train, validation or test for a whole piece: work_split of its tune_key, so no crop,
    transposition or re-harmonisation of one tune lands in two splits."""
    return work_split(tune_key(piece))
