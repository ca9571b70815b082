"""Private: ``--axis NAME=SPEC`` parsing for ``linsim phase``.

``NAME`` is an EnsembleConfig field in snake_case or kebab-case (``n_runs``, ``n-runs``),
``scale_ratio`` or an alias of :func:`linsim.sweep.canonical_axis` (``c``, ``T``, ``ratio``,
``C``, ``R``).  ``SPEC`` is ``lin:START:STOP:NUM``, ``log:START:STOP:NUM`` or a comma list.
On integer fields (``steps``, ``n_runs``, ...) generated values are rounded to integers
(refused if rounding makes two equal), listed values must be integral (``1e4`` is fine).
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import numpy as np

__all__: list[str] = []


def canonical_name(name: str) -> str:
    """The sweep's canonical axis name for a user-typed one (kebab-case accepted)."""
    from linsim.sweep import canonical_axis

    raw = name.strip()
    if not raw:
        raise ValueError("the axis name is empty")
    try:
        return canonical_axis(raw)
    except ValueError:
        if "-" not in raw:
            raise
    return canonical_axis(raw.replace("-", "_"))


def _integer_field(name: str) -> bool:
    from linsim.cli._flags import field_types

    return field_types().get(name) is int


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number; got {text!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{what} must be finite; got {text!r}")
    return value


def axis_values(name: str, spec: str) -> np.ndarray:
    """The values of one axis (``name`` canonical) from its ``SPEC``."""
    integral = _integer_field(name)
    if spec.startswith(("lin:", "log:")):
        parts = spec.split(":")
        if len(parts) != 4:
            raise ValueError(f"{parts[0]}: needs START:STOP:NUM, e.g. {parts[0]}:1:100:5")
        kind = parts[0]
        start, stop = _number(parts[1], "START"), _number(parts[2], "STOP")
        num = _number(parts[3], "NUM")
        if num != round(num) or num < 1:
            raise ValueError(f"NUM must be a positive integer; got {parts[3]!r}")
        num = int(num)
        if kind == "log":
            if start <= 0 or stop <= 0:
                raise ValueError("log axes need positive START and STOP")
            values = np.geomspace(start, stop, num)
        else:
            values = np.linspace(start, stop, num)
        if integral:
            values = np.rint(values)
            if np.unique(values).size != values.size:
                raise ValueError(
                    f"{name} takes integers and rounding {spec} gives repeated values "
                    f"{values.astype(np.int64).tolist()}; use fewer points or a wider range"
                )
    else:
        items = [v for v in spec.split(",")]
        if not spec.strip() or any(not v.strip() for v in items):
            raise ValueError("the value list has an empty entry")
        values = np.array([_number(v, "every value") for v in items])
        if integral:
            frac = values != np.rint(values)
            if frac.any():
                raise ValueError(f"{name} takes integers; got {items[int(np.argmax(frac))].strip()!r}")
        if np.unique(values).size != values.size:
            raise ValueError("the value list repeats a value")
    return values


def parse_axis(text: str) -> tuple[str, np.ndarray]:
    """Parse ``NAME=SPEC`` into ``(canonical name, values)``.

    Raises ``argparse.ArgumentTypeError`` naming the problem.

    Examples
    --------
    >>> parse_axis("n-runs=2,4")
    ('n_runs', array([2., 4.]))
    >>> parse_axis("T=log:10:1000:3")
    ('steps', array([  10.,  100., 1000.]))
    """
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"axis {text!r} must look like NAME=lin:0:2:12, NAME=log:0.1:100:12 or NAME=1,2,3")
    name, spec = text.split("=", 1)
    try:
        key = canonical_name(name)
        values = axis_values(key, spec.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad axis {text!r}: {exc}") from None
    return key, values


class GivenAxis(NamedTuple):
    """One ``--axis`` as given: canonical name, values, and the text the user typed."""

    name: str
    values: np.ndarray
    text: str


def axis_argument(text: str) -> GivenAxis:
    """argparse ``type=`` of ``--axis``."""
    name, values = parse_axis(text)
    return GivenAxis(name, values, text)


class AxisAction(argparse.Action):
    """``--axis`` repeated: collects :class:`GivenAxis` items; a name given twice is an error."""

    def __call__(self, parser, namespace, value, option_string=None):
        current = list(getattr(namespace, self.dest, None) or [])
        for other in current:
            if other.name == value.name:
                parser.error(f"argument --axis: axis {value.name!r} given twice ({other.text!r} and "
                             f"{value.text!r}); give each axis once")
        current.append(value)
        setattr(namespace, self.dest, current)
