"""`dfer predict`: many inputs -> one output folder each, with a failures list; live sources too.

    OUT/<input stem>/predictions.csv   one row per (face track, window)
    OUT/<input stem>/tracks.csv        one row per (frame, face): the box and whether it was detected
    OUT/<input stem>/episodes.csv      one row per expression episode of a face (start, end, label)
    OUT/<input stem>/summary.json      per-track summary, timing, settings
    OUT/<input stem>/people.csv        one row per person (tracks joined by face descriptor), with shares
    OUT/<input stem>/people.jpg        one face per person, side by side in people.csv's order
    OUT/<input stem>/descriptors.npz   the face descriptors, only with --save-descriptors
    OUT/<input stem>/annotated.mp4     every input frame with boxes, "P1 Happy 0.82" titles, probability bars
    OUT/<input stem>/timeline.png      class probabilities over time per person (or per track)
    OUT/failures.csv                   input,reason for every input that could not be processed

An input whose summary.json exists is skipped (rerun after a kill loses nothing); `overwrite`
redoes it. Each file is written atomically.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2

from dfer.data.video import IMAGE_EXTS, VIDEO_EXTS, FrameSource, VideoWriter, is_webcam, open_source
from dfer.errors import DferError
from dfer.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from dfer.formatting import percent
from dfer.inference import people
from dfer.inference.prediction import FrameEvent, VideoPrediction, WindowPrediction
from dfer.inference.recognizer import InferenceSettings, Recognizer
from dfer.inference.render import annotate_frame, frame_faces, plot_timeline, write_annotated
from dfer.inference.report import result_line
from dfer.preprocess import SYNTHETIC_SHORT
from dfer.progress import progress_bar, say
from dfer.scale import RayOptions, ray_map


@dataclass
class PredictRun:
    done: list[str] = field(default_factory=list)  # output folders written
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)
    results: dict[str, VideoPrediction] = field(default_factory=dict)


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files, frame folders, webcam indices and URLs as given; a folder of videos becomes its videos."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            videos = sorted(c for c in p.iterdir() if c.is_file() and c.suffix.lower() in VIDEO_EXTS)
            has_images = any(c.suffix.lower() in IMAGE_EXTS for c in p.iterdir())
            if videos and not has_images:
                out.extend(str(v) for v in videos)
                continue
        out.append(str(item))
    return out


def _unique_dirs(inputs: list[str], out: Path) -> list[Path]:
    seen: dict[str, int] = {}
    dirs = []
    for item in inputs:
        stem = f"webcam{item}" if is_webcam(item) else (Path(item).stem or "input")
        n = seen.get(stem, 0) + 1
        seen[stem] = n
        dirs.append(out / (stem if n == 1 else f"{stem}-{n}"))
    return dirs


def write_outputs(result: VideoPrediction, folder: Path, *, video: FrameSource | None = None,
                  photo: FrameSource | None = None, progress: bool = False) -> None:
    """Every file of a result into `folder`; with `video` (the source read again) also annotated.mp4,
    drawn on a thread while the tables and the timeline are written (its encoder and decoder run
    outside the GIL); with `photo` (a still), annotated.jpg and no timeline. summary.json is written
    last: its presence marks the input done; a failure leaves no partial video behind."""
    folder.mkdir(parents=True, exist_ok=True)
    band = SYNTHETIC_SHORT if model_warning(result) else ""
    if photo is not None:
        frame = next(iter(photo.decoded()))
        annotate_frame(frame, frame_faces(result)(0), result.class_names, warning=band)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        atomic_write_bytes(folder / "annotated.jpg", jpg.tobytes())
    with ThreadPoolExecutor(1, thread_name_prefix="dfer-annotate") as pool:
        drawing = None if video is None else pool.submit(write_annotated, result, video.decoded(),
                                                         folder / "annotated.mp4", progress=progress, warning=band)
        try:
            _write_files(result, folder, timeline=not result.still)
        finally:
            if drawing is not None:
                drawing.result()  # its error, if any, is raised here
    if result.started:  # every stage of this video so far: the figure its bars showed
        result.seconds = time.perf_counter() - result.started
    atomic_write_json(folder / "summary.json", result.summary())  # last: its presence marks the input done


def _write_files(result: VideoPrediction, folder: Path, *, timeline: bool = True) -> None:
    """The tables, people.jpg, descriptors.npz (when asked) and timeline.png. A synthetic-only model's
    warning goes into each: a last column `model_warning` in every CSV (every row: pandas and spreadsheets
    read it as data, and a file forwarded alone still says it), a band under people.jpg and a line across
    the top of timeline.png (and, in write_annotated, a band on every frame of annotated.mp4)."""
    warning = model_warning(result)
    for name, df in (("predictions.csv", result.to_dataframe()), ("tracks.csv", result.tracks_dataframe()),
                     ("episodes.csv", result.episodes_dataframe()), ("people.csv", result.people_dataframe())):
        if warning:
            df["model_warning"] = warning
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        atomic_write_text(folder / name, buf.getvalue())
    if result.faces:
        order = [p["person_id"] for p in result.people_summary()]
        sheet = people.contact_sheet(order, result.faces, warning=SYNTHETIC_SHORT if warning else "")
        atomic_write_bytes(folder / "people.jpg", cv2.imencode(".jpg", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))[1].tobytes())
    if result.descriptors:
        atomic_write_bytes(folder / "descriptors.npz", people.descriptors_npz(result.people, result.descriptors))
    if timeline:
        plot_timeline(result, folder / "timeline.png", warning=warning)


def model_warning(result: VideoPrediction) -> str:
    """The model's warning (a synthetic-only model's), or ""."""
    return (result.settings.model.get("warning", "") if result.settings is not None else "") or ""


def analyse(recognizer: Recognizer, src: FrameSource, folder: Path, *, settings: InferenceSettings | None = None,
            annotate: bool = True, max_frames: int | None = None, progress: bool = False, name: str = "",
            on_event: Callable[[FrameEvent], None] | None = None) -> VideoPrediction:
    """The predictions of a file or folder and every output into `folder` (with `annotate`, annotated.mp4,
    drawn once the people are known: the source is read a second time). `name`: what the outputs call
    the input (default: the source's own name)."""
    result = recognizer.predict_video(src, settings=settings, max_frames=max_frames, progress=progress,
                                      on_event=on_event)
    if name:
        result.source = name
    if src.still:  # a photo: annotated.jpg, and no timeline of one instant
        write_outputs(result, folder, photo=src if annotate else None)
        return result
    write_outputs(result, folder, video=src if annotate else None, progress=progress)
    return result


def predict_one(recognizer: Recognizer, item: str, folder: Path, *, annotate: bool = True,
                max_seconds: float | None = None, progress: bool = False,
                log: Callable[[str], None] = say) -> tuple[VideoPrediction | None, str | None]:
    """One input into its output folder; (result, None) or (None, reason). Never raises for bad input."""
    try:
        src = open_source(item)
        if src.live:
            result = predict_live(recognizer, src, folder, max_seconds=max_seconds, log=log)
            write_outputs(result, folder)
        else:
            max_frames = int(max_seconds * src.fps) if max_seconds else None
            result = analyse(recognizer, src, folder, annotate=annotate, max_frames=max_frames, progress=progress)
    except DferError as exc:
        return None, str(exc)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # recorded, never fatal to the other inputs
        return None, f"{item}: unexpected {exc.__class__.__name__}: {exc}"
    return result, None


def _ray_worker(make_recognizer: Callable[[], Recognizer], annotate: bool, max_seconds: float | None):
    """Runs in a Ray actor: the model is loaded once, then inputs run one after another."""
    recognizer = make_recognizer()

    def run(job: tuple[str, str]) -> tuple[VideoPrediction | None, str | None]:
        item, folder = job
        result, error = predict_one(recognizer, item, Path(folder), annotate=annotate, max_seconds=max_seconds,
                                    log=lambda _: None)
        if result is not None:
            result.boxes = {}  # the files hold them; keep the reply to the driver small
        return result, error

    return run


def predict_inputs(
    recognizer: Recognizer | Callable[[], Recognizer],
    inputs: Iterable[str],
    out: str | Path,
    *,
    annotate: bool = True,
    overwrite: bool = False,
    max_seconds: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] = say,
    ray: RayOptions | None = None,
) -> PredictRun:
    """Every input into OUT/<stem>/; inputs already done are skipped. With `ray`, inputs run on a Ray
    cluster and `recognizer` is a function that makes one (called once per Ray worker)."""
    out = Path(out)
    items = expand_inputs(inputs)
    run = PredictRun()
    todo = []
    for item, folder in zip(items, _unique_dirs(items, out)):
        if (folder / "summary.json").is_file() and not overwrite:
            run.skipped.append(str(folder))
        else:
            todo.append((item, str(folder)))
    bar = progress_bar(len(todo), "videos", unit="video", enabled=progress and len(todo) > 1)
    if ray is not None:
        done = ray_map(partial(_ray_worker, recognizer, annotate, max_seconds), todo, ray)
        results = (((item, folder), *(out if err is None else (None, err))) for (item, folder), out, err in done)
    else:
        rec = recognizer if isinstance(recognizer, Recognizer) else recognizer()
        results = (((item, folder), *predict_one(rec, item, Path(folder), annotate=annotate, max_seconds=max_seconds,
                                                 progress=progress, log=log))
                   for item, folder in todo)
    for (item, folder), result, error in results:
        bar.update(1)
        if error is not None:
            run.failed.append((item, error))
            log(f"failed: {error}")
            continue
        run.done.append(folder)
        run.results[folder] = result
        log(result_line(result, item, folder))
    bar.close()
    if run.failed:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["input", "reason"])
        w.writerows(run.failed)
        atomic_write_text(out / "failures.csv", buf.getvalue())
    return run


def predict_live(recognizer: Recognizer, src, folder: Path, *, max_seconds: float | None = None,
                 log: Callable[[str], None] = print) -> VideoPrediction:
    """Webcam or stream: one pass, annotated frames written as they come (each face shows its latest
    window), new windows printed live. Ends with the stream, after `max_seconds`, or on Ctrl-C."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = VideoWriter(folder / "annotated.mp4", src.fps, src.width, src.height)
    builder = recognizer.result_builder(src)
    latest: dict[int, WindowPrediction] = {}
    if recognizer.model_info.get("warning"):
        log(recognizer.model_info["warning"])
    max_frames = int(max_seconds * src.fps) if max_seconds else None
    try:
        for ev in recognizer.iter_source(src, max_frames=max_frames):
            builder.add(ev)
            for w in ev.new_windows:
                latest[w.track_id] = w
                log(f"{w.end_time:8.2f}s  face #{w.track_id}: {w.label} ({percent(w.confidence, 0, suffix='%')})")
            if ev.frame is None:
                continue
            faces = [(tid, tb.box.as_array(), None if latest.get(tid) is None else latest[tid].probs, "", None)
                     for tid, tb in ev.boxes.items()]
            annotate_frame(ev.frame, faces, recognizer.class_names,
                           warning=SYNTHETIC_SHORT if recognizer.model_info.get("warning") else "")
            writer.write(ev.frame)
    except KeyboardInterrupt:
        log("stopped; writing what was seen")
    finally:
        writer.close()
    return builder.finish()
