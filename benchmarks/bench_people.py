"""What people (who is who) cost on top of a whole `dfer predict`, and whether they come out right.

A 60 s video cut together from ../shared/media: carphone, single_face, carphone, single_face, ...
(each shot 4 s; the same two people keep coming back). The whole command runs with and without
people, interleaved (this machine is shared: the ratio of the two is the figure), and the counts
are checked: shots, tracks, people, ids that span two people.

    python benchmarks/bench_people.py --out bench_people.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import make_ckpt  # noqa: E402
from bench_pipeline import command  # noqa: E402
from dfer.data import read_video, write_video  # noqa: E402
from dfer.inference import Recognizer  # noqa: E402


def cut_video(media: Path, out: Path, seconds: float, shot: float) -> tuple[Path, list[str]]:
    """Shots of `shot` seconds alternating between the two people; returns the video and who is in each shot."""
    a, _ = read_video(media / "carphone_pristine.mp4")
    b, info = read_video(media / "single_face.mp4")
    h, w = b[0].shape[:2]
    a, b = [cv2.resize(f, (w, h)) for f in a], list(b)
    per = int(shot * info.fps)
    frames: list = []
    who, k = [], 0
    while len(frames) < seconds * info.fps:
        src, name = (a, "carphone") if k % 2 == 0 else (b, "single_face")
        seq = (src * (per // len(src) + 1))[:per]
        frames += seq
        who.append(name)
        k += 1
    return write_video(out, frames[: int(seconds * info.fps)], fps=info.fps), who


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--shot", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--out", default="bench_people.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dfer-people-"))
    video, who = cut_video(Path(args.media), tmp / "cuts.mp4", args.seconds, args.shot)
    ckpt = make_ckpt(tmp / "demo.pt", 8, 32)  # the demo-size network: the pipeline, not the network, is the cost

    rec = Recognizer.from_checkpoint(ckpt)
    t0 = time.perf_counter()
    result = rec.predict_video(video)
    first = time.perf_counter() - t0
    shots = len(result.cuts) + 1
    spans = {t: (min(f), max(f)) for t, f in result.boxes.items()}
    cut_frames = [0, *result.cuts, result.num_frames]
    shot_of = {t: max(i for i, c in enumerate(cut_frames[:-1]) if c <= spans[t][0]) for t in spans}
    people_of_shot: dict[str, set[str]] = {}
    for t, person in result.people.items():
        people_of_shot.setdefault(who[shot_of[t]], set()).add(person)
    shared = [p for p in set(result.people.values()) if sum(p in ps for ps in people_of_shot.values()) > 1]
    counts = {"shots": shots, "shots_expected": len(who), "tracks": len(result.boxes),
              "tracks_crossing_a_cut": sum(1 for t, (a, b) in spans.items() if any(a < c <= b for c in result.cuts)),
              "people": len(set(result.people.values())), "people_expected": 2,
              "ids_given_to_two_people": len(shared),
              "person_ids_by_shot_person": {k: sorted(v) for k, v in people_of_shot.items()},
              "describe_s": round(result.describe_seconds, 2),
              "describe_s_per_track": round(result.describe_seconds / max(1, len(result.boxes)), 3),
              "first_pass_s": round(first, 2)}
    timings = {"with_people": [], "without_people": [], "with_people_and_video": [], "without_people_with_video": []}
    for _ in range(args.runs):  # interleaved: the machine's noise falls on all
        timings["with_people"].append(command(video, ckpt, tmp / "a", "--no-video"))
        timings["without_people"].append(command(video, ckpt, tmp / "b", "--no-video", "--no-people"))
        timings["with_people_and_video"].append(command(video, ckpt, tmp / "c"))
        timings["without_people_with_video"].append(command(video, ckpt, tmp / "d", "--no-people"))
    best = {k: min(v) for k, v in timings.items()}
    out = {"video": {"seconds": args.seconds, "shot_s": args.shot, "who": who}, "counts": counts,
           "whole_command_s": {k: [round(x, 2) for x in v] for k, v in timings.items()},
           "extra_for_people": round(best["with_people"] / best["without_people"] - 1, 3),
           "extra_for_people_with_video": round(best["with_people_and_video"] / best["without_people_with_video"] - 1, 3),
           # annotated.mp4 is drawn in a second decode once the people are known: its share of the command
           "extra_for_annotated_video": round(best["with_people_and_video"] / best["with_people"] - 1, 3)}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
