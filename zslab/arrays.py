"""Array conversion shared by metrics and methods: they accept numpy arrays, lists or torch tensors."""
from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """A torch tensor (any device, with or without grad, any float type) or array-like as a numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu()
        if str(getattr(x, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            x = x.float()  # numpy has no bfloat16
        return x.numpy()
    return np.asarray(x)


def finite_2d(x: Any, name: str, shape: str = "[N, D]") -> np.ndarray:
    """``x`` as a float64 matrix; raises naming ``name`` if it is not 2-D or holds NaN/inf."""
    a = np.asarray(to_numpy(x), dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D {shape}, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values")
    return a
