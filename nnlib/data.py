"""Small seeded data sets and the plumbing around them (splits, mini-batches, one-hot, scaling).

Every generator takes an explicit ``seed`` (an ``int`` or a ``np.random.Generator``) and never
touches numpy's global random state: the same seed gives identical arrays, a different seed
different ones. Inputs are ``float64``; class labels are ``int64``.

The two real data sets ship inside the package (``nnlib/datasets/``, see the README there) and
load without any network access:

- :func:`load_digits`: the 8x8 UCI handwritten digits (1,797 images, CC BY 4.0);
- :func:`load_text`: Volume I of Jane Austen's *Pride and Prejudice* (public domain), with
  :class:`CharVocab` to turn characters into integer codes and back, and :func:`text_windows`
  to cut the codes into (input, next character) windows or into contiguous streams of segments.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from .init import as_generator

__all__ = [
    "seeded_generator",
    "spirals",
    "xor",
    "moons",
    "linear_regression",
    "adding_problem",
    "delayed_recall",
    "load_digits",
    "load_text",
    "CharVocab",
    "text_windows",
    "train_test_split",
    "batches",
    "one_hot",
    "Standardiser",
    "standardise",
]

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"

Seed = int | np.random.Generator


def seeded_generator(seed: Seed, where: str = "seeded_generator") -> np.random.Generator:
    """Turn an int seed or a ``np.random.Generator`` into a Generator; ``None`` is refused (unlike
    ``nnlib.init.as_generator``'s default), so every data set and gradient-free run can be repeated."""
    return as_generator(seed, where, allow_none=False)


def _check_int(value: int, name: str, where: str, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_noise(noise: float, where: str) -> float:
    noise = float(noise)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"{where}: noise must be a finite number >= 0, got {noise!r}")
    return noise


# --------------------------------------------------------------------------------------------
# Synthetic classification and regression sets
# --------------------------------------------------------------------------------------------


def spirals(
    n_per_class: int, n_classes: int = 3, noise: float = 0.2, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved 2-D spirals, one arm per class (the CS231n toy set).

    Arm ``k`` has radii evenly spaced in [0, 1] and angles evenly spaced over
    [4k, 4(k+1)] radians plus Gaussian noise of standard deviation ``noise`` (in radians).
    Not linearly separable for ``n_classes >= 2``: a hidden layer is needed.

    Returns ``X`` of shape ``(n_per_class * n_classes, 2)`` (float64) and ``y`` of shape
    ``(n_per_class * n_classes,)`` (int64, values ``0 .. n_classes-1``), ordered by class.
    """
    where = "spirals"
    n_per_class = _check_int(n_per_class, "n_per_class", where, 1)
    n_classes = _check_int(n_classes, "n_classes", where, 1)
    noise = _check_noise(noise, where)
    rng = seeded_generator(seed, where)
    X = np.empty((n_per_class * n_classes, 2), dtype=np.float64)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    radius = np.linspace(0.0, 1.0, n_per_class)
    for k in range(n_classes):
        theta = np.linspace(4.0 * k, 4.0 * (k + 1), n_per_class)
        theta = theta + noise * rng.standard_normal(n_per_class)
        rows = slice(k * n_per_class, (k + 1) * n_per_class)
        X[rows, 0] = radius * np.sin(theta)
        X[rows, 1] = radius * np.cos(theta)
    return X, y


def xor(n: int, noise: float = 0.2, seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem as four Gaussian blobs centred on (+-1, +-1).

    A point's label is 1 when its blob's two coordinates have different signs, 0 otherwise
    (the XOR of the two sign bits). The ``n`` points are spread over the four blobs as evenly
    as possible (blob ``i % 4`` for point ``i``); ``noise`` is each blob's standard deviation.

    Returns ``X`` (n, 2) float64 and ``y`` (n,) int64 in {0, 1}.
    """
    where = "xor"
    n = _check_int(n, "n", where, 1)
    noise = _check_noise(noise, where)
    rng = seeded_generator(seed, where)
    centres = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    labels = np.array([0, 0, 1, 1], dtype=np.int64)
    blob = np.arange(n) % 4
    X = centres[blob] + noise * rng.standard_normal((n, 2))
    return X, labels[blob]


def moons(n: int, noise: float = 0.1, seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (same geometry as scikit-learn's ``make_moons``).

    Class 0 is the upper arc ``(cos t, sin t)``, class 1 the lower arc
    ``(1 - cos t, 0.5 - sin t)``, ``t`` evenly spaced in [0, pi]; class 0 gets ``n // 2``
    points (rounded up), class 1 the rest. Gaussian noise of standard deviation ``noise``
    is added to both coordinates. Ordered by class.

    Returns ``X`` (n, 2) float64 and ``y`` (n,) int64 in {0, 1}.
    """
    where = "moons"
    n = _check_int(n, "n", where, 2)
    noise = _check_noise(noise, where)
    rng = seeded_generator(seed, where)
    n_upper = (n + 1) // 2
    n_lower = n - n_upper
    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n_lower)
    X = np.concatenate(
        [
            np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1),
            np.stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1),
        ]
    )
    X = X + noise * rng.standard_normal(X.shape)
    y = np.concatenate([np.zeros(n_upper, np.int64), np.ones(n_lower, np.int64)])
    return X, y


def linear_regression(
    n: int, n_features: int = 1, noise: float = 0.1, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Data from a known linear model: ``y = X @ w + b + noise * N(0, 1)``.

    ``X`` has independent standard normal entries; the true weights ``w`` and bias ``b`` are
    standard normal draws too. With ``noise = 0`` the least-squares solution recovers ``w``
    and ``b`` exactly (up to rounding), which is what chapter 05 checks.

    Returns ``(X, y, w, b)``: ``X`` (n, n_features) float64, ``y`` (n,) float64,
    ``w`` (n_features,) float64 and ``b`` a Python float.
    """
    where = "linear_regression"
    n = _check_int(n, "n", where, 1)
    n_features = _check_int(n_features, "n_features", where, 1)
    noise = _check_noise(noise, where)
    rng = seeded_generator(seed, where)
    w = rng.standard_normal(n_features)
    b = float(rng.standard_normal())
    X = rng.standard_normal((n, n_features))
    y = X @ w + b + noise * rng.standard_normal(n)
    return X, y, w, b


# --------------------------------------------------------------------------------------------
# Sequence tasks (chapter 11)
# --------------------------------------------------------------------------------------------


def adding_problem(n: int, length: int, seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber, 1997), in its common modern form.

    Each sequence has ``length`` steps; step ``t`` carries two inputs: a value drawn
    uniformly from [0, 1) and a marker in {0, 1}. Exactly two steps are marked, one chosen
    uniformly from the first half (``t < length // 2``) and one from the second half, so the
    first marked value lies between ``length - length // 2`` and ``length - 1`` steps before
    the last step: the model must remember it for a long time. The target is the sum of the
    two marked values.

    The 1997 paper placed the markers slightly differently and scaled the target to
    ``0.5 + (v1 + v2) / 4``; the first-half/second-half version with the plain sum is the one
    used by later work (e.g. Le et al., 2015; Arjovsky et al., 2016). A model that always
    predicts 1 (the target's mean) has mean squared error 1/6 ~ 0.167: that is the
    "learned nothing" baseline.

    Returns ``X`` of shape ``(n, length, 2)`` float64 (``X[..., 0]`` values,
    ``X[..., 1]`` markers) and the targets ``y`` of shape ``(n,)`` float64.
    """
    where = "adding_problem"
    n = _check_int(n, "n", where, 1)
    length = _check_int(length, "length", where, 2)
    rng = seeded_generator(seed, where)
    half = length // 2
    values = rng.random((n, length))
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=-1)
    y = values[rows, first] + values[rows, second]
    return X, y


def delayed_recall(
    n: int, length: int, delay: int, n_symbols: int = 4, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Delayed recall: after reading a sequence, name the symbol seen ``delay`` steps before the end.

    Each sequence is ``length`` symbols drawn independently and uniformly from
    ``0 .. n_symbols-1``, given one-hot. The label is the symbol at position
    ``length - 1 - delay`` (so ``delay = 0`` asks for the last symbol, ``delay = 1`` the one
    before it, and so on). The answer is read after the last step.

    Why a short memory is exactly at chance: the symbols are independent, so the symbols at
    positions ``length - 1 - delay + 1 .. length - 1`` (the last ``delay`` steps) carry no
    information about the label. A model that, at the last step, knows only the inputs of
    the last ``k`` steps for some ``k <= delay`` (i.e. it cannot carry information over
    ``delay`` or more steps) can do no better than guessing: expected accuracy
    ``1 / n_symbols``. Seeing ``k = delay + 1`` steps back (carrying the symbol ``delay``
    steps) is enough for 100 %. So with delay L, truncated BPTT with truncation length
    ``k <= L`` gives a network no gradient signal to store the symbol, and accuracy stays at
    chance unless the state happens to keep it. The symbols before the target are
    distractors that a network must learn to ignore.

    Returns ``X`` of shape ``(n, length, n_symbols)`` float64 (one-hot rows) and ``y`` of
    shape ``(n,)`` int64 in ``0 .. n_symbols-1``.
    """
    where = "delayed_recall"
    n = _check_int(n, "n", where, 1)
    delay = _check_int(delay, "delay", where, 0)
    length = _check_int(length, "length", where, 1)
    n_symbols = _check_int(n_symbols, "n_symbols", where, 2)
    if length <= delay:
        raise ValueError(
            f"delayed_recall: length must exceed delay (the recalled symbol is at position "
            f"length - 1 - delay), got length={length}, delay={delay}; use length >= {delay + 1}"
        )
    rng = seeded_generator(seed, where)
    symbols = rng.integers(0, n_symbols, size=(n, length))
    X = np.eye(n_symbols, dtype=np.float64)[symbols]
    y = symbols[:, length - 1 - delay].astype(np.int64)
    return X, y


# --------------------------------------------------------------------------------------------
# Shipped data sets
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _digits_raw() -> np.ndarray:
    path = DATASETS_DIR / "digits.csv.gz"
    with gzip.open(path, "rt", encoding="ascii") as fh:
        data = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    data.setflags(write=False)
    return data


def load_digits(scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits: 1,797 images of the digits 0-9 (UCI, Alpaydin & Kaynak).

    Each image is 64 pixel counts in 0..16 (the number of ink pixels in a 4x4 block of a
    32x32 bitmap), flattened row by row; ``X[i].reshape(8, 8)`` shows it. The file ships with
    nnlib (``nnlib/datasets/digits.csv.gz``; origin and licence, CC BY 4.0, in the README
    beside it). Classes are nearly balanced (174 to 183 images each). The rows are in the
    file's order, not shuffled: split with :func:`train_test_split`.

    ``scale=True`` divides the pixels by 16, giving values in [0, 1].

    Returns ``X`` (1797, 64) float64 and ``y`` (1797,) int64 in 0..9 (fresh copies).
    """
    data = _digits_raw()
    X = np.array(data[:, :64], dtype=np.float64)
    y = data[:, 64].astype(np.int64)
    if scale:
        X /= 16.0
    return X, y


TEXT_FILE = "pride_and_prejudice_vol1.txt.gz"


def load_text(n_chars: int | None = None) -> str:
    """Volume I (chapters 1-23) of Jane Austen's *Pride and Prejudice*, 231,267 characters.

    A public-domain English novel (first published 1813) for character-level models; plain
    ASCII, 74 distinct characters, line breaks as in the source edition, ``_underscores_``
    marking italics. The file ships with nnlib (``nnlib/datasets/``); the README beside it
    says where it came from.

    ``n_chars`` returns only the first ``n_chars`` characters (handy for quick runs).
    """
    with gzip.open(DATASETS_DIR / TEXT_FILE, "rt", encoding="utf-8") as fh:
        text = fh.read()
    if n_chars is not None:
        n_chars = _check_int(n_chars, "n_chars", "load_text", 0)
        text = text[:n_chars]
    return text


class CharVocab:
    """A character vocabulary: characters <-> integer codes ``0 .. len(vocab)-1``.

    Codes are assigned in sorted character order, so the same text always gives the same
    codes. ``encode`` raises on a character the vocabulary has never seen, naming it.

    >>> vocab = CharVocab("hello")
    >>> vocab.encode("hell")
    array([1, 0, 2, 2])
    >>> vocab.decode([1, 0, 2, 2, 3])
    'hello'
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError(f"CharVocab: needs a non-empty str to collect characters from, got {text!r:.60}")
        self.chars: list[str] = sorted(set(text))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}
        self.itos: dict[int, str] = dict(enumerate(self.chars))

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters: {''.join(self.chars)!r})"

    def encode(self, text: str) -> np.ndarray:
        """The codes of ``text`` as an int64 array of shape ``(len(text),)``."""
        try:
            return np.fromiter((self.stoi[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as err:
            raise ValueError(
                f"CharVocab.encode: character {err.args[0]!r} is not in the vocabulary; "
                f"valid characters are {''.join(self.chars)!r}"
            ) from None

    def decode(self, codes: np.ndarray | list[int]) -> str:
        """The text whose codes are ``codes`` (any 1-D sequence of ints in ``0 .. len-1``)."""
        codes = np.asarray(codes)
        if codes.ndim != 1 or (codes.size and not np.issubdtype(codes.dtype, np.integer)):
            raise ValueError(
                f"CharVocab.decode: codes must be a 1-D sequence of integers, got shape "
                f"{codes.shape} and dtype {codes.dtype}"
            )
        bad = codes[(codes < 0) | (codes >= len(self))]
        if bad.size:
            raise ValueError(
                f"CharVocab.decode: codes must lie in 0..{len(self) - 1}, got {bad[:5].tolist()}"
            )
        return "".join(self.chars[i] for i in codes.tolist())


def text_windows(
    codes: np.ndarray, length: int, *, batch: int | None = None, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a text's codes into (inputs, targets) windows for a next-character model.

    The targets are the inputs shifted by one character: ``targets[..., j]`` is the character
    that follows ``inputs[..., j]`` in ``codes``. Both are int64 arrays of the same shape.

    - Without ``batch``: windows of ``length`` characters starting at ``0, stride, 2 stride, ...``
      (``stride`` defaults to ``length``: windows side by side, no overlap), as many as fit with
      their targets: ``n_windows = (len(codes) - 1 - length) // stride + 1``. Shape
      ``(n_windows, length)``.
    - With ``batch=B`` (for truncated BPTT with the state carried from one segment to the next):
      the ``len(codes) - 1`` (input, target) pairs are cut into ``B`` contiguous streams of
      ``S = (len(codes) - 1) // B`` pairs each, stream ``b`` starting at character ``b * S``, and
      each stream into ``n_segments = S // length`` consecutive segments. Shape
      ``(n_segments, B, length)``: segment ``s + 1`` of stream ``b`` continues segment ``s``
      exactly (``inputs[s + 1, b, 0]`` is the character after ``inputs[s, b, -1]``), so the last
      hidden state of segment ``s`` is the right initial state for segment ``s + 1``. What is
      dropped is the remainder: the last ``S - n_segments * length`` pairs of each stream (fewer
      than ``length``) and the last ``(len(codes) - 1) - B * S`` pairs of the text (fewer than
      ``B``). ``stride`` is not allowed with ``batch`` (segments never overlap). For
      ``nn.RNN``'s layout (T, N), take ``inputs[s].T``.

    Raises ``ValueError`` naming the bad argument when ``codes`` is not a 1-D integer array,
    when ``length``, ``batch`` or ``stride`` is not a positive integer, or when the text is too
    short for a single window (or segment per stream).
    """
    where = "text_windows"
    codes = np.asarray(codes)
    if codes.ndim != 1 or (codes.size and not np.issubdtype(codes.dtype, np.integer)):
        raise ValueError(
            f"{where}: codes must be a 1-D array of integer character codes (CharVocab.encode), "
            f"got shape {codes.shape} and dtype {codes.dtype}"
        )
    codes = codes.astype(np.int64, copy=False)
    length = _check_int(length, "length", where, 1)
    pairs = codes.shape[0] - 1
    if batch is None:
        stride = length if stride is None else _check_int(stride, "stride", where, 1)
        if pairs < length:
            raise ValueError(
                f"{where}: {codes.shape[0]} codes give no window of length {length} "
                f"(a window and its targets need at least length + 1 = {length + 1} codes)"
            )
        starts = np.arange(0, pairs - length + 1, stride)
        idx = starts[:, None] + np.arange(length)[None, :]
        return codes[idx], codes[idx + 1]
    batch = _check_int(batch, "batch", where, 1)
    if stride is not None:
        raise ValueError(
            f"{where}: stride={stride!r} cannot be combined with batch={batch}: with batch the "
            f"segments of each stream follow one another without overlap; leave stride=None"
        )
    per_stream = pairs // batch if pairs > 0 else 0
    n_segments = per_stream // length
    if n_segments < 1:
        raise ValueError(
            f"{where}: {codes.shape[0]} codes cut into batch={batch} streams give "
            f"{per_stream} (input, target) pairs per stream, fewer than one segment of "
            f"length={length}; need at least batch * length + 1 = {batch * length + 1} codes"
        )
    idx = (np.arange(batch)[None, :, None] * per_stream
           + np.arange(n_segments)[:, None, None] * length
           + np.arange(length)[None, None, :])
    return codes[idx], codes[idx + 1]


# --------------------------------------------------------------------------------------------
# Splits, mini-batches, encodings, scaling
# --------------------------------------------------------------------------------------------


def _check_xy(X: np.ndarray, y: np.ndarray | None, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError(f"{where}: X must have a first (example) axis, got a scalar")
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"{where}: X and y must have the same number of examples (first axis), got "
                f"X.shape={X.shape} and y.shape={y.shape}"
            )
    return X, y


def train_test_split(
    X: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the examples and split them into a training and a test part.

    The test part has ``round(test_fraction * n)`` examples (at least 1 and at most
    ``n - 1``). Returns ``X_train, X_test, y_train, y_test`` (the order scikit-learn uses).
    """
    X, y = _check_xy(X, y, "train_test_split")
    n = X.shape[0]
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(
            f"train_test_split: test_fraction must lie strictly between 0 and 1, got {test_fraction!r}"
        )
    if n < 2:
        raise ValueError(f"train_test_split: needs at least 2 examples to split, got {n}")
    n_test = min(max(int(round(float(test_fraction) * n)), 1), n - 1)
    order = seeded_generator(seed, "train_test_split").permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


def batches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: Seed | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield mini-batches ``(xb, yb)`` covering each example exactly once (one epoch).

    With ``shuffle=True`` the order is a random permutation drawn from ``seed`` (an int, or a
    ``np.random.Generator``: pass the same Generator every epoch to get a new order each
    epoch, reproducibly); ``shuffle=True`` without a seed is an error, because randomness
    never comes from global state. With ``shuffle=False`` the examples come in order.
    The last batch is smaller when ``batch_size`` does not divide the number of examples,
    unless ``drop_last=True`` drops it.
    """
    X, y = _check_xy(X, y, "batches")
    batch_size = _check_int(batch_size, "batch_size", "batches", 1)
    n = X.shape[0]
    if shuffle:
        if seed is None:
            raise ValueError(
                "batches: shuffle=True needs seed= (an int or a np.random.Generator); "
                "pass shuffle=False for the examples in order"
            )
        order = seeded_generator(seed, "batches").permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield X[idx], y[idx]


def one_hot(y: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """One-hot rows (float64, shape ``y.shape + (n_classes,)``) for integer labels ``y``.

    ``n_classes`` defaults to ``y.max() + 1``; every label must lie in ``0 .. n_classes-1``.
    """
    y = np.asarray(y)
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"one_hot: labels must be integers, got dtype {y.dtype}")
    if n_classes is None:
        if y.size == 0:
            raise ValueError("one_hot: cannot infer n_classes from an empty y; pass n_classes")
        n_classes = int(y.max()) + 1
    n_classes = _check_int(n_classes, "n_classes", "one_hot", 1)
    bad = y[(y < 0) | (y >= n_classes)]
    if bad.size:
        raise ValueError(
            f"one_hot: labels must lie in 0..{n_classes - 1} for n_classes={n_classes}, "
            f"got {np.unique(bad)[:5].tolist()}"
        )
    return np.eye(n_classes, dtype=np.float64)[y]


class Standardiser:
    """Per-feature standardisation ``(X - mean) / std`` with statistics fitted on one set.

    Fit on the training set only, then apply the same transform to the test set (fitting on
    the test set would leak it into training). Features with zero spread (e.g. a pixel that
    is always 0) get ``std = 1`` so they stay 0 instead of becoming NaN.

    >>> s = Standardiser().fit(X_train)          # doctest: +SKIP
    >>> X_train_s, X_test_s = s.transform(X_train), s.transform(X_test)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "Standardiser":
        """Compute the mean and standard deviation of each feature (over axis 0)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim < 1 or X.shape[0] < 1:
            raise ValueError(f"Standardiser.fit: needs at least one example, got shape {X.shape}")
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def _fitted(self, where: str) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.std is None:
            raise RuntimeError(f"Standardiser.{where}: call fit(X_train) first")
        return self.mean, self.std

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(X - mean) / std`` with the fitted statistics (a new float64 array)."""
        mean, std = self._fitted("transform")
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1:] != mean.shape:
            raise ValueError(
                f"Standardiser.transform: X has feature shape {X.shape[1:]} but the fit saw "
                f"{mean.shape}"
            )
        return (X - mean) / std

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`: ``Z * std + mean``."""
        mean, std = self._fitted("inverse_transform")
        return np.asarray(Z, dtype=np.float64) * std + mean


def standardise(X_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Standardise ``X_train`` and any further arrays with the training set's statistics.

    ``X_tr, X_te = standardise(X_train, X_test)``. For the statistics themselves, use
    :class:`Standardiser`.
    """
    s = Standardiser().fit(X_train)
    return tuple(s.transform(X) for X in (X_train, *others))
