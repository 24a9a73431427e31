"""Sum-of-absolute-differences matcher: the baseline every place-recognition method must beat."""

from __future__ import annotations

import numpy as np
import torch


def sad_scores(reference: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Similarity (Q, R) = minus the sum of absolute pixel differences between every query and
    reference image (any image shape; both preprocessed the same way)."""
    r = torch.as_tensor(np.asarray(reference, np.float64).reshape(len(reference), -1))
    q = torch.as_tensor(np.asarray(query, np.float64).reshape(len(query), -1))
    if r.shape[1] != q.shape[1]:
        raise ValueError(f"reference images have {r.shape[1]} pixels, query images {q.shape[1]}")
    return -torch.cdist(q, r, p=1.0).numpy()
