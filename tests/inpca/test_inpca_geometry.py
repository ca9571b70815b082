"""Geometry: special models, geodesics, log map, progress, distance to geodesic, reindexing.

Oracles derived by hand: along the uniform -> truth geodesic every per-sample angle is
theta = arccos(1/sqrt(C)), so BC(uniform, gamma(s)) = cos(s theta) and
d_B(gamma(s), truth) = -log cos((1 - s) theta).  Tolerances: 1e-12 for closed forms,
1e-9 for the progress argmin (root of the derivative polished to ~1e-12).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linsim.inpca import (
    bhattacharyya,
    distance_to_geodesic,
    geodesic,
    log_map,
    one_hot_log_probs,
    progress,
    reindex,
    uniform_log_probs,
)


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def test_special_models():
    u = uniform_log_probs(3, 4)
    np.testing.assert_array_equal(u, np.full((3, 4), -np.log(4)))
    t = one_hot_log_probs(np.array([2, 0]), 3)
    np.testing.assert_array_equal(t, [[-np.inf, -np.inf, 0.0], [0.0, -np.inf, -np.inf]])
    with pytest.raises(ValueError, match="sample 1 has label 3"):
        one_hot_log_probs(np.array([0, 3]), 3)
    with pytest.raises(TypeError, match="integers"):
        one_hot_log_probs(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="C >= 2"):
        uniform_log_probs(3, 1)


@pytest.mark.parametrize("C", [2, 10, 1000])
def test_uniform_to_truth_geodesic_closed_forms(C):
    n = 5
    u = uniform_log_probs(n, C)
    t = one_hot_log_probs(np.arange(n) % C, C)
    theta = np.arccos(1 / np.sqrt(C))
    s = np.linspace(0, 1, 7)
    G = geodesic(u, t, s)
    assert G.shape == (7, n, C)
    np.testing.assert_allclose(np.exp(G).sum(-1), 1.0, atol=1e-13)  # stays normalized
    np.testing.assert_allclose(G[0], u, atol=1e-13)  # end points
    np.testing.assert_array_equal(np.isneginf(G[-1]), np.isneginf(t))
    np.testing.assert_allclose(G[-1][np.isfinite(t)], 0.0, atol=1e-15)
    bc = np.exp(-bhattacharyya(u[None], G)[0])
    np.testing.assert_allclose(bc, np.cos(s * theta), atol=1e-12)
    d_truth = bhattacharyya(G, t[None])[:, 0]
    np.testing.assert_allclose(d_truth[:-1], -np.log(np.cos((1 - s[:-1]) * theta)), atol=1e-12)
    # scalar s gives one model
    assert geodesic(u, t, 0.5).shape == (n, C)


def test_geodesic_between_identical_models_is_constant():
    rng = np.random.default_rng(0)
    p = log_softmax(rng.standard_normal((4, 3)))
    G = geodesic(p, p, [0.0, 0.3, 1.0])
    np.testing.assert_allclose(G, np.broadcast_to(p, G.shape), atol=1e-14)


def test_log_map_is_tangent_with_norm_theta_and_points_along_geodesic():
    rng = np.random.default_rng(1)
    p = log_softmax(2 * rng.standard_normal((6, 4)))
    q = log_softmax(2 * rng.standard_normal((6, 4)))
    v = log_map(p, q)
    x, y = np.exp(p / 2), np.exp(q / 2)
    theta = np.arccos(np.clip(np.sum(x * y, -1), -1, 1))
    np.testing.assert_allclose(np.sum(v * x, -1), 0.0, atol=1e-13)
    np.testing.assert_allclose(np.linalg.norm(v, axis=-1), theta, atol=1e-12)
    # exp map: cos(|v|) x + sin(|v|) v/|v| = y
    nv = np.linalg.norm(v, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.cos(nv) * x + np.sin(nv) * v / nv, y, atol=1e-12)
    # derivative of the geodesic at s = 0 (finite difference in sqrt-p coordinates)
    h = 1e-6
    g = np.exp(geodesic(p, q, h) / 2)
    np.testing.assert_allclose((g - x) / h, v, atol=1e-5)
    np.testing.assert_allclose(log_map(p, p), 0.0, atol=1e-15)


@given(s0=st.floats(0, 1), seed=st.integers(0, 1000), C=st.sampled_from([2, 5, 200]))
def test_progress_of_geodesic_point_is_its_parameter(s0, seed, C):
    rng = np.random.default_rng(seed)
    n = 6
    p = log_softmax(rng.standard_normal((n, C)))
    q = one_hot_log_probs(rng.integers(0, C, n), C)
    r = geodesic(p, q, s0)
    s, d = progress(r, p, q, return_distance=True)
    assert s == pytest.approx(s0, abs=1e-9)
    assert abs(d) < 1e-12
    assert progress(r, p, q, objective="arc_length") == pytest.approx(s0, abs=1e-6)


def test_progress_stack_and_distance_to_geodesic():
    rng = np.random.default_rng(2)
    n, C = 8, 3
    u = uniform_log_probs(n, C)
    t = one_hot_log_probs(rng.integers(0, C, n), C)
    R = log_softmax(rng.standard_normal((5, n, C)))
    s, d = progress(R, u, t, return_distance=True)
    assert s.shape == (5,) and d.shape == (5,)
    # brute force over a fine grid: the argmin is no worse than any grid point
    grid = np.linspace(0, 1, 2001)
    G = geodesic(u, t, grid[:-1])  # s = 1 is the truth; distance there is +inf for soft R
    Dg = bhattacharyya(R, G)
    assert np.all(d <= Dg.min(1) + 1e-12)
    np.testing.assert_allclose(s, grid[Dg.argmin(1)], atol=1e-3)
    np.testing.assert_allclose(distance_to_geodesic(R, u, t), d, atol=1e-15)
    # at a given s: plain Bhattacharyya distance to gamma(s)
    at = distance_to_geodesic(R, u, t, s=0.3)
    np.testing.assert_allclose(at, bhattacharyya(R, geodesic(u, t, 0.3)[None])[:, 0], atol=1e-12)
    with pytest.raises(ValueError, match="objective"):
        progress(R, u, t, objective="closest")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        distance_to_geodesic(R, u, t, s=1.5)


def test_reindex_hits_checkpoints_and_slerps_between():
    rng = np.random.default_rng(3)
    K, n, C = 4, 5, 3
    traj = log_softmax(2 * rng.standard_normal((K, n, C)))
    idx = np.array([0.1, 0.3, 0.3, 0.9])  # repeated value: flat step
    out = reindex(traj, idx, [0.0, 0.1, 0.3, 0.6, 0.9, 1.0])
    np.testing.assert_allclose(out[0], traj[0])  # below the first index: first checkpoint
    np.testing.assert_allclose(out[1], traj[0], atol=1e-13)
    np.testing.assert_allclose(out[2], traj[2], atol=1e-13)  # first index exceeding 0.3 is k = 3
    np.testing.assert_allclose(out[3], geodesic(traj[2], traj[3], 0.5), atol=1e-13)
    np.testing.assert_allclose(out[4], traj[3])
    np.testing.assert_allclose(out[5], traj[3])
    # non-monotone index: first crossing
    out2 = reindex(traj, np.array([0.0, 0.5, 0.2, 1.0]), [0.25])
    np.testing.assert_allclose(out2[0], geodesic(traj[0], traj[1], 0.5), atol=1e-13)
    with pytest.raises(ValueError, match=r"shape \(K,\)"):
        reindex(traj, idx[:3], [0.5])
    with pytest.raises(ValueError, match="finite"):
        reindex(traj, np.array([0.0, np.nan, 1.0, 2.0]), [0.5])


def test_geometry_input_checks():
    p = uniform_log_probs(3, 4)
    with pytest.raises(ValueError, match=r"same \(n, C\)"):
        geodesic(p, uniform_log_probs(3, 5), 0.5)
    with pytest.raises(ValueError, match="sum to 1"):
        geodesic(p + 0.1, p, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        geodesic(p, p, -0.1)
    with pytest.raises(ValueError, match="shape"):
        log_map(p[None], p)
