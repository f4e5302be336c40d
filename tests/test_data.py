"""Tests of nnlib.data: seeded generators, the shipped data sets, splits and mini-batches."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlib import data as D

# name -> a call with a given seed; every generator returns arrays first
GENERATORS = {
    "spirals": lambda seed: D.spirals(50, n_classes=3, noise=0.2, seed=seed),
    "xor": lambda seed: D.xor(101, noise=0.2, seed=seed),
    "moons": lambda seed: D.moons(101, noise=0.1, seed=seed),
    "linear_regression": lambda seed: D.linear_regression(40, n_features=3, noise=0.1, seed=seed),
    "adding_problem": lambda seed: D.adding_problem(30, length=20, seed=seed),
    "delayed_recall": lambda seed: D.delayed_recall(30, length=12, delay=5, n_symbols=4, seed=seed),
}


def as_arrays(out):
    return [np.asarray(a) for a in out]


@pytest.mark.parametrize("name", list(GENERATORS))
def test_same_seed_identical_different_seed_different(name):
    make = GENERATORS[name]
    a, b, c = as_arrays(make(3)), as_arrays(make(3)), as_arrays(make(4))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
        assert u.dtype == v.dtype
    assert not np.array_equal(a[0], c[0])
    # a Generator works as the seed, and numpy's global state is never used
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    d = as_arrays(make(np.random.default_rng(3)))
    np.testing.assert_array_equal(a[0], d[0])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_seed_must_be_explicit(name):
    with pytest.raises(TypeError, match=f"{name}: seed must be an int or a np.random.Generator"):
        GENERATORS[name](None)


@pytest.mark.parametrize(
    "make, n, n_classes",
    [
        (lambda: D.spirals(40, n_classes=5, seed=0), 200, 5),
        (lambda: D.xor(103, seed=0), 103, 2),
        (lambda: D.moons(99, seed=0), 99, 2),
    ],
)
def test_classification_sets_shapes_dtypes_labels(make, n, n_classes):
    X, y = make()
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(n_classes))
    assert np.bincount(y).max() - np.bincount(y).min() <= 1  # balanced


def test_xor_labels_are_the_xor_of_the_signs():
    X, y = D.xor(400, noise=0.0, seed=0)
    np.testing.assert_array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(np.int64))


def test_linear_regression_is_the_stated_model():
    X, y, w, b = D.linear_regression(200, n_features=4, noise=0.0, seed=1)
    assert X.shape == (200, 4) and y.shape == (200,) and w.shape == (4,) and isinstance(b, float)
    np.testing.assert_allclose(y, X @ w + b, atol=1e-12)
    A = np.hstack([X, np.ones((200, 1))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(coef, np.append(w, b), atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 20), length=st.integers(2, 40), seed=st.integers(0, 10**6))
def test_adding_problem_target_is_sum_of_marked_values(n, length, seed):
    X, y = D.adding_problem(n, length, seed=seed)
    assert X.shape == (n, length, 2) and X.dtype == np.float64 and y.shape == (n,)
    values, markers = X[..., 0], X[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert np.all(markers.sum(axis=1) == 2) and set(np.unique(markers)) <= {0.0, 1.0}
    np.testing.assert_allclose(y, (values * markers).sum(axis=1), rtol=0, atol=1e-15)
    half = length // 2
    assert np.all(markers[:, :half].sum(axis=1) == 1)  # one marker in each half
    assert np.all(markers[:, half:].sum(axis=1) == 1)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 20), delay=st.integers(0, 10), extra=st.integers(1, 10),
    n_symbols=st.integers(2, 6), seed=st.integers(0, 10**6),
)
def test_delayed_recall_label_is_symbol_delay_steps_back(n, delay, extra, n_symbols, seed):
    length = delay + extra
    X, y = D.delayed_recall(n, length, delay, n_symbols, seed=seed)
    assert X.shape == (n, length, n_symbols) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    np.testing.assert_array_equal(X.sum(axis=-1), 1.0)  # one-hot
    symbols = X.argmax(axis=-1)
    np.testing.assert_array_equal(y, symbols[:, length - 1 - delay])


def test_delayed_recall_is_at_chance_without_long_memory():
    """The best guess from the last `delay` steps (the most frequent symbol there, or the last
    one) is right about 1/n_symbols of the time; with one step more it is always right."""
    n, length, delay, k = 20_000, 10, 4, 4
    X, y = D.delayed_recall(n, length, delay, n_symbols=4, seed=0)
    symbols = X.argmax(axis=-1)
    window = symbols[:, length - k :]  # what a memory of k = delay steps still holds
    majority = np.array([np.bincount(row, minlength=4).argmax() for row in window])
    for guess in (majority, window[:, -1]):
        assert abs(np.mean(guess == y) - 0.25) < 0.02  # chance, within ~5 standard errors
    np.testing.assert_array_equal(symbols[:, length - (k + 1)], y)  # k + 1 steps suffice
    with pytest.raises(ValueError, match=r"delayed_recall: length must exceed delay.*length >= 5"):
        D.delayed_recall(3, length=4, delay=4, seed=0)


# ---- the digits ----------------------------------------------------------------------------


def test_digits_shape_range_and_class_counts():
    X, y = D.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and np.all(X == np.round(X))
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.sum() == 1797
    assert np.all((counts >= 174) & (counts <= 183))
    # the class counts of the UCI optdigits test set (what scikit-learn ships)
    np.testing.assert_array_equal(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    Xs, ys = D.load_digits(scale=True)
    np.testing.assert_allclose(Xs, X / 16.0)
    np.testing.assert_array_equal(ys, y)
    assert Xs.max() == 1.0


def test_digits_match_the_shipped_file():
    with gzip.open(D.DATASETS_DIR / "digits.csv.gz", "rt") as fh:
        rows = [line.split(",") for line in fh.read().splitlines()]
    assert len(rows) == 1797 and all(len(r) == 65 for r in rows)
    X, y = D.load_digits()
    assert [int(v) for v in rows[0][:64]] == X[0].astype(int).tolist()
    assert int(rows[-1][64]) == y[-1]
    X[0, 0] = 99.0  # a caller's copy: the cache is not touched
    assert D.load_digits()[0][0, 0] == 0.0


def test_shipped_data_has_its_licence_notes():
    readme = (D.DATASETS_DIR / "README.md").read_text(encoding="utf-8")
    for needed in ("CC BY 4.0", "Alpaydin", "Kaynak", "public domain", D.TEXT_FILE, "digits.csv.gz"):
        assert needed in readme


# ---- the text ------------------------------------------------------------------------------


def test_text_and_vocabulary_round_trip():
    text = D.load_text()
    assert 100_000 <= len(text) <= 300_000
    assert text.startswith("PRIDE AND PREJUDICE") and "gutenberg" not in text.lower()
    vocab = D.CharVocab(text)
    assert len(vocab) == len(set(text))
    codes = vocab.encode(text)
    assert codes.dtype == np.int64 and codes.shape == (len(text),)
    assert codes.min() == 0 and codes.max() == len(vocab) - 1
    assert vocab.decode(codes) == text
    assert D.load_text(n_chars=500) == text[:500]


def test_vocabulary_errors_name_the_character():
    vocab = D.CharVocab("abc")
    np.testing.assert_array_equal(vocab.encode("cab"), [2, 0, 1])
    with pytest.raises(ValueError, match=r"CharVocab.encode: character 'z' .* 'abc'"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match=r"CharVocab.decode: codes must lie in 0..2, got \[3\]"):
        vocab.decode([0, 3])


# ---- splits, batches, one-hot, standardising -----------------------------------------------


def test_train_test_split_partitions_the_examples():
    X = np.arange(100.0).reshape(50, 2)
    y = np.arange(50)
    X_tr, X_te, y_tr, y_te = D.train_test_split(X, y, test_fraction=0.2, seed=0)
    assert len(X_te) == 10 and len(X_tr) == 40
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(50))
    np.testing.assert_array_equal(X_tr[:, 0], 2 * y_tr)  # rows stay paired with labels
    again = D.train_test_split(X, y, test_fraction=0.2, seed=0)
    np.testing.assert_array_equal(again[3], y_te)
    assert not np.array_equal(D.train_test_split(X, y, 0.2, seed=1)[3], y_te)
    with pytest.raises(ValueError, match=r"train_test_split: X and y .*X.shape=\(50, 2\) and y.shape=\(49,\)"):
        D.train_test_split(X, y[:-1], seed=0)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60), batch_size=st.integers(1, 70), shuffle=st.booleans(),
    drop_last=st.booleans(), seed=st.integers(0, 10**6),
)
def test_batches_cover_every_example_once_per_epoch(n, batch_size, shuffle, drop_last, seed):
    X = np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 3))
    y = np.arange(n)
    out = list(D.batches(X, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last))
    seen = np.concatenate([yb for _, yb in out]) if out else np.zeros(0, np.int64)
    for xb, yb in out:
        np.testing.assert_array_equal(xb[:, 0], yb)  # pairs kept together
        assert len(yb) == batch_size or (not drop_last and yb is out[-1][1])
    if drop_last:
        assert len(seen) == n - n % batch_size and len(set(seen.tolist())) == len(seen)
    else:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_batches_shuffle_is_seeded_and_needs_a_seed():
    X, y = np.zeros((20, 1)), np.arange(20)
    order = lambda seed: np.concatenate([yb for _, yb in D.batches(X, y, 6, seed=seed)])
    np.testing.assert_array_equal(order(5), order(5))
    assert not np.array_equal(order(5), order(6))
    rng = np.random.default_rng(0)
    assert not np.array_equal(order(rng), order(rng))  # one Generator: a new order each epoch
    with pytest.raises(ValueError, match="batches: shuffle=True needs seed="):
        next(D.batches(X, y, 4))


def test_one_hot():
    np.testing.assert_array_equal(D.one_hot(np.array([2, 0, 1]), 4), np.eye(4)[[2, 0, 1]])
    assert D.one_hot(np.array([1, 3])).shape == (2, 4)
    assert D.one_hot(np.array([1, 3])).dtype == np.float64
    with pytest.raises(ValueError, match=r"one_hot: labels must lie in 0..2 for n_classes=3, got \[3\]"):
        D.one_hot(np.array([0, 3]), 3)


def test_standardise_fits_on_train_only():
    rng = np.random.default_rng(0)
    X_train = rng.normal(5.0, 3.0, size=(200, 3))
    X_train[:, 2] = 7.0  # a constant feature stays finite
    X_test = rng.normal(5.0, 3.0, size=(50, 3))
    Z_train, Z_test = D.standardise(X_train, X_test)
    np.testing.assert_allclose(Z_train[:, :2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z_train[:, :2].std(axis=0), 1.0, atol=1e-12)
    np.testing.assert_array_equal(Z_train[:, 2], 0.0)
    s = D.Standardiser().fit(X_train)
    np.testing.assert_allclose(Z_test, (X_test - s.mean) / s.std)
    np.testing.assert_allclose(s.inverse_transform(s.transform(X_test)), X_test)
    with pytest.raises(RuntimeError, match=r"Standardiser.transform: call fit\(X_train\) first"):
        D.Standardiser().transform(X_test)


# ---- text windows for next-character models (chapter 11) -----------------------------------


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 300), length=st.integers(1, 20), stride=st.one_of(st.none(), st.integers(1, 7)),
       seed=st.integers(0, 10**6))
def test_text_windows_targets_are_the_next_characters(n, length, stride, seed):
    codes = np.random.default_rng(seed).integers(0, 9, size=n)
    if n - 1 < length:
        with pytest.raises(ValueError, match=rf"text_windows: {n} codes give no window of length {length}"):
            D.text_windows(codes, length, stride=stride)
        return
    x, y = D.text_windows(codes, length, stride=stride)
    step = length if stride is None else stride
    assert x.dtype == y.dtype == np.int64 and x.shape == y.shape == ((n - 1 - length) // step + 1, length)
    for i in range(x.shape[0]):
        np.testing.assert_array_equal(x[i], codes[i * step: i * step + length])
        np.testing.assert_array_equal(y[i], codes[i * step + 1: i * step + length + 1])
    assert (x.shape[0] - 1) * step + length + 1 <= n < x.shape[0] * step + length + 1  # no window left out


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 400), length=st.integers(1, 12), batch=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_text_windows_streams_are_contiguous_and_lose_only_the_remainder(n, length, batch, seed):
    codes = np.random.default_rng(seed).integers(0, 5, size=n)
    per_stream = (n - 1) // batch
    if per_stream < length:
        with pytest.raises(ValueError, match=r"text_windows: .* fewer than one segment of length"):
            D.text_windows(codes, length, batch=batch)
        return
    x, y = D.text_windows(codes, length, batch=batch)
    n_seg = per_stream // length
    assert x.shape == y.shape == (n_seg, batch, length) and x.dtype == y.dtype == np.int64
    streams_x = x.transpose(1, 0, 2).reshape(batch, -1)   # stream b, its segments one after another
    streams_y = y.transpose(1, 0, 2).reshape(batch, -1)
    for b in range(batch):
        start = b * per_stream                             # each stream is one piece of the text
        np.testing.assert_array_equal(streams_x[b], codes[start: start + n_seg * length])
        np.testing.assert_array_equal(streams_y[b], codes[start + 1: start + n_seg * length + 1])
    # segment s + 1 continues segment s: its first input is the last target of segment s
    np.testing.assert_array_equal(x[1:, :, 0], y[:-1, :, -1])
    # what is dropped: fewer than `length` pairs per stream, fewer than `batch` at the end
    assert 0 <= per_stream - n_seg * length < length and 0 <= (n - 1) - batch * per_stream < batch
    # every pair that is kept appears once
    pos = (np.arange(batch)[:, None] * per_stream + np.arange(n_seg * length)[None, :]).ravel()
    assert len(np.unique(pos)) == batch * n_seg * length


def test_text_windows_on_the_shipped_text_and_its_errors():
    text = D.load_text(n_chars=1001)
    vocab = D.CharVocab(text)
    x, y = D.text_windows(vocab.encode(text), 25, batch=4)
    assert x.shape == (10, 4, 25)
    assert vocab.decode(x[0, 0]) + vocab.decode(x[1, 0])[:1] == text[:26]
    assert vocab.decode(y[0, 1]) == text[251:276]
    with pytest.raises(ValueError, match=r"text_windows: codes must be a 1-D array of integer .* shape \(2, 3\)"):
        D.text_windows(np.zeros((2, 3), dtype=np.int64), 2)
    with pytest.raises(ValueError, match=r"text_windows: codes must be .* dtype float64"):
        D.text_windows(np.zeros(10), 2)
    with pytest.raises(ValueError, match=r"text_windows: length must be an integer >= 1, got 0"):
        D.text_windows(np.arange(10), 0)
    with pytest.raises(ValueError, match=r"text_windows: batch must be an integer >= 1, got 0"):
        D.text_windows(np.arange(10), 2, batch=0)
    with pytest.raises(ValueError, match=r"text_windows: stride=3 cannot be combined with batch=2"):
        D.text_windows(np.arange(10), 2, batch=2, stride=3)
    with pytest.raises(ValueError, match=r"need at least batch \* length \+ 1 = 41 codes"):
        D.text_windows(np.arange(30), 10, batch=4)
