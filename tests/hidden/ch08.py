"""Hidden tests of chapter 08: tanh versus sigmoid.

Every reference answer is computed here in plain numpy from the chapter's formulas, independently
of nnlib and of the learner's code: the derivatives from exp(-|x|) (stable for every x), the
gradient norms from a backward pass written out below, the reparameterised sigmoid network by
running it here, in the grader, on the learner's returned weights (any sigmoid network that computes
the tanh network's function passes; the tanh network's own arrays must come back unchanged), and
the binary cross-entropy from softplus. Layouts are those of the exercises' docstrings: one example per row,
weights (out, in) as nn.Linear.weight.
"""
from __future__ import annotations

import numpy as np

from course.hidden import Exercise, InvalidOutput, diagnose_value, multiple_choice

# --------------------------------------------------------------------------------------------
# helpers (grader process only)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_prime(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))                  # sigma'(x) = e^-|x| / (1 + e^-|x|)^2, even in x
    return e / (1.0 + e) ** 2


def _tanh_prime(x: np.ndarray) -> np.ndarray:
    e = np.exp(-2.0 * np.abs(x))            # 1 / cosh^2 x = 4 e^-2|x| / (1 + e^-2|x|)^2
    return 4.0 * e / (1.0 + e) ** 2


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _flat(weights, biases, **other) -> dict:
    """A network as one case: the grader ships arrays by name (not lists of arrays), so layer l's
    weight and bias travel as "W{l}" and "b{l}", and "L" is the number of layers."""
    case = dict(other, L=len(weights))
    for l, (W, b) in enumerate(zip(weights, biases)):
        case[f"W{l}"], case[f"b{l}"] = W, b
    return case


def _layers(inp) -> tuple[list, list]:
    return [inp[f"W{l}"] for l in range(inp["L"])], [inp[f"b{l}"] for l in range(inp["L"])]


# --------------------------------------------------------------------------------------------
# ch08.activation_derivatives


def _ad_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        {"x": rng.normal(size=7) * 2.0},
        {"x": rng.normal(size=(3, 4)) * 3.0},                                 # another shape
        {"x": np.array([0.0, 1e-8, -1e-8, 0.5, -0.5])},                        # at the centre
        {"x": np.array([8.0, -8.0, 12.0, -12.0, 15.0, -15.0])},                # small derivatives, still
                                                                               # above atol: a numerical
                                                                               # derivative fails here
        {"x": np.concatenate([rng.uniform(20, 40, 3), -rng.uniform(20, 40, 3),
                              [1e3, -1e3, 1e4, -1e4, 710.0, -710.0]])},        # large: no overflow
        {"x": (rng.normal(size=6) * 4.0).astype(np.float32)},                  # float32 in, float64 out
        {"x": np.array(rng.normal())},                                         # 0-d
    ]


def _ad_call(ns, inp):
    import numpy as np
    out = ns["activation_derivatives"](inp["x"].copy())
    if not isinstance(out, dict):
        raise TypeError(f"activation_derivatives must return a dict with keys 'sigmoid' and 'tanh', "
                        f"got a {type(out).__name__}")
    return {str(k): np.asarray(v) for k, v in out.items()}


def _x64(inp):
    return np.asarray(inp["x"], dtype=np.float64)


def _ad_expected(inp):
    x = _x64(inp)
    return {"sigmoid": _sigmoid_prime(x), "tanh": _tanh_prime(x)}


def _ad_sigmoid_itself(inp):
    return {"sigmoid": _sigmoid(_x64(inp))}


def _ad_sigmoid_tanh_form(inp):
    return {"sigmoid": 1.0 - _sigmoid(_x64(inp)) ** 2}


def _ad_sigmoid_no_inner(inp):
    x = _x64(inp)
    return {"sigmoid": 0.5 * _tanh_prime(0.5 * x)}


def _ad_sigmoid_unhalved(inp):
    x = _x64(inp)
    return {"sigmoid": 0.25 * _tanh_prime(x)}        # s = (1 + tanh x)/2, then s (1 - s)


def _ad_sigmoid_plus(inp):
    s = _sigmoid(_x64(inp))
    return {"sigmoid": s * (1.0 + s)}


def _ad_tanh_at_input(inp):
    return {"tanh": 1.0 - _x64(inp) ** 2}


def _ad_tanh_no_square(inp):
    return {"tanh": 1.0 - np.tanh(_x64(inp))}


def _ad_tanh_sigmoid_form(inp):
    t = np.tanh(_x64(inp))
    return {"tanh": t * (1.0 - t)}


def _ad_tanh_one_chain_factor(inp):
    return {"tanh": 2.0 * _sigmoid_prime(2.0 * _x64(inp))}


# --------------------------------------------------------------------------------------------
# ch08.layer_grad_norms


def _mlp(rng, n_batch, sizes, activation, w_scale=1.0, x_scale=1.0):
    weights = [rng.normal(size=(n_out, n_in)) * w_scale / np.sqrt(n_in)
               for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=n_out) * 0.3 for n_out in sizes[1:]]
    return _flat(weights, biases, X=rng.normal(size=(n_batch, sizes[0])) * x_scale,
                 labels=rng.integers(0, sizes[-1], size=n_batch), activation=activation)


def _ln_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        _mlp(rng, 7, (5, 4, 6, 3), "sigmoid", w_scale=2.0),
        _mlp(rng, 9, (6, 8, 5, 7, 4), "tanh", w_scale=1.5),
        _mlp(rng, 6, (4, 4, 4, 4, 4), "sigmoid", w_scale=3.0),             # square: a missing transpose runs
        _mlp(rng, 1, (3, 5, 2), "tanh"),                                   # a batch of one
        _mlp(rng, 40, (8, 6, 6, 6, 6, 5), "tanh", w_scale=5.0, x_scale=3.0),   # saturated units, deep
        _mlp(rng, 12, (6, 3), "sigmoid"),                                  # no hidden layer (L = 1)
        _mlp(rng, 25, (10, 7, 7, 7, 10), "sigmoid", w_scale=1.0),
    ]


def _ln_call(ns, inp):
    import numpy as np
    weights = [inp[f"W{l}"].copy() for l in range(inp["L"])]
    biases = [inp[f"b{l}"].copy() for l in range(inp["L"])]
    out = ns["layer_grad_norms"](inp["X"].copy(), inp["labels"].copy(), weights, biases, inp["activation"])
    return {"norms": np.asarray(out)}


def _ln_backward(inp, *, fprime="right", act=None, onehot=True, transpose=False):
    """Deltas and weight gradients of the mean cross-entropy; the knobs model the mistakes.

    fprime: "right" (f'(a)), "at_output" (f' of the activation's output), "none"."""
    X, labels = inp["X"], inp["labels"]
    Ws, bs = _layers(inp)
    act = act or inp["activation"]
    f = _sigmoid if act == "sigmoid" else np.tanh
    fp = _sigmoid_prime if act == "sigmoid" else _tanh_prime
    hs, As = [X], []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        a = hs[-1] @ W.T + b
        As.append(a)
        hs.append(f(a) if l < len(Ws) - 1 else a)
    z = hs[-1] - hs[-1].max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    t = np.eye(p.shape[1])[labels] if onehot else 0.0
    n = X.shape[0]
    d = (p - t) / n
    deltas, grads, gbias = [None] * len(Ws), [None] * len(Ws), [None] * len(Ws)
    for l in range(len(Ws) - 1, -1, -1):
        deltas[l], grads[l], gbias[l] = d, d.T @ hs[l], d.sum(axis=0)
        if l > 0:
            back = d @ (Ws[l].T if transpose else Ws[l])
            if fprime == "right":
                d = back * fp(As[l - 1])
            elif fprime == "at_output":
                d = back * fp(hs[l])
            else:
                d = back
    return deltas, grads, gbias


def _norms(mats):
    return np.array([np.sqrt(np.sum(m ** 2)) for m in mats])


def _ln_expected(inp):
    return {"norms": _norms(_ln_backward(inp)[1])}


def _ln_other_activation(inp):
    if inp["L"] == 1:
        raise ValueError("no hidden layer: the activation does not matter")
    other = "tanh" if inp["activation"] == "sigmoid" else "sigmoid"
    return {"norms": _norms(_ln_backward(inp, act=other)[1])}


def _ln_at_output(inp):
    if inp["L"] == 1:
        raise ValueError("no hidden layer")
    return {"norms": _norms(_ln_backward(inp, fprime="at_output")[1])}


def _ln_no_derivative(inp):
    if inp["L"] == 1:
        raise ValueError("no hidden layer")
    return {"norms": _norms(_ln_backward(inp, fprime="none")[1])}


def _ln_reversed(inp):
    if inp["L"] == 1:
        raise ValueError("one layer: reversing changes nothing")
    return {"norms": _norms(_ln_backward(inp)[1])[::-1]}


def _ln_squared(inp):
    return {"norms": _norms(_ln_backward(inp)[1]) ** 2}


def _ln_spectral(inp):
    return {"norms": np.array([np.linalg.norm(g, 2) for g in _ln_backward(inp)[1]])}


def _ln_delta_norms(inp):
    return {"norms": _norms(_ln_backward(inp)[0])}


def _ln_with_bias(inp):
    _, g, gb = _ln_backward(inp)
    return {"norms": np.sqrt(_norms(g) ** 2 + _norms(gb) ** 2)}


def _ln_no_onehot(inp):
    return {"norms": _norms(_ln_backward(inp, onehot=False)[1])}


def _ln_transposed(inp):
    if any(W.shape[0] != W.shape[1] for W in _layers(inp)[0][1:]):
        raise ValueError("shapes do not allow it")
    return {"norms": _norms(_ln_backward(inp, transpose=True)[1])}


# --------------------------------------------------------------------------------------------
# ch08.tanh_to_sigmoid: the sigmoid network built from the learner's weights is run here


def _tanh_net(rng, sizes, w_scale=1.0):
    weights = [rng.normal(size=(n_out, n_in)) * w_scale / np.sqrt(n_in) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=n_out) * 0.5 for n_out in sizes[1:]]
    return _flat(weights, biases)


def _ts_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    for sizes, w_scale in (((4, 5, 3), 1.0),                    # one hidden layer
                           ((6, 5, 7, 4, 2), 1.5),              # three hidden layers, non-square
                           ((3, 3, 3, 3), 1.0),                 # square
                           ((5, 6, 6, 6, 6, 1), 4.0),           # deep, saturated, one output
                           ((4, 3), 1.0)):                      # no hidden layer (L = 1)
        case = _tanh_net(rng, sizes, w_scale)
        case["X"] = rng.normal(size=(9, sizes[0])) * 2.0        # the inputs the two networks are run on
        cases.append(case)
    return cases


def _ts_call(ns, inp):
    """Runs in the sandbox: only the learner's parameters come back (and the arrays the learner was
    given, as they are after the call); the sigmoid network is run in the grader (_ts_check), never
    here, where learner code could have patched numpy."""
    import numpy as np
    L = inp["L"]
    weights = [np.array(inp[f"W{l}"], copy=True) for l in range(L)]
    biases = [np.array(inp[f"b{l}"], copy=True) for l in range(L)]
    out = ns["tanh_to_sigmoid"](list(weights), list(biases))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("tanh_to_sigmoid must return a pair (weights, biases) of lists, got "
                        + (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                           else f"a {type(out).__name__}"))
    Ws, bs = list(out[0]), list(out[1])
    if len(Ws) != L or len(bs) != L:
        raise ValueError(f"tanh_to_sigmoid returned {len(Ws)} weights and {len(bs)} biases for a "
                         f"network of {L} layers")
    result = {}
    for l in range(L):
        result[f"W{l}"], result[f"b{l}"] = np.asarray(Ws[l]), np.asarray(bs[l])
        result[f"W{l}_given"], result[f"b{l}_given"] = weights[l], biases[l]
    return result


def _tanh_forward(weights, biases, X):
    h = X
    for l, (W, b) in enumerate(zip(weights, biases)):
        a = h @ W.T + b
        h = np.tanh(a) if l < len(weights) - 1 else a
    return h


def _sigmoid_forward(weights, biases, X):
    h = X
    for l, (W, b) in enumerate(zip(weights, biases)):
        a = h @ W.T + b
        h = _sigmoid(a) if l < len(weights) - 1 else a
    return h


def _ts_expected(inp):
    return {"z": _tanh_forward(*_layers(inp), inp["X"])}


def _ts_check(inp, got, want):
    """The learner's sigmoid network, run here on the case's inputs X, must give the tanh network's
    output; the tanh network's own arrays must come back unchanged."""
    L = inp["L"]
    for l in range(L):
        for name in (f"W{l}", f"b{l}"):
            if not np.array_equal(np.asarray(got[f"{name}_given"]), inp[name]):
                return (f"tanh_to_sigmoid changed the tanh network's {name} in place (layer {l}): "
                        "build new arrays (2.0 * W, b - W.sum(axis=1)) instead of writing into the "
                        "ones you were given (W *= 2), which the caller still needs")
    weights, biases = [], []
    for l in range(L):
        W, b = np.asarray(got[f"W{l}"]), np.asarray(got[f"b{l}"])
        if W.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
            raise InvalidOutput(f"layer {l}: expected arrays of numbers, got {W.dtype} and {b.dtype}")
        if W.shape != inp[f"W{l}"].shape or b.shape != inp[f"b{l}"].shape:
            return (f"layer {l}: returned weight {W.shape} and bias {b.shape}, expected "
                    f"{inp[f'W{l}'].shape} and {inp[f'b{l}'].shape} (the shapes of the tanh network's)")
        weights.append(W.astype(np.float64))
        biases.append(b.astype(np.float64))
    with np.errstate(all="ignore"):
        z = _sigmoid_forward(weights, biases, inp["X"])
    named = {}
    for name, fn in _TS_MISTAKES.items():
        try:
            named[name] = fn(inp)["z"]
        except Exception:              # a mistake that does not apply to this case
            continue
    msg = diagnose_value(z, want["z"], _TS_RTOL, _TS_ATOL, None, named)
    return None if msg is None else f"the sigmoid network with your weights: {msg}"


def _ts_mistake(inp, *, w_in=2.0, w_out=2.0, correct_bias=True, bias_sign=-1.0, first_in=1.0):
    """The sigmoid network's output for a map with the knobs below (defaults: the right map).
    Layer l's weight is multiplied by (w_in if fed by an activation else first_in) times (w_out if
    followed by one); the bias correction b - W 1 (bias_sign=-1) is dropped or flipped."""
    (Ws, bs), L = _layers(inp), inp["L"]
    new_W, new_b = [], []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        out = w_out if l < L - 1 else 1.0
        if l == 0:
            new_W.append(first_in * out * W)
            new_b.append(out * b)
        else:
            new_W.append(w_in * out * W)
            new_b.append(out * (b + (bias_sign * W.sum(axis=1) if correct_bias else 0.0)))
    return {"z": _sigmoid_forward(new_W, new_b, inp["X"])}


def _ts_guard(fn):
    def wrapped(inp):
        if inp["L"] == 1:
            raise ValueError("no hidden layer: every map leaves it unchanged")
        return fn(inp)
    return wrapped


def _ts_unchanged(inp):
    return {"z": _sigmoid_forward(*_layers(inp), inp["X"])}


def _ts_inverse(inp):
    """sigmoid_to_tanh applied instead: W/2, W/4 and b/2 + W 1/4 ..."""
    (Ws, bs), L = _layers(inp), inp["L"]
    new_W, new_b = [], []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        into_act, from_act = l < L - 1, l > 0
        scale = (0.5 if into_act else 1.0) * (0.5 if from_act else 1.0)
        new_W.append(W * scale)
        new_b.append((b + (W.sum(axis=1) / 2 if from_act else 0.0)) * (0.5 if into_act else 1.0))
    return {"z": _sigmoid_forward(new_W, new_b, inp["X"])}



def _ts_output_doubled(inp):
    """The map with the output layer's weight multiplied by 4 and its bias by 2, like a hidden layer."""
    (Ws, bs), L = _layers(inp), inp["L"]
    new_W, new_b = [], []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        if l == 0:
            new_W.append(2.0 * W)
            new_b.append(2.0 * b)
        else:
            new_W.append(4.0 * W)
            new_b.append(2.0 * (b - W.sum(axis=1)))
    return {"z": _sigmoid_forward(new_W, new_b, inp["X"])}


def _ts_single_doubled(inp):
    if inp["L"] != 1:
        raise ValueError("only for a network without hidden layers")
    return {"z": _sigmoid_forward([2.0 * inp["W0"]], [2.0 * inp["b0"]], inp["X"])}


_TS_RTOL, _TS_ATOL = 1e-7, 1e-9
_TS_MISTAKES = {
    "the tanh network's weights unchanged: with the same weights the sigmoid network computes "
    "another function": _ts_guard(_ts_unchanged),
    "a factor 2 on the hidden-to-hidden weights where 4 is needed: 2 because sigma(2a) replaces "
    "tanh(a), times 2 because h = 2s - 1": _ts_guard(lambda inp: _ts_mistake(inp, w_in=1.0)),
    "a forgotten bias correction: h = 2s - 1 turns W h + b into 2 W s + (b - W 1)":
        _ts_guard(lambda inp: _ts_mistake(inp, correct_bias=False)),
    "the bias correction with the wrong sign (b + W 1 where b - W 1 is needed)":
        _ts_guard(lambda inp: _ts_mistake(inp, bias_sign=1.0)),
    "the first layer's weights doubled twice: its input x is not a sigmoid activation, so only "
    "the factor 2 of sigma(2a) applies": _ts_guard(lambda inp: _ts_mistake(inp, first_in=2.0)),
    "the output layer scaled like a hidden layer (4 W, 2 (b - W 1)): the output has no "
    "activation, so only the factor 2 of h = 2s - 1 applies": _ts_guard(_ts_output_doubled),
    "the only layer of a network without hidden layers doubled: with no tanh to replace, its "
    "weights stay as they are": _ts_single_doubled,
    "the inverse map (from a sigmoid network to a tanh network) instead of tanh to sigmoid":
        _ts_guard(_ts_inverse),
}


# --------------------------------------------------------------------------------------------
# ch08.bce_with_logits


def _bce_inputs(rng: np.random.Generator) -> list[dict]:
    big = np.array([1e3, -1e3, 800.0, -800.0, 50.0, -50.0, 1e4, -1e4])
    return [
        {"z": rng.normal(size=8) * 2.0, "y": rng.integers(0, 2, size=8).astype(np.float64)},
        {"z": rng.normal(size=(5, 3)) * 3.0, "y": rng.integers(0, 2, size=(5, 3)).astype(np.float64)},  # multi-label
        {"z": np.array([0.7]), "y": np.array([1.0])},                                    # batch of one
        {"z": big, "y": np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])},  # confident, right and wrong
        {"z": rng.normal(size=6) * 2.0, "y": rng.uniform(0, 1, size=6)},                # soft targets
        {"z": (rng.normal(size=7) * 3.0).astype(np.float32), "y": rng.integers(0, 2, size=7).astype(np.float32)},
    ]


def _bce_call(ns, inp):
    import numpy as np
    out = ns["bce_with_logits"](inp["z"].copy(), inp["y"].copy())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("bce_with_logits must return a pair (loss, grad), got "
                        + (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                           else f"a {type(out).__name__}"))
    return {"loss": np.asarray(out[0]), "grad": np.asarray(out[1])}


def _zy(inp):
    return np.asarray(inp["z"], dtype=np.float64), np.asarray(inp["y"], dtype=np.float64)


def _bce_expected(inp):
    z, y = _zy(inp)
    return {"loss": np.asarray(np.mean(_softplus(z) - y * z)), "grad": (_sigmoid(z) - y) / z.size}


def _bce_mse_grad(inp):
    z, y = _zy(inp)
    p = _sigmoid(z)
    return {"grad": (p - y) * p * (1.0 - p) / z.size}


def _bce_sum_grad(inp):
    z, y = _zy(inp)
    if z.size == 1:
        raise ValueError("indistinguishable for one entry")
    return {"grad": _sigmoid(z) - y}


def _bce_rows_only(inp):
    z, y = _zy(inp)
    if z.ndim < 2:
        raise ValueError("only for 2-D logits")
    return {"grad": (_sigmoid(z) - y) / z.shape[0], "loss": np.asarray(np.sum(_softplus(z) - y * z) / z.shape[0])}


def _bce_no_target(inp):
    z, _ = _zy(inp)
    return {"grad": _sigmoid(z) / z.size}


def _bce_sum_loss(inp):
    z, y = _zy(inp)
    if z.size == 1:
        raise ValueError("indistinguishable for one entry")
    return {"loss": np.asarray(np.sum(_softplus(z) - y * z))}


def _bce_swapped(inp):
    z, y = _zy(inp)
    return {"loss": np.asarray(np.mean(_softplus(z) - (1.0 - y) * z)), "grad": (_sigmoid(z) - (1.0 - y)) / z.size}


# --------------------------------------------------------------------------------------------

EXERCISES = [
    Exercise(
        id="ch08.activation_derivatives", points=2, needs=("activation_derivatives",),
        inputs=_ad_inputs, call=_ad_call, expected=_ad_expected, rtol=1e-7, atol=1e-12, dtype="float64",
        mistakes={
            "sigmoid(x) itself where its derivative sigmoid(x) (1 - sigmoid(x)) was asked": _ad_sigmoid_itself,
            "tanh's form 1 - s**2 applied to the sigmoid (its derivative is s (1 - s))": _ad_sigmoid_tanh_form,
            "sigmoid(x) = (1 + tanh(x/2))/2 differentiated without the inner factor 1/2 of x/2 "
            "(twice the derivative)": _ad_sigmoid_no_inner,
            "sigmoid(x) written as (1 + tanh(x))/2, without halving x: sigma(x) = (1 + tanh(x/2))/2":
                _ad_sigmoid_unhalved,
            "s (1 + s) instead of s (1 - s)": _ad_sigmoid_plus,
            "1 - x**2: tanh's derivative is 1 - tanh(x)**2, the square of the output, not of the input":
                _ad_tanh_at_input,
            "1 - tanh(x) without the square": _ad_tanh_no_square,
            "the sigmoid's form t (1 - t) applied to tanh (its derivative is 1 - t**2)": _ad_tanh_sigmoid_form,
            "tanh(x) = 2 sigmoid(2x) - 1 differentiated with only one of its two factors 2 "
            "(tanh'(x) = 4 sigmoid'(2x))": _ad_tanh_one_chain_factor,
        },
    ),
    Exercise(
        id="ch08.layer_grad_norms", points=3, needs=("layer_grad_norms",),
        inputs=_ln_inputs, call=_ln_call, expected=_ln_expected, rtol=1e-6, atol=1e-12,
        batch_key="X", dtype="float64",
        mistakes={
            "the derivative of the other activation (sigmoid' where tanh' was needed, or the reverse)":
                _ln_other_activation,
            "the activation's derivative evaluated at its output h = f(a) instead of at the pre-activation a "
            "(for the sigmoid, f'(a) = h (1 - h), not sigmoid(h) (1 - sigmoid(h)))": _ln_at_output,
            "a forgotten activation derivative in the hidden deltas (delta @ W alone)": _ln_no_derivative,
            "the norms in the reverse order: the first entry must be the input layer's": _ln_reversed,
            "squared norms (the sum of squares without the square root)": _ln_squared,
            "the spectral norm (np.linalg.norm(g, 2), the largest singular value) instead of the "
            "Frobenius norm sqrt(sum of squares) (np.linalg.norm(g), or ord='fro')": _ln_spectral,
            "the norms of the deltas dE/da_l instead of the weight gradients dE/dW_l = delta_l^T h_(l-1)":
                _ln_delta_norms,
            "the bias gradient counted in the norm (only dE/dW_l was asked)": _ln_with_bias,
            "the softmax output p as the output delta, without subtracting the one-hot target (p - t)": _ln_no_onehot,
            "a missing transpose when carrying the deltas back (delta @ W.T instead of delta @ W)": _ln_transposed,
        },
    ),
    Exercise(
        id="ch08.tanh_to_sigmoid", points=3, needs=("tanh_to_sigmoid",),
        inputs=_ts_inputs, call=_ts_call, expected=_ts_expected, rtol=_TS_RTOL, atol=_TS_ATOL,
        check=_ts_check, mistakes=_TS_MISTAKES,
    ),
    Exercise(
        id="ch08.bce_with_logits", points=2, needs=("bce_with_logits",),
        inputs=_bce_inputs, call=_bce_call, expected=_bce_expected, rtol=1e-7, atol=1e-12,
        batch_key="z", dtype="float64",
        mistakes={
            "the gradient of a squared error through the sigmoid, (p - y) p (1 - p): cross-entropy's "
            "log cancels the sigmoid's derivative, leaving p - y": _bce_mse_grad,
            "the gradient of the sum over all entries, not of the mean (divide by z.size)": _bce_sum_grad,
            "a mean over the rows only (divided by N, not by the N*K entries)": _bce_rows_only,
            "the target left out of the gradient (p alone; d loss/dz = p - y)": _bce_no_target,
            "the loss summed over the entries, not averaged": _bce_sum_loss,
            "y and 1 - y swapped (the loss of the opposite label)": _bce_swapped,
        },
    ),
    multiple_choice(
        "ch08.same_function", 1, "ANSWER_SAME_FUNCTION", "b", "abcd",
        wrong={
            "a": "a sigmoid network can represent exactly the functions a tanh network can: section 3.4 "
                 "maps the weights of one onto the other, both ways",
            "c": "rounding is far too small to matter: the two networks of section 4.2 agree to 1e-12 "
                 "before the step, and the steps differ by amounts of order one",
            "d": "the sigmoid is differentiable everywhere, with derivative 1/4 at 0",
        },
    ),
]

