"""Package attributes imported on first use (PEP 562), so importing a package stays cheap.

A package lists which submodule holds each public name::

    __getattr__, __all__ = lazy_exports(__name__, {"read": ("read_rows",), "write": ("Sink",)})

``package.read_rows`` then imports ``package.read`` the first time it is asked for, and
caches it in the package's namespace.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` serving ``exports`` (submodule -> names) and the sorted ``__all__``."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module hook's own name)
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__, sorted(where)
