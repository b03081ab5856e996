"""The training stream (background prefetch, exact resume) and the validation batches."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from .diagnose import shown
from .errors import DataError, init_from_hint
from .fingerprint import fingerprint_change
from .packing import DocTokens, Position, pack_windows, with_eos
from .reshard import Reshard, plan_reshard, streamed_refusal
from .sources import DocSource, check_source, open_source
from .tokenizer import Tokenizer

T = TypeVar("T")

STATE_VERSION = 1
LOCAL_SOURCE = "local files "  # how DataConfig.source_description names data.path
_POLL_S = 0.5  # how often a blocked side re-checks for close() or a dead thread
WAIT_REPORT_S = 30.0  # while the first batch is awaited: how often on_first_batch_wait hears about it


def doc_tokens(
    source: DocSource,
    tokenizer: Tokenizer,
    start: Position,
    on_empty_epoch: Callable[[int, str], None] | None = None,
    weights: object = "RUN_DIR",
) -> Iterator[DocTokens]:
    """This rank's training documents as tokens, epoch after epoch, from `start` on; never ends.

    An epoch whose share for this rank holds nothing training reads (empty documents, copies of held-out texts)
    is passed over: ``on_empty_epoch(epoch, why)`` hears of it and the next epoch follows (so does the rest of an
    epoch a start position resumes mid-way that holds nothing: not an epoch dealt nothing, it is not said). The
    deal is not filtered first, so the order of every other epoch, and of every corpus whose ranks all get
    something, is unchanged. ``weights``: the checkpoint the start position came from, named in a refusal's way on."""
    epoch, first_doc, offset = start
    empty_run = 0  # consecutive epochs passed over
    while True:
        produced = False
        for k, text in source.train_texts(epoch, first_doc):
            tokens = with_eos(tokenizer.encode_array(text), tokenizer.eos_id)
            if k == first_doc and offset:
                if offset >= len(tokens):
                    where = f"{tuple(start)} in {source.description}"
                    raise DataError(
                        f"saved data position {where} is past the end of its document: the data changed since the "
                        "checkpoint (a streamed source has no fingerprint to tell: a dataset's new revision, files "
                        "added), so the position and the validation holdout would not be the same documents. Restore "
                        f"the data or start a new run from the checkpoint's weights {init_from_hint(weights)}"
                    )
                yield DocTokens(Position(epoch, k, offset), tokens[offset:])
            else:
                yield DocTokens(Position(epoch, k, 0), tokens)
            produced = True
        if produced:
            empty_run = 0
        elif first_doc == 0:  # the rest of an epoch resumed mid-way (a reshard's start) is not an epoch: not counted
            why = source.skipped.why_none()
            empty_run += 1
            limit = source.empty_epoch_limit
            if empty_run >= limit:
                if limit == 1:
                    raise DataError(
                        f"{source.description}: epoch {epoch} has no training documents for this rank: {why}"
                    )
                raise DataError(
                    f"{source.description}: epochs {epoch - limit + 1} to {epoch} had no training documents for this "
                    f"rank ({limit} in a row; in epoch {epoch}, {why}): give more distinct documents, lower "
                    "data.val_docs or train on fewer ranks"
                )
            if on_empty_epoch is not None:
                on_empty_epoch(epoch, why)
        epoch, first_doc, offset = epoch + 1, 0, 0


def drawn_by() -> str:
    """The libraries whose seeded draws make the holdout and the epoch order ('Python 3.11.7, NumPy 2.1.3')."""
    import platform

    return f"Python {platform.python_version()}, NumPy {np.__version__}"


def same_source(saved: object, mine: str) -> bool:
    """Whether a saved position's source is this one. Local files count by where they are, not how data.path was
    typed: relative (resolved against this directory, as a position saved before paths were made absolute has it)
    or absolute, with or without ~."""
    if saved == mine:
        return True
    if not (isinstance(saved, str) and saved.startswith(LOCAL_SOURCE) and mine.startswith(LOCAL_SOURCE)):
        return False
    where = [os.path.abspath(os.path.expanduser(s.removeprefix(LOCAL_SOURCE))) for s in (saved, mine)]
    return where[0] == where[1]


def moved_local(saved: object, mine: str) -> bool:
    """Both local files, at different places (a corpus moved to another disk)."""
    return isinstance(saved, str) and saved.startswith(LOCAL_SOURCE) and mine.startswith(LOCAL_SOURCE)


def batches(windows: Iterator[tuple[np.ndarray, Position]], micro_batch: int) -> Iterator[tuple[np.ndarray, Position]]:
    """Stack windows into int64 [micro_batch, seq_len+1] with the position after the last one."""
    rows: list[np.ndarray] = []
    for window, after in windows:
        rows.append(window)
        if len(rows) == micro_batch:
            yield np.stack(rows), after
            rows = []


def to_xy(block: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.from_numpy(block)  # [B, T+1]
    return t[:, :-1].contiguous(), t[:, 1:].contiguous()  # [B, T], [B, T]


class TrainStream:
    """Iterator of (x, y) LongTensor [micro_batch, seq_len] for this rank, prepared by a background thread.

    The thread starts on ``start()`` or the first ``__next__`` (so ``load_state_dict`` can come first).
    ``state_dict`` is the position after the last batch handed out, not what the thread has read ahead;
    each rank has its own, so a DDP checkpoint stores one per rank.
    """

    def __init__(self, cfg: Any, tokenizer: Tokenizer, rank: int, world_size: int, micro_batch: int):
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world size {world_size}")
        if micro_batch < 1:
            raise DataError(f"micro batch must be positive, got {micro_batch}")
        check_source(cfg)
        self._cfg, self._tok = cfg, tokenizer
        self._rank, self._world, self._micro_batch = rank, world_size, micro_batch
        self._seq_len = cfg.train.seq_len
        self.description = cfg.data.source_description
        self._position = Position(0, 0, 0)
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=cfg.data.prefetch)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._delivered = 0
        self._source: DocSource | None = None  # opened by the thread
        # called every WAIT_REPORT_S while the first batch is awaited: (seconds waited, documents replayed so far,
        # the saved position's document) -- a resumed stream re-reads up to its position, which can take long
        self.on_first_batch_wait: Callable[[float, int, int], None] | None = None
        # epochs this rank passed over as its share held nothing it trains on (doc_tokens), counted by the data
        # thread; called with (epoch, why, how many so far) from that thread
        self.empty_epochs = 0
        self.on_empty_epoch: Callable[[int, str, int], None] | None = None
        # the checkpoint a resume loads the position from, which a refusal names as the new run's weights (the
        # trainer sets it before load_state_dict or reshard)
        self.weights_from: object = "RUN_DIR"

    # -- position -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "version": STATE_VERSION,
            "source": self.description,
            "text_field": self._cfg.data.text_field,
            "tokenizer": self._tok.name,
            "seq_len": self._seq_len,
            "seed": self._cfg.data.seed,
            "val_docs": self._cfg.data.val_docs,
            "rank": self._rank,
            "world_size": self._world,
            "micro_batch": self._micro_batch,
            "epoch": self._position.epoch,
            "doc": self._position.doc,
            "offset": self._position.offset,
        }
        fingerprint = self._source.fingerprint if self._source is not None else None
        if fingerprint is not None:  # local files: what the position counts in (None until the source is open)
            state["fingerprint"] = fingerprint
        if self._source is not None and hasattr(self._source, "order_digest"):  # map-style: the seeded draws
            state["order_digest"] = self._source.order_digest
            state["drawn_by"] = drawn_by()
        return state

    def load_state_dict(self, state: dict) -> None:
        if self._thread is not None:
            raise DataError("the data position can only be loaded before the stream starts")
        self._check_saved(state, ("rank", "world_size"))
        self._position = self._saved_position(state)
        self._check_fingerprint(state)
        self._check_order(state)

    def reshard(self, states: list[dict]) -> Reshard:
        """Continue the positions another number of ranks saved (rank r's at index r) on this rank (--reshard): from
        their frontier on, no training document skipped, the ones read again counted (reshard.py). Map-style
        sources only: a hub stream's shards (split_dataset_by_node) depend on the world size and cannot seek."""
        if self._thread is not None:
            raise DataError("the data position can only be loaded before the stream starts")
        if self._cfg.data.source == "hf":
            what = f"{self.description} is streamed (data.source=hf)"
            ranks = f"{len(states)} rank{'' if len(states) == 1 else 's'}"
            raise DataError(streamed_refusal(what, ranks, self.weights_from))
        for r, state in enumerate(states):
            self._check_saved(state, ())
            if state.get("rank") != r or state.get("world_size") != len(states):
                raise DataError(f"--reshard: saved data position {r} is not rank {r} of {len(states)}: {state!r}")
        positions = [self._saved_position(state) for state in states]
        self._check_fingerprint(states[0])  # every rank's fingerprint is of the same files
        self._check_order(states[0])
        if self._source is None:
            self._source = open_source(self._cfg, self._rank, self._world)
        plan = plan_reshard(positions, self._source.n_train)  # type: ignore[attr-defined]
        self._position = plan.start(self._rank, self._world)
        return plan

    def reread(self, plan: Reshard) -> tuple[int, int]:
        """The documents of `plan`'s read again that training had read, and their tokens. The plan's entries are
        what the old ranks were dealt, skipped ones too (empty, held-out copies, and all of a share a rank passed
        over as holding none it trains on): those were not read, so they count neither as documents nor tokens."""
        source = self._source
        assert source is not None, "reshard() opens the source"
        documents, tokens, orders = 0, 0, {}
        for epoch, entry, offset in plan.reread:
            if epoch not in orders:
                orders = {epoch: source.epoch_order(epoch)}  # type: ignore[attr-defined]
            if offset:  # begun: read up to there
                documents, tokens = documents + 1, tokens + offset
            elif text := source.trained_text(orders[epoch][entry]):  # type: ignore[attr-defined]
                documents, tokens = documents + 1, tokens + len(self._tok.encode_array(text)) + 1  # + its EOS
        return documents, tokens

    def _check_saved(self, state: dict, also: tuple[str, ...]) -> None:
        """A saved position's settings against this stream's (and `also`: the rank and world size of an exact
        resume)."""
        mine = self.state_dict()
        if state.get("version") != STATE_VERSION:
            raise DataError(f"saved data position has version {state.get('version')!r}, expected {STATE_VERSION}")
        for key in ("source", "text_field", "tokenizer", "seq_len", "seed", "val_docs", *also):
            if key == "text_field" and key not in state:
                continue  # saved before the field was recorded: the source's name is all there is to compare
            if key == "source" and same_source(state.get(key), mine[key]):
                continue
            if key == "source" and moved_local(state.get(key), mine[key]) and state.get("fingerprint") is not None:
                continue  # local files elsewhere: the same files by the fingerprint (names relative, sizes), below
            if state.get(key) != mine[key]:
                raise DataError(
                    f"saved data position was for {key}={state.get(key)!r}, this run has {mine[key]!r}: "
                    "the stream cannot resume exactly"
                )

    @staticmethod
    def _saved_position(state: dict) -> Position:
        try:
            return Position(int(state["epoch"]), int(state["doc"]), int(state["offset"]))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"saved data position is incomplete or corrupt: {state!r}") from e

    def _check_fingerprint(self, state: dict) -> None:
        if state.get("fingerprint") is not None:  # absent before it was recorded: nothing to compare then
            # opened here, not by the thread: a refused resume must fail before training, where it is asked for
            source = self._source = open_source(self._cfg, self._rank, self._world)
            if source.fingerprint is not None:
                change = fingerprint_change(
                    shown(str(self._cfg.data.path)), state["fingerprint"], source.fingerprint, self.weights_from
                )
                if change:
                    raise DataError(change)

    def _check_order(self, state: dict) -> None:
        """The holdout and the epoch order the saved position counts in, drawn again here from data.seed: refused
        where this Python or NumPy draws others (absent from positions saved before it was recorded)."""
        saved = state.get("order_digest")
        if saved is None or self._cfg.data.source == "hf":
            return
        if self._source is None:
            self._source = open_source(self._cfg, self._rank, self._world)
        if self._source.order_digest != saved:  # type: ignore[attr-defined]
            then, now = state.get("drawn_by"), drawn_by()
            why = (
                f"this {now} draws others than {then or 'the versions that saved it'} (an upgrade, or other documents)"
                if then != now
                else f"the same {now} drew them from other documents (their number changed since the checkpoint)"
            )
            raise DataError(
                f"the held-out documents or the epoch order of {self.description} drawn from data.seed="
                f"{self._cfg.data.seed} are not the ones the checkpoint's data position counts in: {why}, so the run "
                "would train on former validation documents and could not continue its stream. Resume with the "
                f"versions and data that saved it, or start a new run from the checkpoint's weights "
                f"{init_from_hint(self.weights_from)}"
            )

    # -- iteration ------------------------------------------------------------------------------
    def __iter__(self) -> TrainStream:
        return self

    def start(self) -> None:
        """Begin prefetching now (optional: the first ``__next__`` starts it), e.g. while the model builds."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, name=f"data-prefetch-rank{self._rank}", daemon=True)
            self._thread.start()

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.start()
        kind, payload = self._take()
        if kind == "error":
            self.close()
            raise payload
        x, y, self._position = payload
        self._delivered += 1
        return x, y

    @property
    def replayed(self) -> int:
        """Documents the source has re-read so far to reach the saved position (a stream cannot seek)."""
        return self._source.replayed if self._source is not None else 0

    def _take(self) -> tuple[str, Any]:
        timeout = self._cfg.data.first_batch_timeout_s if self._delivered == 0 else None
        t0 = time.monotonic()
        deadline = None if timeout is None else t0 + timeout
        replayed, reported = 0, t0
        while True:
            wait = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - time.monotonic()))
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                pass
            now = time.monotonic()
            if deadline is not None and self.replayed > replayed:
                # replaying towards a resume's position is progress: the timeout is for a source that stopped
                replayed, deadline = self.replayed, now + timeout  # type: ignore[operator]
            if deadline is not None and self.on_first_batch_wait is not None and now - reported >= WAIT_REPORT_S:
                reported = now
                self.on_first_batch_wait(now - t0, self.replayed, self._position.doc)
            if deadline is not None and now >= deadline:
                self.close()
                if replayed:
                    raise DataError(
                        f"the resume's replay of {self.description} to its saved document {self._position.doc} "
                        f"stopped at {replayed} for {timeout:g}s (data.first_batch_timeout_s): the source is slow, "
                        "blocked or unreachable"
                    )
                raise DataError(
                    f"no training batch from {self.description} within {timeout:g}s "
                    "(data.first_batch_timeout_s): the source is slow, blocked or unreachable"
                )
            if self._thread is not None and not self._thread.is_alive() and self._queue.empty():
                raise DataError(f"the data thread for {self.description} stopped without an error or a batch")

    def _produce(self) -> None:
        try:
            if self._source is None:  # a resume with a fingerprint opened it already, to compare
                self._source = open_source(self._cfg, self._rank, self._world)
            source = self._source
            docs = doc_tokens(source, self._tok, self._position, self._empty_epoch, self.weights_from)
            for block, after in batches(pack_windows(docs, self._seq_len), self._micro_batch):
                x, y = to_xy(block)
                if not self._put(("batch", (x, y, after))):
                    return
        except Exception as e:
            if not isinstance(e, DataError):
                wrapped = DataError(f"reading {self.description} failed: {type(e).__name__}: {e}")
                wrapped.__cause__ = e
                e = wrapped
            self._put(("error", e))

    def _empty_epoch(self, epoch: int, why: str) -> None:
        self.empty_epochs += 1
        if self.on_empty_epoch is not None:
            self.on_empty_epoch(epoch, why, self.empty_epochs)

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                pass
        return False

    def close(self) -> None:
        """Stop the prefetch thread (it exits at its next put; a thread stuck in a read is a daemon)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * _POLL_S)


def val_batches(
    cfg: Any,
    tokenizer: Tokenizer,
    micro_batch: int,
    n_batches: int,
    rank: int,
    world_size: int,
    accum: int = 1,
    on_source: Callable[[DocSource], None] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's share of the held-out windows: the same count on every rank, at most n_batches micro-batches.

    Every rank packs all validation documents (they are few) and takes windows rank, rank+world_size, ...: the
    windows scored are the first ones, as many as fit. A holdout with room for at least one whole batch
    (micro_batch x world_size x accum windows) is cut to whole batches, so the windows scored are the same however
    the batch is split over ranks and accumulation; a smaller one is cut to whole micro-batches.

    A hub dataset is read over the network: its opening and first documents get data.first_batch_timeout_s, as the
    first training batch does (a hub that accepts connections and never answers hung the start for good).

    ``on_source`` is handed the opened source (the trainer counts its documents and tokens: summary.py)."""

    def read() -> tuple[Any, list[DocTokens], int]:
        source = open_source(cfg, rank, world_size)
        texts = source.val_texts()
        empty = sum(1 for t in texts if not t.strip())  # held out all the same: said when the holdout is too small
        return (
            source,
            [
                DocTokens(Position(0, i, 0), with_eos(tokenizer.encode_array(t), tokenizer.eos_id))
                for i, t in enumerate(texts)
            ],
            empty,
        )

    if cfg.data.source == "hf":
        timeout = cfg.data.first_batch_timeout_s
        late = (
            f"no validation documents from {cfg.data.source_description} within {timeout:g}s "
            "(data.first_batch_timeout_s): the source is slow, blocked or unreachable"
        )
        source, docs, empty = within(timeout, read, late)
    else:  # local files: opening a large corpus (its Arrow cache) may take long, and needs no network
        source, docs, empty = read()
    if on_source is not None:
        on_source(source)
    seq_len = cfg.train.seq_len
    windows = [w for w, _ in pack_windows(iter(docs), seq_len)]
    whole = len(windows) // (micro_batch * world_size * accum)
    per_rank = min(n_batches, whole * accum if whole else len(windows) // (micro_batch * world_size))
    if per_rank == 0:
        # every way out: raising val_docs alone went in a circle on a small corpus ("lower data.val_docs" next)
        tokens = sum(len(d.tokens) for d in docs)
        of_them = f" ({empty} of them empty)" if empty else ""
        raise DataError(
            f"validation holdout of {source.description} is too small: data.val_docs={cfg.data.val_docs} "
            f"documents{of_them} hold {tokens:,} tokens, {len(windows)} windows of {seq_len + 1}, and one "
            f"evaluation batch takes {micro_batch * world_size} ({micro_batch} per rank x {world_size} rank(s), "
            f"{micro_batch * world_size * (seq_len + 1):,} tokens): raise data.val_docs, lower train.seq_len or "
            "train.batch_size, or give more text"
        )
    mine = windows[rank::world_size][: per_rank * micro_batch]
    return [to_xy(np.stack(mine[i : i + micro_batch])) for i in range(0, len(mine), micro_batch)]


def within(timeout_s: float, work: Callable[[], T], late: str) -> T:
    """``work()`` in a thread, its result or its exception here; a DataError saying ``late`` once ``timeout_s``
    pass (the thread, stuck in a read no timeout reaches, is a daemon: the process ends without it)."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["value"] = work()
        except BaseException as e:  # handed to the caller, whatever it is
            done["error"] = e

    thread = threading.Thread(target=run, name="data-open", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise DataError(late)
    if "error" in done:
        raise done["error"]
    return done["value"]


def held_out_said(cfg: Any, scored: int) -> str:
    """The held-out sequences an evaluation scores, and what eval_batches asked when the holdout holds fewer (it was
    cut without a word: "2 val batches" where 8 were configured)."""
    asked = cfg.train.eval_batches * cfg.train.batch_size
    cut = f" (of {asked} asked: train.eval_batches x train.batch_size; the holdout holds no more)"
    return f"{scored} held-out sequences per evaluation{cut if scored < asked else ''}"
