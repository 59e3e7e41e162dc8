"""People from face tracks: the joining rule, the outputs, and real faces when the models are installed."""

from __future__ import annotations

import numpy as np
import pytest

from dfer.inference import people
from dfer.inference.people import Candidates, join_tracks, name_people

needs_models = pytest.mark.skipif(not people.available(), reason='dlib face models not installed (pip install "dfer[people]")')


def _at(*points: float) -> np.ndarray:
    """Descriptors on a line: distances between them are the differences of `points`."""
    out = np.zeros((len(points), 128), np.float32)
    out[:, 0] = points
    return out


def test_tracks_close_in_descriptor_space_are_one_person():
    desc = {0: _at(0.0), 1: _at(0.3), 2: _at(2.0)}
    spans = {0: (0, 10), 1: (20, 30), 2: (40, 50)}
    groups = join_tracks(desc, spans, threshold=0.6)
    assert sorted(map(sorted, groups)) == [[0, 1], [2]]
    assert name_people(groups, spans) == {0: "P1", 1: "P1", 2: "P2"}


def test_overlapping_tracks_are_never_one_person():
    desc = {0: _at(0.0), 1: _at(0.1)}
    assert len(join_tracks(desc, {0: (0, 10), 1: (5, 20)}, threshold=0.6)) == 2


def test_average_linkage_does_not_chain_look_alikes():
    # A-B 0.5, B-C 0.5, A-C 1.0: single linkage would make one person of three
    desc = {0: _at(0.0), 1: _at(0.5), 2: _at(1.0)}
    spans = {0: (0, 1), 1: (2, 3), 2: (4, 5)}
    assert len(join_tracks(desc, spans, threshold=0.6)) == 2


SPANS = {0: (50, 60), 1: (0, 10), 2: (20, 30)}


def test_a_track_without_a_descriptor_is_a_person_alone():
    groups = join_tracks({0: _at(0.0), 2: _at(0.1)}, SPANS)
    assert sorted(map(sorted, groups)) == [[0, 2], [1]]


def test_people_are_named_in_order_of_first_appearance():
    groups = join_tracks({0: _at(0.0), 2: _at(0.1)}, SPANS)
    assert name_people(groups, SPANS) == {1: "P1", 0: "P2", 2: "P2"}


class FakeDescriber:
    """Stands in for dlib's models: a chip is the face's box resized, a descriptor its mean colour."""

    def __init__(self):
        self.described = 0

    def align(self, image, box):
        import cv2

        x0, y0, x1, y1 = (int(round(v)) for v in box)
        return cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (people.CHIP, people.CHIP))

    def describe(self, chip):
        self.described += 1
        out = np.zeros(128, np.float32)
        out[0] = chip.mean() / 100
        return out


def test_candidates_keep_the_best_few_frames_only():
    rng = np.random.default_rng(0)
    c = Candidates(FakeDescriber(), per_track=3)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for i in range(20):
        side = 20 + i
        c.offer(7, i, frame, (10.0, 10.0, 10.0 + side, 10.0 + side))
    kept = c.by_track[7]
    assert len(kept) == 3 and kept[0].score >= kept[1].score >= kept[2].score
    assert kept[0].chip.shape == (people.CHIP, people.CHIP, 3) and kept[0].thumb.shape == (96, 96, 3)  # never frames
    c.offer(8, 0, frame, (0.0, 0.0, 8.0, 8.0))  # too small to describe
    assert 8 not in c.by_track


def test_ended_tracks_past_the_budget_keep_their_best_face_then_only_a_descriptor():
    rng = np.random.default_rng(0)
    fake = FakeDescriber()
    c = Candidates(fake, per_track=3, budget=4 * people.CHIP * people.CHIP * 3)  # room for 4 chips of ended tracks
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for t in range(4):
        for i in range(3):
            c.offer(t, i, frame, (10.0, 10.0, 40.0 + i, 40.0 + i))
        c.end(t)
    assert [len(c.by_track[t]) for t in range(4)] == [1, 1, 1, 1]  # trimmed, oldest first, to their best
    assert c.trimmed == 4 and c.early == 0
    for t in range(4, 6):
        c.offer(t, 0, frame, (10.0, 10.0, 40.0, 40.0))
        c.end(t)
    assert c.early == 2 and sorted(c.described) == [0, 1] and c.by_track[0][0].chip is None  # described at once
    assert len(c.notes) == 2 and fake.described == 2


def test_a_person_gets_the_best_ranked_face_of_all_their_tracks():
    c = Candidates(FakeDescriber(), per_track=2)
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[:, 150:] = 200
    c.offer(0, 0, frame, (20.0, 20.0, 60.0, 60.0))  # P1's first track: a small face
    c.offer(2, 9, frame, (170.0, 20.0, 270.0, 120.0))  # P1 again, larger (and on the bright half)
    c.offer(1, 5, frame, (10.0, 100.0, 50.0, 140.0))  # P2
    c.by_track[2][0].score = c.by_track[0][0].score + 1  # flat frames have no sharpness: rank by hand
    faces = people.thumbnails(c, {0: "P1", 1: "P2", 2: "P1"})
    assert sorted(faces) == ["P1", "P2"] and faces["P1"].shape == (96, 96, 3)
    assert faces["P1"].mean() > 150 and faces["P2"].mean() < 10  # P1's face is track 2's
    sheet = people.contact_sheet(["P2", "P1", "P3"], faces, size=32)
    assert sheet.shape == (32, 96, 3) and sheet[:, :32].mean() < 10 and sheet[:, 64:].mean() == 128  # P3: grey


def test_close_groups_stay_apart():
    # A and B are 0.5 apart (one person by average linkage alone), but C joins at 0.55 from A and 0.75 from B:
    # a group {A, B, C} would hold a pair farther than the threshold + SPREAD.
    desc = {0: _at(0.0), 1: _at(0.5), 2: _at(-0.2)}
    spans = {0: (0, 1), 1: (2, 3), 2: (4, 5)}
    groups = sorted(map(sorted, join_tracks(desc, spans, threshold=0.6)))
    assert groups == [[0, 2], [1]]


def test_track_distances_are_the_mean_over_descriptor_pairs():
    desc = {0: _at(0.0, 1.0), 1: _at(0.5), 3: _at(2.0, 2.0, 4.0)}
    d = people.track_distances(desc, [0, 1, 2, 3])
    assert d[0, 1] == pytest.approx(0.5) and d[0, 3] == pytest.approx(np.mean([2, 2, 4, 1, 1, 3]))
    assert np.isinf(d[2]).all() and d[1, 0] == d[0, 1]


def test_hundreds_of_tracks_of_ten_people_are_ten_people():  # the time it takes: benchmarks/bench_serve_attacks.py
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 0.3, (10, 128))
    for n in (200, 800):
        desc = {t: (centres[t % 10] + rng.normal(0, 0.02, 128))[None] for t in range(n)}
        groups = join_tracks(desc, {t: (10 * t, 10 * t + 5) for t in range(n)})
        assert len(groups) == 10 and all(len({t % 10 for t in g}) == 1 for g in groups)


def test_each_saved_descriptor_names_its_track_with_its_person(tmp_path):
    blob = people.descriptors_npz({0: "P1", 1: "P2"}, {0: _at(0.0, 0.1), 1: _at(0.5)})
    (tmp_path / "d.npz").write_bytes(blob)
    d = np.load(tmp_path / "d.npz")
    assert d["descriptors"].shape == (3, 128) and d["descriptors"].dtype == np.float32
    assert list(d["track_id"]) == [0, 0, 1] and list(d["person_id"]) == ["P1", "P1", "P2"]


def test_save_descriptors_without_people_is_refused(tmp_path, video, capsys):
    from dfer.cli import main

    (tmp_path / "m.pt").write_bytes(b"refused before it is read")
    rc = main(["predict", str(video), "--checkpoint", str(tmp_path / "m.pt"), "--out", str(tmp_path), "--no-people",
               "--save-descriptors"])
    assert rc == 2 and "--save-descriptors" in capsys.readouterr().err


def test_without_the_models_predict_keeps_tracks_with_a_note(monkeypatch, tmp_path, video, ckpt):
    from dfer.inference import Recognizer

    monkeypatch.setattr(people, "model_files", lambda: None)
    result = Recognizer.from_checkpoint(ckpt, backend="torch").predict_video(video)
    assert result.people == {} and "dfer[people]" in result.summary()["people_note"]
    assert set(result.to_dataframe()["person_id"].fillna("")) == {""}
    assert list(result.people_dataframe().columns)[:5] == ["person_id", "first_s", "last_s", "seconds_on_screen", "tracks"]


@needs_models
@pytest.mark.media
def test_real_faces_cut_together_are_the_right_people(media_dir, tmp_path):
    """carphone, single_face, carphone again: three shots, three tracks, two people."""
    import cv2

    from dfer.checkpoint import make_checkpoint, save_checkpoint
    from dfer.data import read_video, write_video
    from dfer.data.face_settings import FaceSettings
    from dfer.inference import Recognizer
    from dfer.inference.predict import write_outputs
    from dfer.models import build_model
    from dfer.preprocess import Preprocess

    a, _ = read_video(media_dir / "carphone_pristine.mp4")
    b, info = read_video(media_dir / "single_face.mp4")
    h, w = b[0].shape[:2]
    a = [cv2.resize(f, (w, h)) for f in a]
    video = write_video(tmp_path / "cut.mp4", a + list(b) + a, fps=info.fps)
    model = build_model(name="dfer_r2plus1d_18_half", num_classes=3)
    pre = Preprocess(num_frames=4, size=32, face=FaceSettings().to_dict(), clip_seconds=1.0)
    ckpt = save_checkpoint(tmp_path / "m.pt", make_checkpoint(model=model, class_names=["a", "b", "c"], preprocess=pre))
    result = Recognizer.from_checkpoint(ckpt, backend="torch").predict_video(video)
    assert result.cuts == [len(a), len(a) + len(b)]
    assert len(result.boxes) == 3 and sorted(set(result.people.values())) == ["P1", "P2"]
    first, second, third = sorted(result.boxes, key=lambda t: min(result.boxes[t]))
    assert result.people[first] == result.people[third] == "P1" and result.people[second] == "P2"
    write_outputs(result, tmp_path / "out")
    rows = (tmp_path / "out" / "people.csv").read_text().splitlines()
    assert rows[0].startswith("person_id,first_s,last_s,seconds_on_screen,tracks,share_a") and len(rows) == 3
    assert "person_id" in (tmp_path / "out" / "tracks.csv").read_text().splitlines()[0]
    sheet = cv2.imread(str(tmp_path / "out" / "people.jpg"))
    assert sheet.shape == (96, 192, 3)  # one face per person, in people.csv's order
    assert not (tmp_path / "out" / "descriptors.npz").exists()  # never written unless asked for


@needs_models
@pytest.mark.media
def test_a_gallery_names_the_people_it_knows(media_dir, tmp_path, capsys):
    import cv2

    from dfer.cli import main
    from dfer.data import read_video
    from dfer.inference.people import FaceDescriber, Gallery

    a, _ = read_video(media_dir / "carphone_pristine.mp4")
    b, _ = read_video(media_dir / "single_face.mp4")
    n, _ = read_video(media_dir / "no_face.mp4")
    gallery = tmp_path / "gallery"
    for name, frame in (("Carla/1.png", a[30]), ("Sam.png", b[10]), ("Twin/1.png", b[50]), ("Nobody/1.png", n[0])):
        (gallery / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(gallery / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    g = Gallery.load(gallery, FaceDescriber())
    assert sorted(g.names) == ["Carla", "Sam", "Twin"]
    assert any("Nobody/1.png: no face found" in w for w in g.warnings)
    assert any("'Sam' and 'Twin' look like the same person" in w for w in g.warnings)
    named = g.name({0: "P1", 1: "P2", 2: "P1", 3: "P3"},
                   {0: g.names["Carla"], 1: g.names["Sam"], 2: g.names["Carla"], 3: np.full((1, 128), 5.0, np.float32)})
    assert named[0] == named[2] == "Carla" and named[1] in ("Sam", "Twin") and named[3] == "P3"
    (gallery / "notes.txt").write_text("not a photo")
    video = tmp_path / "v.mp4"
    video.write_bytes((media_dir / "single_face.mp4").read_bytes())
    rc = main(["predict", str(video), "--checkpoint", str(_random_checkpoint(tmp_path)), "--out", str(tmp_path / "out"),
               "--gallery", str(gallery), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "notes.txt is not an image" in err and not (tmp_path / "out" / "v").exists()


def _random_checkpoint(tmp_path):
    from dfer.checkpoint import make_checkpoint, save_checkpoint
    from dfer.data.face_settings import FaceSettings
    from dfer.models import build_model
    from dfer.preprocess import Preprocess

    model = build_model(name="dfer_r2plus1d_18_half", num_classes=3)
    pre = Preprocess(num_frames=4, size=32, face=FaceSettings().to_dict(), clip_seconds=1.0)
    return save_checkpoint(tmp_path / "m.pt", make_checkpoint(model=model, class_names=["a", "b", "c"], preprocess=pre))
