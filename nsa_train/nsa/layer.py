"""The NSA attention layer (paper Sec. 3): compressed, selected and sliding-window branches mixed by gates."""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nsa_train.config import NSAConfig
from nsa_train.config.schema import nsa_gate_hidden
from nsa_train.nsa import dispatch, reference
from nsa_train.nsa._common import check_sizes
from nsa_train.nsa.recompute import recomputed
from nsa_train.nsa.rope import apply_rope, apply_rope_reference, rope_angles
from nsa_train.nsa.triton.limits import branch_problems

# the dispatch op behind each branch, for the path it takes
BRANCH_OPS = {
    "cmp": "compressed_attention_and_selection",
    "sel": "selection_attention",
    "win": "sliding_window_attention",
}


BACKWARD_FAST = "triton,backward=fast"  # a branch whose Triton forward runs and whose backward fell back


def paths_ran(planned: dict[str, str], fell_back: Collection[str]) -> dict[str, str]:
    """Each branch's path as a training step ran it: ``planned`` (NSAAttention.branch_impls), with a Triton
    branch whose forward fell back to the fast path ('<name>.triton->fast' in ``fell_back``) named 'fast', and
    one whose backward alone did ('<name>_bwd.triton->fast') BACKWARD_FAST."""
    ran = dict(planned)
    for branch, path in planned.items():
        name = dispatch.FALLBACK_NAMES[BRANCH_OPS[branch]]
        if path != "triton":
            continue
        if f"{name}.triton->fast" in fell_back:
            ran[branch] = "fast"
        elif f"{name}_bwd.triton->fast" in fell_back:
            ran[branch] = BACKWARD_FAST
    return ran


def paths_name(paths: dict[str, str]) -> str:
    """One path name when every branch runs it, else each branch's ('cmp=fast sel=triton win=fast')."""
    if len(set(paths.values())) == 1:
        return paths["sel"]
    return " ".join(f"{branch}={path}" for branch, path in paths.items())


class CompressionMLP(nn.Module):
    """φ: l consecutive keys (or values) taken with stride d, plus a learned intra-block position encoding,
    mapped by a 2-layer MLP (l*D -> hidden -> D) to one vector per block. Shared by all KV heads.

    The first layer is a linear map of the flattened block, computed as a strided conv1d over the sequence so
    that the overlapping blocks (l/d copies of every key) are never materialised or saved for backward.
    """

    def __init__(self, block_length: int, head_dim: int, hidden: int | None = None) -> None:
        super().__init__()
        self.block_length = block_length
        hidden = hidden or 2 * head_dim
        self.pos = nn.Parameter(torch.randn(block_length, head_dim) * 0.02)  # [l, D]
        self.fc1 = nn.Conv1d(head_dim, hidden, kernel_size=block_length)  # weight [hidden, D, l]
        self.fc2 = nn.Linear(hidden, head_dim)

    def init_weights(self, std: float) -> None:
        """model.init_std for the position table and the first layer, as for every Linear (fc2 is one): they
        kept PyTorch's defaults (Kaiming-uniform, a nonzero bias) whatever init_std said."""
        nn.init.normal_(self.pos, 0.0, std)
        nn.init.normal_(self.fc1.weight, 0.0, std)
        nn.init.zeros_(self.fc1.bias)

    def forward(self, x: torch.Tensor, stride: int) -> torch.Tensor:
        """x [B, T, H, D] -> [B, NC, H, D] with NC = (T - l) // stride + 1 blocks that fit entirely (0 if T < l)."""
        B, T, H, D = x.shape
        n_cmp = max(0, (T - self.block_length) // stride + 1)
        if n_cmp == 0:
            return x.new_zeros(B, 0, H, D)
        # conv1d wants [B*H, D, T]: the copy also means a saved view never keeps the caller's projection alive
        xt = x.permute(0, 2, 3, 1).contiguous().view(B * H, D, T)
        # fc1(block + pos) = fc1(block) + W1·pos: the position encoding enters as a per-unit shift
        pos_shift = (self.fc1.weight * self.pos.t()).sum(dim=(1, 2))  # [hidden]
        h = _conv1d(xt, self.fc1.weight, self.fc1.bias + pos_shift, stride)  # [B*H, hidden, NC]
        out = self.fc2(F.gelu(h.transpose(1, 2)))  # [B*H, NC, D]
        return out.view(B, H, n_cmp, D).transpose(1, 2)


def _conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    """F.conv1d, computed in fp32 for a CPU conv in bf16 (or fp16), then cast back to that dtype.

    oneDNN's bf16 conv1d on CPUs with AMX (torch 2.13) returns wrong outputs for some lengths: a max error of 2.8
    on outputs of 3.0 at length 53, 4.5 at length 100, right at 64 and 512. A bf16 run on such a CPU compressed
    garbage. Linear layers and bmm in bf16 are correct there (checked for 80 shapes), so only this op is moved."""
    autocast = torch.is_autocast_enabled("cpu")
    dtype = torch.get_autocast_dtype("cpu") if autocast else x.dtype
    if x.device.type != "cpu" or dtype not in (torch.bfloat16, torch.float16):  # fp32 and fp64 as they are
        return F.conv1d(x, weight, bias, stride=stride)
    with torch.autocast("cpu", enabled=False):
        return F.conv1d(x.float(), weight.float(), bias.float(), stride=stride).to(dtype)


class NSAAttention(nn.Module):
    """Native Sparse Attention over x [B, T, dim] -> [B, T, dim].

    One query projection shared by the branches; each branch has its own key and value projections.
    After a forward, ``last_gates`` holds the detached gates [B, T, HQ, 3] in the order (cmp, sel, win).
    ``cfg.impl`` picks the ops: 'reference' (slow oracle), 'fast' (chunked PyTorch), 'triton' (the kernels of all
    three branches on CUDA), 'auto' (on CUDA the kernels of dispatch.AUTO_TRITON_OPS, fast on CPU).
    ``impl_name`` / ``branch_impls`` say which path each branch runs on the current device.
    """

    def __init__(
        self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, cfg: NSAConfig, rope_base: float = 10000.0
    ) -> None:
        super().__init__()
        check_sizes(dim=dim, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim)
        if n_heads % n_kv_heads != 0:
            raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
        if head_dim % 2 != 0:
            raise ValueError(f"head_dim ({head_dim}) must be even for RoPE")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.cfg = cfg
        self.rope_base = rope_base
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=False)
        # the 3 branches' keys and values in one weight, rows [k_cmp, v_cmp, k_sel, v_sel, k_win, v_win]; forward runs
        # the compressed rows apart (they are recomputed in backward) and the other four as one matmul
        self.wkv = nn.Linear(dim, 6 * n_kv_heads * head_dim, bias=False)
        self.phi_k = CompressionMLP(cfg.l, head_dim)
        self.phi_v = CompressionMLP(cfg.l, head_dim)
        gate_hidden = nsa_gate_hidden(dim)
        self.gate = nn.Sequential(nn.Linear(dim, gate_hidden), nn.SiLU(), nn.Linear(gate_hidden, 3 * n_heads))
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=False)
        self.last_gates: torch.Tensor | None = None

    # model.compile_model (train.compile) compiles the model around this layer and runs the layer as it is: its
    # ops are fused by hand (autograd Functions writing into views, Triton launches, chunk loops, fallback
    # counting), which Dynamo would trace into dozens of graph fragments. Not a torch.compiler.disable decorator:
    # that imports TorchDynamo with this module (~1 s, and resident memory the layer's benchmark would count)
    compile_eagerly = True

    def _compressed_kv(
        self, x: torch.Tensor, w_cmp: torch.Tensor, *phi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, dim] -> the compressed branch's keys and values [B, NC, H, D]: its projection (w_cmp), then
        φ_k and φ_v run on the given parameter tensors ``phi`` (φ_k's, then φ_v's, in named_parameters order)."""
        B, T, _ = x.shape
        k_raw, v_raw = F.linear(x, w_cmp).view(B, T, 2, self.n_kv_heads, self.head_dim).unbind(2)
        names = [n for n, _ in self.phi_k.named_parameters()]
        k = functional_call(self.phi_k, dict(zip(names, phi[: len(names)], strict=True)), (k_raw, self.cfg.d))
        v = functional_call(self.phi_v, dict(zip(names, phi[len(names) :], strict=True)), (v_raw, self.cfg.d))
        return k, v

    def _gates(self, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        """x [B, T, dim] -> sigmoid gates [B, T, 3 * HQ], the gate MLP run on the given parameter tensors."""
        names = [n for n, _ in self.gate.named_parameters()]
        return torch.sigmoid(functional_call(self.gate, dict(zip(names, params, strict=True)), (x,)))

    @property
    def branch_impls(self) -> dict[str, str]:
        """The path each branch runs on the layer's current device: {'cmp': ..., 'sel': ..., 'win': ...}. A branch
        whose sizes the kernels refuse (triton.limits) runs the fast path, and counts that fallback at each call."""
        weight = self.wq.weight
        device, impl, c = weight.device, self.cfg.impl, self.cfg
        paths = {branch: dispatch.resolve_impl(impl, device, op) for branch, op in BRANCH_OPS.items()}
        if "triton" in paths.values():
            dtype = dispatch.autocast_dtype(weight) or weight.dtype
            refused = branch_problems(self.n_heads, self.n_kv_heads, self.head_dim, c.l, c.d, c.l_sel, dtype)
            paths = {branch: "fast" if path == "triton" and refused[branch] else path for branch, path in paths.items()}
        return paths

    @property
    def impl_name(self) -> str:
        """One path name when every branch runs it ('fast', 'triton', 'reference'), else each branch's: e.g.
        'cmp=fast sel=triton win=fast' (auto on CUDA). What run.json records as attention_impl before the first
        step; ``impl_name_ran`` after it."""
        return paths_name(self.branch_impls)

    def impl_name_ran(self, fell_back: Collection[str]) -> str:
        """impl_name once a training step ran, ``fell_back`` the fallback counters it raised
        (nsa_train.nsa.fallbacks): a branch whose Triton forward fell back runs 'fast', one whose Triton backward
        did (its kernels compile at the first backward, and can fail where the forward's ran) 'triton,backward=fast'.
        """
        return paths_name(paths_ran(self.branch_impls, fell_back))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        HQ, H, D = self.n_heads, self.n_kv_heads, self.head_dim
        c = self.cfg
        q = self.wq(x).view(B, T, HQ, D)
        w_cmp, w_kv = self.wkv.weight.split([2 * H * D, 4 * H * D])  # [k_cmp, v_cmp], [k_sel, v_sel, k_win, v_win]
        phi = [*self.phi_k.parameters(), *self.phi_v.parameters()]
        # only impl 'reference' resolves to the reference path, on every device: no need to resolve each branch
        as_reference = c.impl == "reference"
        if as_reference:  # plain autograd: the oracle for the recomputing path below
            k_cmp, v_cmp = self._compressed_kv(x, w_cmp, *phi)  # [B, NC, H, D]
            gates = self._gates(x, *self.gate.parameters()).view(B, T, HQ, 3)
        else:
            # rebuilt from x in backward (x is kept anyway): otherwise φ's two [B, T, H, D] inputs and the gate
            # MLP's two [B, T, dim/4] activations stay alive until backward (64 MB at 32k tokens, 2 KV heads
            # of 64, dim 512), for a recompute of ~2% of the layer's time (docs/nsa.md)
            k_cmp, v_cmp = recomputed(self._compressed_kv, x, w_cmp, *phi)
            gates = recomputed(self._gates, x, *self.gate.parameters()).view(B, T, HQ, 3)
        # the [B, T, 4*H*D] projection must be freed now: a view of it (v_sel, v_win) would keep all of it alive
        # through the forward, or through backward if saved. So values get one contiguous copy each, and keys
        # are read strided by RoPE (its output is a fresh buffer)
        kv = F.linear(x, w_kv).view(B, T, 4, H, D)
        k_sel, v_sel, k_win, v_win = kv.unbind(2)
        v_sel, v_win = v_sel.contiguous(), v_win.contiguous()
        # the reference layer is plain formulas throughout, so comparing it with the fast one covers RoPE too
        rope = apply_rope_reference if as_reference else apply_rope
        cos, sin = rope_angles(torch.arange(T, device=x.device), D, self.rope_base)
        q = rope(q, cos, sin)
        k_sel = rope(k_sel, cos, sin)
        k_win = rope(k_win, cos, sin)
        del kv
        if k_cmp.shape[1] > 0:
            # a compressed key sits at its block's last token, so q·k sees the distance to the block's end
            cmp_pos = torch.arange(k_cmp.shape[1], device=x.device) * c.d + c.l - 1
            k_cmp = rope(k_cmp, *rope_angles(cmp_pos, D, self.rope_base))

        if as_reference:  # the fast branch ops' twins, each gated, summed by plain autograd
            o_cmp, block_ids = reference.compressed_attention_and_selection_reference(
                q, k_cmp, v_cmp, c.l, c.d, c.l_sel, c.n_sel, gate=gates[..., 0]
            )
            o_sel = reference.gated_selection_reference(q, k_sel, v_sel, block_ids, c.l_sel, gates[..., 1])
            o_win = reference.gated_sliding_window_reference(q, k_win, v_win, c.w, gates[..., 2])
            o = o_cmp + o_sel + o_win  # [B, T, HQ, D]
        else:
            # each branch takes its gate inside, so that no gated output need be kept for the gates' gradients
            # (the ops have what they need: recomputed tiles, or the saved ungated output)
            o_cmp, block_ids = dispatch.gated_compressed_attention_and_selection(
                q, k_cmp, v_cmp, c.l, c.d, c.l_sel, c.n_sel, gates[..., 0], impl=c.impl
            )
            o_sel = dispatch.gated_selection_attention(q, k_sel, v_sel, block_ids, c.l_sel, gates[..., 1], impl=c.impl)
            o_win = dispatch.gated_sliding_window_attention(q, k_win, v_win, c.w, gates[..., 2], impl=c.impl)
            # summed into o_cmp's buffer: no op saved the gated outputs, so adding in place is safe for autograd
            o = o_cmp.add_(o_sel).add_(o_win)  # [B, T, HQ, D]
            del o_sel, o_win
        self.last_gates = gates.detach()
        return self.wo(o.reshape(B, T, HQ * D))
