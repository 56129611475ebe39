"""Which validation examples the hand-over's checks keep from the meta-objective (``check_share``).

Why: ϕ is fitted to the validation examples, so a check on those same examples cannot see
harm that hides in them (BENCHMARKS.md: on Diabetes the seeds that never handed over were
*ahead* of plain training on the validation split and behind it on held-out data). The
optimizer never sees an example's index, only its values, so it splits by content: a hash
of each example's bits puts a fixed share of the distinct examples on the check side, the
same side at every step, in every batch, on every device and in every process. The
meta-objective gets the rest. The hash runs on the batch's device; taking the two parts out
of the batch reads their sizes (one more host read per step on a GPU).

The hash is an integer one (float64 bit patterns times fixed odd weights, summed with
wrap-around, then mixed), so it does not depend on the data's scale: standardized features,
raw pixel counts and token ids split alike.
"""

from __future__ import annotations

import torch

_SEED = 20_261_207  # fixed: the split must be the same in every process and every run
_MIX = 0x2545F4914F6CDD1D  # an odd 63-bit multiplier (xorshift* generators')
_BITS = 53  # keys are multiples of 2**-53 in [0, 1)
CHUNK_VALUES = 1 << 20  # the hash's 64-bit temporaries hold about this many values (8 MiB)


def check_check_share(share, every) -> None:
    """Refuse a share that is not None or a number in (0, 1), or one without windows."""
    if share is None:
        return
    _check_range(share)
    if every is None:
        raise ValueError(
            "check_share keeps examples for step's own checks: pass check_every=N (and "
            "handover=P) with it"
        )


def _check_range(share) -> None:
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise ValueError(f"check_share must be None or a number in (0, 1), got {share!r}")


def _shift(h: torch.Tensor, k: int) -> torch.Tensor:
    """``h >> k`` as unsigned 64-bit integers (torch's ``>>`` on int64 copies the sign bit)."""
    return (h >> k) & ((1 << (64 - k)) - 1)


class ContentSplit:
    """Splits a validation batch into the meta-objective's examples and the checks'."""

    def __init__(self, share: float) -> None:
        _check_range(share)
        self.share = float(share)
        self._weights: dict[tuple[int, torch.device], torch.Tensor] = {}

    def _weights_for(self, features: int, device: torch.device) -> torch.Tensor:
        key = (features, device)
        if key not in self._weights:
            gen = torch.Generator().manual_seed(_SEED)
            odd = torch.randint(-(2**62), 2**62, (features,), generator=gen) * 2 + 1
            self._weights[key] = odd.to(device)
        return self._weights[key]

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """Each example's key in [0, 1), a function of its values alone."""
        flat = x.detach().reshape(x.shape[0], -1)
        weights = self._weights_for(flat.shape[1], flat.device)
        # A few columns at a time, so the 64-bit temporaries stay near CHUNK_VALUES values
        # however large the examples (a batch of images); wrap-around sums do not care.
        width = max(1, CHUNK_VALUES // max(1, flat.shape[0]))
        h = torch.zeros(flat.shape[0], dtype=torch.int64, device=flat.device)
        for start in range(0, flat.shape[1], width):
            bits = flat[:, start : start + width].to(torch.float64).view(torch.int64)
            h = h + (bits * weights[start : start + width]).sum(1)
        h = (h ^ _shift(h, 29)) * _MIX
        h = h ^ _shift(h, 32)
        return _shift(h, 64 - _BITS).to(torch.float64) / 2.0**_BITS

    def check_side(self, x: torch.Tensor) -> torch.Tensor:
        """A bool (B,): which examples of ``x`` the checks keep."""
        return self.keys(x) < self.share

    def split(self, x: torch.Tensor, y: torch.Tensor):
        """``((x_meta, y_meta), (x_check, y_check))``; either part may have no rows."""
        check = self.check_side(x)
        meta = ~check
        return (x[meta], y[meta]), (x[check], y[check])
