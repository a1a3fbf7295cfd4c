"""The command line: `genforge COMMAND ...`, a thin shell over genforge.api (parser.py builds
the options from the library's declarations, commands.py calls the library and prints, and
reporters.py shows progress events)."""
from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
import warnings

from .. import api, io
from ..errors import GenforgeError
from . import reporters
from .commands import COMMANDS
from .parser import build_parser

__all__ = ["main", "build_parser"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings as one line for people, without the source location."""
    print(f"genforge: warning: {message}", file=sys.stderr)


def _log_traceback() -> str:
    """Write the current exception's traceback to a log file; return its path (or a reason)."""
    folder = io.cache_dir("logs")
    path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}.log"
    try:
        io.write_text(path, " ".join(sys.argv) + "\n\n" + traceback.format_exc())
    except OSError as err:
        return f"(the traceback could not be saved: {err})"
    return str(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.command == "train":
        args.argv = argv  # `train --nproc N` starts N processes that run this command line
    warnings.showwarning = _show_warning
    mode = getattr(args, "progress", "none")
    report = reporters.reporter(mode)
    # In jsonl mode stdout carries only events; the command's own words go to stderr.
    quiet_stdout = contextlib.redirect_stdout(sys.stderr) if mode == "jsonl" else contextlib.nullcontext()
    try:
        with api.reporting(report), quiet_stdout:
            return COMMANDS[args.command](args)
    except GenforgeError as err:
        print(f"genforge: error: {err}", file=sys.stderr)
        if isinstance(err, api.PeerLost):
            # A process group whose peer is gone can abort in its C++ destructor at exit
            # ("terminate called without an active exception"), and the launcher would then
            # name this process instead of the one that died: leave without finalising.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2
    except KeyboardInterrupt:
        print("genforge: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # the disk, a permission, a path: the user's to fix, in one line
        where = f" ({err.filename})" if err.filename else ""
        print(f"genforge: error: {err.strerror or err}{where}; files written before it are "
              "complete (every file is written whole or not at all)", file=sys.stderr)
        return 2
    except MemoryError:
        where = _log_traceback()
        print(f"genforge: error: ran out of memory (smaller batches, items or models need less; "
              f"details in {where})", file=sys.stderr)
        return 1
    except Exception as err:  # the last line of defence: one line, the traceback in a file
        where = _log_traceback()
        reason = " ".join(str(err).split())[:200]
        print(f"genforge: error: unexpected {type(err).__name__}: {reason} (this is a bug in "
              f"genforge; the details are in {where})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
