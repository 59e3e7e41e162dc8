"""Packages whose names are imported when first used (PEP 562), so importing one light module of a
package (dfer.inference.episodes, dfer.models.config, dfer.serve.probe) does not import torch, OpenVINO
or FastAPI through the package's __init__."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `name` comes from module `where[name]`, imported then,
    once; other names are looked up as submodules."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError:
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # once
        return value

    return __getattr__
