"""`dfer live`: a camera or stream the server reads, watched live in the web page by anyone with access."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfer.cli import serve


def add(sub) -> None:
    p = sub.add_parser("live", help="watch a camera or stream live in the web page: faces, people and their "
                                    "expressions as they happen")
    p.add_argument("--source", required=True,
                   help="a webcam index (0), a stream URL (rtsp://, http://...) or a video file (played at its "
                        "frame rate, again each time it ends)")
    p.add_argument("--save", type=Path, metavar="DIR",
                   help="write the usual outputs (annotated.mp4, predictions.csv, summary.json ...) of each "
                        "connection to the source into DIR/segment-NNNN/")
    serve.add_service_args(p, live=True)  # the model, the port, the token and the limits, as for dfer serve
    for action in p._actions:  # the service's state folder, under a name of its own
        if action.dest == "data_dir":
            action.default, action.help = Path("dfer-live"), "the service's state (default dfer-live)"
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return serve.run(args, live_source=str(args.source), live_save=args.save)
