"""Functional optimizers vs torch.optim, lr schedules, checkpoint schedules, augmentation."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from linsim.deep.augment import augment_batch, augmentation_kind
from linsim.deep.optim import LR_SCHEDULES, OPTIMIZERS, lr_multiplier, make_hyper
from linsim.deep.schedule import checkpoints, study_schedule
from linsim.ensemble import checkpoint_steps


def _grads(t, R, shape, seed=0):
    g = torch.Generator().manual_seed(seed * 1000 + t)
    return torch.randn((R,) + shape, generator=g, dtype=torch.float64)


@given(
    name=st.sampled_from(sorted(OPTIMIZERS)),
    lrs=st.lists(st.floats(1e-4, 0.5), min_size=1, max_size=3),
    mu=st.floats(0.0, 0.95),
    wd=st.floats(0.0, 0.1),
    cosine=st.booleans(),
)
def test_functional_optimizer_matches_torch_optim_per_run(name, lrs, mu, wd, cosine):
    """Each run of the stacked update equals torch.optim on that run alone, its own values."""
    opt = OPTIMIZERS[name]
    R, shape, T = len(lrs), (3, 2), 6
    if name == "nesterov":
        mu = max(mu, 0.1)
    if name in ("adam", "adamw"):
        mu = 0.0
    p0 = torch.randn((R,) + shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hyper = make_hyper(R, lr=lrs, momentum=mu, weight_decay=wd, dtype=torch.float64)
    params = {"w": p0.clone()}
    state = opt.init_state(params)
    refs = [torch.nn.Parameter(p0[r].clone()) for r in range(R)]
    topts = [opt.torch_optimizer([refs[r]], hyper.run(r)) for r in range(R)]
    for t in range(T):
        scale = lr_multiplier("cosine" if cosine else "constant", t, T)
        g = _grads(t, R, shape)
        opt.update(params, {"w": g}, state, hyper, scale, t + 1)
        for r in range(R):
            refs[r].grad = g[r].clone()
            for group in topts[r].param_groups:
                group["lr"] = lrs[r] * scale
            topts[r].step()
    for r in range(R):
        torch.testing.assert_close(params["w"][r], refs[r].detach(), rtol=1e-12, atol=1e-14)


def test_momentum_changes_the_result():
    """The comparison above can fail: momentum and decay really enter the update."""
    p = {"w": torch.ones(2, 1, dtype=torch.float64)}
    opt = OPTIMIZERS["sgd"]
    st_ = opt.init_state(p)
    h = make_hyper(2, lr=0.1, momentum=[0.0, 0.9], weight_decay=[0.0, 0.5], dtype=torch.float64)
    for t in range(3):
        opt.update(p, {"w": torch.ones(2, 1, dtype=torch.float64)}, st_, h, 1.0, t + 1)
    # run 0: 1 - 3 * 0.1; run 1: heavy ball with decay, computed by hand
    w, b = 1.0, 0.0
    for t in range(3):
        g = 1.0 + 0.5 * w
        b = g if t == 0 else 0.9 * b + g
        w -= 0.1 * b
    assert p["w"][0].item() == pytest.approx(0.7, abs=1e-15)
    assert p["w"][1].item() == pytest.approx(w, abs=1e-15)


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match="one value per run"):
        make_hyper(3, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="momentum must be < 1"):
        make_hyper(1, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="lr must be finite.*run 1"):
        make_hyper(2, lr=[0.1, float("nan")])
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'; valid"):
        lr_multiplier("step", 0, 10)


def test_cosine_schedule_equals_torch_cosine_annealing():
    T = 17
    p = torch.nn.Parameter(torch.zeros(1))
    o = torch.optim.SGD([p], lr=0.3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T)
    for t in range(T):
        assert o.param_groups[0]["lr"] == pytest.approx(0.3 * lr_multiplier("cosine", t, T), rel=1e-12,
                                                        abs=1e-15)
        o.step()
        sched.step()
    assert set(LR_SCHEDULES) == {"constant", "cosine"}


@pytest.mark.parametrize("bs", [50, 100, 200, 500, 1000])
@pytest.mark.parametrize("epochs", [200, 300])
def test_study_schedule_counts_match_the_study(bs, epochs):
    """Counts from the study's description, derived by hand (50 000 images): step 0, 5 per
    epoch in epochs 0-4, every epoch 5-25 (21), every 4th in 26-65 (28..64: 10), every 15th
    after (75, 90, ... < epochs), the last step; 67 at batch size 200 over 200 epochs."""
    E = 50_000 // bs
    s = study_schedule(epochs * E, E)
    after_65 = {200: 9, 300: 15}[epochs]          # 75..195 / 75..285 in steps of 15
    assert s.size == 1 + 5 * 5 + 21 + 10 + after_65 + 1
    if (bs, epochs) == (200, 200):
        assert s.size == 67                       # the study's published count
    assert s[0] == 0 and s[-1] == epochs * E and np.all(np.diff(s) > 0)
    for e in range(5):                            # exactly 5 within each early epoch
        assert np.count_nonzero((s > e * E) & (s <= (e + 1) * E)) == 5
    assert set(s[s > 5 * E] // E) >= {6, 26, 29, 65, 76}   # ends of epochs 5, 25, 28, 64, 75


def test_study_schedule_dense_early_sparse_late_and_truncated():
    E = 10
    s = study_schedule(100 * E, E)
    gaps = np.diff(s)
    assert gaps[:20].max() <= E // 4 and gaps[-2] == 15 * E and gaps[-3] >= 10 * E
    short = study_schedule(7 * E + 3, E)
    assert short[-1] == 7 * E + 3 and short.max() == 7 * E + 3


@given(steps=st.integers(0, 10_000), k=st.integers(1, 50))
def test_log_schedule_is_the_ensemble_schedule(steps, k):
    np.testing.assert_array_equal(checkpoints("log", steps, 7, k), checkpoint_steps(steps, k))


def test_unknown_schedule_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid: \['log', 'study'\]"):
        checkpoints("cosine", 10, 1, 3)


# ------------------------------------------------------------------ augmentation
@given(seed=st.integers(0, 2**32 - 1), L=st.integers(3, 12), pad=st.integers(0, 4))
def test_signal_augmentation_is_a_zero_filled_shift(seed, L, pad):
    R, B = 2, 3
    x = torch.arange(1, R * B * 2 * L + 1, dtype=torch.float64).reshape(R, B, 2, L)
    y = augment_batch(x, [np.random.default_rng([seed, r]) for r in range(R)], pad=pad)
    for r in range(R):
        for b in range(B):
            row = x[r, b, 0].tolist()
            out = y[r, b, 0].tolist()
            shifts = [s for s in range(-pad, pad + 1)
                      if out == [row[i + s] if 0 <= i + s < L else 0.0 for i in range(L)]]
            assert shifts, (row, out)
            s = shifts[0]
            # both channels shifted alike
            assert y[r, b, 1].tolist() == [x[r, b, 1, i + s].item() if 0 <= i + s < L else 0.0
                                           for i in range(L)]


def test_image_augmentation_crops_and_flips_per_run_stream():
    R, B = 3, 64
    x = torch.randn(R, B, 2, 6, 5, generator=torch.Generator().manual_seed(0))
    rngs = [np.random.default_rng(10 + r) for r in range(R)]
    y = augment_batch(x, rngs, pad=2)
    assert y.shape == x.shape
    # run 1 alone with a fresh copy of its stream gives the same images
    alone = augment_batch(x[1:2], [np.random.default_rng(11)], pad=2)
    torch.testing.assert_close(y[1:2], alone, rtol=0, atol=0)
    # about half the images are mirrored: recover (dy, dx, flip) by brute force
    flips = 0
    for b in range(B):
        src, out = x[0, b], y[0, b]
        found = None
        for flip in (False, True):
            img = src.flip(-1) if flip else src
            padded = torch.nn.functional.pad(img, (2, 2, 2, 2))
            for dy in range(5):
                for dx in range(5):
                    if torch.equal(padded[:, dy:dy + 6, dx:dx + 5], out):
                        found = flip
        assert found is not None
        flips += found
    assert 16 < flips < 48
    # pad 0 never shifts; vectors are refused
    assert augmentation_kind((1, 8, 8)) == "image"
    with pytest.raises(ValueError, match="feature vectors"):
        augmentation_kind((20,))
    with pytest.raises(ValueError, match="one generator per run"):
        augment_batch(x, rngs[:2])
