"""What a user sees while a command runs and when they press Ctrl-C (dfer.progress, dfer.cli)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dfer import progress


class FakeTTY:
    """stderr as a terminal: tqdm draws bars on it."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def test_off_a_terminal_progress_is_a_few_plain_lines(capsys):
    bar = progress.progress_bar(20, "predict talk", unit="frame")
    for _ in range(20):
        bar.update(1, speed="2.00x real time")
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[-1].startswith("predict talk: 20/20 frames") and "\r" not in "".join(lines)


def test_a_line_said_while_bars_are_live_goes_above_them(monkeypatch, capsys):
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    progress.progress_bar(2, "videos", unit="video")  # the outer bar: closed by close_all below
    inner = progress.progress_bar(100, "predict a", unit="frame")
    inner.update(10, speed="3.00x real time")
    progress.say("/tmp/a.mp4: 1 person [P1 Happy] -> preds/a")
    assert capsys.readouterr().out == "/tmp/a.mp4: 1 person [P1 Happy] -> preds/a\n"  # whole, on its own line
    assert "predict a" in tty.text and "speed=3.00x" in tty.text and "videos" in tty.text
    progress.close_all()
    assert progress._open == []
    progress.say("after")
    assert capsys.readouterr().out == "after\n"


def test_ctrl_c_in_a_command_is_one_line_saying_what_was_kept(monkeypatch, capsys):
    from dfer import cli
    from dfer.cli import doctor

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(doctor, "run", interrupted)
    assert cli.main(["doctor"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dfer doctor: interrupted;")


@pytest.mark.parametrize("command", ["train", "cv", "predict", "prepare", "synth", "demo"])
def test_every_long_command_says_how_to_go_on(command):
    from dfer.cli import ON_INTERRUPT

    assert "again" in ON_INTERRUPT[command] or "--resume" in ON_INTERRUPT[command]


def _interrupt(argv: list[str], ready: str, tmp_path, timeout: float = 120.0) -> tuple[int, str]:
    """Run `dfer argv` in its own process group, send SIGINT to the group (as a terminal's Ctrl-C does)
    once `ready` appears on stderr; (exit code, stderr)."""
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        # SIGINT back to its default in the child: a runner that starts the tests in the background has it
        # ignored, and an ignored SIGINT is inherited (Python then never raises KeyboardInterrupt).
        proc = subprocess.Popen([sys.executable, "-m", "dfer.cli", *argv], stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    t0 = time.time()
    while ready not in err_path.read_text():
        assert proc.poll() is None, err_path.read_text()
        assert time.time() - t0 < timeout, err_path.read_text()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    return proc.wait(timeout=60), err_path.read_text()


def test_ctrl_c_during_synth_keeps_whole_videos_only(tmp_path):
    rc, err = _interrupt(["synth", "--out", str(tmp_path / "synth"), "--clips-per-class", "20", "--frames", "40"],
                         "synth: ", tmp_path)
    assert rc == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("dfer synth: interrupted; the videos written so far are kept")
    assert not list((tmp_path / "synth").rglob(".*.mp4"))  # no half-written video left behind


def test_ctrl_c_during_prepare_with_worker_processes_is_one_line(tmp_path):
    from dfer.synth.dataset import SynthSettings, generate

    manifest = generate(tmp_path / "synth", SynthSettings(clips_per_class=4, frames=24), progress=False)
    rc, err = _interrupt(["prepare", "manifest", "--root", str(manifest), "--out", str(tmp_path / "cache"),
                          "--workers", "2", "--size", "32"], "prepare ", tmp_path)
    assert rc == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err  # workers stay quiet
    assert err.strip().splitlines()[-1].startswith("dfer prepare: interrupted; the clips prepared so far are kept")
