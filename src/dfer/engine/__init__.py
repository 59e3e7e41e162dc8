"""Training, cross-validation, evaluation and reports."""

from dfer.engine.config import DataConfig, EvalConfig, LossConfig, OptimConfig, RuntimeConfig, TrainConfig, load_config
from dfer.engine.cv import run_cv
from dfer.engine.evaluate import evaluate_checkpoint
from dfer.engine.loop import EpochStats, Predictions, StepOptions, lr_schedule, predict_dataset, train_one_epoch
from dfer.engine.trainer import FoldTrainer, train_fold

__all__ = [
    "DataConfig", "EpochStats", "EvalConfig", "FoldTrainer", "LossConfig", "OptimConfig", "Predictions",
    "RuntimeConfig", "StepOptions", "TrainConfig", "evaluate_checkpoint", "load_config", "lr_schedule",
    "predict_dataset", "run_cv", "train_fold", "train_one_epoch",
]
