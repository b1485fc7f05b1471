"""Orders small files so similar ones sit side by side in a segment (hashed byte-bigram profiles, cosine)."""

from __future__ import annotations

import numpy as np

DIMS = 4096
SAMPLE = 64 << 10


def profiles(samples: list[bytes]) -> np.ndarray:
    """One L2-normalised row of hashed byte-bigram counts per sample."""
    rows = np.zeros((len(samples), DIMS), dtype=np.float32)
    for i, sample in enumerate(samples):
        a = np.frombuffer(sample[:SAMPLE], dtype=np.uint8).astype(np.uint32)
        if len(a) > 1:
            rows[i] = np.bincount(((a[:-1] << 8) | a[1:]) % DIMS, minlength=DIMS)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-9)


def resolve_device(device: str) -> str:
    """'auto' picks cuda when torch sees a GPU; the CPU path needs only numpy."""
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if device == "cuda":
            raise RuntimeError("--device cuda needs torch (pip install 'git-panini[gpu]')") from None
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise RuntimeError("--device cuda: torch sees no GPU")
    return "cpu"


def similarity_matrix(rows: np.ndarray, device: str = "cpu") -> np.ndarray:
    if device == "cuda":
        import torch
        t = torch.from_numpy(rows).to("cuda")
        return (t @ t.T).cpu().numpy()
    return rows @ rows.T


def greedy_order(rows: np.ndarray, device: str = "cpu") -> list[int]:
    """A nearest-neighbour chain: start at item 0, always step to the most similar unvisited item.
    Deterministic (ties go to the lower index), so every worker orders a batch the same way."""
    n = len(rows)
    if n <= 2:
        return list(range(n))
    sim = similarity_matrix(rows, device)
    visited = np.zeros(n, dtype=bool)
    order = [0]
    visited[0] = True
    for _ in range(n - 1):
        scores = np.where(visited, -np.inf, sim[order[-1]])
        nxt = int(np.argmax(scores))
        order.append(nxt)
        visited[nxt] = True
    return order
