"""Writing items as MIDI, MusicXML and piano-roll PNG files, and reading their metadata back.

MIDI is written with mido (one track per voice, 480 ticks per quarter, a `genforge:` text event
holding the metadata as JSON); MusicXML with music21, the metadata in
<identification>/<miscellaneous>. Both are written to a temp name and renamed (genforge.io).
"""
from __future__ import annotations

import json
import re
from io import BytesIO
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw

from .. import io
from . import representation as rep

TICKS_PER_QUARTER = 480
TICKS_PER_STEP = TICKS_PER_QUARTER // rep.STEPS_PER_QUARTER
DEFAULT_TEMPO = 80.0       # quarter notes per minute; chorales are slow
METADATA_PREFIX = "genforge:"
VOICE_COLOURS = ((214, 39, 40), (255, 127, 14), (44, 160, 44), (31, 119, 180))


def _voices(item: np.ndarray) -> list[str]:
    return list(rep.VOICES) if rep.is_satb(item.shape) else ["piano"]


def midi_bytes(item, metadata: dict | None = None, tempo: float = DEFAULT_TEMPO,
               program: int = 0) -> bytes:
    """One item as a type-1 standard MIDI file: a conductor track then one track per voice."""
    import mido
    item = np.asarray(item)
    notes = rep.item_to_notes(item)
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo)),
                                mido.MetaMessage("time_signature", numerator=4, denominator=4)])
    if metadata is not None:
        conductor.append(mido.MetaMessage("text", text=METADATA_PREFIX + json.dumps(
            metadata, sort_keys=True)))
    mid.tracks.append(conductor)
    for v, name in enumerate(_voices(item)):
        channel = v if v < 9 else v + 1  # channel 10 (index 9) is drums
        events = [(n.start * TICKS_PER_STEP, 1, "note_on", n.pitch) for n in notes if n.voice == v]
        events += [(n.end * TICKS_PER_STEP, 0, "note_off", n.pitch) for n in notes if n.voice == v]
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name),
                                mido.Message("program_change", program=program, channel=channel)])
        now = 0
        for tick, _, kind, pitch in sorted(events):  # offs before ons at the same tick
            track.append(mido.Message(kind, note=pitch, velocity=80 if kind == "note_on" else 0,
                                      channel=channel, time=tick - now))
            now = tick
        # end every track at the item's length, so trailing rests are kept (and rendered)
        track.append(mido.MetaMessage("end_of_track", time=item.shape[1] * TICKS_PER_STEP - now))
        mid.tracks.append(track)
    buffer = BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def write_midi(item, path: Path, metadata: dict | None = None, tempo: float = DEFAULT_TEMPO) -> Path:
    """Write one item as a .mid file atomically."""
    return io.write_bytes(path, midi_bytes(item, metadata, tempo))


def to_score(item, title: str | None = None):
    """One item as a music21 Score in 4/4: one part per SATB voice, or one chordified piano part."""
    from music21 import chord, meter, metadata, note, stream, tempo
    item = np.asarray(item)
    notes = rep.item_to_notes(item)
    steps = item.shape[1]
    score = stream.Score()
    score.metadata = metadata.Metadata(title=title or "genforge")
    for v, name in enumerate(_voices(item)):
        part = stream.Part(id=name)
        part.partName = name.capitalize()
        part.insert(0, meter.TimeSignature("4/4"))
        if v == 0:
            part.insert(0, tempo.MetronomeMark(number=DEFAULT_TEMPO))
        mine = [n for n in notes if n.voice == v]
        if rep.is_satb(item.shape):
            for n in mine:
                part.insert(n.start / rep.STEPS_PER_QUARTER,
                            note.Note(n.pitch, quarterLength=(n.end - n.start) / rep.STEPS_PER_QUARTER))
        else:  # polyphony in one part: group by start so chordify can slice the overlaps
            for start in sorted({n.start for n in mine}):
                group = [n for n in mine if n.start == start]
                for end in sorted({n.end for n in group}):
                    pitches = [n.pitch for n in group if n.end == end]
                    part.insert(start / rep.STEPS_PER_QUARTER, chord.Chord(
                        pitches, quarterLength=(end - start) / rep.STEPS_PER_QUARTER))
            part = part.chordify()
            part.partName = name.capitalize()
        end = max((n.end for n in mine), default=0)
        if end < steps:  # an explicit final rest, so trailing silence survives the round trip
            part.insert(end / rep.STEPS_PER_QUARTER,
                        note.Rest(quarterLength=(steps - end) / rep.STEPS_PER_QUARTER))
        part.makeRests(fillGaps=True, inPlace=True)
        score.insert(0, part)
    return score


def musicxml_bytes(item, metadata: dict | None = None, title: str | None = None) -> bytes:
    """One item as uncompressed MusicXML, metadata (JSON) in a miscellaneous-field 'genforge'."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter
    text = GeneralObjectExporter(to_score(item, title)).parse().decode("utf-8")
    if metadata is not None:
        field = ('<miscellaneous><miscellaneous-field name="genforge">'
                 f"{escape(json.dumps(metadata, sort_keys=True))}</miscellaneous-field>"
                 "</miscellaneous>")
        # miscellaneous is the last child of <identification> in the MusicXML schema
        text = text.replace("</identification>", field + "</identification>", 1)
    return text.encode("utf-8")


def write_musicxml(item, path: Path, metadata: dict | None = None, title: str | None = None) -> Path:
    """Write one item as a .musicxml file atomically."""
    return io.write_bytes(path, musicxml_bytes(item, metadata, title))


def read_metadata(path: str | Path) -> dict | None:
    """The metadata write_midi or write_musicxml stored in a file, or None when it has none."""
    path = Path(path)
    if path.suffix.lower() in (".mid", ".midi"):
        import mido
        for track in mido.MidiFile(path).tracks:
            for msg in track:
                if msg.type == "text" and msg.text.startswith(METADATA_PREFIX):
                    return json.loads(msg.text[len(METADATA_PREFIX):])
        return None
    found = re.search(r'<miscellaneous-field name="genforge">(.*?)</miscellaneous-field>',
                      path.read_text(encoding="utf-8"), re.S)
    if not found:
        return None
    from xml.sax.saxutils import unescape
    return json.loads(unescape(found.group(1)))


def piano_roll_image(item, step_px: int = 3, pitch_px: int = 3) -> Image.Image:
    """A piano roll picture: time left to right, pitch bottom to top, voices coloured, each
    attack drawn as a darker first cell so repeated notes stay visible."""
    item = np.asarray(item)
    satb = rep.is_satb(item.shape)
    low, rows = (rep.PITCH_LOW, rep.PITCH_BINS) if satb else (rep.ROLL_LOW, rep.ROLL_KEYS)
    image = Image.new("RGB", (item.shape[1] * step_px, rows * pitch_px), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for bar in range(0, item.shape[1], rep.STEPS_PER_BAR):  # bar lines
        draw.line([(bar * step_px, 0), (bar * step_px, image.height)], fill=(220, 220, 220))
    for n in rep.item_to_notes(item):
        colour = VOICE_COLOURS[n.voice] if satb else (40, 40, 40)
        top = (rows - 1 - (n.pitch - low)) * pitch_px
        draw.rectangle([n.start * step_px, top, n.end * step_px - 1, top + pitch_px - 1], fill=colour)
        dark = tuple(c // 2 for c in colour)
        draw.rectangle([n.start * step_px, top, n.start * step_px, top + pitch_px - 1], fill=dark)
    return image


def write_png(item, path: Path) -> Path:
    """Write one item's piano roll as a PNG atomically."""
    image = piano_roll_image(item)
    return io.write_with(path, lambda tmp: image.save(tmp, format="PNG"))
