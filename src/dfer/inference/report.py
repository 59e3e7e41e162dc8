"""What a `VideoPrediction` says, as tables and summaries: the rows of predictions.csv, tracks.csv,
episodes.csv and people.csv, and summary.json. Functions of the record, so the record stays a record.

Labels that are a tie or a near tie say so: a face or person whose top classes are within MIXED (5
points) of each other is labelled "mixed: Happy/Sad/Angry" (the classes in order), never the first
of them alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dfer.inference.episodes import UNCERTAIN, Episode, EpisodeRule, track_episodes

if TYPE_CHECKING:
    from dfer.inference.prediction import VideoPrediction

MIXED = 0.05  # classes within this of the top one share the label
STILL_NOTE = ("a still photo: each face's expression comes from its one frame repeated, without the temporal "
              "information the model was built for")


def label_of_shares(shares: dict[str, float]) -> str | None:
    """The label of a face or person from its share (or mean probability) per class: the top class, or
    "mixed: A/B" when others are within MIXED of it; None when every share is zero."""
    if not shares or max(shares.values()) <= 0:
        return None
    ranked = sorted(shares, key=lambda c: -shares[c])
    top = shares[ranked[0]]
    near = [c for c in ranked if top - shares[c] < MIXED - 1e-9]
    return near[0] if len(near) == 1 else "mixed: " + "/".join(near)


def cut_rule(r: VideoPrediction) -> str:
    """The shot-cut rule the run used, in words (dfer.data.shots)."""
    face = r.settings.face if r.settings is not None else None
    if face is None:
        return ""
    if face.cut_ratio <= 0:
        return "none (cut_ratio 0)"
    return (f"adaptive: a frame whose Y+U+V change is at least {face.cut_ratio:g}x its neighbours' and at least "
            f"{face.cut_min:g} levels, {face.min_shot} frames after the last cut at least")


def windows_dataframe(r: VideoPrediction):
    """One row per (track, window): predictions.csv."""
    import pandas as pd

    cols = ["track_id", "person_id", "start_frame", "end_frame", "start_s", "end_s", "x0", "y0", "x1", "y1", "label",
            "confidence"]
    cols += [f"p_{c}" for c in r.class_names]
    rows = [[w.track_id, r.person(w.track_id), w.start_frame, w.end_frame, round(w.start_time, 4), round(w.end_time, 4),
             *[round(v, 1) for v in w.box], w.label, round(w.confidence, 4), *[round(float(p), 4) for p in w.probs]]
            for w in r.windows]
    return pd.DataFrame(rows, columns=cols)


def tracks_dataframe(r: VideoPrediction):
    """One row per frame and face: frame, time_s, track_id, person_id, x0, y0, x1, y1, source (detected | tracked)."""
    import pandas as pd

    rows = [(f, round(f / r.fps, 4) if r.fps else 0.0, tid, r.person(tid), *(round(v, 1) for v in tb.box.as_array()),
             tb.source) for tid, frames in r.boxes.items() for f, tb in frames.items()]
    rows.sort(key=lambda row: (row[0], row[2]))
    return pd.DataFrame(rows, columns=["frame", "time_s", "track_id", "person_id", "x0", "y0", "x1", "y1", "source"])


def episodes(r: VideoPrediction) -> list[Episode]:
    """Expression episodes of every track (see dfer.inference.episodes for the rule)."""
    rule = r.settings.episodes if r.settings is not None else EpisodeRule()
    return [e for t in r.track_ids
            for e in track_episodes(t, [w for w in r.windows if w.track_id == t], r.class_names, rule)]


def episodes_dataframe(r: VideoPrediction):
    """One row per episode: track_id, person_id, start_s, end_s, label, mean_probability, windows."""
    import pandas as pd

    cols = ["track_id", "start_s", "end_s", "label", "mean_probability", "windows"]
    rows = [[e.track_id, r.person(e.track_id), *[getattr(e, c) for c in cols[1:]]] for e in episodes(r)]
    return pd.DataFrame(rows, columns=["track_id", "person_id", *cols[1:]])


def people_summary(r: VideoPrediction) -> list[dict[str, Any]]:
    """One entry per person: when on screen, how long, tracks, share of time per expression (from the
    expression episodes), the dominant expression (or "mixed: ..." on a near tie) and the number of episodes."""
    out = []
    eps = episodes(r)
    first: dict[str, int] = {}
    for t, p in r.people.items():
        first[p] = min(first.get(p, 1 << 62), min(r.boxes.get(t, {0: None})))
    for person in sorted(first, key=first.get):
        tracks = sorted(t for t, p in r.people.items() if p == person)
        frames = sorted({f for t in tracks for f in r.boxes.get(t, {})})
        mine = [e for e in eps if e.track_id in tracks]
        time_by_label = {c: 0.0 for c in r.class_names}
        for e in mine:
            time_by_label[e.label] = time_by_label.get(e.label, 0.0) + (e.end_s - e.start_s)
        total = sum(time_by_label.values())
        shares = {c: round(v / total, 4) if total else 0.0 for c, v in time_by_label.items()}
        fps = r.fps or 1.0
        out.append({"person_id": person, "first_s": round(frames[0] / fps, 3) if frames else None,
                    "last_s": round(frames[-1] / fps, 3) if frames else None,
                    "seconds_on_screen": round(len(frames) / fps, 3), "tracks": len(tracks), "track_ids": tracks,
                    "dominant": label_of_shares(shares) if total else None, "shares": shares, "episodes": len(mine)})
    return out


def people_dataframe(r: VideoPrediction):
    """One row per person: person_id, first_s, last_s, seconds_on_screen, tracks, share_<class> for every
    class (of the person's expression-episode time), dominant, episodes."""
    import pandas as pd

    rows = [{**{k: v for k, v in p.items() if k not in ("shares", "track_ids")},
             **{f"share_{c}": v for c, v in p["shares"].items()}} for p in people_summary(r)]
    cols = ["person_id", "first_s", "last_s", "seconds_on_screen", "tracks",
            *[f"share_{c}" for c in r.class_names], "dominant", "episodes"]
    return pd.DataFrame(rows, columns=cols)


def track_summary(r: VideoPrediction, track_id: int) -> dict[str, Any]:
    ws = [w for w in r.windows if w.track_id == track_id]
    probs = np.stack([w.probs for w in ws])  # (W, K)
    mean = probs.mean(0)
    counts = np.bincount(probs.argmax(1), minlength=len(r.class_names))
    frames = sorted(r.boxes.get(track_id, {}))
    first, last = (frames[0], frames[-1]) if frames else (ws[0].start_frame, ws[-1].end_frame)
    mean_probs = {c: round(float(p), 4) for c, p in zip(r.class_names, mean)}
    return {
        "track_id": track_id, "person_id": r.person(track_id), "first_frame": first, "last_frame": last,
        "first_s": round(first / r.fps, 3), "last_s": round(last / r.fps, 3), "windows": len(ws),
        "label": label_of_shares({c: float(p) for c, p in zip(r.class_names, mean)}),
        "mean_probs": mean_probs,
        "window_labels": {c: int(n) for c, n in zip(r.class_names, counts) if n},
        "uncertain_windows": sum(1 for w in ws if w.label == UNCERTAIN),
    }


def summary(r: VideoPrediction) -> dict[str, Any]:
    """summary.json."""
    settings = r.settings.to_dict() if r.settings is not None else {}
    out = {
        "source": r.source, "fps": r.fps, "frames": r.num_frames, "duration_s": round(r.duration, 3),
        "width": r.width, "height": r.height, "class_names": r.class_names, "backend": r.backend,
        "processing_s": round(r.seconds, 3),
        **({"still_image": True} if r.still else {"realtime_factor": round(r.realtime_factor, 3)}),
        "settings": settings,
        "shot_cuts": [{"frame": f, "time_s": round(f / r.fps, 3) if r.fps else 0.0} for f in r.cuts],
        "cut_rule": cut_rule(r),
        "identity_splits": [{"frame": f, "time_s": round(f / r.fps, 3) if r.fps else 0.0, "ended_track": a,
                             "new_track": b} for f, a, b in r.identity_splits],
        "tracks": [track_summary(r, t) for t in r.track_ids],
        "people": people_summary(r),
        "episodes": [{**vars(e), "person_id": r.person(e.track_id)} for e in episodes(r)],
    }
    model = settings.get("model", {})
    out["temperature"] = settings.get("temperature", 1.0)
    if not model.get("calibrated", False):
        out["temperature_note"] = "the checkpoint has no fitted temperature (trained before dfer fitted one): 1.0"
    out["uncertain_windows"] = sum(1 for w in r.windows if w.label == UNCERTAIN)
    if model.get("warning"):
        out["warning"] = model["warning"]
    if r.people_note:
        out["people_note"] = r.people_note
    else:
        out["describe_s"] = round(r.describe_seconds, 3)
    if r.identity_check:
        out["identity_check"] = r.identity_check
    if r.still:
        out["still_note"] = STILL_NOTE
    if r.notes:
        out["notes"] = list(r.notes)
    if not r.windows:
        out["message"] = ("no face found" if not r.boxes else
                          "faces were seen too briefly for a prediction (fewer frames than min_track_frames)")
    return out


def result_line(r: VideoPrediction, item: str, folder) -> str:
    """The one line `dfer predict` prints for an input: people, face tracks, windows, shot cuts and identity
    splits, the speed, where the files went, and the synthetic-only warning."""
    s = summary(r)
    faces = ", ".join(f"#{t['track_id']} {t['label']}" for t in s["tracks"]) or s.get("message", "")
    who = ", ".join(f"{p['person_id']} {p['dominant'] or '-'}" for p in s["people"])
    people = f"{len(s['people'])} {'person' if len(s['people']) == 1 else 'people'} [{who}] in " if s["people"] else ""
    shots = [f"{len(r.cuts)} shot cut{'' if len(r.cuts) == 1 else 's'}"] if r.cuts else []
    shots += [f"{len(r.identity_splits)} identity split{'' if len(r.identity_splits) == 1 else 's'}"] \
        if r.identity_splits else []
    if r.still:
        return (f"{item}: {people}{len(s['tracks'])} face(s) [{faces}] in a still photo (no temporal information) "
                f"-> {folder}" + (f" [{s['warning']}]" if "warning" in s else ""))
    return (f"{item}: {people}{len(s['tracks'])} face track(s) [{faces}], {len(r.windows)} windows, "
            + "".join(f"{x}, " for x in shots) + f"{s['realtime_factor']:.2f}x real time -> {folder}"
            + (f" [{s['warning']}]" if "warning" in s else ""))


__all__ = ["result_line", "MIXED", "episodes", "episodes_dataframe", "label_of_shares", "people_dataframe", "people_summary",
           "summary", "track_summary", "tracks_dataframe", "windows_dataframe"]
