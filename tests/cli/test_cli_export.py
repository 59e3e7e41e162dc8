"""`dfer export`: the agreement it reports and the int8 bar it keeps."""

import pytest

from dfer.cli import main


def test_export_reports_the_top1_agreement(ckpt, tmp_path, capsys):
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 0
    assert "top-1 agreement 100.0%" in capsys.readouterr().out


@pytest.fixture
def agreement_97(monkeypatch):
    from dfer.inference import export

    real = export.parity
    monkeypatch.setattr(export, "parity", lambda a, b: {**real(a, b), "top1_agreement": 0.97})


def test_int8_under_the_bar_is_not_written_saying_why(ckpt, tmp_path, capsys, agreement_97):
    out = tmp_path / "q.onnx"
    assert main(["export", str(ckpt), "--quantize", "int8", "--out", str(out), "--calibration-clips", "8"]) == 2
    err = capsys.readouterr().err
    assert "not written" in err and "97.0%" in err and "99% bar" in err and not out.exists()


def test_a_lower_bar_asked_for_is_kept(ckpt, tmp_path, agreement_97):
    out = tmp_path / "q.onnx"
    assert main(["export", str(ckpt), "--quantize", "int8", "--out", str(out), "--calibration-clips", "8",
                 "--min-agreement", "0.9"]) == 0 and out.is_file()
