"""How the CLI shows progress events (genforge.progress): a bar per running task on stderr, or
one JSON object per line on stdout (`--progress jsonl`) for another program to follow."""
from __future__ import annotations

import json
import sys
from typing import TextIO

from tqdm import tqdm

from .. import api

# Figures shown beside a bar, in this order, where the task reports them.
SHOWN = (("loss", "loss {:.4f}"), ("loss_D", "D {:.4f}"), ("images_per_s", "{:.0f} img/s"),
         ("acceptance_rate", "accepted {:.0%}"), ("tried", "tried {}"))


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class BarReporter:
    """A tqdm bar for each running task; messages (resuming, ...) as lines above the bars. The
    bar's clock is the task's own and its 'left' is the task's ETA, so the two agree."""

    def __init__(self, stream: TextIO | None = None):
        self.stream, self.bars = stream or sys.stderr, {}

    def __call__(self, event: api.Event) -> None:
        if event.status == "note":
            tqdm.write(f"genforge: {event.message}", file=self.stream)
            return
        bar = self.bars.get(event.task)
        if event.status == "start" or bar is None:
            if bar is not None:
                bar.close()
            bar = self.bars[event.task] = tqdm(
                total=event.total, initial=event.done, unit=event.unit, desc=event.task,
                file=self.stream, dynamic_ncols=True, leave=event.task == "train",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}"
                if event.total else "{desc}: {n_fmt} {unit}{postfix}")
        if event.total != bar.total:
            bar.total = event.total
        bar.n = event.done
        figures = [fmt.format(event.info[key]) for key, fmt in SHOWN
                   if isinstance(event.info.get(key), (int, float))]
        figures.append(f"[{_clock(event.elapsed_s)} < {_clock(event.eta_s)}]")
        bar.set_postfix_str(", ".join(figures), refresh=False)
        bar.refresh()
        if event.status in ("end", "failed"):
            bar.close()
            del self.bars[event.task]


class JsonlReporter:
    """Every event as one JSON line (Event.to_dict), flushed, for another process to follow."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout  # looked up now: tests and callers redirect it

    def __call__(self, event: api.Event) -> None:
        self.stream.write(json.dumps(event.to_dict(), default=str) + "\n")
        self.stream.flush()


class NotesReporter:
    """No bars (stderr is no terminal, or --progress none): only the messages, one line each."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr

    def __call__(self, event: api.Event) -> None:
        if event.status == "note":
            print(f"genforge: {event.message}", file=self.stream, flush=True)


MODES = ("bar", "jsonl", "none")


def reporter(mode: str):
    """The reporter for --progress bar|jsonl|none: bars only where stderr is a terminal; none
    still says what a person must know (resuming, recovering), as warnings are."""
    if mode == "jsonl":
        return JsonlReporter()
    if mode == "bar" and sys.stderr.isatty():
        return BarReporter()
    return NotesReporter()
