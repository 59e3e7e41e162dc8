import json
import os

from dfer.files import atomic_write_json


def test_an_atomic_write_replaces_in_place_leaving_no_temporary(tmp_path):
    target = tmp_path / "sub" / "meta.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2} and os.listdir(target.parent) == ["meta.json"]


def test_an_atomic_write_gets_the_umasks_permissions(tmp_path):
    target = tmp_path / "meta.json"
    atomic_write_json(target, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would give, not mkstemp's 0600
