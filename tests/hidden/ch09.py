"""Hidden tests of chapter 09: inputs that are all positive, and the zig-zag.

Every reference answer is computed here in plain numpy from the chapter's formulas, independently
of nnlib and of the learner's code. Layouts are one example per row. Shapes include square
matrices (so that a transposed answer or a mean over the wrong axis has the right shape and wrong
values), a batch of one, large values and integer pixel counts.
"""
from __future__ import annotations

import numpy as np

from course.hidden import Exercise, multiple_choice

# --------------------------------------------------------------------------------------------
# helpers (grader process only)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# --------------------------------------------------------------------------------------------
# ch09.per_example_grads: G = delta[:, None] * X, d = delta, delta = sigmoid(X w + b) - t


def _peg_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    # all-positive inputs (the chapter's setting), binary and soft targets
    cases.append({"X": rng.uniform(0, 1, size=(5, 3)), "w": rng.normal(size=3), "b": 0.3,
                  "t": rng.integers(0, 2, size=5).astype(float)})
    cases.append({"X": rng.uniform(0, 2, size=(7, 4)), "w": rng.normal(size=4), "b": -0.7,
                  "t": rng.uniform(0, 1, size=7)})
    # square: G.T has the right shape, delta[None, :] * X broadcasts
    cases.append({"X": rng.uniform(0, 1, size=(4, 4)), "w": rng.normal(size=4), "b": 0.1,
                  "t": np.array([1.0, 0.0, 0.0, 1.0])})
    # a batch of one
    cases.append({"X": rng.uniform(0, 1, size=(1, 5)), "w": rng.normal(size=5), "b": 0.0,
                  "t": np.array([1.0])})
    # large pre-activations: saturated sigmoid (delta close to 0 or +-1)
    cases.append({"X": rng.uniform(0, 1, size=(6, 3)), "w": rng.normal(size=3) * 40.0, "b": 2.0,
                  "t": rng.integers(0, 2, size=6).astype(float)})
    # integer pixel counts 0..16, as load_digits returns them before scaling
    cases.append({"X": rng.integers(0, 17, size=(8, 6)), "w": rng.normal(size=6) * 0.05, "b": -0.5,
                  "t": rng.integers(0, 2, size=8).astype(float)})
    # inputs of both signs: the formula does not depend on positivity
    cases.append({"X": rng.normal(size=(5, 2)), "w": rng.normal(size=2), "b": 0.2,
                  "t": rng.integers(0, 2, size=5).astype(float)})
    return cases


def _peg_call(ns, inp):
    import numpy as np
    out = ns["per_example_grads"](inp["X"].copy(), inp["w"].copy(), float(inp["b"]), inp["t"].copy())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("per_example_grads must return a pair (G, d), got "
                        + (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                           else f"a {type(out).__name__}"))
    return {"G": np.asarray(out[0]), "d": np.asarray(out[1])}


def _peg_ref(inp, delta_fn=None, rows=True):
    X = np.asarray(inp["X"], dtype=np.float64)
    z = X @ inp["w"] + inp["b"]
    p = _sigmoid(z)
    delta = p - inp["t"] if delta_fn is None else delta_fn(z, p, inp["t"])
    return {"G": delta[:, None] * X if rows else X * delta[None, :], "d": delta}


def _peg_expected(inp):
    return _peg_ref(inp)


def _peg_columns(inp):
    if inp["X"].shape[0] != inp["X"].shape[1]:
        raise ValueError("shapes do not allow it")
    return _peg_ref(inp, rows=False)


def _peg_over_n(inp):
    ref = _peg_ref(inp)
    n = inp["X"].shape[0]
    if n == 1:
        raise ValueError("indistinguishable for a batch of one")
    return {"G": ref["G"] / n, "d": ref["d"] / n}


def _peg_no_bias(inp):
    if inp["b"] == 0.0:
        raise ValueError("indistinguishable when b = 0")
    return _peg_ref({**inp, "b": 0.0})


def _peg_batch_sum(inp):
    ref = _peg_ref(inp)
    return {"G": ref["G"].sum(axis=0), "d": ref["d"].sum()}


# --------------------------------------------------------------------------------------------
# ch09.same_sign_fraction: fraction of rows with no two entries of opposite sign


def _ssf_inputs(rng: np.random.Generator) -> list[dict]:
    values = np.array([-2.0, -0.5, 0.0, 0.0, 1.0, 3.0])
    cases = []
    G = rng.choice(values, size=(12, 4))
    G[0] = 0.0                                                 # a row of zeros shares a sign
    G[1] = [0.0, 1.0, 2.0, 0.0]                                # positive with zeros
    G[2] = [-1.0, 0.0, -3.0, -0.5]                             # negative with a zero
    G[3] = [1.0, -1.0, 0.0, 2.0]                               # mixed
    cases.append({"G": G})
    # per-example gradients delta * x with x > 0: every row shares a sign
    cases.append({"G": rng.normal(size=(8, 1)) * rng.uniform(0.1, 1, size=(8, 5))})
    # square, so that a fraction over columns has the right shape and a different value
    cases.append({"G": np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [-1.0, -2.0, -3.0, -4.0, -5.0],
                                 [1.0, 1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 1.0, 3.0, 1.0],
                                 [1.0, -1.0, 1.0, 1.0, 1.0]])})
    # one row, mixed; one column (always shares)
    cases.append({"G": np.array([[0.5, -0.25, 1.0]])})
    cases.append({"G": rng.normal(size=(6, 1))})
    # integer entries, huge and tiny magnitudes
    cases.append({"G": rng.integers(-3, 4, size=(10, 3))})
    cases.append({"G": np.array([[1e10, 1e-300, 3.0], [-1e-300, -1e12, 0.0], [1e-300, -1e-300, 0.0],
                                 [5e200, 2.0, 1e-12]])})
    # random signs in many columns (fraction near 0) next to centred data
    cases.append({"G": rng.normal(size=(20, 6))})
    return cases


def _ssf_call(ns, inp):
    import numpy as np
    out = ns["same_sign_fraction"](inp["G"].copy())
    arr = np.asarray(out)
    if arr.shape != ():
        return {"fraction": arr}                # a per-row answer: diagnosed as a wrong shape
    return {"fraction": float(arr)}


def _ssf_ref(inp):
    G = inp["G"]
    return float(np.mean(~((G > 0).any(axis=1) & (G < 0).any(axis=1))))


def _ssf_expected(inp):
    return {"fraction": _ssf_ref(inp)}


def _ssf_strict(inp):
    G = inp["G"]
    return {"fraction": float(np.mean((G > 0).all(axis=1) | (G < 0).all(axis=1)))}


def _ssf_positive_only(inp):
    G = inp["G"]
    return {"fraction": float(np.mean((G >= 0).all(axis=1)))}


def _ssf_columns(inp):
    G = inp["G"]
    return {"fraction": float(np.mean(~((G > 0).any(axis=0) & (G < 0).any(axis=0))))}


def _ssf_mixed(inp):
    return {"fraction": 1.0 - _ssf_ref(inp)}


def _ssf_all_rows(inp):
    return {"fraction": float(_ssf_ref(inp) == 1.0)}


# --------------------------------------------------------------------------------------------
# ch09.centre_inputs: (X_train - m, X_test - m), m = X_train.mean(axis=0)


def _ci_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        {"X_train": rng.uniform(0, 1, size=(6, 3)), "X_test": rng.uniform(0.5, 1.5, size=(2, 3))},
        # square train and test: a per-example (axis=1) mean has the right shape
        {"X_train": rng.uniform(0, 1, size=(4, 4)), "X_test": rng.uniform(0, 1, size=(4, 4))},
        # a training set of one example: its centred version is all zeros
        {"X_train": rng.uniform(0, 1, size=(1, 4)), "X_test": rng.uniform(0, 1, size=(3, 4))},
        # integer pixel counts, a test set of one
        {"X_train": rng.integers(0, 17, size=(20, 5)), "X_test": rng.integers(0, 17, size=(1, 5))},
        # large offsets with small fluctuations (prices, sensor readings)
        {"X_train": 1e6 + rng.normal(size=(9, 2)), "X_test": 1e6 + rng.normal(size=(5, 2))},
    ]


def _ci_call(ns, inp):
    import numpy as np
    X_train, X_test = inp["X_train"].copy(), inp["X_test"].copy()
    out = ns["centre_inputs"](X_train, X_test)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("centre_inputs must return a pair (X_train_centred, X_test_centred), got "
                        + (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                           else f"a {type(out).__name__}"))
    # the arguments as the learner's function left them: the grader compares them with the
    # inputs itself (a verdict computed here could be forged by the code under test)
    return {"train": np.asarray(out[0]), "test": np.asarray(out[1]), "X_train_after": X_train,
            "X_test_after": X_test}


def _ci_ref(inp, m_train=None, m_test=None, scale=None):
    tr = np.asarray(inp["X_train"], dtype=np.float64)
    te = np.asarray(inp["X_test"], dtype=np.float64)
    m_train = tr.mean(axis=0) if m_train is None else m_train
    m_test = m_train if m_test is None else m_test
    s = 1.0 if scale is None else scale
    return {"train": (tr - m_train) / s, "test": (te - m_test) / s}


def _ci_expected(inp):
    return {**_ci_ref(inp), "X_train_after": inp["X_train"], "X_test_after": inp["X_test"]}


def _ci_test_own_mean(inp):
    te = np.asarray(inp["X_test"], dtype=np.float64)
    return _ci_ref(inp, m_test=te.mean(axis=0))


def _ci_row_mean(inp):
    tr = np.asarray(inp["X_train"], dtype=np.float64)
    te = np.asarray(inp["X_test"], dtype=np.float64)
    return {"train": tr - tr.mean(axis=1, keepdims=True), "test": te - te.mean(axis=1, keepdims=True)}


def _ci_scalar_mean(inp):
    tr = np.asarray(inp["X_train"], dtype=np.float64)
    return _ci_ref(inp, m_train=np.full(tr.shape[1], tr.mean()))


def _ci_standardised(inp):
    tr = np.asarray(inp["X_train"], dtype=np.float64)
    s = tr.std(axis=0)
    if np.any(s == 0):
        raise ValueError("constant feature")
    return _ci_ref(inp, scale=s)


def _ci_test_untouched(inp):
    ref = _ci_ref(inp)
    return {"train": ref["train"], "test": np.asarray(inp["X_test"], dtype=np.float64)}


# --------------------------------------------------------------------------------------------
# ch09.second_moment_spectrum: eigvalsh(Sigma + mu mu^T)


def _sms_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    # uncorrelated inputs of equal variance (the closed form of section 3.4)
    cases.append({"mu": np.full(4, 0.5), "Sigma": 0.25 * np.eye(4)})
    # a full covariance from positive data
    A = rng.uniform(0, 1, size=(40, 5)) ** 2
    cases.append({"mu": A.mean(axis=0), "Sigma": np.cov(A.T, bias=True)})
    # one input
    cases.append({"mu": np.array([1.5]), "Sigma": np.array([[0.2]])})
    # centred inputs: mu = 0
    B = rng.normal(size=(30, 3))
    cases.append({"mu": np.zeros(3), "Sigma": np.cov(B.T, bias=True)})
    # a large mean over small fluctuations, and a zero-variance input
    C = rng.normal(size=(25, 3))
    C[:, 2] = 0.0
    cases.append({"mu": np.array([300.0, 200.0, 100.0]), "Sigma": np.cov(C.T, bias=True)})
    # a diagonal covariance with distinct variances
    cases.append({"mu": rng.uniform(0.2, 1, size=6), "Sigma": np.diag(rng.uniform(0.01, 1, size=6))})
    return cases


def _sms_call(ns, inp):
    import numpy as np
    return {"eigenvalues": np.asarray(ns["second_moment_spectrum"](inp["mu"].copy(), inp["Sigma"].copy()))}


def _sms_of(M):
    return {"eigenvalues": np.linalg.eigvalsh(0.5 * (M + M.T))}


def _sms_expected(inp):
    return _sms_of(inp["Sigma"] + np.outer(inp["mu"], inp["mu"]))


def _sms_sigma_only(inp):
    return _sms_of(inp["Sigma"])


def _sms_norm_on_diagonal(inp):
    mu = inp["mu"]
    return _sms_of(inp["Sigma"] + (mu @ mu) * np.eye(len(mu)))


def _sms_diag_only(inp):
    return _sms_of(inp["Sigma"] + np.diag(inp["mu"] ** 2))


def _sms_minus(inp):
    return _sms_of(inp["Sigma"] - np.outer(inp["mu"], inp["mu"]))


def _sms_outer_only(inp):
    return _sms_of(np.outer(inp["mu"], inp["mu"]))


def _sms_descending(inp):
    return {"eigenvalues": _sms_expected(inp)["eigenvalues"][::-1]}


def _sms_norm_not_squared(inp):
    mu = inp["mu"]
    n = np.linalg.norm(mu)
    if n == 0:
        raise ValueError("indistinguishable")
    return _sms_of(inp["Sigma"] + np.outer(mu, mu) / n)


# --------------------------------------------------------------------------------------------

EXERCISES = [
    Exercise(
        id="ch09.per_example_grads", points=2, needs=("per_example_grads",),
        inputs=_peg_inputs, call=_peg_call, expected=_peg_expected, rtol=1e-9, atol=1e-12,
        batch_key="X", dtype="float64",
        mistakes={
            "delta = t - p (the sign: dL/dz = sigmoid(z) - t)":
                lambda inp: _peg_ref(inp, lambda z, p, t: t - p),
            "the squared error's delta (p - t) p (1 - p): for the cross-entropy the sigmoid's "
            "derivative cancels, dL/dz = p - t":
                lambda inp: _peg_ref(inp, lambda z, p, t: (p - t) * p * (1 - p)),
            "the pre-activation z used where the output p = sigmoid(z) was needed (delta = z - t)":
                lambda inp: _peg_ref(inp, lambda z, p, t: z - t),
            "the target left out (delta = p)": lambda inp: _peg_ref(inp, lambda z, p, t: p),
            "the bias left out of z = w . x + b": _peg_no_bias,
            "delta multiplied into the columns (X * delta[None, :]) instead of the rows "
            "(delta[:, None] * X)": _peg_columns,
            "the gradients divided by the batch size (a mean was not asked: one gradient per "
            "example)": _peg_over_n,
            "the batch sum of the gradients where one row per example was asked": _peg_batch_sum,
        },
    ),
    Exercise(
        id="ch09.same_sign_fraction", points=1, needs=("same_sign_fraction",),
        inputs=_ssf_inputs, call=_ssf_call, expected=_ssf_expected, rtol=1e-9, atol=1e-12,
        batch_key="G",
        mistakes={
            "zeros counted as breaking a row (all > 0 or all < 0); a zero entry moves nothing and "
            "must not break it": _ssf_strict,
            "only the rows that are all non-negative counted (all-negative rows share a sign too)":
                _ssf_positive_only,
            "the columns tested instead of the rows (axis 0 instead of axis 1)": _ssf_columns,
            "the fraction of rows with mixed signs (1 minus the asked fraction)": _ssf_mixed,
            "one verdict for the whole array (1 if every row shares a sign, else 0) instead of "
            "a fraction of the rows": _ssf_all_rows,
        },
    ),
    Exercise(
        id="ch09.centre_inputs", points=2, needs=("centre_inputs",),
        inputs=_ci_inputs, call=_ci_call, expected=_ci_expected, rtol=1e-7, atol=1e-7,
        dtype="float64",
        exact={"X_train_after": "centre_inputs modified X_train in place: compute new arrays "
                                "(X_train - m) instead of subtracting into the argument",
               "X_test_after": "centre_inputs modified X_test in place: compute new arrays "
                               "(X_test - m) instead of subtracting into the argument"},
        mistakes={
            "the test set centred with its own mean (it must use the training set's statistics)":
                _ci_test_own_mean,
            "each example's own mean subtracted (axis=1) instead of each feature's mean over the "
            "training examples (axis=0)": _ci_row_mean,
            "one overall mean of X_train subtracted from every feature instead of a mean per "
            "feature": _ci_scalar_mean,
            "the inputs standardised (divided by the standard deviation) where only centring was "
            "asked": _ci_standardised,
            "the test set left uncentred": _ci_test_untouched,
        },
    ),
    Exercise(
        id="ch09.second_moment_spectrum", points=2, needs=("second_moment_spectrum",),
        inputs=_sms_inputs, call=_sms_call, expected=_sms_expected, rtol=1e-6, atol=1e-8,
        dtype="float64",
        mistakes={
            "the eigenvalues of Sigma alone (that is E[x x^T] only for centred inputs; the mean "
            "adds mu mu^T)": _sms_sigma_only,
            "|mu|^2 added to the diagonal (Sigma + |mu|^2 I) instead of the rank-one mu mu^T":
                _sms_norm_on_diagonal,
            "only the diagonal of mu mu^T added (Sigma + diag(mu^2))": _sms_diag_only,
            "Sigma - mu mu^T (E[x x^T] = Sigma + mu mu^T)": _sms_minus,
            "the eigenvalues of mu mu^T alone, without the covariance": _sms_outer_only,
            "the eigenvalues in descending order (ascending was asked, as eigvalsh returns them)":
                _sms_descending,
            "mu mu^T divided by |mu|": _sms_norm_not_squared,
        },
    ),
    multiple_choice(
        "ch09.batch_cost", 1, "ANSWER_BATCH_COST", "b", "abcd",
        wrong={
            "a": "the full-batch steps are not shorter at a given learning rate: on two weights "
                 "they took as many updates as one example at a time; it is the largest usable "
                 "learning rate that differs",
            "c": "a batch mean of delta_i x_i has mixed signs once the deltas do (section 3.3), "
                 "and the full-batch updates measured in section 5.2 did not share a sign",
            "d": "centring changes only the bias's optimum (the pixel weights' optimum w* is the "
                 "same, since w . (x - mu) + b' = w . x + b with b' = b + w . mu), and the count "
                 "of steps is set by the Hessian's eigenvalues and the learning rate they allow",
        },
    ),
]
