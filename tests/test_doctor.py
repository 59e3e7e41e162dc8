"""dfer doctor: one screen, and JSON for bug reports."""

import json

from dfer.cli import main
from dfer.doctor import EXTRAS, auto_choice


def test_doctor_json_has_what_a_bug_report_needs(capsys):
    assert main(["doctor", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["packages"]["dfer"] and r["packages"]["torch"] and r["python"]
    assert set(r["cpu"]["flags"]) >= {"AVX2", "AVX-512", "AVX512-VNNI", "AVX512-BF16", "AMX"}
    assert r["auto"] and r["cache"]["path"] and set(r["missing_extras"]) <= set(EXTRAS)


def test_doctor_screen(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dfer ") and "\nCPU " in out and "\nauto " in out and "openvino" in out


def test_auto_choice_follows_the_runtime_rules():
    assert auto_choice(["NVIDIA H200"], "bf16", {}).startswith("PyTorch on NVIDIA H200")
    assert "OpenVINO at bf16 (bf16 is native here" in auto_choice([], "bf16", {"AVX512-VNNI": True})
    assert "OpenVINO at f32 (no native bf16" in auto_choice([], "f32", {})
    assert auto_choice([], None, {}).startswith("ONNX Runtime")
