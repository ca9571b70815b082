"""Progress, equal-progress resampling, tube width and distance to the geodesic."""
import numpy as np
import pytest

from linsim.compare.progress import (checkpoint_progress, equal_progress, geodesic_ends, geodesic_gap,
                                     progress_distance_tensor, progress_grid, steps_to_progress, tube_width)
from linsim.inpca import geodesic
from linsim.trajectory import Trajectory


def _geodesic_trajectory(s_values, labels, C, shift=0.0):
    """A Trajectory whose checkpoints lie exactly on the uniform -> one-hot geodesic.

    The one-hot end has -inf logits; the geodesic interior is finite, so s < 1 only."""
    p0, ps = geodesic_ends(labels, C)
    lp = geodesic(p0, ps, np.asarray(s_values))  # (K, n, C) log-probs = valid logits
    return Trajectory(lp[None] + shift, np.arange(len(s_values)), labels=labels)


def test_points_on_the_geodesic_have_their_own_progress_and_resample_to_the_geodesic():
    labels = np.array([0, 1, 2, 1, 0])
    s = np.array([0.0, 0.05, 0.2, 0.45, 0.7, 0.9])
    traj = _geodesic_trajectory(s, labels, 3)
    prog, dist = checkpoint_progress(traj)
    np.testing.assert_allclose(prog[0], s, atol=1e-7)
    np.testing.assert_allclose(dist[0], 0.0, atol=1e-12)
    grid = np.linspace(0.02, 0.88, 17)
    res = equal_progress(traj, grid, prog)
    p0, ps = geodesic_ends(labels, 3)
    np.testing.assert_allclose(np.exp(res[0]), np.exp(geodesic(p0, ps, grid)), atol=1e-7)
    np.testing.assert_allclose(geodesic_gap(res, grid, labels), 0.0, atol=1e-12)


def test_off_geodesic_model_has_positive_gap_and_resampling_interpolates_between_checkpoints():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 6)
    z = rng.normal(size=(2, 5, 6, 4)) * np.linspace(0, 3, 5)[None, :, None, None]
    z[:, :, np.arange(6), labels] += np.linspace(0, 4, 5)[None, :, None]
    traj = Trajectory(z, np.arange(5) * 10, labels=labels)
    prog, dist = checkpoint_progress(traj)
    assert np.all(dist[:, 1:] > 1e-4)
    grid = progress_grid([prog], 6)
    res = equal_progress(traj, grid, prog)
    assert res.shape == (2, 6, 6, 4)
    # the resampled model at a checkpoint's own progress is that checkpoint (when progress increases)
    for r in range(2):
        if np.all(np.diff(prog[r]) > 0):
            k = 2
            one = equal_progress(traj.select(runs=[r]), [prog[r, k]], prog[r:r + 1])
            np.testing.assert_allclose(one[0, 0], traj.log_probs()[r * 5 + k], atol=1e-8)
    T = progress_distance_tensor(res)
    assert T.shape == (6, 2, 2)
    np.testing.assert_allclose(T[:, 0, 0], 0.0, atol=1e-14)
    assert np.all(T[1:, 0, 1] > 0)  # both runs start uniform: T[0] = 0
    gap = geodesic_gap(res, grid, labels)
    assert np.all(gap[:, 1:] > 0)  # grid[0] = 0 is the uniform start, on the geodesic
    np.testing.assert_allclose(gap[:, 0], 0.0, atol=1e-12)


def test_tube_width_is_zero_for_identical_seeds_and_grows_with_spread():
    labels = np.array([0, 1, 1])
    base = np.log(np.array([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]]))
    same = np.broadcast_to(base, (4, 2, 3, 2))
    np.testing.assert_allclose(tube_width(same), 0.0, atol=1e-14)
    rng = np.random.default_rng(1)
    widths = []
    for eps in (0.1, 0.5):
        z = base[None, None] + eps * rng.normal(size=(4, 2, 3, 2))
        z = z - np.log(np.exp(z).sum(-1, keepdims=True))
        widths.append(tube_width(z).mean())
    assert 0 < widths[0] < widths[1]
    del labels


def test_steps_to_progress_and_grid_errors():
    assert steps_to_progress([0, 10, 20, 40], [[0, 0.2, 0.6, 0.9], [0, 0.4, 0.6, 0.9]], 0.5) == pytest.approx(10 + 10 * 0.2 / 0.3)  # mean 0.3 -> 0.6
    assert np.isnan(steps_to_progress([0, 1], [[0.0, 0.3]], 0.5))
    with pytest.raises(ValueError, match="share no progress range"):
        progress_grid([np.array([[0.5, 0.6]]), np.array([[0.0, 0.2]])])
    with pytest.raises(ValueError, match="labels"):
        checkpoint_progress(Trajectory(np.zeros((1, 1, 2, 2)), [0]))
