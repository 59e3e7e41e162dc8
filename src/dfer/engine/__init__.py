"""Training, cross-validation, evaluation and reports.

Names are imported when first used (PEP 562): the engine's configs are readable without torch.
"""

from __future__ import annotations

from dfer.lazy import lazy_names

_CONFIG = ("DataConfig", "DistillConfig", "EvalConfig", "LossConfig", "OptimConfig", "RuntimeConfig", "TrainConfig",
           "load_config")
_LOOP = ("EpochStats", "Predictions", "StepOptions", "lr_schedule", "predict_dataset", "train_one_epoch")
_WHERE = {**{n: "dfer.engine.config" for n in _CONFIG}, **{n: "dfer.engine.loop" for n in _LOOP},
          "run_cv": "dfer.engine.cv", "evaluate_checkpoint": "dfer.engine.evaluate",
          "FoldTrainer": "dfer.engine.trainer", "train_fold": "dfer.engine.trainer",
          "distill_fold": "dfer.engine.distill", "run_distill": "dfer.engine.distill"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
