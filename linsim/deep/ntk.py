"""Empirical neural tangent kernel of a torch module, computed with ``torch.func``.

Definition
----------
For a network ``f(x; theta)`` with ``C`` outputs and parameters ``theta`` (every parameter
with ``requires_grad``), the empirical NTK between inputs ``x`` and ``x'`` is the ``C x C``
matrix of inner products of parameter Jacobians::

    Theta(x, x')_{c c'} = sum_p  d f_c(x) / d theta_p  *  d f_c'(x') / d theta_p .

``mode="full"`` returns the whole ``(n1, n2, C, C)`` tensor; ``mode="trace"`` (default)
returns the **class-averaged** kernel ``(1/C) sum_c Theta(x, x')_{cc}`` of shape ``(n1, n2)``,
the scalar kernel a kernel machine with one kernel shared by all outputs uses.  For wide
networks with independent read-out weights ``Theta_{cc'} -> delta_{cc'} Theta`` and the two
descriptions agree.

Documented constant (the oracle of the tests): for a linear layer ``f(x) = W x + b``
(``torch.nn.Linear``), ``Theta(x, x')_{cc'} = delta_{cc'} (x^T x' + 1)``, so the traced
kernel is ``X X'^T + 1`` (``X X'^T`` without bias): the Jacobian of ``f_c`` is ``x`` in row
``c`` of ``W`` and ``1`` in ``b_c``.

Training dynamics it predicts
-----------------------------
Full-batch GD on ``L = (1/2n) sum_i ||f(x_i) - y_i||^2`` with learning rate ``eta``, linearized
around the initial parameters, is function-space GD with the kernel ``Theta``:
``F_{t+1} = F_t - eta (Theta / n) (F_t - Y)`` -- exactly :class:`linsim.solvers.kernel.KernelDynamics`
with ``K = Theta`` (the kernel solver's normalization).

Evaluation mode
---------------
The Jacobians are taken per sample with the module in **eval mode** (BatchNorm uses its running
statistics, dropout is off), the mode in which the trainer evaluates checkpoints; the module's
own training flag is restored afterwards.  Parameters and inputs are cast to ``dtype`` (float64
by default; float32, the precision deep nets train in, is several times faster for
convolutions on a CPU) on a private copy of the parameters; the module itself is not modified.
Whatever ``dtype``, the inner products over parameters are accumulated in float64.

Cost and memory
---------------
The Jacobian of a block of ``b`` samples is ``b * C * P`` numbers (``P`` parameters).  Rows are
processed in blocks whose Jacobian fits ``max_bytes``; the kernel block of two row blocks is one
matrix product over ``P``.  When all of ``x1`` (and ``x2``) fit in one block each Jacobian is
computed once; otherwise the column blocks are recomputed for every row block.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

__all__ = ["NTK_MODES", "empirical_ntk", "ntk_spectrum"]

#: The kernel shapes :func:`empirical_ntk` can return.
NTK_MODES = ("trace", "full")


def _resolve_device(device):
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_input(x, name, dtype, device):
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim < 1 or t.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, *input_shape) with n >= 1; got {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        bad = torch.nonzero(~torch.isfinite(t.reshape(t.shape[0], -1)))[0]
        raise ValueError(f"{name} contains NaN or inf (first at sample {int(bad[0])})")
    return t.to(device=device, dtype=dtype)


def _jacobian_fn(model, buffers):
    def f_single(params, x):
        out = functional_call(model, (params, buffers), (x.unsqueeze(0),))
        if out.ndim != 2 or out.shape[0] != 1:
            raise ValueError(f"the model must map (B, *input_shape) to (B, C); got output shape "
                             f"{tuple(out.shape)} for B = 1")
        return out[0]

    jac = vmap(jacrev(f_single), in_dims=(None, 0))

    def flat(params, xb):
        j = jac(params, xb)  # name -> (b, C, *shape)
        return torch.cat([v.reshape(v.shape[0], v.shape[1], -1) for v in j.values()], dim=2)

    return flat


def empirical_ntk(model, x1, x2=None, *, mode="trace", dtype=torch.float64, device=None,
                  max_bytes=256 * 2**20):
    """Empirical NTK of ``model`` between the inputs ``x1`` and ``x2`` (default ``x1``).

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch ``(B, *input_shape)`` to outputs ``(B, C)``.  Not modified (its training
        flag is restored; parameters are copied to ``dtype`` and ``device``).
    x1 : array_like (n1, *input_shape)
    x2 : array_like (n2, *input_shape), optional
    mode : {"trace", "full"}
        ``"trace"``: class-averaged kernel ``(n1, n2)``; ``"full"``: ``(n1, n2, C, C)``.
    dtype : torch.dtype
        Precision of the Jacobians (default float64); the kernel is always accumulated and
        returned in float64.
    device : str or torch.device, optional
        Where the Jacobians are computed (default CUDA when available, else CPU).
    max_bytes : int
        Memory budget of one block of Jacobians (see the module docstring).

    Returns
    -------
    numpy.ndarray float64, ``(n1, n2)`` or ``(n1, n2, C, C)``.

    Examples
    --------
    For a linear layer the traced NTK is ``X X^T + 1`` (the ``+1`` from the bias):

    >>> import torch, numpy as np
    >>> lin = torch.nn.Linear(3, 2)
    >>> X = np.arange(6.0).reshape(2, 3)
    >>> K = empirical_ntk(lin, X, device="cpu")
    >>> bool(np.allclose(K, X @ X.T + 1))
    True
    >>> empirical_ntk(lin, X, mode="full", device="cpu").shape
    (2, 2, 2, 2)
    """
    if mode not in NTK_MODES:
        raise ValueError(f"mode must be one of {NTK_MODES}; got {mode!r}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    dev = _resolve_device(device)
    X1 = _as_input(x1, "x1", dtype, dev)
    X2 = X1 if x2 is None else _as_input(x2, "x2", dtype, dev)
    if X2.shape[1:] != X1.shape[1:]:
        raise ValueError(f"x1 and x2 must have the same input shape; got {tuple(X1.shape[1:])} "
                         f"and {tuple(X2.shape[1:])}")
    params = {k: v.detach().to(device=dev, dtype=dtype) for k, v in model.named_parameters()
              if v.requires_grad}
    if not params:
        raise ValueError("the model has no trainable parameters: its NTK is zero")
    buffers = {k: (v.detach().to(device=dev, dtype=dtype) if torch.is_floating_point(v)
                   else v.detach().to(dev)) for k, v in model.named_buffers()}
    P = sum(v.numel() for v in params.values())
    was_training = model.training
    model.eval()
    try:
        jfn = _jacobian_fn(model, buffers)
        with torch.no_grad():
            C = int(functional_call(model, (params, buffers), (X1[:1],)).shape[1])
        itemsize = 8 + torch.empty((), dtype=dtype).element_size()  # the block and its float64 copy
        block = max(1, int(max_bytes // max(1, C * P * itemsize)))
        out = torch.empty((X1.shape[0], X2.shape[0]) + ((C, C) if mode == "full" else ()),
                          dtype=torch.float64, device=dev)
        same = x2 is None
        cols = None  # the column Jacobians, kept when all of x2 fits in one block
        if X2.shape[0] <= block and not same:
            cols = jfn(params, X2).to(torch.float64)
        for i0 in range(0, X1.shape[0], block):
            Ji = jfn(params, X1[i0:i0 + block]).to(torch.float64)
            for j0 in range(i0 if same else 0, X2.shape[0], block):
                if same and j0 == i0:
                    Jj = Ji
                elif cols is not None:
                    Jj = cols
                else:
                    Jj = jfn(params, X2[j0:j0 + block]).to(torch.float64)
                if mode == "trace":
                    blk = torch.einsum("icp,jcp->ij", Ji, Jj) / C
                else:
                    blk = torch.einsum("icp,jdp->ijcd", Ji, Jj)
                out[i0:i0 + Ji.shape[0], j0:j0 + Jj.shape[0]] = blk
                if same and j0 != i0:
                    out[j0:j0 + Jj.shape[0], i0:i0 + Ji.shape[0]] = (
                        blk.T if mode == "trace" else blk.permute(1, 0, 3, 2))
    finally:
        model.train(was_training)
    return out.detach().cpu().numpy()


def ntk_spectrum(kernel, *, normalize=True):
    """Eigenvalues of a traced NTK Gram matrix divided by ``n``, descending.

    ``Theta / n`` is the curvature of the function-space dynamics
    (:class:`linsim.solvers.kernel.KernelDynamics`): its eigenvalues play the role of the input
    spectrum ``lambda_k`` of the linear theory.

    Parameters
    ----------
    kernel : array (n, n)
        Symmetric positive semi-definite Gram matrix (``empirical_ntk(model, X)``).
    normalize : bool
        Divide by ``n`` (default) so that the values are those of ``Theta / n``.

    Returns
    -------
    numpy.ndarray float64 (n,), descending; rounding-level negative values are kept as they are.

    Examples
    --------
    >>> import numpy as np
    >>> ntk_spectrum(np.diag([4.0, 2.0]))
    array([2., 1.])
    """
    K = np.asarray(kernel, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise ValueError(f"kernel must be a square (n, n) matrix; got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError("kernel contains NaN or inf")
    asym = float(np.max(np.abs(K - K.T)))
    scale = float(np.max(np.abs(K))) or 1.0
    if asym > 1e-8 * scale:
        raise ValueError(f"kernel is not symmetric (max |K - K^T| = {asym:.3g}, relative "
                         f"{asym / scale:.3g})")
    lam = np.linalg.eigvalsh(0.5 * (K + K.T))[::-1]
    return lam / K.shape[0] if normalize else lam

