"""dfer.calibration: temperature scaling fitted on validation, ECE; a trained fold keeps its temperature and
predict applies it."""


import numpy as np
import pytest

from dfer.calibration import expected_calibration_error, fit_temperature, softmax
from dfer.checkpoint import load_checkpoint, save_checkpoint
from dfer.inference import Recognizer
from synthetic import write_face_video


def test_temperature_scaling_recovers_the_temperature_lowering_ece():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (4000, 5))
    # labels drawn from softmax(logits / 2.5): a model over-confident by a temperature of 2.5
    p = softmax(logits, 2.5)
    labels = np.array([rng.choice(5, p=row) for row in p])
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(2.5, rel=0.08)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits, t), labels)
    assert before > 0.1 and after < 0.03
    assert (softmax(logits, t).argmax(1) == logits.argmax(1)).all()  # the predicted class never changes


def test_temperature_is_not_fitted_on_a_perfect_validation_part():
    logits = np.array([[3.0, 0.0], [0.0, 2.0], [4.0, 1.0]])
    assert fit_temperature(logits, np.array([0, 1, 0])) == 1.0
    assert fit_temperature(np.zeros((0, 2)), np.zeros(0, int)) == 1.0


def test_training_fits_the_temperature_on_the_validation_part(toy_run):
    m, out = toy_run
    cal = m.calibration
    assert cal["fitted_on"] == "val" and cal["ece_bins"] == 15 and "ece_before" in cal["test"]
    assert (out / "reliability.png").is_file() and "## Calibrated confidence" in (out / "report.md").read_text()
    assert load_checkpoint(out / "best.pt").calibration["temperature"] == cal["temperature"]


@pytest.fixture(scope="module")
def hot_and_old(toy_run, tmp_path_factory):
    """The toy run's checkpoint with a temperature of 2, and without any (as older dfer wrote it)."""
    tmp = tmp_path_factory.mktemp("temperature")
    ckpt = load_checkpoint(toy_run[1] / "best.pt")
    ckpt.calibration = {"temperature": 2.0}
    hot = save_checkpoint(tmp / "hot.pt", ckpt)
    ckpt.calibration = None
    old = save_checkpoint(tmp / "old.pt", ckpt)
    video = write_face_video(tmp / "v.mp4", n=30)
    return (Recognizer.from_checkpoint(hot, backend="torch").predict_video(video),
            Recognizer.from_checkpoint(old, backend="torch").predict_video(video))


def test_predict_divides_the_logits_by_the_stored_temperature(hot_and_old):
    b, a = hot_and_old
    pa, pb = np.stack([w.probs for w in a.windows]), np.stack([w.probs for w in b.windows])
    np.testing.assert_allclose(pb, softmax(np.log(pa), 2.0), atol=1e-5)  # softmax(z / T) from softmax(z)
    assert b.summary()["temperature"] == 2.0 and "temperature_note" not in b.summary()


def test_a_checkpoint_without_a_temperature_says_so(hot_and_old):
    a = hot_and_old[1]
    assert a.summary()["temperature"] == 1.0 and "no fitted temperature" in a.summary()["temperature_note"]
