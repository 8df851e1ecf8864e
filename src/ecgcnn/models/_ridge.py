"""Closed-form ridge classifier with the regularisation chosen by exact leave-one-out on the fitting beats.

Shared by the random-kernel models (``hydra``, ``minirocket``): their features are fixed, so the only trained part
is a linear head, fitted in closed form as in the MiniRocket/Hydra papers (a ridge classifier over one-vs-rest
targets in {-1, +1}, alpha chosen by efficient leave-one-out cross-validation).

Model: ``f(x) = W x + b`` minimising ``sum_i s_i |y_i - W x_i - b|^2 + alpha |W|^2`` (intercept unpenalised,
``s_i`` optional sample weights). With ``n`` beats and ``p >= n`` features (the random-kernel case) it is solved in
the kernel (dual) form: after weighted centring, ``K = Xc Xc^T = Q diag(lam) Q^T`` gives every alpha's hat matrix
``H = u u^T + Q diag(lam / (lam + alpha)) Q^T`` (``u`` the normalised sqrt-weight vector, the intercept direction),
and the leave-one-out residuals ``(y_i - yhat_i) / (1 - H_ii)`` without refitting. With more beats than features
(a user's recordings cut into beats: 50,000 beats would make ``K`` 20 GB and its eigendecomposition hours) the same
hat matrix comes from the features' side, ``Xc^T Xc = V diag(lam) V^T`` and ``Z = Xc V``:
``H = u u^T + Z diag(1 / (lam + alpha)) Z^T``, with ``Z`` formed a block of beats at a time (memory ~ p^2, not n^2).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

DEFAULT_ALPHAS = tuple(np.logspace(-3, 5, 17))  # half-decade steps; the optimum is often near 1e3


def class_weights(labels: np.ndarray, num_classes: int, class_balance: float) -> np.ndarray:
    """Per-beat weights proportional to ``count_c ** -class_balance`` (mean 1); all ones for ``class_balance=0``."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    if class_balance == 0.0:
        return np.ones(labels.shape[0])
    weights = np.maximum(counts, 1.0)[labels] ** (-float(class_balance))
    return weights / weights.mean()


def one_vs_rest_targets(labels: np.ndarray, num_classes: int) -> np.ndarray:
    targets = -np.ones((labels.shape[0], num_classes))
    targets[np.arange(labels.shape[0]), labels] = 1.0
    return targets


def ridge_loo_fit(features: np.ndarray, labels: np.ndarray, num_classes: int, alphas=DEFAULT_ALPHAS,
                  sample_weight: np.ndarray | None = None) -> dict:
    """Fit the ridge classifier for every alpha, keep the one with the lowest (weighted) leave-one-out squared error.

    Returns ``weight`` (C, p), ``bias`` (C,), ``alpha``, the per-alpha ``loo_mse`` and ``loo_accuracy``, and the
    leave-one-out decision values ``loo_decision`` (n, C) at the chosen alpha (out-of-fold scores, e.g. for choosing
    decision offsets without touching held-out beats).
    """
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = x.shape[0]
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    y = one_vs_rest_targets(labels, num_classes)
    sqrt_s = np.sqrt(s)
    dual = n <= x.shape[1]
    x_mean = (s[:, None] * x).sum(0) / s.sum() if dual else (s @ x) / s.sum()  # (s @ x: no n x p temporary)
    y_mean = (s[:, None] * y).sum(0) / s.sum()
    yt = sqrt_s[:, None] * y  # S^1/2 y
    u = sqrt_s / np.linalg.norm(sqrt_s)  # intercept direction
    u_proj = np.outer(u, u @ yt)  # the (unpenalised) intercept's fitted part
    fitted, leverage, weight_of = (_dual if dual else _primal)(x, x_mean, sqrt_s, yt, u, u_proj, alphas)
    loo_mse, loo_acc, loo_scores = [], [], []
    for k in range(len(alphas)):
        resid = (yt - fitted[k]) / (1.0 - leverage[k])[:, None]  # transformed-space leave-one-out residuals
        loo_mse.append(float((resid ** 2).sum() / (n * num_classes)))
        loo_pred = y - resid / sqrt_s[:, None]  # original-space leave-one-out decision values
        loo_scores.append(loo_pred)
        loo_acc.append(float((loo_pred.argmax(1) == labels).mean()))
    best = int(np.argmin(loo_mse))
    alpha = float(alphas[best])
    weight = weight_of(alpha)  # (C, p)
    bias = y_mean - weight @ x_mean
    return {"weight": weight, "bias": bias, "alpha": alpha, "alphas": [float(a) for a in alphas],
            "loo_mse": loo_mse, "loo_accuracy": loo_acc, "loo_decision": loo_scores[best]}


def _dual(x, x_mean, sqrt_s, yt, u, u_proj, alphas):
    """Per alpha, the fitted values of ``yt`` (n, C) and the leverages (the hat matrix's diagonal), from the beats'
    Gram matrix (n x n); and the weights (C, p) of a given alpha."""
    xt = sqrt_s[:, None] * (x - x_mean)  # weighted, centred: P S^1/2 X
    gram = xt @ xt.T
    lam, q = np.linalg.eigh((gram + gram.T) / 2)
    lam = np.clip(lam, 0.0, None)
    qty = q.T @ (yt - u_proj)
    q2 = q ** 2
    fitted = [u_proj + q @ ((lam / (lam + alpha))[:, None] * qty) for alpha in alphas]
    leverage = [u ** 2 + q2 @ (lam / (lam + alpha)) for alpha in alphas]
    return fitted, leverage, lambda alpha: (xt.T @ (q @ (qty / (lam + alpha)[:, None]))).T


# Beats per block where the features' side forms Z = Xc V (p x block values at a time).
_PRIMAL_BLOCK = 2048


def _primal(x, x_mean, sqrt_s, yt, u, u_proj, alphas):
    """:func:`_dual`'s results from the features' side (p x p), for more beats than features: ``Xc^T Xc`` and
    ``Xc^T yt`` are summed a block of beats at a time, and so are the fitted values and leverages (``Xc`` is
    orthogonal to the intercept direction ``u``, so the two parts of the hat matrix add)."""
    n, p = x.shape
    blocks = [slice(i, min(i + _PRIMAL_BLOCK, n)) for i in range(0, n, _PRIMAL_BLOCK)]

    def centred(rows):
        return sqrt_s[rows, None] * (x[rows] - x_mean)

    cov, xty = np.zeros((p, p)), np.zeros((p, yt.shape[1]))
    for rows in blocks:
        xt = centred(rows)
        cov += xt.T @ xt
        xty += xt.T @ yt[rows]
    lam, v = np.linalg.eigh((cov + cov.T) / 2)
    lam = np.clip(lam, 0.0, None)
    vty = v.T @ xty  # = Z^T yt
    inverse = np.stack([1.0 / (lam + alpha) for alpha in alphas], axis=1)  # (p, A)
    fitted = [u_proj.copy() for _ in alphas]
    leverage = [u ** 2 for _ in alphas]
    for rows in blocks:
        z = centred(rows) @ v
        levels = (z ** 2) @ inverse
        for k in range(len(alphas)):
            fitted[k][rows] += z @ (inverse[:, k, None] * vty)
            leverage[k][rows] += levels[:, k]
    return fitted, leverage, lambda alpha: (v @ (vty / (lam + alpha)[:, None])).T


@torch.no_grad()
def fit_head(head: nn.Linear, features: np.ndarray, labels: np.ndarray, class_balance: float, alphas,
             num_features: int) -> dict:
    """The tail both random-kernel fits share: the ridge classifier on the standardised ``features`` (N, p) of the
    fitting beats, weighted by ``class_balance``, copied into ``head``; returns the fit's report."""
    num_classes = head.out_features
    weights = class_weights(labels, num_classes, class_balance)
    fit = ridge_loo_fit(features, labels, num_classes, alphas=alphas, sample_weight=weights)
    head.weight.copy_(torch.from_numpy(fit["weight"]).float())
    head.bias.copy_(torch.from_numpy(fit["bias"]).float())
    return {"alpha": fit["alpha"], "alphas": fit["alphas"], "features": num_features,
            "loo_mse": fit["loo_mse"], "loo_accuracy": fit["loo_accuracy"], "loo_decision": fit["loo_decision"]}
