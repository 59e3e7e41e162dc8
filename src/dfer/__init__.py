"""dfer: dynamic (video) facial expression recognition."""

from dfer.errors import DferError

__version__ = "0.1.0"

__all__ = ["DferError", "Recognizer", "__version__"]


def __getattr__(name: str):
    # `dfer.Recognizer` without importing torch, PyAV and friends at `import dfer`.
    if name == "Recognizer":
        from dfer.inference import Recognizer

        return Recognizer
    raise AttributeError(f"module 'dfer' has no attribute {name!r}")
