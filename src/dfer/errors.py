"""Error types users can catch. Each message names the file or value and the problem."""


class DferError(Exception):
    """Base class of every error dfer raises on purpose."""


class WeightsError(DferError):
    """Pretrained weights are missing, unreadable or do not match the model."""


class VideoError(DferError):
    """A video (or frame folder) cannot be opened or decoded."""


class DatasetError(DferError):
    """A dataset root, split file or manifest is missing or malformed."""


class CheckpointError(DferError):
    """A file is not a dfer checkpoint, or it cannot be loaded safely."""


class NoFaceError(DferError):
    """No face was found in a video."""


class ConfigError(DferError, ValueError):
    """A setting (config file, override, option value) is invalid; the message names the value."""


class Int8Refused(CheckpointError):
    """An int8 model was made but not written: it failed its acceptance rule (the message gives the figures)."""


class TrainingError(DferError):
    """Training cannot go on (for example the loss became NaN or infinite)."""
