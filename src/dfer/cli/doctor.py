"""`dfer doctor`: what this machine can do with dfer (versions, CPU, runtimes, cache, extras)."""

from __future__ import annotations

import argparse
import json


def add(sub) -> None:
    p = sub.add_parser("doctor", help="what this machine can do with dfer: versions, CPU flags, what auto runs, extras")
    p.add_argument("--json", action="store_true", help="one JSON object (attach it to a bug report)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.doctor import format_report, report

    r = report()
    print(json.dumps(r, indent=2) if args.json else format_report(r))
    return 0
