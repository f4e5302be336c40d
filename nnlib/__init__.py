"""nnlib: the small numpy library of "Backpropagation, question by question".

A Tensor with reverse-mode autodiff (nnlib.tensor), functions and losses (nnlib.functional),
modules (nnlib.nn), initialisers (nnlib.init), optimisers (nnlib.optim), gradient checking
(nnlib.gradcheck), gradient-free optimisers (nnlib.gradfree), data sets (nnlib.data) and the
plots chapters share (nnlib.plot, imported on demand so that nnlib itself never loads matplotlib).
Names follow PyTorch wherever a learner would look for them.
"""
from .tensor import Tensor, cat, concatenate, detect_anomaly, is_grad_enabled, no_grad, stack, tensor, where
from . import functional, init, nn, optim

__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "detect_anomaly", "concatenate", "cat", "stack",
           "where", "functional", "init", "nn", "optim"]
__version__ = "0.1.0"
