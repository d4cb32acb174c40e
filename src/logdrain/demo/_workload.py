"""The demo's workload: gradient descent on synthetic data (numpy when it
is importable, pure Python otherwise), one log call a step."""

from __future__ import annotations

import importlib
import random
from typing import Any


def optional(name: str) -> Any | None:
    """An optional dependency's module, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_TRUE_WEIGHTS = (2.0, -1.0, 0.5)
_SAMPLES = 64


class Fit:
    """Full-batch gradient descent fitting ``y = X @ w``; one :meth:`step` per record."""

    backend = "?"

    def step(self, lr: float) -> float:
        """One update; returns the loss (mean squared error) before it."""
        raise NotImplementedError

    def weights(self) -> Any:
        """The current weights (a numpy array or a list: both ship as JSON lists)."""
        raise NotImplementedError

    def newton_step(self) -> None:
        """A Newton step on a mini-batch whose third feature is missing (all zero):
        its Hessian is singular, so this always raises."""
        raise NotImplementedError


class _NumpyFit(Fit):
    backend = "numpy"

    def __init__(self, np: Any) -> None:
        self._np = np
        rng = np.random.default_rng(7)
        self._x = rng.normal(size=(_SAMPLES, len(_TRUE_WEIGHTS)))
        self._y = self._x @ np.array(_TRUE_WEIGHTS) + rng.normal(scale=0.1, size=_SAMPLES)
        self._w = np.zeros(len(_TRUE_WEIGHTS))

    def step(self, lr: float) -> float:
        residual = self._x @ self._w - self._y
        self._w = self._w - lr * (2.0 / _SAMPLES) * (self._x.T @ residual)
        return float(residual @ residual) / _SAMPLES

    def weights(self) -> Any:
        return self._w.round(4)

    def newton_step(self) -> None:
        batch = self._x[:8].copy()
        batch[:, 2] = 0.0
        self._np.linalg.inv(batch.T @ batch)  # LinAlgError: Singular matrix


class _PurePythonFit(Fit):
    backend = "pure Python"

    def __init__(self) -> None:
        rng = random.Random(7)  # noqa: S311 - synthetic data, not crypto
        self._x = [[rng.gauss(0.0, 1.0) for _ in _TRUE_WEIGHTS] for _ in range(_SAMPLES)]
        self._y = [
            sum(a * b for a, b in zip(row, _TRUE_WEIGHTS, strict=True)) + rng.gauss(0.0, 0.1)
            for row in self._x
        ]
        self._w = [0.0 for _ in _TRUE_WEIGHTS]

    def step(self, lr: float) -> float:
        residual = [
            sum(a * b for a, b in zip(row, self._w, strict=True)) - y
            for row, y in zip(self._x, self._y, strict=True)
        ]
        for j in range(len(self._w)):
            grad = (
                2.0 / _SAMPLES * sum(r * row[j] for r, row in zip(residual, self._x, strict=True))
            )
            self._w[j] -= lr * grad
        return sum(r * r for r in residual) / _SAMPLES

    def weights(self) -> Any:
        return [round(w, 4) for w in self._w]

    def newton_step(self) -> None:
        rows = [[*row[:2], 0.0] for row in self._x[:8]]
        h = [[sum(r[i] * r[j] for r in rows) for j in range(3)] for i in range(3)]
        det = (
            h[0][0] * (h[1][1] * h[2][2] - h[1][2] * h[2][1])
            - h[0][1] * (h[1][0] * h[2][2] - h[1][2] * h[2][0])
            + h[0][2] * (h[1][0] * h[2][1] - h[1][1] * h[2][0])
        )
        _ = 1.0 / det  # ZeroDivisionError: the third row and column are all zero


def make_fit() -> Fit:
    np = optional("numpy")
    return _PurePythonFit() if np is None else _NumpyFit(np)
