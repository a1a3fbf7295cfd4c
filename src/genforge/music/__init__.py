"""Symbolic music, the library core behind the "music" modality.

representation  SATB codes and piano rolls on a 16th-note grid: encode/decode pairs, model planes
corpus          reading files, folders and music21's Bach chorales into pieces, with a cache
dataset         bar-aligned crops, the split by work, transposition
writing         MIDI, MusicXML and piano-roll PNG; their metadata
render          WAV through FluidSynth or a built-in synthesiser
harmonize       melodies in, harmonisations out (diffusion inpainting, given notes kept exactly)
baseline        a Markov chain over SATB chords

music21, mido and pretty_midi are imported where needed, so importing genforge stays cheap.
"""
