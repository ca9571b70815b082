"""Joint embedding: the four views against exact identities."""
import numpy as np
import pytest

from linsim.compare import geodesic_ends
from linsim.compare.joint import joint_embedding
from linsim.ensemble import EnsembleConfig, simulate
from linsim.inpca import InPCA, geodesic
from linsim.trajectory import Trajectory


def _sim(**kw):
    base = dict(n_samples=24, dim=8, n_classes=3, n_runs=2, steps=200, n_checkpoints=6, seed=3,
                teacher_scale=1.0, init_scale=0.3)
    base.update(kw)
    return simulate(EnsembleConfig(**base))


def test_views_reduce_to_plain_inpca_when_the_basis_is_the_deep_set():
    a = _sim()
    b = Trajectory(a.outputs, a.times, params={"model": "copy"}, inputs=a.inputs, labels=a.labels)
    j = joint_embedding([a], [b], n_components=5)
    own = InPCA(5).fit(j.distances[np.ix_(j.is_deep, j.is_deep)])
    np.testing.assert_allclose(j.views.deep, own.explained_stress_, atol=1e-12)
    # basis = an exact copy of the deep points: projecting them is in-sample
    np.testing.assert_allclose(j.views.linear_basis_deep[:5], own.explained_stress_, atol=1e-8)
    assert j.is_deep.sum() == a.n_points and (~j.is_deep).sum() == a.n_points


def test_geodesic_projection_lands_on_checkpoints_that_lie_on_the_geodesic():
    labels = np.array([0, 1, 2, 0, 1, 2])
    p0, ps = geodesic_ends(labels, 3)
    s = np.array([0.0, 0.25, 0.5, 0.75])
    on = Trajectory(geodesic(p0, ps, s)[None], np.arange(4), labels=labels)
    other = _sim(n_samples=6, dim=3)
    other = Trajectory(other.outputs, other.times, labels=labels)
    j = joint_embedding([on], [other], n_components=4, n_geodesic=5)  # s = 0, .25, .5, .75, 1
    np.testing.assert_allclose(j.geodesic_coordinates[:4], j.coordinates[:4], atol=1e-7)
    assert j.views.linear_basis_all.shape[0] >= 1


def test_mismatched_labels_are_refused():
    a = _sim()
    b = Trajectory(a.outputs, a.times, inputs=a.inputs, labels=(a.labels + 1) % 3)
    with pytest.raises(ValueError, match="different labels"):
        joint_embedding([a], [b])
    with pytest.raises(ValueError, match="at least one deep and one linear"):
        joint_embedding([a], [])


def test_every_view_takes_its_own_blocks_of_the_distance_matrix():
    """Wiring oracle: each view equals InPCA / projected_stress (tested on their own) applied to the
    right blocks of a distance matrix computed here; deep outputs in float32, linear in float64."""
    from linsim.compare import projected_stress
    from linsim.embed import distance_matrix

    a, b = _sim(seed=1), _sim(seed=2, teacher_scale=3.0)
    deep = [Trajectory(t.outputs.astype(np.float32), t.times, inputs=a.inputs, labels=a.labels) for t in (a, b)]
    lin = [Trajectory(_sim(seed=s, model="softmax").outputs, a.times, inputs=a.inputs, labels=a.labels)
           for s in (3, 4)]
    j = joint_embedding(deep, lin, n_components=4)
    f64 = [Trajectory(t.outputs.astype(np.float64), t.times, labels=t.labels) for t in deep] + lin
    D = distance_matrix(*f64)
    np.testing.assert_allclose(j.distances, D, rtol=1e-6, atol=1e-9)
    d, l = np.arange(2 * a.n_points), np.arange(2 * a.n_points, D.shape[0])
    np.testing.assert_array_equal(np.flatnonzero(j.is_deep), d)
    np.testing.assert_allclose(j.views.all, InPCA(4).fit(D).explained_stress_, atol=1e-6)
    np.testing.assert_allclose(j.views.deep, InPCA(4).fit(D[np.ix_(d, d)]).explained_stress_, atol=1e-6)
    np.testing.assert_allclose(j.views.linear_basis_all, projected_stress(D[np.ix_(l, l)], D[:, l], D, 4),
                               atol=1e-6)
    np.testing.assert_allclose(j.views.linear_basis_deep,
                               projected_stress(D[np.ix_(l, l)], D[np.ix_(d, l)], D[np.ix_(d, d)], 4), atol=1e-6)
