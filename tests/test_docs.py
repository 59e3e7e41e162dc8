"""The documentation cannot rot: every example in README.md and docs/ either runs here on tiny data or
says, in an HTML comment on the line before it (`<!-- not run in the tests: why -->`, which the reader never
sees), that it is not run and why; every `dfer` command line anywhere in them (code blocks and the command
table) names a real command, real flags and valid choices."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dfer.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!-- not run in the tests: (.{4,}) -->\n$")  # on the line before the block: a reason
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_MARKED: set[str] = set()


def blocks(lang: str) -> list[tuple[str, str]]:
    """(where, code) of every fenced block in `lang`."""
    out = []
    for page in PAGES:
        text = page.read_text()
        for m in BLOCK.finditer(text):
            if m.group(1) == lang:
                where = f"{page.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}"
                before = text[: m.start()].rsplit("\n", 2)
                if len(before) >= 2 and NOT_RUN.search(before[-2] + "\n"):
                    _MARKED.add(where)
                out.append((where, m.group(2)))
    return out


def is_marked(where: str) -> bool:
    return where in _MARKED


def dfer_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `dfer`) of every dfer command line: bash blocks (continuations joined,
    comments dropped, also inside quoted arguments such as sbatch --wrap) and inline code spans."""
    found = []

    def scan(where: str, line: str) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            return
        for i, tok in enumerate(tokens):
            if tok == "dfer" and (i == 0 or "=" in tokens[i - 1] or tokens[i - 1] in ("&&", ";", "|", "then")):
                argv = []
                for t in tokens[i + 1:]:
                    if t in ("&&", ";", "|", "||", ">", ">>") or t.startswith(">"):
                        break
                    argv.append(t)
                found.append((where, argv))
            elif " dfer " in f" {tok} " and tok != "dfer":
                scan(where, tok)

    for where, code in blocks("bash"):
        for line in code.replace("\\\n", " ").splitlines():
            scan(where, line)
    for page in PAGES:
        for span in re.findall(r"`(dfer [^`]+)`", page.read_text()):
            if not span.endswith("..."):
                scan(page.name, span)
    return found


def _subparsers():
    import argparse

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_dfer_command_in_the_docs_parses_with_todays_parser():
    commands = dfer_commands()
    assert len(commands) > 40  # the collector finds the examples (README's table alone has 15)
    subs = _subparsers()
    wrong = []
    for where, argv in commands:
        if not argv or argv[0].startswith("-") or argv[0] in ("<command>",):
            continue
        if argv[0] not in subs:
            wrong.append(f"{where}: no command {argv[0]!r}")
            continue
        actions = {s: a for a in subs[argv[0]]._actions for s in a.option_strings}
        for k, tok in enumerate(argv[1:], 1):
            if not tok.startswith("--"):
                continue
            name, _, inline = tok.partition("=")
            if name not in actions:
                wrong.append(f"{where}: dfer {argv[0]} has no {name}")
                continue
            choices = actions[name].choices
            value = inline or (argv[k + 1] if k + 1 < len(argv) else "")
            placeholder = re.search(r"[$<{]", value) or value.isupper()  # $VAR, <name>, NAME
            if choices is not None and value and not placeholder and value not in map(str, choices):
                wrong.append(f"{where}: dfer {argv[0]} {name} {value}: not one of {list(choices)}")
    assert not wrong, "\n".join(wrong)


def run_by_ci(code: str) -> bool:
    """Every command of the block is a line of .ci/run (install, lint, docs, tests): CI runs it as written."""
    ci = {" ".join(line.split()) for line in (ROOT / ".ci" / "run").read_text().splitlines()}
    commands = [" ".join(line.split("#")[0].split()) for line in code.splitlines()]
    return all(c in ci for c in commands if c)


def test_every_example_runs_here_or_says_why_not():
    unmarked = [where for lang in ("bash", "python") for where, code in blocks(lang)
                if not is_marked(where) and where not in RUN and not (lang == "bash" and run_by_ci(code))]
    assert not unmarked, f"examples neither run by tests/test_docs.py nor marked <!-- not run in the tests: why -->: {unmarked}"


# -- the examples that run, on tiny data ------------------------------------------------------------
# Which blocks run: their location is looked up by their first line, so an edit that moves them is fine.
RUN_FIRST_LINES = {
    "dfer predict talk.mp4 --checkpoint dfer-demo/best.pt --out preds",
    "import dfer",
    "import torch",
    'dfer explain talk.mp4 --checkpoint best.pt --out why                  # every window, Grad-CAM on layer3',
    "import dfer  # the Python API of dfer explain",
    "dfer export best.pt --format onnx --out model.onnx                                   # fp32",
    "dfer predict talk.mp4 interviews/ --checkpoint best.pt --out preds     # files and folders of videos",
}


def _first(code: str) -> str:
    return code.strip().splitlines()[0].strip() if code.strip() else ""


RUN = {where for lang in ("bash", "python") for where, code in blocks(lang)
       if not is_marked(where) and _first(code) in RUN_FIRST_LINES}
# A block repeated word for word (README and Getting started share the first-video line) runs once.
_SEEN: dict[str, str] = {}
RUN_ONCE = sorted(w for lang in ("bash", "python") for w, code in blocks(lang)
                  if w in RUN and _SEEN.setdefault(code, w) == w)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A folder with the files the examples name: talk.mp4 (a tiny face video) and best.pt (a small
    random dfer model at 4x32x32) under every path the examples use."""
    from dfer.checkpoint import make_checkpoint, save_checkpoint
    from dfer.data.face_settings import FaceSettings
    from dfer.models import build_model
    from dfer.preprocess import Preprocess
    from synthetic import write_face_video

    root = tmp_path_factory.mktemp("docs")
    write_face_video(root / "talk.mp4", n=30, size=(160, 120))
    pre = Preprocess(num_frames=4, size=32, face=FaceSettings().to_dict(), clip_seconds=1.0)
    classes = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]  # DFEW's: --target Happy
    model = build_model(name="dfer_r2plus1d_18_half", num_classes=len(classes))
    ckpt = save_checkpoint(root / "best.pt", make_checkpoint(model=model, class_names=classes, preprocess=pre))
    (root / "interviews").mkdir()
    shutil.copy(root / "talk.mp4", root / "interviews" / "second.mp4")
    for path in ("dfer-demo/best.pt", "runs/dfew-f1/best.pt"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ckpt, root / path)
    return root


def test_the_examples_that_run_are_found():
    assert len(RUN) >= len(RUN_FIRST_LINES)  # each listed first line still opens a block


@pytest.mark.parametrize("where", sorted(w for w, _ in blocks("bash") if w in RUN_ONCE))
def test_shell_example_runs(where, sandbox):
    code = dict(blocks("bash"))[where]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=sandbox, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{where}:\n{code}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("where", sorted(w for w, _ in blocks("python") if w in RUN_ONCE))
def test_python_example_runs(where, sandbox, monkeypatch):
    code = dict(blocks("python"))[where]
    monkeypatch.chdir(sandbox)
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})  # noqa: S102 - our own documentation
