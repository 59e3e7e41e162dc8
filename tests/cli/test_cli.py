"""Bad invocations end with one clear line and exit code 2: never a traceback, never a silent run."""

import pytest

from dfer.cli import build_parser, main


@pytest.fixture
def files(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"not a checkpoint")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not a video")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    cache = tmp_path / "cache"
    cache.mkdir()
    return {"ckpt": str(ckpt), "video": str(video), "blocked": str(blocker / "sub"), "cache": str(cache),
            "tmp": str(tmp_path)}


BAD = [
    ("profile --num-classes 1", "--num-classes: must be >= 2, got 1"),
    ("profile --clip 16x112", "clip size must look like 16x112x112"),
    ("profile --clip 0x112x112", "T >= 1"),
    ("profile --attention-stage layer9", "invalid choice"),
    ("synth --out {tmp}/s --frames 0", "--frames: must be >= 2, got 0"),
    ("synth --out {tmp}/s --clips-per-class -3", "--clips-per-class: must be >= 1"),
    ("synth --out {blocked}", "afile is a file"),
    ("demo --out {tmp}/d --clips-per-class 0", "--clips-per-class: must be >= 1, got 0"),
    ("demo --out {tmp}/d --clips-per-class 2 --folds 3", "at least folds + 1 = 4"),
    ("demo --out {tmp}/d --clip 8", "clip must look like 8x32"),
    ("demo --out {tmp}/d --epochs 0", "--epochs: must be >= 1"),
    ("prepare folder --root {tmp} --out {tmp}/c --detect-every 0", "--detect-every: must be >= 1, got 0"),
    ("prepare folder --root {tmp} --out {tmp}/c --margin 2", "--margin: must be >= 0 and <= 1"),
    ("prepare folder --root {tmp} --out {tmp}/c --shard 3/2", "0 <= I < N"),
    ("prepare folder --root {tmp} --out {tmp}/c --shard half", "I/N"),
    ("prepare folder --root {tmp} --out {tmp}/c --workers 0", "--workers: must be >= 1"),
    ("prepare folder --root {tmp} --out {tmp}/c --val-fraction 0.9", "--val-fraction: must be >= 0 and <= 0.5"),
    ("prepare folder --root {tmp} --out {blocked}", "is a file"),
    ("prepare folder --root {tmp}/missing --out {tmp}/c", "missing"),
    ("prepare dfew2 --root {tmp} --out {tmp}/c", "invalid choice"),
    ("train --data {tmp}/missing", "folder not found"),
    ("train --data {cache} --epochs 0", "--epochs: must be >= 1, got 0"),
    ("train --data {cache} --lr -1", "--lr: must be > 0"),
    ("train --data {cache} --lr nan", "--lr: must be > 0"),
    ("cv --data {cache} --batch-size 0", "--batch-size: must be >= 1"),
    ("cv --data {cache} --precision 8-bit", "invalid choice"),
    ("cv --data {cache} --set optim.lrr=1", "optim.lrr"),
    ("evaluate {ckpt} --data {cache} --split dev", "invalid choice"),
    ("evaluate {tmp}/none.pt --data {cache}", "file not found"),
    ("evaluate {ckpt} --data {cache} --frame-order random", "invalid choice"),
    ("predict {video} --checkpoint {ckpt} --out {tmp}/o --stride -5", "--stride: must be >= 1, got -5"),
    ("predict {video} --checkpoint {ckpt} --out {tmp}/o --window 0", "--window: must be > 0"),
    ("predict {video} --checkpoint {ckpt} --out {tmp}/o --backend tensorrt", "invalid choice"),
    ("predict {video} --checkpoint {ckpt} --out {blocked}", "is a file"),
    ("predict {video} --checkpoint {tmp}/none.pt --out {tmp}/o", "file not found"),
    ("predict {video} --checkpoint {ckpt} --out {tmp}/o", "not a readable PyTorch checkpoint"),
    ("predict --checkpoint {ckpt} --out {tmp}/o", "no input"),
    ("predict {video} --checkpoint {ckpt} --out {tmp}/o --upsample 9", "--upsample: must be >= 0 and <= 3"),
    ("predict {video} --checkpoint {ckpt} --out {tmp}/o --engine spark", "invalid choice"),
    ("predict {video} --checkpoint {ckpt} --out {tmp}/o --ray-cpus-per-worker 0", "--ray-cpus-per-worker: must be > 0"),
    ("prepare folder --root {tmp} --out {tmp}/c --ray-workers -1", "--ray-workers: must be >= 0"),
    ("serve --checkpoint {ckpt} --port 70000", "--port: must be >= 1 and <= 65535"),
    ("serve --checkpoint {tmp}/none.pt", "file not found"),
    ("serve --checkpoint {ckpt} --data-dir {blocked}", "is a file"),
    ("serve --checkpoint {ckpt} --max-upload-mb 0", "--max-upload-mb: must be > 0"),
    ("export {ckpt} --out {tmp}/m.onnx --calibration-clips 0", "--calibration-clips: must be >= 1"),
    ("export {ckpt} --out {tmp} ", "is a folder"),
    ("export {ckpt} --out {tmp}/m.onnx --format tflite", "invalid choice"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[b[0].split(" --")[0] + " " + b[1][:24] for b in BAD])
def test_bad_invocations_end_in_one_clear_line(files, capsys, argv, message):
    code = main(argv.format(**files).split())
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err and "usage:" not in err  # the error, not the whole usage
    lines = err.strip().splitlines()
    error = [line for line in lines if "error:" in line][-1]
    assert error.startswith("dfer") and lines[-1] in (error, f"(see: {error.split(':')[0]} --help)")


def test_choices_come_from_the_library():
    from dfer.data.adapters import ADAPTERS
    from dfer.data.dataset import FRAME_ORDERS
    from dfer.data.face_settings import DETECTORS
    from dfer.engine.config import PRECISIONS
    from dfer.inference.backends import BACKENDS
    from dfer.models import ATTENTION_STAGES

    sub = {a.dest: a for a in build_parser()._subparsers._group_actions}["command"].choices
    opts = {name: {a.dest: a for a in p._actions} for name, p in sub.items()}
    assert tuple(opts["prepare"]["kind"].choices) == ADAPTERS
    assert tuple(opts["predict"]["backend"].choices) == BACKENDS
    assert tuple(opts["predict"]["detector"].choices) == DETECTORS
    assert tuple(opts["evaluate"]["frame_order"].choices) == FRAME_ORDERS
    assert tuple(opts["train"]["precision"].choices) == PRECISIONS
    assert tuple(opts["profile"]["attention_stage"].choices) == ATTENTION_STAGES
