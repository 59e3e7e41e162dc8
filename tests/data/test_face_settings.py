import pytest

from dfer.data import FaceSettings
from dfer.errors import ConfigError


@pytest.mark.parametrize("make, message", [
    (lambda: FaceSettings(detect_every=0), "detect_every must be >= 1, got 0"),
    (lambda: FaceSettings().with_overrides({"margin": -1.0}), "margin"),
    (lambda: FaceSettings().with_overrides({"speed": 3}), "unknown face setting"),
    (lambda: FaceSettings.from_dict({"version": 99}), "newer"),
], ids=["below-minimum", "negative-margin", "unknown-name", "newer-version"])
def test_bad_face_settings_are_refused_by_name(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_face_settings_of_older_versions_are_read():
    old = FaceSettings.from_dict({"detector": "dlib", "detect_size": 320, "upsample": 1, "detect_every": 3,
                                  "margin": 0.25, "size": 128, "max_frames": 48})  # dfer 0.1 wrote no version
    assert old.legacy and old.version == 1 and old.margin == 0.25 and old.upsample == 1


def test_face_settings_survive_a_round_trip():
    assert FaceSettings.from_dict(FaceSettings().to_dict()) == FaceSettings()
