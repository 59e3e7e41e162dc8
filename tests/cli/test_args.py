"""Flags generated from config dataclasses (dfer.options.flag, dfer.cli.args.add_config_flags)."""

import argparse
from dataclasses import dataclass, fields

import pytest

from dfer.cli import build_parser
from dfer.cli.args import add_config_flags, config_overrides, config_values, flag_fields
from dfer.cli.reference import subcommands
from dfer.engine.config import TrainConfig, load_config
from dfer.options import flag
from dfer.serve.config import ServeConfig


@dataclass
class _Toy:
    size: int = flag(3, kind="positive_int", help="a size")
    ttl: float = flag(86400.0, kind="nonneg_float", unit=86400.0, help="days to keep")
    on: bool = flag(False, kind="switch", help="turn it on")
    hidden: int = 7  # not a flag


def _parse(cls, argv, **kw):
    p = argparse.ArgumentParser()
    add_config_flags(p, cls, **kw)
    return p.parse_args(argv)


def test_a_new_flag_field_is_one_line():
    args = _parse(_Toy, ["--size", "5", "--on"])
    assert config_values(_Toy, args) == {"size": 5, "ttl": 86400.0, "on": True}


def test_a_flag_in_other_units_is_scaled_back():
    assert config_values(_Toy, _parse(_Toy, ["--ttl", "2"]))["ttl"] == 2 * 86400.0


def test_a_bad_flag_value_is_refused_by_the_fields_kind(capsys):
    with pytest.raises(SystemExit):
        _parse(_Toy, ["--size", "0"])
    assert "must be >= 1, got 0" in capsys.readouterr().err


def test_every_serve_flag_field_is_a_serve_flag():
    serve = {name: sub for name, _, sub in subcommands(build_parser())}["serve"]
    given = {opt for a in serve._actions for opt in a.option_strings}
    for path, _, _meta in flag_fields(ServeConfig):
        assert "--" + path.replace("_", "-") in given, path


def test_serve_flag_defaults_are_the_configs(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"")
    args = build_parser().parse_args(["serve", "--checkpoint", str(tmp_path / "x.pt")])
    assert config_values(ServeConfig, args) == {f.name: getattr(ServeConfig(), f.name) for f in fields(ServeConfig)
                                                if "flag" in f.metadata}


def test_train_flags_become_overrides():
    args = build_parser().parse_args(["train", "--data", ".", "--clip-frames", "8", "--no-int8", "--balanced"])
    over = config_overrides(TrainConfig, args)
    assert sorted(over) == ["data.balanced=true", "data.num_frames=8", "deploy.int8=false"]
    cfg = load_config(overrides=over)
    assert (cfg.data.num_frames, cfg.deploy.int8, cfg.data.balanced) == (8, False, True)


def test_train_flags_left_out_change_nothing():
    assert config_overrides(TrainConfig, build_parser().parse_args(["train", "--data", "."])) == []


def test_distill_takes_the_student_not_the_network():
    p = build_parser()
    args = p.parse_args(["distill", "--data", ".", "--teacher", ".", "--student", "low-res", "--alpha", "0.2"])
    assert sorted(config_overrides(TrainConfig, args)) == ["distill.alpha=0.2", "distill.student=low-res"]
    with pytest.raises(SystemExit):
        p.parse_args(["distill", "--data", ".", "--teacher", ".", "--model", "r3d_18"])


def test_export_flags_make_its_settings(tmp_path):
    from dfer.inference.export_settings import ExportSettings

    (tmp_path / "m.pt").write_bytes(b"")
    args = build_parser().parse_args(["export", str(tmp_path / "m.pt"), "--out", str(tmp_path / "m.xml"),
                                      "--format", "openvino", "--quantize", "int8", "--max-drop", "2"])
    s = ExportSettings(**config_values(ExportSettings, args))
    assert (s.format, s.quantize, s.max_drop, s.calibration_clips) == ("openvino", "int8", 2.0, 32)
