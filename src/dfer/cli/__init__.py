"""The `dfer` command line: parses and checks arguments, calls library functions, nothing else.

One module per command, its parser (`add`) beside what it runs (`run`, or `cmd_*` for the three
training commands in `train`); what they share is in `dfer.cli.args`. Choices and defaults come from
the library (dfer.options, the config dataclasses); every numeric argument is range-checked when
parsed; library errors (`DferError`) become one line on stderr and exit code 2, as argparse's own
errors do.

Imports: each command module imports its parser's needs at module level (all light: dfer.options,
the config dataclasses); the library call a command makes is imported inside its run function, on
purpose, because those modules import torch, OpenVINO, FastAPI or Ray. That keeps every command's
start, and `dfer --help`, at 0.13 s instead of 1.6 s (measured on a 2-core AMD EPYC; the parser used
to import torch).
"""

from __future__ import annotations

import argparse
import sys

from dfer import __version__
from dfer.cli import card, demo, doctor, evaluate, explain, export, live, predict, prepare, profile, serve, synth, train
from dfer.errors import DferError
from dfer.progress import close_all

COMMANDS = (profile, prepare, train, evaluate, predict, explain, export, card, synth, demo, serve, live, doctor)

# What each command keeps when it is interrupted, and how to go on (every write is atomic).
_TRAINING = "last.pt is kept (written at every epoch end); add --resume to the same command to go on from it"
ON_INTERRUPT = {
    "prepare": "the clips prepared so far are kept in the cache; run the same command again to do the rest",
    "train": _TRAINING, "cv": _TRAINING, "distill": _TRAINING, "ablate": _TRAINING,
    "predict": "each finished video's outputs are kept; run the same command again to do the rest "
               "(finished videos are skipped)",
    "explain": "nothing of the unfinished video was written; run the same command again",
    "export": "nothing was written (the model appears only once complete); run the same command again",
    "synth": "the videos written so far are kept; run the same command again to write the rest",
    "demo": "every finished stage is kept; run the same command again to go on where it stopped",
    "evaluate": "nothing was written; run the same command again",
}


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument said in one line and where to read more, not the whole usage first."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n(see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="dfer", description="Dynamic facial expression recognition.")
    p.add_argument("--version", action="version", version=f"dfer {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and bad arguments: argparse has said what it had to
        return int(exc.code or 0)
    try:
        return args.func(args)
    except DferError as exc:
        print(f"dfer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, what was kept and how to go on; never a traceback
        close_all()
        print(f"dfer {args.command}: interrupted; {ON_INTERRUPT.get(args.command, 'nothing was kept')}",
              file=sys.stderr)
        return 130
