"""dfer.checkpoint: what a checkpoint keeps of the preprocessing."""

from dfer.data import FaceSettings


def test_face_settings_reach_the_checkpoint_preprocess():
    from dfer.preprocess import Preprocess

    pre = Preprocess.from_dict(Preprocess(face=FaceSettings(detect_every=4).to_dict()).to_dict())
    assert FaceSettings.from_dict(pre.face).detect_every == 4
