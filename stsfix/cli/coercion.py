"""Typer's parameter coercion for plain values, without importing pydantic for them.

Typer 0.2x coerces every parameter through a pydantic TypeAdapter. Importing pydantic and building
the adapters costs more than all of stsfix's own start-up (0.1 to 0.4 s), on every command,
`stsfix inspect --help` and every completion request. stsfix's flags are plain values: strings,
integers (with min/max), floats, booleans and lists of strings. For those, `install()` hands
Typer a coercer that gives the value pydantic gives for canonical input (`"42"` -> 42) and passes
anything else (odd spellings, out-of-range numbers, paths, other types) to Typer's own coercion,
so every result and every error message is Typer's. tests/cli/test_startup.py holds the two equal
on a table of inputs. With a Typer that has no such hook, `install()` does nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

_INT: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN: Final = (str, int, float, bool)


def _in_range(info: Any, number: float) -> bool:
    return (info.min is None or number >= info.min) and (info.max is None or number <= info.max)


def _fast(annotation: Any, info: Any, value: Any) -> tuple[bool, Any]:
    """(True, coerced) when the value is canonical for a plain annotation; (False, None) otherwise.
    Values come from the command line (strings) or from defaults (already of the type)."""
    if annotation is str:
        return (True, value) if isinstance(value, str) else (False, None)
    if annotation is bool:
        return (True, value) if isinstance(value, bool) else (False, None)
    number: int | float | None = None
    if annotation is int:
        if type(value) is int:
            number = value
        elif isinstance(value, str) and _INT.fullmatch(value):
            number = int(value)
    elif annotation is float:
        if type(value) in (int, float):
            number = float(value)
        elif isinstance(value, str) and _FLOAT.fullmatch(value):
            number = float(value)
    if number is not None and _in_range(info, number):
        return True, number
    return False, None


def handled(descriptor: Any) -> bool:
    """True for the annotations this module coerces: plain scalars and lists of strings."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None or info.clamp:
        return False
    if descriptor.is_path or descriptor.is_choice:
        return False
    annotation = descriptor.annotation
    if annotation in _PLAIN:
        return True
    return descriptor.is_list and getattr(annotation, "__args__", None) == (str,)


def install() -> None:
    """Put the plain-value coercer in front of Typer's (idempotent)."""
    try:
        import typer.core as core
        from typer._coercion import RuntimeParam
    except ImportError:  # pragma: no cover - a Typer without the pydantic coercion layer
        return
    found = getattr(core, "build_runtime_param", None)
    if found is None or getattr(found, "_stsfix_plain", False):
        return
    original: Callable[[Any], Any] = found

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        descriptor: Any = None
        fallback: list[Any] | None = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.descriptor.is_list:
                if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                    return list(value)
            else:
                ok, coerced = _fast(self.annotation, self.parameter_info, value)
                if ok:
                    return coerced
            assert self.fallback is not None
            if not self.fallback:  # Typer's own, pydantic and all, built only when needed
                self.fallback.append(original(self.descriptor))
            return self.fallback[0]._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        if not handled(descriptor):
            return original(descriptor)
        return PlainRuntimeParam(
            parameter_info=descriptor.parameter_info,
            annotation=descriptor.annotation,
            descriptor=descriptor,
            fallback=[],
        )

    build_runtime_param._stsfix_plain = True  # type: ignore[attr-defined]
    build_runtime_param.original = original  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build_runtime_param)  # noqa: B010 - not a name typer exports
