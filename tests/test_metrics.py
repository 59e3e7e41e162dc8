import json
import math

import numpy as np

from dfer.metrics import aggregate_folds, classification_report


def test_hand_worked_example():
    # targets: 3x class0, 2x class1, 1x class2; predictions get 0,0,1 | 1,1 | 0
    targets = [0, 0, 0, 1, 1, 2]
    preds = [0, 0, 1, 1, 1, 0]
    r = classification_report(preds, targets, num_classes=3, class_names=["a", "b", "c"])
    assert r.confusion == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert math.isclose(r.war, 4 / 6)
    assert np.allclose(r.per_class_recall, [2 / 3, 1.0, 0.0])
    assert math.isclose(r.uar, (2 / 3 + 1 + 0) / 3)
    # F1: class0 2*2/(3+3)=2/3, class1 2*2/(2+3)=0.8, class2 0
    assert np.allclose(r.per_class_f1, [2 / 3, 0.8, 0.0])
    assert math.isclose(r.macro_f1, (2 / 3 + 0.8) / 3)
    norm = r.confusion_normalized
    assert np.allclose(norm.sum(axis=1), 1.0)
    assert r.support == [3, 2, 1]


def test_an_absent_class_is_nan_left_out_of_uar():
    targets = [0, 0, 1, 1]
    preds = [0, 2, 1, 1]  # class 2 predicted but never a target
    r = classification_report(preds, targets, num_classes=3)
    assert r.absent_classes == [2]
    assert math.isnan(r.per_class_recall[2])
    assert math.isclose(r.uar, (0.5 + 1.0) / 2)
    assert math.isclose(r.war, 0.75)
    d = r.to_dict()
    assert d["per_class_recall"][2] is None
    json.dumps(d, allow_nan=False)  # JSON-safe


def _two_folds():
    r1 = classification_report([0, 1], [0, 1], num_classes=2)  # war 1.0
    r2 = classification_report([0, 0], [0, 1], num_classes=2)  # war 0.5
    return aggregate_folds([r1, r2])


def test_folds_aggregate_to_mean_with_sample_std():
    agg = _two_folds()
    assert math.isclose(agg["war"]["mean"], 0.75)
    assert math.isclose(agg["war"]["std"], np.std([1.0, 0.5], ddof=1))
    assert np.allclose(agg["per_class_recall"]["mean"], [1.0, 0.5])


def test_folds_aggregate_to_a_pooled_confusion_matrix():
    assert _two_folds()["pooled"]["confusion"] == [[2, 0], [1, 1]]
