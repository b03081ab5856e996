"""Resharding a data position (`--resume --reshard`): the positions W_old ranks saved, as a start for W_new ranks.

A map-style source deals epoch e's seeded permutation of the training documents round-robin: document d of rank r
(of W) is the permutation's entry g = d*W + r. The permutation does not depend on W, so a saved position
(epoch, d, offset) of rank r is the global position (epoch, d*W + r): every document of that rank before it was
read whole, the one at it up to `offset` tokens.

The new ranks continue from the frontier F, the smallest of the old ranks' global positions: every document before
F was read whole by its rank (its rank's position is at or past F), so none is skipped. New rank r' takes the
entries g >= F of F's epoch with g = r' (mod W_new), from the first such one on, and then whole epochs as usual:
together the new ranks read every entry from F on exactly once. Read again are the documents an old rank had
started at or after F: from F up to its own position (the one at its position only if its offset was past 0).
They are bounded by how far the ranks had drifted apart (each rank reads the same tokens per step, documents of
different lengths), and counted here. Pure logic: no data is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DataError, init_from_hint
from .packing import Position


def streamed_refusal(what: str, resume_with: str, weights: object) -> str:
    """Why a streamed (hf) source cannot be resharded: the trainer's refusal, and nsa launch's before a session."""
    return (
        f"--reshard: {what}: its documents are split over the ranks by the stream's own shards, so its positions "
        f"cannot continue on another number of ranks. Resume with {resume_with}, or start a new run from the "
        f"checkpoint's weights {init_from_hint(weights)}"
    )


def share(n_docs: int, rank: int, world_size: int) -> int:
    """How many of an epoch's `n_docs` documents rank `rank` of `world_size` reads."""
    return len(range(rank, n_docs, world_size))


@dataclass(frozen=True)
class Reshard:
    old_world: int
    epoch: int  # the epoch the new ranks continue in
    first: int  # the permutation entry of that epoch they continue from: every one before it was read whole
    reread: tuple[tuple[int, int, int], ...]  # (epoch, entry, tokens read: 0 = all of it) read again
    n_docs: int  # training documents per epoch

    def start(self, rank: int, world_size: int) -> Position:
        """Where new rank `rank` of `world_size` continues: its first entry at or after the frontier, or the next
        epoch's start when its share of the frontier's epoch holds none."""
        doc = max(0, -(-(self.first - rank) // world_size))  # ceil((first - rank) / world_size)
        if doc >= share(self.n_docs, rank, world_size):
            return Position(self.epoch + 1, 0, 0)
        return Position(self.epoch, doc, 0)


def plan_reshard(positions: list[Position], n_docs: int) -> Reshard:
    """The frontier of `positions` (rank r's saved position at index r) and the documents read again past it."""
    world = len(positions)
    if world < 1:
        raise DataError("--reshard: the checkpoint holds no data position")
    at = [(p.epoch, p.doc * world + r) for r, p in enumerate(positions)]
    for r, (p, (_, g)) in enumerate(zip(positions, at, strict=True)):
        if p.doc < 0 or p.offset < 0 or g >= n_docs:
            raise DataError(
                f"--reshard: rank {r}'s saved data position {tuple(p)} is past its share of the {n_docs} training "
                "documents: the data changed since the checkpoint"
            )
    epoch, first = min(at)
    reread: list[tuple[int, int, int]] = []
    for r, (p, (e_r, g_r)) in enumerate(zip(positions, at, strict=True)):
        for e in range(epoch, e_r + 1):
            lo = first if e == epoch else 0
            hi = g_r if e == e_r else n_docs
            start = r + max(0, -(-(lo - r) // world)) * world  # this rank's first entry at or after lo
            reread += [(e, g, 0) for g in range(start, hi, world)]
        if p.offset:
            reread.append((e_r, g_r, p.offset))
    return Reshard(world, epoch, first, tuple(sorted(reread)), n_docs)
