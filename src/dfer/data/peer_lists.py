"""Other DFER projects' split lists, read as they are published.

What those lists look like in the wild, and what this reader does about it:
- lines `<path> <label>` (MAE-DFER) or `<path> <num_frames> <label>` (DFER-CLIP), no header;
  labels 0-based, or 1-based when no list has a 0 and the largest label is the class count
  (said in the notes);
- paths absolute on the authors' machines (`/mnt/.../DFEW/Clip/jpg_256/00001`): a path not found
  as given is looked up under `--data-root` by its trailing components, the shortest suffix that
  exists (`--strip-prefix` forces one prefix instead);
- one file per part and fold (`set_1_train.txt`), or a folder per fold (`split01/train.csv`);
- several datasets' lists side by side (`DFEW_set_1_train.txt`, `MAFW_...`, `FERV39K_...`): only
  the dataset named by `--dataset` (or by `--classes` when it is a known dataset) is read;
- a validation list identical to the test list (selection on the test part): reported, and the
  validation part is carved from the training part instead; the peer's choice stays available as
  the protocol `peer_val_is_test`, labelled as selection on test.
Clip ids are the dataset's own: the shortest tail of the listed path that is unique over every
listed clip (DFEW `00001`, FERV39k `Action_Sad_0010`), so caches made from different lists, or by
`dfer prepare dfew`, share ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dfer.data.cache import safe_id
from dfer.data.spec import DFEW_CLASSES, FERV39K_CLASSES, MAFW_CLASSES, ClipRecord, DatasetSpec, split_lines
from dfer.data.video import VIDEO_EXTS
from dfer.errors import DatasetError

KNOWN_CLASSES = {"dfew": DFEW_CLASSES, "ferv39k": FERV39K_CLASSES, "mafw": MAFW_CLASSES}
ID_DEPTH = {"dfew": 1, "mafw": 1, "ferv39k": 3}  # path components that make a clip's id in each known dataset
PEER_PROTOCOL = "peer_val_is_test"
_LIST_PART = re.compile(r"(train|val|test)", re.IGNORECASE)
_LIST_FOLD = re.compile(r"(?:set|split|fold)[_-]?0*(\d+)", re.IGNORECASE)
_DATASET_PREFIX = re.compile(r"^(dfew|mafw|ferv39k)(?=[_\-.]|$)", re.IGNORECASE)


@dataclass
class _Entry:
    listed: str  # the path as written in the list
    label: int
    where: str  # file:line, for messages


@dataclass
class _ListFile:
    path: Path
    fold: str
    part: str
    entries: list[_Entry] = field(default_factory=list)


def _list_files(root: Path) -> list[Path]:
    """*.txt / *.csv in the folder and in its sub-folders (a folder per fold)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".csv")
             and len(p.relative_to(root).parts) <= 2]
    return sorted(found)


def _select_dataset(files: list[Path], dataset: str | None, classes: str | None) -> tuple[list[Path], list[str], str]:
    """Keep the lists of one dataset where a folder holds several (told by the file-name prefix);
    also returns the known dataset the lists are of ('' when unknown)."""
    prefixes = {p: (m.group(1).lower() if (m := _DATASET_PREFIX.match(p.name)) else "") for p in files}
    found = sorted({v for v in prefixes.values() if v})
    wanted = (dataset or (classes if (classes or "").lower() in KNOWN_CLASSES else "") or "").lower()
    if wanted and wanted not in KNOWN_CLASSES:
        raise DatasetError(f"--dataset must be one of {', '.join(KNOWN_CLASSES)}, got {dataset!r}")
    if len(found) <= 1 and (not wanted or not found or found == [wanted]):
        return files, [], wanted or (found[0] if found else "")
    if not wanted:
        raise DatasetError(f"the lists hold {len(found)} datasets ({', '.join(found)}); name one with --dataset "
                           f"or --classes")
    kept = [p for p in files if prefixes[p] == wanted]
    if not kept:
        raise DatasetError(f"no list of {wanted} here (the file names name {', '.join(found)})")
    return kept, [f"lists: read the {len(kept)} {wanted} lists of {len(files)} (file names name {', '.join(found)})"], wanted


def _read_list(path: Path, root: Path) -> _ListFile:
    rel = path.relative_to(root) if path != root and root.is_dir() else Path(path.name)
    part = _LIST_PART.search(path.stem)
    fold = _LIST_FOLD.search(path.stem) or next((m for d in rel.parts[:-1] if (m := _LIST_FOLD.search(d))), None)
    if part is None:
        raise DatasetError(f"{path}: cannot tell the split from the file name (it should say train, val or test)")
    out = _ListFile(path, fold.group(1) if fold else "1", part.group(1).lower())
    for n, fields in split_lines(path):
        if len(fields) not in (2, 3) or not fields[-1].lstrip("-").isdigit():
            raise DatasetError(f"{path}:{n}: expected '<path> <label>' or '<path> <num_frames> <label>', "
                               f"got {' '.join(fields)!r}")
        out.entries.append(_Entry(fields[0], int(fields[-1]), f"{path}:{n}"))
    return out


def _label_offset(lists: list[_ListFile], names: list[str] | None) -> tuple[int, list[str]]:
    labels = [e.label for f in lists for e in f.entries]
    if labels and min(labels) == 1 and names and max(labels) == len(names):
        return 1, [f"lists: labels read as 1-based (1..{len(names)}; no list has a 0)"]
    return 0, []


def _clip_ids(listed: list[str], depth: int | None = None) -> dict[str, str]:
    """The dataset's own id: its last `depth` path components (DFEW, MAFW 1; FERV39k 3, Scene/Class/NNNN);
    for other data the shortest tail of each listed path that is unique over all of them."""
    parts = {p: PurePosixPath(p.replace("\\", "/")).parts for p in listed}

    def tail(p: str, k: int) -> str:
        comps = list(parts[p][-k:])
        if comps and Path(comps[-1]).suffix.lower() in VIDEO_EXTS:
            comps[-1] = Path(comps[-1]).stem
        return "_".join(comps)

    longest = max((len(v) for v in parts.values()), default=1)
    for k in [depth] if depth else range(1, longest + 1):
        ids = {p: tail(p, k) for p in listed}
        if len(set(ids.values())) == len(ids):
            return {p: safe_id(v) for p, v in ids.items()}
    return {p: safe_id(p) for p in listed}


class _Resolver:
    """Where a listed path is on this machine: as given, else by its shortest existing suffix under `base`."""

    def __init__(self, base: Path, strip_prefix: str | None) -> None:
        self.base, self.strip = base, strip_prefix
        self.example: tuple[str, Path] | None = None
        self.depths: dict[int, int] = {}

    def __call__(self, listed: str) -> Path | None:
        if self.strip is not None:
            rel = listed[len(self.strip):].lstrip("/\\") if listed.startswith(self.strip) else listed
            cand = self.base / rel
            return cand if cand.exists() else None
        given = Path(listed)
        cand = given if given.is_absolute() else self.base / given
        if cand.exists():
            return cand
        comps = PurePosixPath(listed.replace("\\", "/")).parts
        comps = comps[1:] if comps and comps[0] == "/" else comps
        order = sorted(range(1, len(comps) + 1), key=lambda k: (-self.depths.get(k, 0), k))  # the usual depth first
        for k in order:
            cand = self.base.joinpath(*comps[-k:])
            if cand.exists():
                self.depths[k] = self.depths.get(k, 0) + 1
                self.example = self.example or (listed, cand)
                return cand
        return None

    def tried(self, listed: str) -> Path:
        if self.strip is not None:
            return self.base / (listed[len(self.strip):].lstrip("/\\") if listed.startswith(self.strip) else listed)
        return self.base / PurePosixPath(listed).name


def _folds(lists: list[_ListFile], ids: dict[str, str]) -> tuple[list[dict], list[dict] | None, list[str]]:
    """Official folds, and the peer's own folds when their validation list is their test list."""
    by_fold: dict[str, dict[str, list[str]]] = {}
    for f in lists:
        by_fold.setdefault(f.fold, {}).setdefault(f.part, []).extend(ids[e.listed] for e in f.entries)
    official, peer = [], []
    for name, parts in sorted(by_fold.items(), key=lambda kv: int(kv[0])):
        fold = {"name": name, "train": parts.get("train", []), "test": parts.get("test", [])}
        val = parts.get("val", [])
        if val and sorted(val) == sorted(fold["test"]):
            peer.append({**fold, "val": val})
        elif val:
            fold["val"] = val
        official.append(fold)
    notes = [f"lists: in {len(peer)} of {len(official)} folds the validation list is the test list (model selection "
             f"on test); validation is carved from the training part instead, and the peer's choice is kept as "
             f"protocol {PEER_PROTOCOL} (selection on test: optimistic, for comparison only)"] if peer else []
    return official, (peer or None), notes


def lists(root: str | Path, classes: str | None = None, data_root: str | Path | None = None,
          dataset: str | None = None, strip_prefix: str | None = None) -> DatasetSpec:
    """Peer split lists under `root` (a file, a folder of lists, or a folder of fold folders).

    `classes`: a known dataset (dfew, ferv39k, mafw) or comma-separated names; default: the label
    numbers. `data_root`: where the clips are (default: the lists' folder)."""
    root = Path(root)
    files = _list_files(root)
    if not files:
        raise DatasetError(f"{root}: no split lists (*.txt, *.csv) found")
    files, notes, known = _select_dataset(files, dataset, classes)
    names = KNOWN_CLASSES.get((classes or "").lower()) or ([c.strip() for c in classes.split(",")] if classes else None)
    parsed = [_read_list(p, root) for p in files]
    offset, label_notes = _label_offset(parsed, names)
    notes += label_notes
    for e in (e for f in parsed for e in f.entries):
        if e.label - offset < 0 or (names and e.label - offset >= len(names)):
            raise DatasetError(f"{e.where}: label {e.label} outside {offset}..{len(names) - 1 + offset if names else 'n'}")
    base = Path(data_root) if data_root else (root.parent if root.is_file() else root)
    resolve = _Resolver(base, strip_prefix)
    listed = list(dict.fromkeys(e.listed for f in parsed for e in f.entries))
    ids = _clip_ids(listed, ID_DEPTH.get(known))
    where = {p: resolve(p) for p in listed}
    missing = [p for p in listed if where[p] is None]
    if listed and len(missing) == len(listed):
        raise DatasetError(f"none of the {len(listed)} listed clips was found as given or under {base} by any "
                           f"trailing part of its path; e.g. {listed[0]} (tried {resolve.tried(listed[0])}); "
                           f"pass --data-root (or --strip-prefix)")
    if resolve.example:
        notes.append(f"lists: paths not found as given were found under {base} by their trailing components, "
                     f"e.g. {resolve.example[0]} -> {resolve.example[1]}")
    if missing:
        notes.append(f"lists: {len(missing)} of {len(listed)} listed clips not found (recorded as failed), "
                     f"e.g. {missing[0]}")
    records: dict[str, ClipRecord] = {}
    for f in parsed:
        for e in f.entries:
            src = where[e.listed] or resolve.tried(e.listed)
            records.setdefault(ids[e.listed], ClipRecord(ids[e.listed], str(src), e.label - offset))
    official, peer, fold_notes = _folds(parsed, ids)
    n_classes = max(r.label for r in records.values()) + 1
    protocols = {"official": official, **({PEER_PROTOCOL: peer} if peer else {})}
    return DatasetSpec(root.stem, names or [str(k) for k in range(n_classes)], list(records.values()), protocols,
                       "none", default_protocol="official", notes=notes + fold_notes)
