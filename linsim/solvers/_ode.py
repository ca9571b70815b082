"""Private helper: integrate a gradient flow with ``scipy.integrate.solve_ivp`` and check it.

The softmax and two-layer flows share the same needs: integrate from ``t = 0`` to the last
requested time, report the state at every requested time (any order, repeats allowed,
``t = 0`` included), and turn any failure (an exception inside the integrator, an early stop,
non-finite values) into :class:`linsim.solvers.ODEFailureError` naming the problem.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from linsim.solvers._checks import ODEFailureError


def solve_ivp(*args, **kwargs):
    """:func:`scipy.integrate.solve_ivp`, imported on first use (it is slow to import)."""
    from scipy.integrate import solve_ivp as _solve_ivp

    return _solve_ivp(*args, **kwargs)


def integrate_flow(rhs: Callable, y0: np.ndarray, times: np.ndarray, *, method: str, rtol: float,
                   atol: float, what: str, jac: Callable | None = None, progress: bool = False) -> np.ndarray:
    """States of ``dy/dt = rhs(t, y)`` at ``times``, shape (K, y0.size), rows in the order given.

    Parameters
    ----------
    rhs : callable
        ``rhs(t, y) -> dy/dt`` on flat state vectors.
    y0 : array (N,)
        Initial state.
    times : array (K,)
        Validated non-negative times (``linsim.solvers._checks.check_times``).
    method, rtol, atol : passed to :func:`scipy.integrate.solve_ivp`
    what : str
        Name of the flow, used in error messages.
    jac : callable, optional
        Jacobian for implicit methods.
    progress : bool
        Show a tqdm bar of the flow time reached (the furthest time the integrator evaluated).

    Raises
    ------
    ODEFailureError
        If the integrator raises, stops before the last time, or produces NaN/inf.

    Examples
    --------
    >>> y = integrate_flow(lambda t, y: -y, np.array([1.0]), np.array([1.0, 0.0]), method="DOP853",
    ...                    rtol=1e-10, atol=1e-12, what="decay")
    >>> np.allclose(y[:, 0], [np.exp(-1.0), 1.0])
    True
    """
    t_sorted, inverse = np.unique(times, return_inverse=True)
    y0 = np.asarray(y0, dtype=np.float64)
    t_end = float(t_sorted[-1])
    if t_end == 0.0:
        return np.repeat(y0[None], times.size, axis=0)
    kwargs = {} if jac is None else {"jac": jac}
    from tqdm.auto import tqdm

    with tqdm(total=t_end, desc=what, unit="time", disable=not progress, mininterval=0.5,
              bar_format="{l_bar}{bar}| t = {n:.4g}/{total:.4g} [{elapsed}<{remaining}]") as bar:
        fun = rhs
        if progress:
            def fun(t, y):
                if t > bar.n:
                    bar.update(min(t, t_end) - bar.n)
                return rhs(t, y)
        try:
            sol = solve_ivp(fun, (0.0, t_end), y0, method=method, t_eval=t_sorted, rtol=rtol, atol=atol,
                            **kwargs)
        except (ValueError, FloatingPointError, ArithmeticError) as exc:
            raise ODEFailureError(f"solve_ivp ({method}) raised for the {what}: {exc}") from exc
        if progress and sol.status == 0:
            bar.update(t_end - bar.n)
    if sol.status != 0 or sol.y.shape[1] != t_sorted.size or not np.all(np.isfinite(sol.y)):
        raise ODEFailureError(
            f"solve_ivp ({method}, rtol={rtol}, atol={atol}) failed for the {what} before "
            f"t={t_end}: {sol.message}"
        )
    return sol.y.T[inverse]


__all__ = ["integrate_flow"]
