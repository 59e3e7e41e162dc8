"""What every `dfer` command shares: argument types that check values when parsed, the shared option
groups (face, output, engine) and their readers."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

from dfer.data.face_settings import FaceSettings
from dfer.errors import DferError
from dfer.formatting import parse_bytes
from dfer.inference.episodes import EpisodeRule
from dfer.options import ENGINES, SAME_PERSON
from dfer.remote import check_reference, is_remote
from dfer.scale import RayOptions, import_ray


def number(kind: type, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
            what: str = "") -> Callable[[str], Any]:
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if v != v or (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and v > hi):
            lo_s = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
            rng = " and ".join(x for x in (lo_s, "" if hi is None else f"<= {hi}") if x)
            raise argparse.ArgumentTypeError(f"must be {rng}{what}, got {text}")
        return v

    parse.__name__ = "integer" if kind is int else "number"
    return parse


POSITIVE_INT = number(int, 1)


NONNEG_INT = number(int, 0)


POSITIVE_FLOAT = number(float, 0, lo_open=True)


NONNEG_FLOAT = number(float, 0)


def sizes(what: str, example: str, minimum: tuple[int, ...], rule: str) -> Callable[[str], tuple[int, ...]]:
    """A parser of 'AxB[xC]' integers, each at least its `minimum`."""
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.lower().split("x"))
        except ValueError:
            values = ()
        if len(values) != len(minimum):
            raise argparse.ArgumentTypeError(f"{what} must look like {example}, got {text!r}")
        if any(v < m for v, m in zip(values, minimum)):
            raise argparse.ArgumentTypeError(f"{what} needs {rule}, got {text!r}")
        return values

    return parse


clip_size = sizes("clip size", "16x112x112", (1, 16, 16), "T >= 1 and H, W >= 16")


demo_clip = sizes("clip", "8x32 (frames x side)", (1, 16), "frames >= 1 and side >= 16")


def byte_size(text: str) -> int:
    """A memory or disk size: 4G, 512M, 800000 (bytes)."""

    try:
        value = parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a size must be >= 0, got {text!r}")
    return value


frame_size = sizes("frame size", "4096x2160", (16, 16), "both sides >= 16")


def shard(text: str) -> tuple[int, int]:
    """--shard I/N: this process's part of a dataset, I of N (0 <= I < N)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def _writable(path: Path) -> Path:
    """The nearest existing folder of `path` must be a folder we can create files in."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: cannot be created, {probe} is a file")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    return path


def out_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: exists and is not a folder")
    return _writable(path)


def out_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file name")
    _writable(path.parent)
    return path


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: file not found")
    return path


def checkpoint_ref(text: str) -> Path | str:
    """A checkpoint file, or an http(s):// / hf:// URL (checked here, downloaded when used)."""

    if not is_remote(text):
        return existing_file(text)
    try:
        check_reference(text)
    except DferError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def existing_path(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return path


def existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder not found")
    return path


CHECKPOINT_HELP = ("a file, https://host/best.pt#sha256=HEX (downloaded once, verified) or "
                   "hf://owner/repo/best.pt[@revision]")


STREAMS_HELP = ("OpenVINO requests run at once, windows scored while frames are read "
                "(0: auto: float models as many as suit the CPU, int8 one; 1: lowest latency per window)")


PREPARE_ONLY_FACE = ("size", "max_frames")  # what a model was trained on: predict takes the checkpoint's


def _replaced(text: str):
    raise argparse.ArgumentTypeError("was replaced by --cut-ratio and --cut-min in dfer 0.2 (the shot-cut rule is "
                                     "adaptive now and works on grey video: see the people section of the docs)")


def add_face_args(p: argparse.ArgumentParser, *, inherit: bool) -> None:
    """Face options, generated from FaceSettings' flag fields; with `inherit` (predict) a flag left out means
    the checkpoint's value, and the crop's size and frame count (what the model was trained on) are not offered."""
    for path, f, meta in flag_fields(FaceSettings):
        if inherit and path in PREPARE_ONLY_FACE:
            continue
        if inherit:
            suffix = " (default: the checkpoint's)"
        elif path == "detector":
            suffix = " (default: the dataset's: dlib, or none for DFEW's face frames)"
        else:
            suffix = f" (default {f.default})"
        p.add_argument("--" + path.replace("_", "-"), type=_KINDS[meta.kind] if meta.kind else str,
                       choices=list(meta.choices) or None, default=None, help=meta.help + suffix)
    p.add_argument("--cut-threshold", type=_replaced, help=argparse.SUPPRESS)


def add_output_args(p: argparse.ArgumentParser) -> None:
    """How windows are labelled and grouped into episodes (predict and explain)."""
    rule = EpisodeRule()
    p.add_argument("--min-confidence", type=number(float, 0, 1), default=0.0,
                   help="label windows whose top (calibrated) probability is lower as 'uncertain' (default 0: never)")
    p.add_argument("--min-episode", type=NONNEG_FLOAT, default=rule.min_seconds,
                   help=f"seconds; shorter label runs are flickers merged into a neighbour (default {rule.min_seconds}; 0: off)")
    p.add_argument("--episode-margin", type=number(float, 0, 1), default=rule.margin,
                   help=f"probability lead a new label needs to start an episode (default {rule.margin}; 0: off)")


def add_people_args(p: argparse.ArgumentParser) -> None:
    """Joining face tracks into people (dfer.inference.people)."""
    p.add_argument("--no-people", action="store_true", help="face tracks only: do not join them into people")
    p.add_argument("--same-person", type=number(float, 0.1, 1.5), default=SAME_PERSON,
                   help=f"face descriptor distance under which two tracks are one person (default {SAME_PERSON}, "
                        "dlib's; lower: stricter)")
    p.add_argument("--gallery", type=existing_dir, metavar="DIR",
                   help="known people: one sub-folder of photos (or one image file) per name; people who match "
                        "get the name, everyone else stays P<n> (you are responsible for consent and local law)")
    p.add_argument("--save-descriptors", action="store_true",
                   help="also write descriptors.npz: each track's 128-d face descriptors (biometric data: never "
                        "written without this flag)")


def add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="local", choices=ENGINES,
                   help='local: this machine; ray: a Ray cluster (pip install "dfer[ray]")')
    add_config_flags(p, RayOptions)  # --ray-address, --ray-cpus-per-worker ...: RayOptions' fields


def face_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Face settings given on the command line (flags left out are None)."""
    return {path: getattr(args, path) for path, _, _ in flag_fields(FaceSettings) if getattr(args, path, None) is not None}


def ray_options(args: argparse.Namespace):
    """RayOptions for --engine ray, None for the local engine."""
    if args.engine != "ray":
        return None

    import_ray()  # a clear error naming the extra when Ray is not installed
    return RayOptions(**config_values(RayOptions, args))


def defaults_of(cls) -> dict[str, Any]:
    """A config dataclass's field defaults: the one place a flag's default is written."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


# -- flags generated from config dataclasses (dfer.options.flag) ------------------------------------
_KINDS: dict[str, Callable[[str], Any]] = {
    "positive_int": POSITIVE_INT, "nonneg_int": NONNEG_INT, "positive_float": POSITIVE_FLOAT,
    "nonneg_float": NONNEG_FLOAT, "fraction": number(float, 0, 1), "bytes": byte_size, "frame": frame_size,
    "dir": out_dir, "text": str, "side": number(int, 16), "existing_dir": existing_dir,
    "existing_file": existing_file, "detect_size": number(int, 32), "upsample": number(int, 0, 3),
    "smooth": number(float, 0, 0.99), "crop_size": number(int, 8, 1024),
}


def flag_fields(cls, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, field, its Flag) of every field of a config dataclass, nested ones included, that is a flag."""
    out = []
    for f in fields(cls):
        meta = f.metadata.get("flag")
        if meta is not None:
            out.append((prefix + f.name, f, meta))
        elif isinstance(f.type, type) and is_dataclass(f.type):
            out += flag_fields(f.type, f"{prefix}{f.name}.")
        elif f.default_factory is not MISSING and is_dataclass(f.default_factory):
            out += flag_fields(f.default_factory, f"{prefix}{f.name}.")
    return out


def _dest(path: str, meta) -> str:
    return (meta.name or path.rsplit(".", 1)[-1]).replace("-", "_")


def _field_default(f) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def add_config_flags(p: argparse.ArgumentParser, cls, *, overrides: bool = False,
                     skip: Callable[[str], bool] = lambda path: False) -> None:
    """A flag per `flag` field of `cls` (dfer.options.flag). `overrides`: the flag only overrides a config
    that may come from a file too (default None, the field's default said in the help) instead of holding
    the default itself."""
    for path, f, meta in flag_fields(cls):
        if skip(path):
            continue
        dest, default = _dest(path, meta), _field_default(f)
        name = "--" + ("no-" if meta.kind == "off" else "") + dest.replace("_", "-")
        if meta.kind in ("switch", "off"):
            p.add_argument(name, dest=dest, action="store_true", help=meta.help)
            continue
        shown = default / meta.unit if isinstance(default, (int, float)) and meta.unit != 1 else default
        said = "x".join(map(str, shown)) if isinstance(shown, tuple) else shown
        text = meta.help + (f" (default {said})" if said not in (None, "") and "default" not in meta.help else "")
        p.add_argument(name, dest=dest, type=_KINDS[meta.kind] if meta.kind else None,
                       choices=list(meta.choices) or None, default=None if overrides else shown,
                       metavar=meta.metavar, help=text.replace("%", "%%"))


def config_values(cls, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags of `cls`'s top-level `flag` fields, in the field's unit: {field name: value} (those
    the command offers)."""
    return {path: _scaled(getattr(args, _dest(path, meta)), meta) for path, f, meta in flag_fields(cls)
            if "." not in path and hasattr(args, _dest(path, meta))}  # a command may offer only some


def config_overrides(cls, args: argparse.Namespace) -> list[str]:
    """The flags given on the command line, as `dotted.path=value` overrides of `cls` (add_config_flags with
    overrides=True): a switch sets true, an `off` flag false; a flag left out changes nothing."""
    out = []
    for path, _, meta in flag_fields(cls):
        v = getattr(args, _dest(path, meta), None)
        if meta.kind == "switch":
            out += [f"{path}=true"] if v else []
        elif meta.kind == "off":
            out += [f"{path}=false"] if v else []
        elif v is not None:
            out.append(f"{path}={_scaled(v, meta)}")
    return out


def _scaled(v: Any, meta) -> Any:
    return v * meta.unit if isinstance(v, (int, float)) and not isinstance(v, bool) and meta.unit != 1 else v
