"""`dfer predict`: expressions of every face in videos, folders, webcams, streams."""

from __future__ import annotations

import argparse
import sys
from functools import partial

from dfer.cli.args import (
    CHECKPOINT_HELP,
    NONNEG_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    STREAMS_HELP,
    add_engine_args,
    add_face_args,
    add_output_args,
    add_people_args,
    checkpoint_ref,
    face_overrides,
    out_dir,
    ray_options,
)
from dfer.errors import DferError
from dfer.inference.episodes import EpisodeRule
from dfer.options import BACKENDS, PRECISIONS
from dfer.progress import stage
from dfer.remote import resolve_checkpoint


def add(sub) -> None:
    p = sub.add_parser("predict", help="expressions of every face in videos, folders, a webcam or a stream")
    p.add_argument("inputs", nargs="*", help="video files, frame folders, folders of videos, stream URLs")
    p.add_argument("--checkpoint", required=True, type=checkpoint_ref,
                   help="dfer checkpoint (.pt) or exported model (.onnx, OpenVINO .xml); " + CHECKPOINT_HELP)
    p.add_argument("--out", required=True, type=out_dir, help="output folder (one subfolder per input)")
    p.add_argument("--source", help="a webcam index (0) or a stream URL (rtsp://, http://)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto: the fastest installed runtime that agrees with float32 (converted once, cached)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: the checkpoint's verified int8 model when there is one (beside it, made by dfer train), "
                        "else OpenVINO's native float (bf16 on CPUs with native bf16, else f32); f32 | bf16 | int8 force one")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--stride", type=POSITIVE_INT, help="frames between windows of a face (default: 1 s of video)")
    p.add_argument("--window", type=POSITIVE_FLOAT, help="window span in seconds (default: training clip length)")
    add_face_args(p, inherit=True)
    add_output_args(p)
    add_people_args(p)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=8, help="windows per model call")
    p.add_argument("--threads", type=NONNEG_INT, default=0, help="ONNX Runtime / OpenVINO threads (0: all cores)")
    p.add_argument("--streams", type=NONNEG_INT, default=0, help=STREAMS_HELP)
    p.add_argument("--max-seconds", type=POSITIVE_FLOAT, help="stop after this much video (live sources run until stopped)")
    p.add_argument("--no-video", action="store_true", help="skip annotated.mp4")
    p.add_argument("--overwrite", action="store_true", help="redo inputs that already have outputs")
    add_engine_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars; one line per input and the total")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfer.data.video import is_webcam
    from dfer.inference import InferenceSettings, Recognizer, predict_inputs
    from dfer.inference.people import INSTALL as PEOPLE_INSTALL
    from dfer.inference.people import available as people_available

    inputs = list(args.inputs) + ([args.source] if args.source is not None else [])
    if not inputs:
        raise DferError("no input: give a video, a folder, a webcam index (--source 0) or a stream URL")
    settings = InferenceSettings(window_seconds=args.window or 0.0, stride=args.stride or 0,
                                 batch_size=args.batch_size, face=face_overrides(args),
                                 min_confidence=args.min_confidence,
                                 episodes=EpisodeRule(args.min_episode, args.episode_margin),
                                 people=not args.no_people, same_person=args.same_person,
                                 gallery=str(args.gallery) if args.gallery else "",
                                 save_descriptors=args.save_descriptors)
    if args.save_descriptors and args.no_people:
        raise DferError("--save-descriptors keeps the people's face descriptors: it cannot go with --no-people")
    if args.gallery:  # every photo read and checked before any video is
        if args.no_people:
            raise DferError("--gallery names people: it cannot go with --no-people")
        from dfer.inference.people import FaceDescriber, Gallery

        gallery = Gallery.load(args.gallery, FaceDescriber(), args.same_person)
        for line in gallery.warnings:
            print(f"dfer predict: warning: {line}", file=sys.stderr)
        print(f"dfer predict: gallery of {len(gallery.names)} named people: {', '.join(gallery.names) or 'none'}",
              file=sys.stderr)
    elif not args.no_people and not people_available():  # said once; every video still gets its face tracks
        print(f"dfer predict: face tracks only: joining them into people needs dlib's face recognition models "
              f"({PEOPLE_INSTALL})", file=sys.stderr)
    checkpoint = resolve_checkpoint(args.checkpoint, progress=not args.quiet)  # once, before any worker starts
    ray = ray_options(args)
    # A Ray worker has the CPUs it asked for (one by default): one OpenVINO request each, no extra threads.
    streams = args.streams if ray is None else (args.streams or 1)
    make = partial(Recognizer.from_checkpoint, checkpoint, device=args.device, backend=args.backend,
                   settings=settings, threads=args.threads, precision=args.precision, streams=streams)
    if ray is not None and any(is_webcam(i) or "://" in str(i) for i in inputs):
        raise DferError("the Ray engine takes files and folders; run webcams and streams with the local engine")
    if ray is None:
        with stage("opening the model", enabled=not args.quiet):
            recognizer = make()
    run = predict_inputs(make if ray else recognizer, inputs, args.out, annotate=not args.no_video,
                         overwrite=args.overwrite, max_seconds=args.max_seconds, progress=not args.quiet, ray=ray)
    print(f"{len(run.done)} done, {len(run.skipped)} already done (skipped), {len(run.failed)} failed -> {args.out}")
    if run.failed:
        print(f"failures listed in {args.out}/failures.csv")
    return 1 if run.failed and not run.done and not run.skipped else 0
