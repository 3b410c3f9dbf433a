"""Training losses, masked so that a missing reference label contributes nothing.

Both return a ``(sum, count)`` pair over the labelled entries so that batches, ranks and epochs can be
aggregated exactly; the loss is ``sum / count``. The masked loss of a batch therefore equals the same
loss computed on its labelled entries alone.
"""

from __future__ import annotations

import torch

LOSSES = ("mse", "gaussian_nll")


def masked_loss(
    mean: torch.Tensor,
    log_var: torch.Tensor | None,
    target: torch.Tensor,
    ok: torch.Tensor,
    label_err: torch.Tensor | None = None,
    kind: str = "mse",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of the per-entry loss over entries with ``ok`` true, and how many there are.

    Parameters
    ----------
    mean, log_var : torch.Tensor
        ``(B, L)`` network outputs (standardised label units); ``log_var`` is needed by ``gaussian_nll``.
    target, ok : torch.Tensor
        ``(B, L)`` reference labels (any value where not ok) and the mask of usable entries.
    label_err : torch.Tensor, optional
        ``(B, L)`` reference-label errors in the same units; with ``gaussian_nll`` their squares are
        added to the predicted variance (the heteroscedastic term knows how uncertain each target is).
    kind : {"mse", "gaussian_nll"}
        Squared error, or ``0.5 * (log σ² + (y - μ)² / σ²)``.
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; allowed: {', '.join(LOSSES)}")
    ok = ok.bool()
    target = torch.where(ok, target, mean.detach())
    diff2 = (mean - target) ** 2
    if kind == "mse":
        per_entry = diff2
    else:
        if log_var is None:
            raise ValueError("gaussian_nll needs a network with a variance head (heteroscedastic)")
        var = torch.exp(log_var)
        if label_err is not None:
            var = var + label_err**2
        per_entry = 0.5 * (torch.log(var) + diff2 / var)
    zero = torch.zeros((), dtype=per_entry.dtype, device=per_entry.device)
    return torch.where(ok, per_entry, zero).sum(), ok.sum()
