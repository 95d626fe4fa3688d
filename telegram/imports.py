"""Import aiogram with its pydantic models built when first used, not all at import.

aiogram (3.31) ends ``aiogram.types`` with ``model_rebuild()`` on each of its ~440 types, so
that their forward references resolve. Each rebuild generates the whole schema of its type,
and again every nested type not built yet: importing aiogram took 5.5-6.7 s of CPU on the
2-core machine the benchmarks run on, most of a sender's start from zero replicas, for a
process that uses a dozen of those models.

:func:`defer_model_builds` imports aiogram with that loop's rebuilds skipped. The models are
declared ``defer_build=True`` by aiogram, so pydantic builds each one when it is first
validated or dumped, from the namespace of its module. The names aiogram's loop would have
passed (the types its modules import only under ``TYPE_CHECKING``) are put into those
modules' namespaces instead, so a lazy build resolves exactly what the eager one did. The
import then takes about 1.5 s; a send's first call builds its method and nested types in
tens of milliseconds, the bot's first update about 0.2 s.

A component calls it from its package, before anything of it imports aiogram. Once aiogram
is imported it does nothing, so an import order that misses it is slower, never different.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel


def defer_model_builds() -> None:
    """Import aiogram, leaving its models to be built on first use."""
    if "aiogram" in sys.modules:
        return
    names: dict[str, Any] = {}
    original = BaseModel.__dict__["model_rebuild"]
    eager: Callable[..., bool | None] = original.__func__

    def recorded(
        cls: type[BaseModel],
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Mapping[str, Any] | None = None,
    ) -> bool | None:
        if _types_namespace is None or force or not cls.__module__.startswith("aiogram."):
            return eager(
                cls,
                force=force,
                raise_errors=raise_errors,
                _parent_namespace_depth=_parent_namespace_depth + 1,
                _types_namespace=_types_namespace,
            )
        names.update(_types_namespace)
        return None

    BaseModel.model_rebuild = classmethod(recorded)  # type: ignore[method-assign,assignment]
    try:
        importlib.import_module("aiogram")
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign]
    for name, module in list(sys.modules.items()):
        if module is not None and name.startswith(("aiogram.types.", "aiogram.methods.")):
            namespace = vars(module)
            for key, value in names.items():
                namespace.setdefault(key, value)
