"""dfer: dynamic (video) facial expression recognition."""

from dfer.errors import DferError

__version__ = "0.1.0"

__all__ = ["DferError", "__version__"]
