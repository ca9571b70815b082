"""Tests of linsim.deep.data: built-in sets, local-folder formats, user arrays, normalization."""

import contextlib
import random
import socket
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from linsim.deep import data as D
from linsim.deep import normalization as N
from linsim.deep import DATASETS, DatasetFileError, DeepDataset, Normalization, load_dataset

from .conftest import write_cifar_batch, write_idx


# ---------------------------------------------------------------------------------------
# registry and argument errors
# ---------------------------------------------------------------------------------------
def test_registry_has_the_issue_datasets():
    assert {"mnist1d", "digits", "synthetic", "cifar10", "mnist"} <= set(DATASETS)


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError, match=r"unknown dataset 'cifar100'.*digits.*mnist1d.*synthetic"):
        load_dataset("cifar100")


def test_unknown_option_lists_valid_options():
    with pytest.raises(TypeError, match=r"'digits' does not take option\(s\) \['c'\].*test_size"):
        load_dataset("digits", c=0.5)


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"n_train": 0}, ValueError, "n_train must be >= 1"),
        ({"n_test": 2.5}, TypeError, "n_test must be a positive integer"),
        ({"eval_stride": 0}, ValueError, "eval_stride"),
        ({"dtype": "float16"}, ValueError, "dtype must be one of"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer; got -1"),
        ({"seed": 1.5}, TypeError, "seed must be a non-negative integer; got 1.5"),
        ({"dtype": "float128"}, ValueError, "dtype must be one of"),
        ({"dtype": np.int32}, ValueError, r"dtype must be one of \['float32', 'float64'\]"),
        ({"normalize": "zca"}, ValueError, "unknown normalize='zca'"),
        ({"n_train": 1501}, ValueError, "1500 training samples; n_train=1501"),
    ],
)
def test_bad_arguments_are_named(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        load_dataset("digits", **kwargs)


def test_spec_must_be_name_or_four_arrays():
    with pytest.raises(TypeError, match="spec must be a dataset name"):
        load_dataset(3)
    with pytest.raises(ValueError, match="4-tuple"):
        load_dataset((np.zeros((2, 2)), np.zeros(2, int)))


# ---------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------
def _sklearn_digits():
    from sklearn.datasets import load_digits

    b = load_digits()
    return b.images.astype(np.float64), b.target.astype(np.int64)


def test_digits_split_is_a_partition_of_sklearn_digits():
    images, target = _sklearn_digits()
    ds = load_dataset("digits", dtype="float64", normalize="none", seed=5)
    assert ds.input_shape == (1, 8, 8) and (ds.n_train, ds.n_test) == (1500, 297)
    X = np.concatenate([ds.X_train, ds.X_test])[:, 0]
    y = np.concatenate([ds.y_train, ds.y_test])
    # every sklearn image appears exactly once, with its label
    key = lambda a, lab: sorted(map(tuple, np.column_stack([a.reshape(len(a), -1), lab])))  # noqa: E731
    assert key(X, y) == key(images, target)


def test_digits_split_depends_on_seed_only():
    a = load_dataset("digits", seed=1)
    b = load_dataset("digits", seed=1)
    c = load_dataset("digits", seed=2)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)


def test_channel_normalization_uses_training_statistics():
    raw = load_dataset("digits", dtype="float64", normalize="none")
    ds = load_dataset("digits", dtype="float64")
    m, s = raw.X_train.mean(), raw.X_train.std()  # one channel
    assert ds.normalization.kind == "channel"
    np.testing.assert_allclose(ds.normalization.mean, [m], rtol=1e-13)
    np.testing.assert_allclose(ds.normalization.std, [s], rtol=1e-13)
    np.testing.assert_allclose(ds.X_train, (raw.X_train - m) / s, atol=1e-13)
    np.testing.assert_allclose(ds.X_test, (raw.X_test - m) / s, atol=1e-13)
    assert abs(ds.X_train.mean()) < 1e-12 and abs(ds.X_train.std() - 1) < 1e-12
    assert abs(ds.X_test.mean()) > 1e-6  # the test split is NOT re-centred on itself


def test_float32_is_the_float64_result_rounded():
    a = load_dataset("digits", n_train=200, dtype="float32")
    b = load_dataset("digits", n_train=200, dtype="float64")
    assert a.X_train.dtype == np.float32 and b.X_train.dtype == np.float64
    np.testing.assert_array_equal(a.X_train, b.X_train.astype(np.float32))
    assert a.y_train.dtype == np.int64


def test_prefix_subsample_and_eval_stride():
    full = load_dataset("digits", normalize="none")
    part = load_dataset("digits", normalize="none", n_train=101, n_test=10, eval_stride=2)
    np.testing.assert_array_equal(part.X_train, full.X_train[:101])
    np.testing.assert_array_equal(part.y_test, full.y_test[:10])
    np.testing.assert_array_equal(part.eval_index, np.arange(0, 101, 2))
    np.testing.assert_array_equal(part.X_eval, full.X_train[0:101:2])
    np.testing.assert_array_equal(part.y_eval, full.y_train[0:101:2])
    assert part.params["n_train"] == 101 and part.params["eval_stride"] == 2


def test_params_rebuild_the_same_dataset():
    ds = load_dataset("synthetic", d=12, c=0.25, n_train=40, n_test=8, eval_stride=3, seed=4)
    p = dict(ds.params)
    again = load_dataset(p.pop("dataset"), **p)
    np.testing.assert_array_equal(again.X_train, ds.X_train)
    np.testing.assert_array_equal(again.eval_index, ds.eval_index)
    assert all(isinstance(v, (str, int, float, bool)) for v in ds.params.values())


def test_constant_channel_is_refused_not_clamped():
    X = np.ones((4, 2, 3))
    X[:, 1] = np.arange(12).reshape(4, 3)
    with pytest.raises(ValueError, match="channel 0 of the training inputs is constant"):
        load_dataset((X, np.array([0, 1, 0, 1]), X[:2], np.array([0, 1])), normalize="channel")


# ---------------------------------------------------------------------------------------
# synthetic
# ---------------------------------------------------------------------------------------
def test_synthetic_spectrum_formula():
    # b = 50 c for c > 0: 25, 25 e^-0.5 = 15.163266492815836, 25 e^-1 = 9.196986029286058
    np.testing.assert_allclose(D.synthetic_spectrum(3, 0.5), [25.0, 15.163266492815836, 9.196986029286058], rtol=1e-15)
    np.testing.assert_array_equal(D.synthetic_spectrum(4, 0.0), np.ones(4))
    np.testing.assert_allclose(D.synthetic_spectrum(2, 1.0, b=2.0), [2.0, 2.0 / np.e], rtol=1e-15)
    with pytest.raises(ValueError, match="c must be"):
        D.synthetic_spectrum(3, -1.0)


@pytest.mark.parametrize("c", [0.0, 0.3])
def test_synthetic_inputs_have_the_requested_covariance(c):
    ds = load_dataset("synthetic", c=c, d=10, n_train=4000, n_test=10, dtype="float64")
    lam = D.synthetic_spectrum(10, c)
    cov = ds.X_train.T @ ds.X_train / ds.n_train
    # diagonal: relative sampling error ~ sqrt(2/n) = 2.2%; off-diagonal ~ sqrt(l_i l_j / n)
    np.testing.assert_allclose(np.diag(cov), lam, rtol=0.1)
    off = cov - np.diag(np.diag(cov))
    assert np.all(np.abs(off) < 5 * np.sqrt(np.outer(lam, lam) / ds.n_train))
    assert ds.params["b"] == "auto" and ds.n_classes == 5


def test_synthetic_labels_and_sizes():
    ds = load_dataset("synthetic")
    assert (ds.n_train, ds.n_test, ds.input_shape) == (5000, 1000, (200,))
    assert ds.y_train.min() >= 0 and ds.y_train.max() < 5
    assert len(np.unique(ds.y_train)) >= 3  # a random teacher uses several classes
    small = load_dataset("synthetic", n_train=50, n_test=20)
    np.testing.assert_array_equal(small.X_train, ds.X_train[:50])  # smaller = prefix of larger
    np.testing.assert_array_equal(small.y_train, ds.y_train[:50])
    np.testing.assert_array_equal(small.y_test, ds.y_test[:20])
    other = load_dataset("synthetic", n_train=50, n_test=20, seed=1)
    assert not np.array_equal(other.X_train, small.X_train)


def test_synthetic_labels_are_a_function_of_inputs():
    # the same teacher labels both splits: duplicating training inputs as "test" inputs is
    # impossible through the API, so check that scaling the spectrum (b) by a factor keeps
    # each sample's direction and the labels of a bias-free teacher change only via tanh
    a = load_dataset("synthetic", d=8, c=0.5, b=1e-6, n_train=300, n_test=5, dtype="float64")
    b = load_dataset("synthetic", d=8, c=0.5, b=4e-6, n_train=300, n_test=5, dtype="float64")
    np.testing.assert_allclose(b.X_train, 2 * a.X_train, rtol=1e-13)
    # in the linear regime of tanh the argmax is invariant to a positive input scale
    np.testing.assert_array_equal(a.y_train, b.y_train)


# ---------------------------------------------------------------------------------------
# mnist1d: local generation, never a download, caller's global RNG untouched
# ---------------------------------------------------------------------------------------
def _no_network(monkeypatch):
    import mnist1d.data
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("network / download path used")

    monkeypatch.setattr(mnist1d.data, "get_dataset", refuse)
    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_mnist1d_is_generated_locally_without_download(monkeypatch):
    import mnist1d.data

    _no_network(monkeypatch)
    D._mnist1d_cached.cache_clear()
    np.random.seed(123)
    random.seed(123)
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    ds = load_dataset("mnist1d", num_samples=200, seed=3, dtype="float64", normalize="none")
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # caller's RNG untouched
    assert random.getstate() == py_state
    assert ds.input_shape == (1, 40) and (ds.n_train, ds.n_test) == (160, 40)
    # oracle: the package's own builder with the same arguments
    args = mnist1d.data.get_dataset_args()
    args.num_samples, args.seed = 200, 3
    ref = mnist1d.data.make_dataset(args)
    np.testing.assert_array_equal(ds.X_train[:, 0], ref["x"])
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])
    assert set(np.unique(ds.y_train)) == set(range(10))


def test_mnist1d_is_cached_in_process(monkeypatch):
    _no_network(monkeypatch)
    D._mnist1d_cached.cache_clear()
    a = load_dataset("mnist1d", num_samples=100)
    b = load_dataset("mnist1d", num_samples=100, dtype="float64")
    info = D._mnist1d_cached.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    np.testing.assert_array_equal(a.X_train, b.X_train.astype(np.float32))
    a.X_train[:] = 0  # returned arrays are the caller's; the cache is not corrupted
    c = load_dataset("mnist1d", num_samples=100)
    assert np.abs(c.X_train).sum() > 0


def test_mnist1d_defaults_match_the_issue():
    ds = load_dataset("mnist1d")
    assert (ds.n_train, ds.n_test, ds.n_classes, ds.input_shape) == (4000, 1000, 10, (1, 40))


# ---------------------------------------------------------------------------------------
# CIFAR-10 python batches
# ---------------------------------------------------------------------------------------
def test_cifar10_reads_the_official_batch_format(fake_cifar):
    root, xtr, ytr, xte, yte = fake_cifar
    ds = load_dataset("cifar10", root=root, dtype="float64", normalize="none")
    assert ds.input_shape == (3, 32, 32) and (ds.n_train, ds.n_test) == (20, 3)
    # row layout of the format: 1024 red, then green, then blue values, each row-major 32x32
    close = dict(rtol=0, atol=1e-12)  # pixel values are bytes / 255
    np.testing.assert_allclose(ds.X_train[:, 0].reshape(20, -1) * 255, xtr[:, :1024], **close)
    np.testing.assert_allclose(ds.X_train[:, 2, 5, 7] * 255, xtr[:, 2048 + 5 * 32 + 7], **close)
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)
    np.testing.assert_allclose(ds.X_test.reshape(3, -1) * 255, xte, **close)


def test_cifar10_per_channel_normalization(fake_cifar):
    root, xtr, *_ = fake_cifar
    ds = load_dataset("cifar10", root=root, dtype="float64")
    rgb = xtr.reshape(20, 3, 1024) / 255.0
    np.testing.assert_allclose(ds.normalization.mean, rgb.mean(axis=(0, 2)), rtol=1e-13)
    np.testing.assert_allclose(ds.normalization.std, rgb.std(axis=(0, 2)), rtol=1e-13)
    np.testing.assert_allclose(ds.X_train.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=(0, 2, 3)), 1, atol=1e-12)


def test_cifar10_root_from_environment_and_prefix(fake_cifar, monkeypatch):
    root, xtr, ytr, *_ = fake_cifar
    monkeypatch.setenv("LINSIM_DATA", str(root / "cifar-10-batches-py"))  # the folder itself works too
    ds = load_dataset("cifar10", n_train=6, normalize="none", dtype="float64")
    np.testing.assert_allclose(ds.X_train.reshape(6, -1) * 255, xtr[:6], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ds.y_train, ytr[:6])


def test_cifar10_missing_folder_says_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.delenv("LINSIM_DATA", raising=False)
    with pytest.raises(DatasetFileError, match="root=PATH or set the environment variable LINSIM_DATA"):
        load_dataset("cifar10")
    with pytest.raises(DatasetFileError, match="does not exist"):
        load_dataset("cifar10", root=tmp_path / "nowhere")
    with pytest.raises(DatasetFileError, match=r"missing \['data_batch_1'.*cifar-10-batches-py.*cs.toronto.edu"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar10_malformed_batches(fake_cifar):
    root = fake_cifar[0]
    folder = root / "cifar-10-batches-py"
    write_cifar_batch(folder / "data_batch_1", np.zeros((4, 3000), np.uint8), [0, 1, 2, 3])
    with pytest.raises(DatasetFileError, match=r"data_batch_1: b'data' must be uint8 of shape \(N, 3072\)"):
        load_dataset("cifar10", root=root)
    write_cifar_batch(folder / "data_batch_1", np.zeros((4, 3072), np.uint8), [0, 1, 2])
    with pytest.raises(DatasetFileError, match="3 labels for 4 images"):
        load_dataset("cifar10", root=root)
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(DatasetFileError, match="not a CIFAR-10 python batch"):
        load_dataset("cifar10", root=root)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar10_pickles_cannot_run_code(fake_cifar, capsys):
    import pickle

    root = fake_cifar[0]
    with open(root / "cifar-10-batches-py" / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": _Evil(), b"labels": []}, fh)
    with pytest.raises(DatasetFileError, match=r"refers to builtins.print; only numpy arrays are allowed"):
        load_dataset("cifar10", root=root)
    assert "pwned" not in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# MNIST IDX
# ---------------------------------------------------------------------------------------
def test_mnist_reads_idx_plain_and_gzipped(fake_mnist):
    root, xtr, ytr, xte, yte = fake_mnist
    ds = load_dataset("mnist", root=root, normalize="none", dtype="float64")
    assert ds.input_shape == (1, 28, 28) and (ds.n_train, ds.n_test) == (12, 5)
    np.testing.assert_allclose(ds.X_train[:, 0] * 255, xtr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.X_test[:, 0] * 255, xte, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)


def test_mnist_torchvision_layout(fake_mnist, tmp_path_factory):
    src, xtr, *_ = fake_mnist
    root = tmp_path_factory.mktemp("tv")
    (root / "MNIST" / "raw").mkdir(parents=True)
    for f in src.iterdir():
        (root / "MNIST" / "raw" / f.name).write_bytes(f.read_bytes())
    ds = load_dataset("mnist", root=root, normalize="none", dtype="float64")
    np.testing.assert_allclose(ds.X_train[:, 0] * 255, xtr, rtol=0, atol=1e-12)


def test_mnist_header_checks(fake_mnist):
    root = fake_mnist[0]
    bad = root / "t10k-images-idx3-ubyte"
    good = bad.read_bytes()
    bad.write_bytes(b"\x00\x00\x07\x03" + good[4:])
    with pytest.raises(DatasetFileError, match="bad IDX magic number 0x00000703"):
        load_dataset("mnist", root=root)
    bad.write_bytes(good[:-10])
    with pytest.raises(DatasetFileError, match=r"header says shape \(5, 28, 28\) \(3920 data bytes\) but the file has 3910"):
        load_dataset("mnist", root=root)
    write_idx(bad, np.zeros((5, 28), np.uint8))
    with pytest.raises(DatasetFileError, match="has 2 dimensions; expected 3"):
        load_dataset("mnist", root=root)
    write_idx(bad, np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(DatasetFileError, match="has 4 images but .*t10k-labels-idx1-ubyte has 5 labels"):
        load_dataset("mnist", root=root)


def test_mnist_missing_files_listed(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DatasetFileError, match=r"missing \['train-labels-idx1-ubyte', 't10k-images-idx3-ubyte'.*yann.lecun"):
        load_dataset("mnist", root=tmp_path)


# ---------------------------------------------------------------------------------------
# user arrays
# ---------------------------------------------------------------------------------------
def _arrays(n=8, shape=(3,), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, *shape)), np.arange(n) % 3, rng.normal(size=(4, *shape)), np.array([0, 1, 2, 0]))


def test_user_arrays_pass_through_unchanged_by_default():
    Xtr, ytr, Xte, yte = _arrays(shape=(2, 5))
    ds = load_dataset((Xtr, ytr, Xte, yte), dtype="float64")
    np.testing.assert_array_equal(ds.X_train, Xtr)
    np.testing.assert_array_equal(ds.y_test, yte)
    assert ds.input_shape == (2, 5) and ds.n_classes == 3 and ds.name == "arrays"
    assert ds.params["normalize"] == "none" and ds.params["n_classes"] == 3


def test_user_array_fingerprint_tracks_content():
    a = load_dataset(_arrays(seed=0)).params["fingerprint"]
    b = load_dataset(_arrays(seed=1)).params["fingerprint"]
    assert a != b and a == load_dataset(_arrays(seed=0)).params["fingerprint"]


@pytest.mark.parametrize(
    "mutate, exc, pattern",
    [
        (lambda a: a[0].__setitem__((1, 2), np.nan), ValueError,
         r"X_train contains nan at index \(1, 2\)"),
        (lambda a: a[2].__setitem__((3, 0), np.inf), ValueError, r"X_test contains inf at index \(3, 0\)"),
        (lambda a: a.__setitem__(1, a[1].astype(float)), TypeError, "y_train must hold integer class labels"),
        (lambda a: a.__setitem__(3, np.array([0, 1, -2, 0])), ValueError, r"y_test\[2\] = -2 is negative"),
        (lambda a: a.__setitem__(1, a[1][:-1]), ValueError, r"y_train must have shape \(8,\)"),
        (lambda a: a.__setitem__(2, np.zeros((4, 4))), ValueError, r"X_train samples have shape \(3,\) but X_test"),
        (lambda a: a.__setitem__(0, np.zeros(8)), ValueError, r"X_train must have shape \(n, \*input_shape\)"),
        (lambda a: a.__setitem__(0, np.array(["a"] * 8)[:, None]), TypeError, "real numeric array"),
    ],
)
def test_user_arrays_are_validated(mutate, exc, pattern):
    arrays = list(_arrays())
    mutate(arrays)
    with pytest.raises(exc, match=pattern):
        load_dataset(tuple(arrays))


def test_user_arrays_n_classes_option():
    ds = load_dataset(_arrays(), n_classes=7)
    assert ds.n_classes == 7
    with pytest.raises(ValueError, match=r"y_train\[2\] = 2 is out of range for n_classes=2"):
        load_dataset(_arrays(), n_classes=2)
    with pytest.raises(TypeError, match="only the option 'n_classes'"):
        load_dataset(_arrays(), c=1.0)


def test_deep_dataset_contract_is_checked():
    ds = load_dataset(_arrays())
    with pytest.raises(ValueError, match="eval_index"):
        DeepDataset(**{**ds.__dict__, "eval_index": np.array([8])})
    with pytest.raises(ValueError, match="y_train must be int64"):
        DeepDataset(**{**ds.__dict__, "y_train": ds.y_train.astype(np.int32)})
    with pytest.raises(TypeError, match=r"params\['x'\] must be"):
        DeepDataset(**{**ds.__dict__, "params": {"x": [1]}})
    assert "n_train=8" in repr(ds)


@given(
    X=hnp.arrays(np.float64, st.tuples(st.integers(3, 12), st.integers(1, 3), st.integers(2, 5)),
                 elements=st.floats(-1e3, 1e3, allow_nan=False)),
)
def test_channel_normalization_property(X):
    n, C = X.shape[:2]
    spread = X.std(axis=(0, 2))
    if np.any(spread < 1e-3 * (1 + np.abs(X).max())):
        with pytest.raises(ValueError) if np.any(spread == 0) else contextlib.nullcontext():
            load_dataset((X, np.arange(n) % 2, X[:2], np.array([0, 1])), normalize="channel", dtype="float64")
        return
    ds = load_dataset((X, np.arange(n) % 2, X[:2], np.array([0, 1])), normalize="channel", dtype="float64")
    np.testing.assert_allclose(ds.X_train.mean(axis=(0, 2)), 0, atol=1e-9)
    np.testing.assert_allclose(ds.X_train.std(axis=(0, 2)), 1, rtol=1e-9)
    np.testing.assert_allclose(ds.X_test, ds.X_train[:2], rtol=1e-12, atol=1e-12)  # same affine map
    norm = ds.normalization
    back = ds.X_train * np.array(norm.std)[None, :, None] + np.array(norm.mean)[None, :, None]
    np.testing.assert_allclose(back, X, atol=1e-9 * (1 + np.abs(X).max()))


def test_normalization_contract():
    with pytest.raises(ValueError, match=r"std\[1\] must be finite and > 0"):
        Normalization("channel", (0.0, 0.0), (1.0, 0.0))
    with pytest.raises(ValueError, match="kind must be one of"):
        Normalization("zca", (0.0,), (1.0,))
    with pytest.raises(ValueError, match="do not have 2 channels"):
        Normalization("channel", (0.0, 1.0), (1.0, 1.0)).apply(np.zeros((3, 3, 4)))


def test_synthetic_option_errors():
    with pytest.raises(ValueError, match="b must be a number > 0 or 'auto'"):
        load_dataset("synthetic", b="big", n_train=4, n_test=2)
    with pytest.raises(ValueError, match="b must be a finite number > 0"):
        load_dataset("synthetic", b=-1.0, n_train=4, n_test=2)
    with pytest.raises(TypeError, match="option d=.* must be a str/int/float/bool scalar"):
        load_dataset("synthetic", d=[3], n_train=4, n_test=2)


def test_mnist1d_too_many_samples_points_to_num_samples(monkeypatch):
    _no_network(monkeypatch)
    with pytest.raises(ValueError, match=r"160 training samples; n_train=161 requested \(.*num_samples\)"):
        load_dataset("mnist1d", num_samples=200, n_train=161)


def test_signature_without_loading_matches_the_loaded_data(fake_cifar, fake_mnist, monkeypatch):
    _no_network(monkeypatch)
    cases = [
        ("mnist1d", {"num_samples": 100}, {}),
        ("digits", {}, {}),
        ("synthetic", {"d": 7, "n_classes": 3}, {"n_train": 5, "n_test": 2}),
        ("cifar10", {}, {"root": fake_cifar[0]}),
        ("mnist", {}, {"root": fake_mnist[0]}),
    ]
    assert {c[0] for c in cases} == set(DATASETS)
    for name, options, load_kwargs in cases:
        ds = load_dataset(name, **options, **load_kwargs)
        assert D.dataset_signature(name, **options) == (ds.input_shape, ds.n_classes), name
    assert D.dataset_signature(_arrays(shape=(2, 5))) == ((2, 5), 3)
    with pytest.raises(KeyError, match="valid names"):
        D.dataset_signature("imagenet")
    with pytest.raises(TypeError, match="valid options"):
        D.dataset_signature("digits", d=3)


# ---------------------------------------------------------------------------------------
# one contract for every registered data set (geomstats style)
# ---------------------------------------------------------------------------------------
@pytest.fixture
def dataset_kwargs(fake_cifar, fake_mnist, monkeypatch):
    """Small, fast load arguments for each registered name (local-folder sets use fakes)."""
    _no_network(monkeypatch)
    return {
        "mnist1d": {"num_samples": 100},
        "digits": {},
        "synthetic": {"d": 9, "n_train": 30, "n_test": 10},
        "cifar10": {"root": fake_cifar[0]},
        "mnist": {"root": fake_mnist[0]},
    }


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_contract(name, dataset_kwargs):
    kwargs = dataset_kwargs[name]
    ds = load_dataset(name, eval_stride=2, **kwargs)
    entry = DATASETS[name]
    assert isinstance(ds, DeepDataset) and ds.name == name
    assert ds.X_train.dtype == np.float32 and ds.X_test.dtype == np.float32
    assert ds.X_train.shape[1:] == ds.input_shape == ds.X_test.shape[1:]
    assert ds.y_train.dtype == np.int64 and 0 <= ds.y_train.min() and ds.y_train.max() < ds.n_classes
    assert ds.y_test.min() >= 0 and ds.y_test.max() < ds.n_classes
    np.testing.assert_array_equal(ds.eval_index, np.arange(0, ds.n_train, 2))
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()
    assert ds.normalization.kind == entry.normalize == ds.params["normalize"]
    if entry.normalize == "channel":
        axes = (0,) + tuple(range(2, ds.X_train.ndim))
        np.testing.assert_allclose(ds.X_train.astype(np.float64).mean(axis=axes), 0, atol=1e-5)
        np.testing.assert_allclose(ds.X_train.astype(np.float64).std(axis=axes), 1, atol=1e-5)
    # same arguments, same numbers; float64 on request is the same data unrounded
    again = load_dataset(name, eval_stride=2, dtype="float64", **kwargs)
    np.testing.assert_array_equal(again.X_train.astype(np.float32), ds.X_train)
    np.testing.assert_array_equal(again.y_test, ds.y_test)
    assert D.dataset_signature(name, **{k: v for k, v in kwargs.items() if k in entry.options}) == (
        ds.input_shape, ds.n_classes)
    assert set(entry.options) <= set(ds.params)


def test_blockwise_statistics_equal_whole_array_statistics(monkeypatch):
    # force many small blocks: the two-pass blockwise moments must equal numpy's
    monkeypatch.setattr(N, "_BLOCK_BYTES", 3 * 8 * 2 * 5)  # 3 samples of (2, 5) per block
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, size=(20, 2, 5)).astype(np.uint8)
    phys = X / 255.0
    mean, std = N._stats_channel(X, 1 / 255)
    np.testing.assert_allclose(mean, phys.mean(axis=(0, 2)), rtol=1e-14)
    np.testing.assert_allclose(std, phys.std(axis=(0, 2)), rtol=1e-13)
    gmean, gstd = N._stats_global(X, 1 / 255)
    np.testing.assert_allclose(gmean + gstd, [phys.mean(), phys.std()], rtol=1e-13)
    norm = Normalization("channel", mean, std)
    out = norm.apply(X, np.float32, 1 / 255)
    ref = (phys - np.array(mean)[None, :, None]) / np.array(std)[None, :, None]
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    assert out.dtype == np.float32


def test_synthetic_train_and_test_share_one_teacher():
    # with small inputs (b = 0.5) tanh is nearly linear, so a linear classifier fitted on the
    # training split must predict the test split well if one teacher labelled both; the
    # control (test labels permuted: the input-label link broken) must score near chance
    from sklearn.linear_model import LogisticRegression

    ds = load_dataset("synthetic", d=10, c=0.5, b=0.5, n_train=2000, n_test=500, dtype="float64", seed=2)
    clf = LogisticRegression(C=100.0, max_iter=2000).fit(ds.X_train, ds.y_train)
    assert clf.score(ds.X_test, ds.y_test) > 0.9
    shuffled = np.random.default_rng(0).permutation(ds.y_test)
    assert clf.score(ds.X_test, shuffled) < 0.6


def test_cifar10_reads_only_the_batches_a_prefix_needs(fake_cifar):
    root = fake_cifar[0]
    (root / "cifar-10-batches-py" / "data_batch_5").write_bytes(b"corrupt")
    ds = load_dataset("cifar10", root=root, n_train=8)  # batches 1 and 2 suffice
    assert ds.n_train == 8
    with pytest.raises(DatasetFileError, match="data_batch_5: not a CIFAR-10 python batch"):
        load_dataset("cifar10", root=root)


def test_mnist_idx_of_another_element_type_is_refused(fake_mnist):
    root = fake_mnist[0]
    payload = bytes([0, 0, 0x0D, 3]) + struct.pack(">III", 5, 28, 28) + np.zeros(5 * 28 * 28, ">f4").tobytes()
    (root / "t10k-images-idx3-ubyte").write_bytes(payload)
    with pytest.raises(DatasetFileError, match="must hold unsigned bytes; got >f4"):
        load_dataset("mnist", root=root)


def test_environment_root_that_does_not_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("LINSIM_DATA", str(tmp_path / "missing"))
    with pytest.raises(DatasetFileError, match=r"data folder '.*missing' for dataset 'mnist' does not exist.*IDX"):
        load_dataset("mnist")


def test_global_normalization_and_list_spec():
    X = np.stack([np.arange(12.0).reshape(4, 3), 10 * np.arange(12.0).reshape(4, 3)], axis=1)  # (4, 2, 3)
    ds = load_dataset([X, np.array([0, 1, 0, 1]), X[:1], np.array([1])], normalize="global", dtype="float64")
    assert len(ds.normalization.mean) == 1
    np.testing.assert_allclose(ds.normalization.mean, [X.mean()], rtol=1e-15)
    np.testing.assert_allclose(ds.X_train, (X - X.mean()) / X.std(), rtol=1e-14)


def test_registered_loaders_are_checked(monkeypatch):
    def bad_loader(*, root, n_train, n_test, seed):
        X = np.zeros((3, 2))
        return D.RawSplits(X, np.array([0, 1, 5]), X, np.array([0, 1, 1]), 3)

    monkeypatch.setitem(DATASETS, "bad", D.DatasetEntry("bad", bad_loader))
    with pytest.raises(ValueError, match=r"bad: y_train\[2\] = 5 is out of range for n_classes=3"):
        load_dataset("bad")

    def not_raw(*, root, n_train, n_test, seed):
        return np.zeros((3, 2))

    monkeypatch.setitem(DATASETS, "bad", D.DatasetEntry("bad", not_raw))
    with pytest.raises(TypeError, match="the loader must return RawSplits"):
        load_dataset("bad")
    with pytest.raises(ValueError, match="already registered"):
        D.register_dataset(D.DatasetEntry("digits", not_raw))
