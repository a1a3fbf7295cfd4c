"""Tile-grid level formats: legends, text grids, Sokoban XSB, KGoldrunner game files, LURD strings.

A level is a 2-D uint8 array of tile indices into a `Legend`, the Video Game Level Corpus's
convention (one character per tile, a JSON legend naming each character's tile types). Readers and
writers come in pairs: `parse_grid`/`format_grid`, `read_xsb`/`write_xsb`,
`read_kgoldrunner`/`write_kgoldrunner`, `decode_lurd`/`encode_lurd`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import io
from ..errors import DataError


class LevelError(DataError):
    """One level cannot be used (unknown character, ragged rows, no player): skipped, reported."""


@dataclass(frozen=True)
class Legend:
    """A game's tile vocabulary: tile index i is written as chars[i] and has the types tags[i]."""

    game: str                                   # "sokoban", "lode-runner", or a user's name
    chars: tuple[str, ...]                      # one character per tile index
    tags: tuple[tuple[str, ...], ...]           # VGLC tile types per tile, e.g. ("solid", "wall")
    filler: str                                 # the tile that pads levels to a common size
    aliases: dict[str, str] = field(default_factory=dict)  # extra read-only spellings
    ragged_ok: bool = False                     # short rows are padded with filler, not refused

    @property
    def size(self) -> int:
        return len(self.chars)

    def index(self, char: str) -> int:
        """Tile index of a character (aliases included); KeyError for an unknown one."""
        return self.chars.index(self.aliases.get(char, char))

    def tiles_with(self, tag: str) -> list[int]:
        """Indices of the tiles that carry a type, e.g. every tile with "goal"."""
        return [i for i, t in enumerate(self.tags) if tag in t]

    def to_dict(self) -> dict:
        """JSON-ready description: VGLC's {"tiles": {char: [types]}} plus game and filler, and
        the tile order, which the indices mean (JSON writers may sort the tiles' keys)."""
        return {"game": self.game, "tiles": {c: list(t) for c, t in zip(self.chars, self.tags)},
                "order": "".join(self.chars), "filler": self.filler,
                "aliases": dict(self.aliases), "ragged_ok": self.ragged_ok}

    @classmethod
    def from_dict(cls, data: dict, game: str = "custom") -> "Legend":
        """Inverse of to_dict; also reads a plain VGLC legend (tiles only; filler: first solid).
        DataError naming the field for anything of the wrong shape (the file is the caller's)."""
        if not isinstance(data, dict):
            raise DataError(f"a legend is a JSON object, not {_kind(data)}")
        tiles = data.get("tiles")
        if not isinstance(tiles, dict) or not tiles or any(len(c) != 1 for c in tiles):
            raise DataError("a legend needs \"tiles\": {one character: [tile types]}")
        if len(tiles) > MAX_TILES:  # grids hold tile indices as uint8
            raise DataError(f"legend \"tiles\" has {len(tiles)} tiles; at most {MAX_TILES}")
        for char, types in tiles.items():
            if not isinstance(types, str) and not (
                    isinstance(types, list) and all(isinstance(t, str) for t in types)):
                raise DataError(f"legend tile {char!r}: tile types are a string or a list of "
                                f"strings, not {_kind(types)}")
        order = data.get("order")
        if order is not None and (not isinstance(order, str) or sorted(order) != sorted(tiles)):
            raise DataError(f"legend \"order\" {_show(order)} does not list its tiles "
                            f"{''.join(tiles)!r} once each")
        chars = tuple(order) if order is not None else tuple(tiles)
        tags = tuple(tuple([tiles[c]] if isinstance(tiles[c], str) else tiles[c]) for c in chars)
        solid = [c for c, t in zip(chars, tags) if "solid" in t]
        filler = data.get("filler") or (solid[0] if solid else chars[0])
        if not isinstance(filler, str) or filler not in chars:
            raise DataError(f"legend \"filler\" {_show(filler)} is not one of its tiles")
        aliases = data.get("aliases", {})
        if not isinstance(aliases, dict):
            raise DataError(f"legend \"aliases\" is {{extra character: tile}}, not {_kind(aliases)}")
        for alias, char in aliases.items():
            if len(alias) != 1 or not isinstance(char, str) or char not in chars:
                raise DataError(f"legend alias {alias!r} -> {_show(char)}: an alias is one "
                                "character standing for one of the tiles")
        name = data.get("game", game)
        if not isinstance(name, str) or not isinstance(data.get("ragged_ok", False), bool):
            raise DataError("legend \"game\" is a string and \"ragged_ok\" true or false")
        return cls(name, chars, tags, filler, dict(aliases), data.get("ragged_ok", False))


MAX_TILES = 256  # tile indices are uint8


def _kind(value) -> str:
    """A JSON value's type in JSON's words, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _show(value) -> str:
    """A short repr of a value from a user's file, for error messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_legend(path: str | Path) -> Legend:
    """A VGLC legend JSON file; the game is named after the file's stem unless it names one."""
    path = Path(path)
    data = io.read_json(path, "legend", error=DataError)
    try:
        return Legend.from_dict(data, game=path.stem)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None


# Sokoban: everything the player can never reach becomes wall, so the filler is wall too.
SOKOBAN = Legend(
    "sokoban", ("#", " ", "@", "+", "$", "*", "."),
    (("solid", "wall"), ("passable", "floor"), ("player",), ("player", "goal"), ("box",),
     ("box", "goal"), ("goal", "passable")),
    filler="#", aliases={"-": " ", "_": " ", "p": "@", "P": "+", "b": "$", "B": "*"},
    ragged_ok=True)

# Lode Runner in VGLC's characters (Summerville et al. 2016).
LODE_RUNNER = Legend(
    "lode-runner", ("B", "b", ".", "-", "#", "G", "E", "M"),
    (("solid", "ground"), ("solid", "diggable", "ground"), ("passable", "empty"),
     ("passable", "climbable", "rope"), ("passable", "climbable", "ladder"),
     ("pickupable", "passable", "gold"), ("damaging", "enemy"), ("passable", "spawn", "player")),
    filler="B")

LEGENDS = {SOKOBAN.game: SOKOBAN, LODE_RUNNER.game: LODE_RUNNER}


# Games whose rules look the same rotated and mirrored (top-down puzzles); the others have a
# direction (gravity in Lode Runner) and keep only their mirror image.
TOP_DOWN_GAMES = ("sokoban",)


def symmetries(legend: Legend, shape: tuple[int, int]) -> list:
    """Maps of a level grid [..., H, W] onto equally valid levels of its game: the identity and the
    left-right mirror; for top-down games also the other mirror and the half turn, and on square
    grids the quarter turns and diagonal mirrors (the eight symmetries of the square)."""
    group = [lambda g: g, lambda g: g.flip(-1)]
    if legend.game in TOP_DOWN_GAMES:
        group += [lambda g: g.flip(-2), lambda g: g.flip(-2).flip(-1)]
        if shape[0] == shape[1]:
            group += [lambda g: g.transpose(-1, -2), lambda g: g.transpose(-1, -2).flip(-1),
                      lambda g: g.transpose(-1, -2).flip(-2),
                      lambda g: g.transpose(-1, -2).flip(-2).flip(-1)]
    return group


MAX_SIDE = 256  # tiles; game levels are tens of tiles a side, the checks are Python loops


def parse_grid(text: str, legend: Legend) -> np.ndarray:
    """Text rows -> uint8 [H, W] of tile indices; LevelError on unknown characters, ragged rows
    or more than MAX_SIDE rows or columns."""
    rows = [r.rstrip("\r\n") for r in text.split("\n")]
    while rows and not rows[-1].strip():
        rows.pop()
    while rows and not rows[0].strip():
        rows.pop(0)
    if not rows:
        raise LevelError("empty level")
    width = max(len(r) for r in rows)
    if len(rows) > MAX_SIDE or width > MAX_SIDE:  # before any per-tile work
        raise LevelError(f"{len(rows)}x{width} tiles: larger than {MAX_SIDE}x{MAX_SIDE}")
    if not legend.ragged_ok and any(len(r) != width for r in rows):
        raise LevelError(f"ragged rows (lengths {sorted({len(r) for r in rows})})")
    lookup = {c: i for i, c in enumerate(legend.chars)}
    lookup.update({a: lookup[c] for a, c in legend.aliases.items()})
    fill = lookup[legend.filler] if not legend.ragged_ok else lookup.get(" ", lookup[legend.filler])
    grid = np.full((len(rows), width), fill, dtype=np.uint8)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            if ch not in lookup:
                raise LevelError(f"unknown character {ch!r} at row {y + 1}, column {x + 1}")
            grid[y, x] = lookup[ch]
    return grid


def format_grid(grid: np.ndarray, legend: Legend) -> str:
    """uint8 [H, W] -> text, one line per row ending in a newline (inverse of parse_grid)."""
    chars = np.array(legend.chars)
    return "".join("".join(chars[row]) + "\n" for row in np.asarray(grid, dtype=np.int64))


# ---- Sokoban XSB ---------------------------------------------------------------------------

_BOARD = re.compile(r"^[#@+$*.\-_ pPbB]*#[#@+$*.\-_ pPbB]*$")
_KEY = re.compile(r"^([A-Za-z][\w -]*):\s?(.*)$")


@dataclass
class XsbLevel:
    """One level of an XSB file: its board text and what surrounds it."""

    board: str                       # the board lines, newline-terminated
    title: str = ""
    metadata: dict = field(default_factory=dict)   # Author, Comment, ... as written
    solution: str | None = None      # LURD, run lengths expanded
    problem: str | None = None       # why its Solution line could not be used, if it could not


def read_xsb(text: str) -> list[XsbLevel]:
    """Every level in an XSB/SOK text: boards, ';' or 'Title:' titles, 'Key: value' lines and
    'Comment:' ... 'Comment-End:' blocks; 'Solution:' values are decoded LURD (a malformed one
    sets the level's `problem` instead)."""
    levels: list[XsbLevel] = []
    board: list[str] = []
    pending_title = ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if _BOARD.match(line) and line.strip():
            board.append(line.rstrip())
            continue
        if board:  # a board just ended
            levels.append(XsbLevel("\n".join(board) + "\n", title=pending_title))
            board, pending_title = [], ""
        stripped = line.strip()
        if stripped.startswith(";"):
            if levels and not levels[-1].title and not _next_is_board(lines, i):
                levels[-1].title = stripped[1:].strip()
            else:
                pending_title = stripped[1:].strip()
            continue
        match = _KEY.match(stripped)
        if match and levels:
            key, value = match.group(1), match.group(2).strip()
            if key.lower() == "comment" and not value:  # a block up to Comment-End
                block = []
                while i < len(lines) and lines[i].strip().lower() != "comment-end:":
                    block.append(lines[i])
                    i += 1
                i += 1
                value = "\n".join(block)
            if key.lower() == "title":
                levels[-1].title = value
            elif key.lower() == "solution":
                try:
                    levels[-1].solution = decode_lurd(value)
                except LevelError as err:  # the level's reader skips it, naming the file
                    levels[-1].problem = f"bad Solution line ({err})"
            else:
                levels[-1].metadata[key] = value
    if board:
        levels.append(XsbLevel("\n".join(board) + "\n", title=pending_title))
    return levels


def _next_is_board(lines: list[str], i: int) -> bool:
    """Whether the next non-blank line starts a board (then a ';' line titles that board)."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i < len(lines) and bool(_BOARD.match(lines[i]))


def write_xsb(levels: list[XsbLevel]) -> str:
    """XSB text: each board, then Title, other keys and Solution; levels parted by a blank line."""
    parts = []
    for level in levels:
        text = level.board if level.board.endswith("\n") else level.board + "\n"
        if level.title:
            text += f"Title: {level.title}\n"
        for key, value in level.metadata.items():
            if "\n" in str(value):
                text += f"{key}:\n{value}\n{key}-End:\n"
            else:
                text += f"{key}: {value}\n"
        if level.solution:
            text += f"Solution: {level.solution}\n"
        parts.append(text)
    return "\n".join(parts)


MAX_MOVES = 500_000  # a decoded solution; shipped ones are at most a few thousand moves
MAX_NESTING = 100    # run-length brackets inside brackets


def decode_lurd(text: str) -> str:
    """Expand run-length LURD ("3r2(dL)u" -> "rrrdLdLu"); whitespace is ignored. LevelError for
    any other character, unbalanced brackets, brackets nested over MAX_NESTING deep, or more than
    MAX_MOVES moves (counted before expanding: a short line must not ask for gigabytes)."""
    text = re.sub(r"\s+", "", text)
    outer: list[tuple[list[str], int, int]] = []  # enclosing groups: (pieces, length, our count)
    pieces: list[str] = []
    length, i = 0, 0
    while i < len(text):
        digits = re.match(r"[0-9]*", text[i:i + 8]).group(0)  # ASCII only: isdigit() takes '²'
        at, i = i + len(digits), i + len(digits) + 1
        char = text[at] if at < len(text) else ""
        count = int(digits) if digits else 1
        if len(digits) > 7 or count > MAX_MOVES:
            raise LevelError(f"solution decodes to more than {MAX_MOVES:,} moves")
        if char == "(":
            if len(outer) >= MAX_NESTING:
                raise LevelError(f"solution brackets nest more than {MAX_NESTING} deep")
            outer.append((pieces, length, count))
            pieces, length = [], 0
            continue
        if char == ")" and outer and not digits:
            piece = "".join(pieces)
            pieces, length, count = outer.pop()
        elif char in ("l", "u", "r", "d", "L", "U", "R", "D"):
            piece = char
        else:
            what = f"{char!r} at character {at + 1}" if char else "a count with nothing after it"
            raise LevelError(f"not a LURD solution: {what} in {text[:40]!r}")
        if length + len(piece) * count > MAX_MOVES:
            raise LevelError(f"solution decodes to more than {MAX_MOVES:,} moves")
        pieces.append(piece * count)
        length += len(piece) * count
    if outer:
        raise LevelError(f"not a LURD solution: {len(outer)} '(' not closed in {text[:40]!r}")
    return "".join(pieces)


def encode_lurd(moves: str) -> str:
    """Run-length encode runs of one letter ("rrrd" -> "3rd"); decode_lurd inverts it."""
    return "".join(f"{len(m.group(0))}{m.group(1)}" if len(m.group(0)) > 2 else m.group(0)
                   for m in re.finditer(r"([lurdLURD])\1*", moves))


# ---- KGoldrunner game files ----------------------------------------------------------------

# KGoldrunner's layout codes (kgrglobals.h) as VGLC Lode Runner tiles. Hidden ladders (Z) appear
# only once all gold is taken and false bricks (F) cannot be stood on, so for collecting gold both
# are empty space; concrete (X) cannot be dug, brick (M) can. KGrLevelGrid starts a hidden
# enemy (a) as a brick and a flashing nugget (b) as a nugget.
KGR_TO_VGLC = {" ": ".", "X": "B", "M": "b", "F": ".", "Z": ".", "H": "#", "T": "-", "N": "G",
               "E": "E", "a": "b", "R": "M", "b": "G"}
VGLC_TO_KGR = {".": " ", "B": "X", "b": "M", "#": "H", "-": "T", "G": "N", "E": "E", "M": "R"}
KGR_WIDTH, KGR_HEIGHT = 28, 20


@dataclass
class KgrLevel:
    """One KGoldrunner level: its number, name and 20 rows of 28 VGLC characters."""

    number: int
    name: str
    rows: list[str]


def read_kgoldrunner(text: str) -> list[KgrLevel]:
    """Levels of a KGoldrunner 3 game file (game_*.txt): '// L001', any level options ('// .dwf
    true'), then '//  <560 codes>' and an optional i18n("name") line (KGrGameIO: strip '// ', the
    first byte says what the line is)."""
    lines = text.replace("\r\n", "\n").split("\n")
    levels = []
    for i, line in enumerate(lines[:-1]):
        if not (line.startswith("// L") and re.fullmatch(r"[0-9]{3}", line[4:7])):
            continue  # ASCII digits only: str.isdigit() takes '²³¹', which int() refuses
        j = i + 1
        while j < len(lines) - 1 and lines[j].startswith("// ."):  # a level option (.dwf true)
            j += 1
        layout = lines[j]
        if not layout.startswith("//  "):
            continue
        codes = layout[4:]
        name = ""
        if j + 1 < len(lines) and lines[j + 1].startswith(' i18n("'):
            name = lines[j + 1][7:].rsplit('");', 1)[0]
        rows = ["".join(KGR_TO_VGLC.get(c, "?") for c in codes[y * KGR_WIDTH:(y + 1) * KGR_WIDTH])
                for y in range(KGR_HEIGHT)]
        if len(codes) != KGR_WIDTH * KGR_HEIGHT:
            rows = [f"?layout has {len(codes)} codes, not {KGR_WIDTH * KGR_HEIGHT}"]
        levels.append(KgrLevel(int(line[4:7]), name, rows))
    return levels


def write_kgoldrunner(levels: list[KgrLevel], prefix: str = "gen", rules: str = "T",
                      name: str = "genforge levels") -> str:
    """A KGoldrunner 3 game file holding the levels (readable by read_kgoldrunner and the game)."""
    out = [f"// G{len(levels):03d} {rules} {prefix} N", "// .dwf false", f' i18n("{name}");']
    for k, level in enumerate(levels, 1):
        codes = "".join(VGLC_TO_KGR[c] for row in level.rows for c in row)
        if len(codes) != KGR_WIDTH * KGR_HEIGHT:
            raise ValueError(f"KGoldrunner levels are {KGR_WIDTH}x{KGR_HEIGHT} tiles")
        out += [f"// L{level.number or k:03d}", f"//  {codes}"]
        if level.name:
            out.append(f' i18n("{level.name}");')
    return "\n".join(out) + "\n"
