"""Deterministic Gaussian cubature of the exact small-logit law (derivations.md §4.5).

The expected explained-stress curve of the standard ensemble is an integral over the Gaussian
teacher and initial weights. :func:`uniform_nodes` / :func:`normal_nodes` supply a fixed,
explicitly constructed equal-weight rule for such integrals, with no seed anywhere: a digitally
shifted, centred Sobol' net on the leading coordinates and *explicit inversive* coordinates over
the finite field GF(2^m) on the others (each coordinate a permutation of the centred grid).
:func:`feature_variables` maps the nodes to the reduced variables of the law (half-normal teacher
coefficients, the Bartlett factor of the initialisation block's Wishart matrix), and
:func:`feature_spectra` evaluates the small-logit spectrum at every node from the exact reduction
of §4.5 (the feature Gram matrix). The same arguments give the same numbers on every machine.
The finite-logit correction of §6.2 takes its nodes from the same rule (:func:`normal_nodes`).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import gammaincinv, ndtri

__all__: list[str] = []

#: Modes whose expected trace energy is below this fraction of the largest are dropped (their
#: eigenvalues enter χ squared, i.e. below 1e-12 of the top).
MODE_TOL = 1e-6

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0

#: A primitive polynomial of degree m over GF(2) for each supported m (bit i = coefficient of x^i).
_PRIMITIVE = {1: 0x3, 2: 0x7, 3: 0xB, 4: 0x13, 5: 0x25, 6: 0x43, 7: 0x89, 8: 0x11D, 9: 0x211,
              10: 0x409, 11: 0x805, 12: 0x1053, 13: 0x201B, 14: 0x4443, 15: 0x8003, 16: 0x1100B}

#: Step of the exponent of the output multiplier between successive rounds of 2^m inversive
#: coordinates (coordinate j uses the multiplier g^(STEP * (j // 2^m)), g the field's generator).
_MULTIPLIER_STEP = 37


#: Sobol' direction numbers of dimensions 2..16 (Joe & Kuo, new-joe-kuo-6.21201): the degree s
#: of the primitive polynomial, its inner coefficients a (bits, highest first) and m_1..m_s.
#: Dimension 1 is the van der Corput sequence (all m_k = 1).
_JOE_KUO = ((1, 0, (1,)), (2, 1, (1, 3)), (3, 1, (1, 3, 1)), (3, 2, (1, 1, 1)), (4, 1, (1, 1, 3, 3)),
            (4, 4, (1, 3, 5, 13)), (5, 2, (1, 1, 5, 5, 17)), (5, 4, (1, 1, 5, 5, 5)),
            (5, 7, (1, 1, 7, 11, 19)), (5, 11, (1, 1, 5, 1, 1)), (5, 13, (1, 1, 1, 3, 11)),
            (5, 14, (1, 3, 5, 5, 31)), (6, 1, (1, 3, 3, 9, 7, 49)), (6, 13, (1, 1, 1, 15, 21, 21)),
            (6, 16, (1, 3, 1, 13, 27, 49)))
#: Most coordinates the Sobol' block of :func:`uniform_nodes` takes.
SOBOL_DIMS = len(_JOE_KUO) + 1


def sobol_net(dim: int, log2_nodes: int) -> np.ndarray:
    """The unscrambled Sobol' net of ``2**log2_nodes`` points as grid indices (N, dim), dim <= 16.

    Points in Gray-code order (the order of ``scipy.stats.qmc.Sobol(scramble=False)``): point
    ``i`` is the XOR of the direction numbers ``v_k = m_k 2^{m-k}`` over the set bits ``k`` of
    ``i ⊕ (i >> 1)``, with ``m_k`` from the Joe-Kuo recurrence of each dimension's primitive
    polynomial. Written out here so that the rule constructs no random generator at all.

    Examples
    --------
    >>> sobol_net(2, 2).tolist()
    [[0, 0], [2, 2], [3, 1], [1, 3]]
    """
    dim, m = int(dim), int(log2_nodes)
    if not 0 <= dim <= SOBOL_DIMS:
        raise ValueError(f"the Sobol' block has at most {SOBOL_DIMS} dimensions, got dim={dim}")
    V = np.zeros((dim, m), dtype=np.int64)
    if dim:
        V[0] = [1 << (m - 1 - k) for k in range(m)]
    for j in range(1, dim):
        s, a, m_init = _JOE_KUO[j - 1]
        mk = list(m_init)
        for k in range(s, m):
            new = mk[k - s] ^ (mk[k - s] << s)
            for b in range(1, s):
                if (a >> (s - 1 - b)) & 1:
                    new ^= mk[k - b] << b
            mk.append(new)
        V[j] = [mk[k] << (m - 1 - k) for k in range(m)]
    i = np.arange(2**m)
    gray = i ^ (i >> 1)
    out = np.zeros((2**m, dim), dtype=np.int64)
    for k in range(m):
        out ^= ((gray >> k) & 1)[:, None] * V[None, :, k]
    return out


@functools.lru_cache(maxsize=None)
def _field_tables(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Exponential and logarithm tables of GF(2^m) built on the generator x (primitive modulus)."""
    if m not in _PRIMITIVE:
        raise ValueError(f"log2_nodes must lie in 1..16 for the inversive coordinates, got {m}")
    q = 2**m
    exp = np.zeros(2 * q, dtype=np.int64)
    log = np.zeros(q, dtype=np.int64)
    x = 1
    for i in range(q - 1):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & q:
            x ^= _PRIMITIVE[m]
    if m > 1 and len(set(exp[: q - 1].tolist())) != q - 1:  # pragma: no cover - table constant
        raise AssertionError(f"modulus {_PRIMITIVE[m]:#x} is not primitive")
    exp[q - 1: 2 * (q - 1)] = exp[: q - 1]
    return exp, log


def inversive_coordinates(n_coords: int, log2_nodes: int, offset: int = 0, start: int = 0,
                          stop: int | None = None) -> np.ndarray:
    """Grid indices (N, n_coords), N = 2**log2_nodes, of the explicit inversive coordinates
    (rows ``start:stop`` only when given: the same numbers, computed for those nodes alone).

    Coordinate ``j`` (counted from ``offset``) of node ``i`` is the field element
    ``a_j · (i ⊕ c_j)^{-1} ⊕ b_j`` of GF(2^m) read as an integer in ``0..N-1`` (bits = polynomial
    coefficients; ``0^{-1} := 0``), with ``c_j = j mod N``, multiplier ``a_j = g^(37 ⌊j/N⌋)`` and
    digital shift ``b_j = ⌊N {(j+1)(√5-1)/2}⌋``. Inversion, field multiplication and XOR are
    bijections, so every coordinate is a permutation of ``0..N-1``. Two coordinates with
    different ``c`` have Walsh coefficients bounded by Kloosterman sums (Weil: at most about
    ``2^{1-m/2}``), so no pair is structurally dependent; coordinates ``j`` and ``j + N`` share
    ``c`` and differ by a field multiplication (at m = 8 their normal scores correlate by at most
    0.077 over the first 31 rounds). The construction has no seed.

    Examples
    --------
    >>> k = inversive_coordinates(3, 3)
    >>> k.shape, sorted(k[:, 2].tolist()) == list(range(8))
    ((8, 3), True)
    """
    m, n_coords = int(log2_nodes), int(n_coords)
    n = 2**m
    exp, log = _field_tables(m)
    i = np.arange(n)[start:stop]
    j = int(offset) + np.arange(n_coords)
    y = i[:, None] ^ (j % n)[None, :]  # (N, n_coords)
    inv = np.where(y > 0, exp[(-log[y]) % (n - 1)], 0) if n > 2 else y
    if n > 2:
        la = (_MULTIPLIER_STEP * (j // n)) % (n - 1)
        inv = np.where(inv > 0, exp[(log[inv] + la[None, :]) % (n - 1)], 0)
    b = np.floor(n * (((j + 1) * _GOLDEN) % 1.0)).astype(np.int64)
    return inv ^ b[None, :]


def uniform_nodes(dim: int, log2_nodes: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """``N = 2**log2_nodes`` equal-weight nodes of a rule for the uniform law on ``(0, 1)^dim``
    (rows ``start:stop`` only when given, without building the others: large rules are
    evaluated a block of nodes at a time).

    The first ``min(dim, 2·log2_nodes, 16)`` coordinates are the unscrambled Sobol' net
    (:func:`sobol_net`), digitally
    shifted by a fixed Weyl-sequence vector (no node with all coordinates equal); the others are
    :func:`inversive_coordinates`. Every coordinate is a permutation of the centred grid
    ``(k + ½)/N`` (no node on a cube face). The most important variables go first. Consecutive
    blocks of ``2**j`` nodes are themselves nets in the leading block (the batch-means error of
    :func:`batch_average` uses 8 of them).

    Examples
    --------
    >>> u = uniform_nodes(40, 4)
    >>> u.shape, bool(np.allclose(np.sort(u, axis=0)[:, 39], (np.arange(16) + 0.5) / 16))
    ((16, 40), True)
    >>> bool(np.array_equal(uniform_nodes(40, 4, 4, 9), u[4:9]))
    True
    """
    dim, m = int(dim), int(log2_nodes)
    n = 2**m
    rows = range(n)[start:stop]
    lead = min(dim, 2 * m, SOBOL_DIMS)
    k = np.zeros((len(rows), dim), dtype=np.int64)
    if lead:
        shift = np.floor(n * ((np.arange(1, lead + 1) * _GOLDEN) % 1.0)).astype(np.int64)
        k[:, :lead] = sobol_net(lead, m)[rows.start:rows.stop] ^ shift[None, :]
    if dim > lead:
        k[:, lead:] = inversive_coordinates(dim - lead, m, offset=lead, start=rows.start, stop=rows.stop)
    return (k + 0.5) / n


def normal_nodes(dim: int, log2_nodes: int) -> np.ndarray:
    """:func:`uniform_nodes` mapped through the normal quantile function: a rule for N(0, I_dim).

    Examples
    --------
    >>> z = normal_nodes(5, 4)
    >>> z.shape, bool(abs(z.mean()) < 1e-12)
    ((16, 5), True)
    """
    return ndtri(uniform_nodes(dim, log2_nodes))


#: Rules with at most this many Bartlett variables per node are built once for all nodes and
#: cached (a root search asks for the same rule many times; 30000 variables are 61 MB); larger
#: ones are built a block of nodes at a time and not kept, so memory stays bounded.
CACHED_MAX_VARIABLES = 30_000
#: Working memory (bytes) of one block of nodes in :func:`feature_spectra` (variables and Grams).
BLOCK_BYTES = 64 * 2**20


@functools.lru_cache(maxsize=2)
def _cached_variables(n_feat: int, R: int, log2_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    g, H = feature_variables(n_feat, R, log2_nodes)
    g.flags.writeable = False
    H.flags.writeable = False
    return g, H


def feature_variables(n_feat: int, R: int, log2_nodes: int, start: int = 0,
                      stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reduced variables of the law at the nodes: ``|g|`` (N, n_feat) and ``H`` (N, n_feat, r)
    (nodes ``start:stop`` only when given).

    Exact reductions (derivations.md §4.5): the spectrum depends on the teacher coefficients only
    through ``|g_f|`` (half-normal), and on the initialisation block only through ``H Hᵀ``, a
    Wishart matrix with ``R-1`` dof, which has the law of ``Uᵀ U`` for the upper-trapezoidal
    Bartlett factor ``U`` ((R-1) x n_feat, ``U_ll ~ χ_{R-1-l}``, ``U_lf ~ N(0, 1)`` for ``l < f``,
    0 below the diagonal); ``H = Uᵀ`` is returned without its zero columns, ``r = min(R-1, n_feat)``
    (so many runs cost no more than ``n_feat`` of them). Variables are laid out feature by feature
    (``|g_f|``, then column ``f`` of ``U``), so the leading features get the net.

    Examples
    --------
    >>> g, H = feature_variables(3, 3, 4)
    >>> g.shape, H.shape, bool(np.all(g > 0)), bool(np.all(H[:, 0, 1] == 0))
    ((16, 3), (16, 3, 2), True, True)
    >>> feature_variables(3, 50, 4)[1].shape
    (16, 3, 3)
    >>> bool(np.array_equal(feature_variables(3, 3, 4, 2, 5)[1], H[2:5]))
    True
    """
    n_feat, R, m = int(n_feat), int(R), int(log2_nodes)
    r1 = R - 1
    f = np.arange(n_feat)
    n_col = np.minimum(f + 1, r1)  # entries of column f of U (diagonal included when f < r1)
    first = np.concatenate([[0], np.cumsum(1 + n_col)])[:-1]  # the |g_f| variable of each feature
    u = uniform_nodes(int(np.sum(1 + n_col)), m, start, stop)
    g = ndtri(0.5 + 0.5 * u[:, first])
    H = np.zeros((u.shape[0], n_feat, min(r1, n_feat)))
    if r1:
        rows = np.concatenate([np.arange(c) for c in n_col])  # l = 0..n_col-1 for each column
        cols = np.repeat(f, n_col)
        pos = np.repeat(first + 1, n_col) + rows
        diag = rows == cols  # U_ff (f < R-1): chi with R-1-f dof
        vals = ndtri(u[:, pos[~diag]])
        H[:, cols[~diag], rows[~diag]] = vals
        dof = (r1 - cols[diag]).astype(float)
        H[:, cols[diag], rows[diag]] = np.sqrt(2.0 * gammaincinv(0.5 * dof[None, :], u[:, pos[diag]]))
    return g, H


def stress_rows(ev: np.ndarray, n_components: int) -> np.ndarray:
    """χ_k (k = 1..n_components) of each row of non-negative eigenvalues ``ev`` (any order).

    Row by row the definition of :func:`theory.stress.explained_stress` (the unexplained part
    as a tail sum, no cancellation), vectorised, and ``1`` for an all-zero row (no mode kept).
    """
    ev = -np.sort(-np.abs(ev), axis=-1)
    sq = ev**2
    tot = sq.sum(axis=-1, keepdims=True)
    tail = np.cumsum(sq[..., ::-1], axis=-1)[..., ::-1]  # tail[k] = sum_{i >= k} sq[i]
    tail = np.concatenate([tail[..., 1:], np.zeros_like(tot)], axis=-1)
    chi = 1.0 - np.sqrt(tail / np.where(tot > 0, tot, 1.0))
    m = min(n_components, chi.shape[-1])
    out = np.ones(chi.shape[:-1] + (n_components,))
    out[..., :m] = chi[..., :m]
    return out


def kept_modes(Phi: np.ndarray, a: float, s0: float, R: int) -> np.ndarray:
    """Indices of the modes that matter, by decreasing expected trace energy."""
    Psi = Phi - Phi.mean(axis=0, keepdims=True)
    en = a * np.sum(Psi**2, axis=0) + (R - 1) * s0**2 * np.sum(Phi**2, axis=0)
    if not np.any(en > 0):
        return np.zeros(0, dtype=int)
    keep = np.flatnonzero(en >= MODE_TOL * en.max())
    return keep[np.argsort(-en[keep], kind="stable")]


def feature_spectra(Phi: np.ndarray, q: int, a: float, s0: float, R: int, log2_nodes: int,
                    block_nodes: int | None = None) -> np.ndarray:
    """Small-logit spectra at every cubature node, (N, p) sorted descending.

    Exact reduction (§4.5): in the rotated run basis (run mean, R-1 orthonormal contrasts) feature
    ``f = (j, k)`` is the column ``[sqrt(a) g_f ψ_k ; σ0 h_f ⊗ φ_k]``, so the nonzero spectrum is
    that of the feature Gram ``N = a (g gᵀ) ∘ S_c + σ0² (H Hᵀ) ∘ S`` or, when that is smaller, of
    the point Gram, with ``|g|`` and ``H`` from :func:`feature_variables`. Features are taken
    mode by mode in decreasing energy, contrast rows within a mode. The point Gram is summed mode
    by mode (:func:`_point_gram`), never through the points themselves. Nodes are processed in
    blocks sized from an estimate of their working arrays (variables with their temporaries, the
    Gram and its products, the contrast block's intermediate) against ``BLOCK_BYTES``, or of
    ``block_nodes`` nodes when given; rules with more than
    ``CACHED_MAX_VARIABLES`` variables are built block by block and not cached.
    """
    keep = kept_modes(Phi, a, s0, R)
    dd = keep.size
    K = Phi.shape[0]
    n_nodes = 2 ** int(log2_nodes)
    if dd == 0:
        return np.zeros((n_nodes, 1))
    P = Phi[:, keep]
    Ps = P - P.mean(axis=0, keepdims=True)
    n_feat = dd * q
    r = min(R - 1, n_feat)
    modes = np.repeat(np.arange(dd), q)
    use_features = n_feat <= R * K
    size = n_feat if use_features else K * (1 + r)
    if use_features:
        Sc = (Ps.T @ Ps)[np.ix_(modes, modes)]
        S = (P.T @ P)[np.ix_(modes, modes)]
    per_node = 8 * (4 * n_feat * (1 + r) + 3 * size * size + (0 if use_features else dd * r * r * K))
    if block_nodes is None:
        block_nodes = BLOCK_BYTES // per_node
    block = int(max(1, min(n_nodes, block_nodes)))
    cached = n_feat * r <= CACHED_MAX_VARIABLES
    if cached:
        G, HH = _cached_variables(n_feat, R, int(log2_nodes))
    out = []
    for s in range(0, n_nodes, block):
        if cached:
            g, H = G[s:s + block], HH[s:s + block]
        else:
            g, H = feature_variables(n_feat, R, int(log2_nodes), s, s + block)
        if use_features:
            N = a * g[:, :, None] * g[:, None, :] * Sc
            if r:
                N = N + s0**2 * (H @ H.transpose(0, 2, 1)) * S
        else:
            N = _point_gram(g, H, P, Ps, q, a, s0)
        out.append(np.linalg.eigvalsh(N)[:, ::-1])
    return np.clip(np.concatenate(out), 0.0, None)


def _point_gram(g, H, P, Ps, q, a, s0) -> np.ndarray:
    """The point Gram (B, K(1+r), K(1+r)) of the features ``g`` (B, dd q), ``H`` (B, dd q, r).

    Points are the K run-mean rows ``sqrt(a) g_f Ps[t, m_f]`` and the r K contrast rows
    ``s0 H[f, l] P[t, m_f]`` (index ``l K + t``), features ``f = m q + j`` mode by mode. Summing
    within each mode first, the blocks are ``a Ps diag(Σ_j g²) Psᵀ``, ``sqrt(a) s0 Σ_m Ps[:, m]
    (Σ_j g H)[m, l] P[:, m]ᵀ`` and ``s0² Σ_m (H_mᵀ H_m)[l, l'] P[:, m] P[:, m]ᵀ``: ``dd r² K²``
    operations a node instead of the ``(K(1+r))² dd q`` of forming the points' products.
    """
    B, n_feat, r = H.shape
    dd, K = P.shape[1], P.shape[0]
    gm = g.reshape(B, dd, q)
    Hm = H.reshape(B, dd, q, r)
    top = a * np.einsum("tm,bm,sm->bts", Ps, np.sum(gm**2, axis=2), Ps)
    A = np.einsum("bmj,bmjl->bml", gm, Hm)
    cross = np.sqrt(a) * s0 * np.einsum("tm,bml,sm->btls", Ps, A, P).reshape(B, K, r * K)
    W = np.einsum("bmjl,bmjk->bmlk", Hm, Hm)
    low = s0**2 * np.einsum("bmlk,tm,sm->bltks", W, P, P, optimize=True).reshape(B, r * K, r * K)
    return np.concatenate([np.concatenate([top, cross], axis=2),
                           np.concatenate([cross.transpose(0, 2, 1), low], axis=2)], axis=1)


#: Sub-rules of the batch-means error estimate (:func:`batch_average`).
N_BATCHES = 8


def batch_average(values: np.ndarray, n_batches: int = N_BATCHES) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the nodes and a batch-means standard error (derivations.md §4.5).

    The N nodes split into ``n_batches`` consecutive blocks of ``N / n_batches`` (each block of
    the leading Sobol' net is itself a digitally shifted net); the error estimate is the standard
    deviation of the block means over ``sqrt(n_batches)``, the standard error the full rule would
    have if the blocks were independent rules. ``values`` is (N, ...) with N divisible by
    ``n_batches``.

    Examples
    --------
    >>> m, se = batch_average(np.arange(16.0)[:, None], 4)
    >>> float(m[0]), round(float(se[0]), 4)
    (7.5, 2.582)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.shape[0] % n_batches:
        raise ValueError(f"{v.shape[0]} nodes do not split into {n_batches} batches")
    means = v.reshape((n_batches, v.shape[0] // n_batches) + v.shape[1:]).mean(axis=1)
    return v.mean(axis=0), means.std(axis=0, ddof=1) / np.sqrt(n_batches)
