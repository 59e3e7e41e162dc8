"""Training (up to the selected checkpoint), cross-validation's aggregation, evaluation, results and reports.
The whole jobs that also finish a fold (test scores, int8, card) are dfer.runs.

Names are imported when first used (PEP 562): the engine's configs are readable without torch.
"""

from __future__ import annotations

from dfer.lazy import lazy_names

_CONFIG = ("DataConfig", "DistillConfig", "EvalConfig", "LossConfig", "OptimConfig", "RuntimeConfig", "TrainConfig",
           "load_config")
_LOOP = ("EpochStats", "Predictions", "StepOptions", "lr_schedule", "predict_dataset", "train_one_epoch")
_WHERE = {**{n: "dfer.engine.config" for n in _CONFIG}, **{n: "dfer.engine.loop" for n in _LOOP},
          "evaluate_checkpoint": "dfer.engine.evaluate", "FoldTrainer": "dfer.engine.trainer",
          "TrainProgress": "dfer.engine.trainer", "FoldResult": "dfer.engine.results", "CVResult": "dfer.engine.results"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
