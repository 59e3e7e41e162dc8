"""Training, cross-validation, evaluation and reports."""

from dfer.engine.config import DataConfig, EvalConfig, LossConfig, OptimConfig, RuntimeConfig, TrainConfig, load_config
from dfer.engine.cv import run_cv
from dfer.engine.evaluate import Predictions, evaluate_checkpoint, predict_dataset
from dfer.engine.trainer import FoldTrainer, train_fold

__all__ = [
    "DataConfig", "EvalConfig", "FoldTrainer", "LossConfig", "OptimConfig", "Predictions", "RuntimeConfig",
    "TrainConfig", "evaluate_checkpoint", "load_config", "predict_dataset", "run_cv", "train_fold",
]
