"""Private check of integer arguments and configuration fields.

One rule, used wherever linsim takes a count or an index from a caller: the value must be a
Python or numpy integer (a ``bool`` is refused: ``True`` is no count), else ``TypeError``; it
must be at least ``minimum``, else ``ValueError``.  Both messages name the argument.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_integer"]


def check_integer(what: str, value, minimum: int) -> int:
    """``value`` as an ``int``, refused unless it is an integer (not a bool) ``>= minimum``.

    Parameters
    ----------
    what : str
        The argument or field, as the messages should name it (``"EnsembleConfig.n_runs"``).
    value : object
    minimum : int

    Returns
    -------
    int

    Examples
    --------
    >>> check_integer("n", np.int64(3), 1)
    3
    >>> check_integer("EnsembleConfig.n_runs", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: EnsembleConfig.n_runs must be >= 1; got 0
    >>> check_integer("d", True, 1)
    Traceback (most recent call last):
    ...
    TypeError: d must be an integer; got True
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}; got {value}")
    return int(value)
