"""Metrics of designed sequences (docs/metrics.md#metrics); every function takes plain arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from d3_core.errors import D3InputError

__all__ = [
    "auroc",
    "discriminability",
    "diversity",
    "js_distance",
    "kmer_spectrum",
    "ks_statistic",
    "max_identity",
    "memorisation",
    "pearson",
    "sp_mse",
]


def _paired(real: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real = np.asarray(real, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    if real.shape != generated.shape:
        raise D3InputError(
            f"paired metrics need predictions of equal shape; got real {real.shape} and "
            f"generated {generated.shape}"
        )
    return real.reshape(len(real), -1), generated.reshape(len(generated), -1)


def sp_mse(real: np.ndarray, generated: np.ndarray) -> float:
    """Conditional fidelity: mean over sequences and outputs of (f(x_real) - f(x_gen))^2.

    Args:
        real: (N, F...) scores of the real sequences (any scorer: oracle or planted rule).
        generated: Scores of the sequences generated for the same labels, in the same order.
    """
    real, generated = _paired(real, generated)
    return float(np.mean((real - generated) ** 2))


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation per column of two (N, F) arrays; NaN where a column is constant."""
    x, y = _paired(x, y)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    denominator = np.sqrt((x**2).sum(axis=0) * (y**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=0) / denominator


# -- distributions of oracle predictions ---------------------------------------------------------


def ks_statistic(real: np.ndarray, generated: np.ndarray) -> dict[str, Any]:
    """Two-sample Kolmogorov–Smirnov statistic per output, and their mean
    (docs/metrics.md#metrics).

    Args:
        real: (N, F) predictions for real sequences.
        generated: (M, F) predictions for generated sequences (M may differ from N).

    Returns:
        ``{"mean": float, "per_output": [float, ...]}`` (scipy's ``ks_2samp`` statistic).
    """
    from scipy.stats import ks_2samp

    real = np.asarray(real, dtype=np.float64).reshape(len(real), -1)
    generated = np.asarray(generated, dtype=np.float64).reshape(len(generated), -1)
    if real.shape[1] != generated.shape[1]:
        raise D3InputError(f"KS needs as many outputs on both sides; got {real.shape[1]} and "
                           f"{generated.shape[1]}")  # fmt: skip
    per_output = [float(ks_2samp(real[:, j], generated[:, j]).statistic)
                  for j in range(real.shape[1])]  # fmt: skip
    return {"mean": float(np.mean(per_output)), "per_output": per_output}


# -- sequences --------------------------------------------------------------------------------------


def _tokens(tokens: np.ndarray, name: str) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or (tokens.size and (tokens.min() < 0 or tokens.max() > 3)):
        raise D3InputError(f"{name} must be (N, L) tokens in 0..3; got shape {tokens.shape}")
    return tokens


def kmer_spectrum(tokens: np.ndarray, k: int, *, chunk: int = 4096) -> np.ndarray:
    """Pooled forward-strand k-mer counts of a set of sequences (docs/metrics.md#metrics).

    Args:
        tokens: (N, L) tokens, A, C, G, T = 0..3.
        k: k-mer length, 1 ≤ k ≤ min(L, 12).
        chunk: Sequences counted at a time (bounds memory on large sets).

    Returns:
        (4**k,) int64 counts; index = the k-mer read as a base-4 number (A=0 … T=3).
    """
    tokens = _tokens(tokens, "k-mer input")
    if not isinstance(k, int) or not 1 <= k <= min(tokens.shape[1], 12):
        raise D3InputError(f"k must be an integer from 1 to min(L, 12); got {k!r}")
    powers = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    counts = np.zeros(4**k, dtype=np.int64)
    for start in range(0, len(tokens), chunk):
        block = tokens[start : start + chunk].astype(np.int64)
        windows = np.lib.stride_tricks.sliding_window_view(block, k, axis=1)  # (n, L-k+1, k)
        counts += np.bincount((windows @ powers).ravel(), minlength=4**k)
    return counts


def js_distance(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (square root of the divergence, natural log) of two spectra."""
    from scipy.spatial.distance import jensenshannon

    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise D3InputError("JS distance needs two non-empty spectra of the same k")
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=np.e))


def _onehot_rows(tokens: np.ndarray, device: str) -> Any:
    import torch

    t = torch.as_tensor(np.asarray(tokens), device=device).long()
    return torch.nn.functional.one_hot(t, 4).reshape(len(t), -1).float()  # (N, 4L)


def max_identity(
    queries: np.ndarray,
    references: np.ndarray,
    *,
    exclude_self: bool = False,
    chunk: int = 2048,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """For each query sequence, the largest number of identical positions to any reference.

    Counted as one-hot dot products in float32, exact for L < 2**24, in int32 out (the
    reference's int8 overflowed for L > 127).

    Args:
        queries: (N, L) tokens.
        references: (M, L) tokens of the same length.
        exclude_self: Queries are the references; skip each one's match with itself.
        chunk: Reference rows per matrix product.
        device: Where to compute.
        progress: Show a progress bar over reference chunks.

    Returns:
        (N,) int32 counts in [0, L].
    """
    import torch

    queries = _tokens(queries, "queries")
    references = _tokens(references, "references")
    if queries.shape[1] != references.shape[1]:
        raise D3InputError(f"sequences of {queries.shape[1]} and {references.shape[1]} bp "
                           f"cannot be compared position by position")  # fmt: skip
    q = _onehot_rows(queries, device)
    best = torch.full((len(q),), -1.0, device=device)
    starts = range(0, len(references), chunk)
    if progress and len(starts) > 4:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="identity", unit="chunk", leave=False)
    for start in starts:
        same = q @ _onehot_rows(references[start : start + chunk], device).T  # (N, m)
        if exclude_self:
            rows = torch.arange(start, min(start + chunk, len(references)), device=device)
            same[rows, rows - start] = -1.0
        best = torch.maximum(best, same.max(dim=1).values)
    return best.round().to(torch.int32).cpu().numpy()


def memorisation(generated: np.ndarray, train: np.ndarray, **kwargs: Any) -> dict[str, Any]:
    """For each generated sequence, the largest fraction of positions identical to any training
    sequence (docs/metrics.md#metrics); summarised as mean, max and the fraction of exact copies."""
    counts = max_identity(generated, train, **kwargs)
    fraction = counts / np.asarray(generated).shape[1]
    return {"mean": float(fraction.mean()), "max": float(fraction.max()),
            "exact_copies": float(np.mean(fraction == 1.0)),
            "training_sequences": len(train)}  # fmt: skip


def diversity(generated: np.ndarray, **kwargs: Any) -> float:
    """Mean nearest-neighbour identity inside a set (each sequence's best match among the others),
    as a fraction of positions (docs/metrics.md#metrics); lower is more diverse."""
    generated = _tokens(generated, "generated")
    if len(generated) < 2:
        raise D3InputError("diversity needs at least two sequences")
    counts = max_identity(generated, generated, exclude_self=True, **kwargs)
    return float(np.mean(counts / generated.shape[1]))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of scores for binary labels (1 = positive), ties counted half."""
    from scipy.stats import rankdata

    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise D3InputError("AUROC needs both classes")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _discriminator(length: int) -> Any:
    """docs/metrics.md#metrics's small CNN: three conv stages (64, 96, 128 filters), a dense layer
    of 256."""
    from torch import nn

    layers, channels = [], 4
    for filters in (64, 96, 128):
        layers += [nn.Conv1d(channels, filters, 7, padding=3), nn.ReLU(), nn.MaxPool1d(2)]
        channels = filters
    return nn.Sequential(
        *layers, nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(128, 256), nn.ReLU(),
        nn.Dropout(0.2), nn.Linear(256, 1),
    )  # fmt: skip


def discriminability(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    seed: int = 0,
    max_epochs: int = 30,
    patience: int = 3,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str = "cpu",
) -> dict[str, Any]:
    """How well a small CNN tells real (1) from generated (0) sequences (docs/metrics.md#metrics).

    Both sets are split 70/10/20 at random (seeded, each class on its own); the CNN trains with
    Adam on the 70 % and stops when the 10 % validation loss has not improved for `patience`
    epochs, keeping its best weights; the AUROC is measured on the held-out 20 %. 0.5 means
    indistinguishable.

    Returns:
        ``{"auroc", "epochs", "train", "valid", "test", "seed"}`` (split sizes per class summed).
    """
    import torch

    real, generated = _tokens(real, "real"), _tokens(generated, "generated")
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {"train": [], "valid": [], "test": []}
    for tokens, label in ((real, 1.0), (generated, 0.0)):
        order = rng.permutation(len(tokens))
        cut1, cut2 = int(0.7 * len(tokens)), int(0.8 * len(tokens))
        for name, index in (("train", order[:cut1]), ("valid", order[cut1:cut2]),
                            ("test", order[cut2:])):  # fmt: skip
            parts[name].append((tokens[index], np.full(len(index), label, np.float32)))
    data = {
        name: (
            _onehot_rows(np.concatenate([t for t, _ in pairs]), device).view(-1, real.shape[1], 4)
            .transpose(1, 2).contiguous(),
            torch.as_tensor(np.concatenate([y for _, y in pairs]), device=device),
        )
        for name, pairs in parts.items()
    }  # fmt: skip
    if min(len(data[name][1]) for name in data) == 0:
        raise D3InputError("discriminability needs at least 10 sequences on each side")
    # Initialisation, batch order and dropout all draw from seeded generators, and the caller's
    # global random state is left as it was: the same inputs and seed give the same AUROC.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _train_discriminator(data, real.shape[1], seed=seed, max_epochs=max_epochs,
                                    patience=patience, batch_size=batch_size, lr=lr,
                                    device=device)  # fmt: skip


def _train_discriminator(data, length, *, seed, max_epochs, patience, batch_size, lr, device):
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    model = _discriminator(length).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    x_train, y_train = data["train"]
    best, best_state, waited, epochs = float("inf"), None, 0, 0
    while epochs < max_epochs and waited < patience:
        epochs += 1
        model.train()
        for batch in torch.randperm(len(y_train), generator=generator).split(batch_size):
            batch = batch.to(device)
            optimizer.zero_grad()
            loss_fn(model(x_train[batch])[:, 0], y_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            valid = float(loss_fn(model(data["valid"][0])[:, 0], data["valid"][1]))
        if valid < best - 1e-6:
            best, waited = valid, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        scores = model(data["test"][0])[:, 0].cpu().numpy()
    return {
        "auroc": auroc(scores, data["test"][1].cpu().numpy()),
        "epochs": epochs,
        **{name: len(data[name][1]) for name in data},
        "seed": seed,
    }
