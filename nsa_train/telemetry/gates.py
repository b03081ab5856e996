"""Gate statistics of NSA's three branch gates ([cmp, sel, win]) for progress records.

Per (token, head) row the three sigmoid gates are normalised to shares p = g / sum(g);
the row's entropy is H = -sum p log p in nats (0 .. ln 3 = 1.0986). Sums are kept on the
device across steps and read back once per log step (one host sync):

- gate_entropy_mean: mean H over all rows of all NSA layers (layers weigh equally:
  every layer has the same number of rows).
- gate_entropy_min: the smallest per-layer mean H (one collapsing layer is visible even
  when the others keep the overall mean healthy).
- gate_max_mean: mean over rows of the largest share.
- gate_collapse_frac: share of rows with H < GATE_COLLAPSE_ENTROPY and max share >
  GATE_COLLAPSE_MAX_SHARE.
- gate_branch_shares: mean shares [cmp, sel, win].
"""

from __future__ import annotations

import torch

from nsa_train.telemetry.schema import GATE_COLLAPSE_ENTROPY, GATE_COLLAPSE_MAX_SHARE

NULL_STATS: dict[str, float | list[float] | None] = {
    "gate_entropy_mean": None,
    "gate_entropy_min": None,
    "gate_max_mean": None,
    "gate_collapse_frac": None,
    "gate_branch_shares": None,
}


class GateAccumulator:
    """Device-side running sums of the gate statistics since the last ``read``."""

    def __init__(self) -> None:
        self._entropy_per_layer: torch.Tensor | None = None  # [L] sum of H
        self._rows_per_layer: torch.Tensor | None = None  # [L] row counts
        self._max_sum: torch.Tensor | None = None  # [] sum of max share
        self._collapsed: torch.Tensor | None = None  # [] collapsed row count
        self._shares_sum: torch.Tensor | None = None  # [3]

    @torch.no_grad()
    def add(self, gates: list[torch.Tensor]) -> None:
        """gates: one [B, T, HQ, 3] tensor per NSA layer (no host sync here)."""
        if not gates:
            return
        ent, rows, mx, col, shares = [], [], [], [], []
        for g in gates:
            g = g.float().reshape(-1, 3)  # [N, 3]
            p = g / g.sum(-1, keepdim=True).clamp_min(1e-12)
            h = -(p * p.clamp_min(1e-12).log()).sum(-1)  # [N]
            pmax = p.max(-1).values  # [N]
            ent.append(h.sum())
            rows.append(h.new_full((), float(h.numel())))  # a fill on the device: torch.tensor(n) copied and synced
            mx.append(pmax.sum())
            col.append(((h < GATE_COLLAPSE_ENTROPY) & (pmax > GATE_COLLAPSE_MAX_SHARE)).sum().float())
            shares.append(p.sum(0))
        e, r = torch.stack(ent), torch.stack(rows)
        self._add_sums(e, r, torch.stack(mx).sum(), torch.stack(col).sum(), torch.stack(shares).sum(0))

    def merge(self, other: GateAccumulator) -> None:
        """Take in ``other``'s sums (a step's, once it is known to have updated the weights) and leave it as it is."""
        if other._entropy_per_layer is not None:
            self._add_sums(
                other._entropy_per_layer, other._rows_per_layer, other._max_sum, other._collapsed, other._shares_sum
            )

    def _add_sums(self, e: torch.Tensor, r: torch.Tensor, m: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> None:
        if self._entropy_per_layer is None or self._entropy_per_layer.shape != e.shape:
            self._entropy_per_layer, self._rows_per_layer = e, r
            self._max_sum, self._collapsed, self._shares_sum = m, c, s
        else:
            self._entropy_per_layer = self._entropy_per_layer + e
            self._rows_per_layer = self._rows_per_layer + r
            self._max_sum = self._max_sum + m
            self._collapsed = self._collapsed + c
            self._shares_sum = self._shares_sum + s

    def read(self) -> dict[str, float | list[float] | None]:
        """The statistics since the last read (one host sync), then reset; nulls when nothing was added."""
        if self._entropy_per_layer is None:
            return dict(NULL_STATS)
        packed = torch.cat(
            [
                self._entropy_per_layer,
                self._rows_per_layer,
                self._max_sum.view(1),
                self._collapsed.view(1),
                self._shares_sum,
            ]
        ).tolist()  # the one sync
        n_layers = self._entropy_per_layer.numel()
        ent, rows = packed[:n_layers], packed[n_layers : 2 * n_layers]
        mx, col = packed[2 * n_layers], packed[2 * n_layers + 1]
        shares = packed[2 * n_layers + 2 :]
        total_rows = sum(rows)
        self.__init__()
        return {
            "gate_entropy_mean": sum(ent) / total_rows,
            "gate_entropy_min": min(e / r for e, r in zip(ent, rows, strict=True)),
            "gate_max_mean": mx / total_rows,
            "gate_collapse_frac": col / total_rows,
            "gate_branch_shares": [x / total_rows for x in shares],
        }
