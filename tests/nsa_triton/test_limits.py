"""The kernels' size limits as the layer reads them (triton.limits.branch_problems): the branches it names
`fast` although triton was asked for, because the kernels would refuse every call."""

from __future__ import annotations

import torch

from nsa_train.nsa.triton.limits import branch_problems


def test_the_papers_sizes_and_the_defaults_fit_every_kernel():
    for heads, kv, dim, l, d, l_sel in ((64, 4, 128, 32, 16, 64), (4, 2, 32, 16, 8, 16), (12, 2, 64, 32, 16, 64)):
        assert branch_problems(heads, kv, dim, l, d, l_sel, torch.bfloat16) == {"cmp": None, "sel": None, "win": None}


def test_each_limit_refuses_the_branches_whose_kernels_have_it():
    # selection blocks of 8: below tl.dot's 16 (the selection kernels); l_sel/d = 2 still suits the importance one
    got = branch_problems(4, 2, 32, 16, 4, 8, torch.float32)
    assert got["win"] is None and "block_size must be a power of two >= 16" in got["sel"]
    assert got["cmp"].startswith("the importance kernel needs")  # l=16 > l_sel + d = 12
    # a GQA group of 32: the attention and importance kernels' rows; the selection kernels take it
    got = branch_problems(32, 1, 32, 16, 8, 16, torch.float32)
    assert got["sel"] is None and got["cmp"] == got["win"] == "GQA ratio 32 is above the kernels' 16"
    # float64 (gradcheck) and a head dim of 512: every branch
    assert all(branch_problems(4, 2, 32, 16, 8, 16, torch.float64).values())
    assert all(
        "head dim must be <= 256" in why for why in branch_problems(4, 2, 512, 16, 8, 16, torch.float32).values()
    )
