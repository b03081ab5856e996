"""Generate text from a trained checkpoint, and measure how repetitive it is.

The checkpoint is loaded as the trainer loads it (``torch.load(weights_only=True)``: no pickled
code runs), the model is rebuilt from the config stored inside it, the tokenizer from that
config's data section. Generation recomputes the whole forward per new token over the last
``seq_len`` tokens (simple and exact; no KV cache yet).

The repetition metrics are plain Python and numpy (no torch) and defined in docs/after.md:
``distinct_n(words, n)``, ``longest_repeat(words)`` and ``longest_char_repeat(text)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# cycle lengths considered for back-to-back repeats of words: a repeated sentence, not only a repeated phrase; a
# bound keeps a long sample's cost linear in its length (one vector pass over it per n)
MAX_REPEAT_N = 256
# and of characters: a repeated line or paragraph, not only a collapsed word
MAX_CHAR_REPEAT_N = 1024


# ------------------------------------------------------------------ repetition metrics (pure)
def words_of(text: str) -> list[str]:
    return text.split()


def distinct_n(words: list[str], n: int) -> float | None:
    """Unique n-grams / all n-grams of the word sequence; None when it has fewer than n words."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def _longest_cycle(a: Any, max_n: int) -> tuple[int, int, int, int] | None:
    """(span, n, copies, start) of the longest span of back-to-back copies (at least 2) of one cycle of
    1 <= n <= max_n items of the integer array `a`; ties go to the smaller n, then the earlier start. None when
    nothing repeats back to back. Shared by the word and the character repeat (words mapped to integer ids)."""
    import numpy as np

    best: tuple[int, int, int, int] | None = None
    size = len(a)
    for n in range(1, min(max_n, size // 2) + 1):
        if best is not None and (size // n) * n <= best[0]:
            continue  # even the whole text in copies of n cannot beat it (a tie goes to the smaller n)
        # c back-to-back copies from k <=> a[j] == a[j + n] for the (c - 1) * n positions j from k on: one vector
        # comparison per n, then the maximal runs of matches, each judged at its first position (a later start in
        # a run has no more copies). A per-item Python loop took seconds for cycles of a few hundred on 4k items
        eq = np.concatenate(([False], a[:-n] == a[n:], [False]))
        edges = np.flatnonzero(eq[1:] != eq[:-1])  # starts and ends of the runs of matches, alternately
        starts, runs = edges[0::2], edges[1::2] - edges[0::2]
        # a run of r matches from k: r // n + 1 back-to-back copies from k (only runs of at least n make 2)
        spans = (runs // n + 1) * n * (runs >= n)
        if not len(spans):
            continue
        i = int(np.argmax(spans))  # the first of the longest: the earlier start wins a tie
        if spans[i] > (best[0] if best is not None else 0):
            best = (int(spans[i]), n, int(runs[i]) // n + 1, int(starts[i]))
    return best


def longest_repeat(words: list[str], max_n: int = MAX_REPEAT_N) -> dict[str, Any]:
    """The longest span made of back-to-back copies (at least 2) of one n-gram, 1 <= n <= max_n words.

    Returns {"words": span length in words (0 when nothing repeats back to back), "n", "copies",
    "ngram", "start"}; ties go to the smaller n, then the earlier start.
    """
    import numpy as np

    ids: dict[str, int] = {}
    # equal words <=> equal ids, so the character search's integer routine serves words too
    a = np.fromiter((ids.setdefault(w, len(ids)) for w in words), dtype=np.int64, count=len(words))
    found = _longest_cycle(a, max_n)
    if found is None:
        return {"words": 0, "n": None, "copies": 0, "ngram": None, "start": None}
    span, n, copies, k = found
    return {"words": span, "n": n, "copies": copies, "ngram": " ".join(words[k : k + n]), "start": k}


def longest_char_repeat(text: str, max_n: int = MAX_CHAR_REPEAT_N) -> dict[str, Any]:
    """longest_repeat over the characters (whitespace included), cycles of 1 <= n <= max_n characters: a byte-level
    model that collapses inside a word ("OOOOOOOO", "abcabcabc") makes one word, which the word metrics call
    perfectly diverse, and a repeated line of code is a cycle of tens of characters.
    {"chars": span length in characters, "n", "copies", "ngram", "start": character index}; the same ties."""
    import numpy as np

    a = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")  # code points
    found = _longest_cycle(a, max_n)
    if found is None:
        return {"chars": 0, "n": None, "copies": 0, "ngram": None, "start": None}
    span, n, copies, k = found
    return {"chars": span, "n": n, "copies": copies, "ngram": text[k : k + n], "start": k}


def repetition_metrics(text: str) -> dict[str, Any]:
    w = words_of(text)
    return {
        "words": len(w),
        "distinct_1": distinct_n(w, 1),
        "distinct_2": distinct_n(w, 2),
        "distinct_3": distinct_n(w, 3),
        "longest_repeat": longest_repeat(w),
        "chars": len(text),
        "longest_char_repeat": longest_char_repeat(text),
    }


# ------------------------------------------------------------------ loading
class SampleError(Exception):
    """A path or checkpoint that cannot be sampled from; one line."""


def resolve_checkpoint(target: Path, which: str | None = None) -> Path:
    """A checkpoint file as given, or a run directory's ``best`` (default when it exists) or ``latest``."""
    from nsa_train.runtime.checkpoint import CheckpointError, checkpoint_dir, read_pointer
    from nsa_train.telemetry import schema

    if target.is_file() and target.name in (schema.BEST_POINTER, schema.LATEST_POINTER):
        # checkpoints/best or checkpoints/latest given as a path: the pointer, not a checkpoint; follow it
        try:
            path = read_pointer(target.parent, target.name)
        except CheckpointError as e:
            raise SampleError(str(e)) from None
        if path is None:
            raise SampleError(f"{target} is an empty pointer: no {target.name!r} checkpoint yet")
        return path
    if target.is_file():
        return target
    if not target.is_dir():
        raise SampleError(f"{target} is neither a checkpoint file nor a run directory")
    ckpt_dir = checkpoint_dir(target)
    if not ckpt_dir.is_dir() and not (target / schema.CONFIG_YAML).is_file():
        raise SampleError(f"{target} is not a run directory (no config.yaml, no checkpoints/) nor a checkpoint file")
    order = [which] if which else [schema.BEST_POINTER, schema.LATEST_POINTER]
    others = [p for p in (schema.BEST_POINTER, schema.LATEST_POINTER) if p not in order]
    pointer = order[0]
    try:
        for pointer in order:
            path = read_pointer(ckpt_dir, pointer)
            if path is not None:
                return path
        if any(read_pointer(ckpt_dir, p) is not None for p in others):
            raise SampleError(f"no {which!r} checkpoint in {ckpt_dir} yet: leave out --{which}, or use --{others[0]}")
    except CheckpointError as e:
        raise SampleError(f"{e}{_other_pointer_hint(ckpt_dir, pointer)}") from None
    if (ended := _how_it_ended(target)) is not None:  # "yet" and the cadence are for a run still training
        raise SampleError(f"no checkpoint in {ckpt_dir}: the run ended ({ended}) before it saved one")
    raise SampleError(f"no checkpoint in {ckpt_dir} yet: {_save_cadence(target)}")


def _other_pointer_hint(ckpt_dir: Path, broken: str) -> str:
    """The other pointer, when it names a checkpoint that is there: what to sample instead of a broken one."""
    from nsa_train.runtime.checkpoint import CheckpointError, read_pointer
    from nsa_train.telemetry import schema

    other = schema.LATEST_POINTER if broken == schema.BEST_POINTER else schema.BEST_POINTER
    try:
        path = read_pointer(ckpt_dir, other)
    except CheckpointError:
        return ""
    return f" (--{other}: {ckpt_dir / other} names {path.name})" if path is not None else ""


def _how_it_ended(run_dir: Path) -> str | None:
    """How the run's current attempt ended, by rank 0's newest end record (before any later boot) or the launcher's
    exit status; None while it may still be running."""
    from nsa_train.telemetry import schema
    from nsa_train.telemetry.readback import heartbeat_files, records_backwards

    hb = heartbeat_files(run_dir).get(0)
    for r in records_backwards(hb) if hb is not None else ():
        if r.get("kind") == schema.KIND_BOOT:
            break
        if r.get("kind") == schema.KIND_END:
            return f"reason {r.get('reason')}, step {r.get('step')}"
    try:
        status = (run_dir / schema.EXIT_STATUS).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return f"exit status {status}" if status else None


def _save_cadence(run_dir: Path) -> str:
    """When the run at ``run_dir`` writes its checkpoints, from its config.yaml (a run that has not saved yet
    is the usual reason for none: the first is at save_every, or at a new best val loss, or at the end)."""
    from nsa_train.config import ConfigError, load_config
    from nsa_train.telemetry import schema

    try:
        train = load_config(run_dir / schema.CONFIG_YAML, []).train
    except (ConfigError, OSError):
        return "a run saves every train.save_every steps, at a new best val loss, at its end and on halt"
    every = f"every {train.save_every} steps (train.save_every), " if train.save_every else ""
    best = "at a new best val loss, " if train.eval_every else ""
    return f"this run saves {every}{best}at its end and on halt (nsa halt)"


@dataclass
class Loaded:
    model: Any  # nsa_train.model.LM, in eval mode
    tokenizer: Any
    cfg: Any
    path: Path
    step: int
    device: Any
    # the checkpoint is another run's than its directory's (another_runs_note), or of other NSA maths (maths_note)
    note: str | None = None


def load_for_sampling(path: Path, device: str = "auto") -> Loaded:
    import torch

    from nsa_train.config import ConfigError, config_from_dict
    from nsa_train.data import DataError, build_tokenizer
    from nsa_train.model import build_model
    from nsa_train.nsa.maths_version import checkpoint_maths, maths_note
    from nsa_train.runtime.checkpoint import CheckpointError, load_checkpoint, load_model_state
    from nsa_train.telemetry import schema

    try:
        state = load_checkpoint(path)
        if not isinstance(state.get("config"), dict):
            raise SampleError(f"{path} holds no config (not written by this trainer?)")
        cfg = config_from_dict(state["config"], where=f"{path} (stored config)")
        tokenizer = build_tokenizer(cfg.data)
        vocab = int(state["model"]["embed.weight"].shape[0])  # the trained size, whatever the config said
        if vocab < tokenizer.vocab_size:  # its token ids would index past the embedding (a traceback, mid-prompt)
            raise SampleError(
                f"{path}: its embedding has {vocab} rows, but its tokenizer ({cfg.data.tokenizer}) has "
                f"{tokenizer.vocab_size} tokens: the stored config is not the one these weights were trained with"
            )
        model = build_model(cfg, vocab)
        load_model_state(model, state["model"], path)
    except (CheckpointError, ConfigError, DataError) as e:
        raise SampleError(str(e)) from None
    except KeyError as e:
        raise SampleError(f"{path} lacks {e} (not a model checkpoint of this trainer)") from None
    if device == "cuda" and not torch.cuda.is_available():
        raise SampleError(f"--device cuda: no CUDA GPU here (torch {torch.__version__}); use --device cpu or auto")
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
    )
    model.to(dev).eval()
    notes = [another_runs_note(path, state.get(schema.CKPT_RUN_ID), state.get(schema.CKPT_RUN_NAME))]
    if cfg.model.attention == "nsa":  # weights of other attention maths sample with this code's: said
        notes.append(maths_note(str(path), checkpoint_maths(state, schema.CKPT_NSA_MATHS), "the samples"))
    note = "; ".join(n for n in notes if n) or None
    return Loaded(model, tokenizer, cfg, path, int(state["step"]), dev, note)


def another_runs_note(path: Path, saved_id: Any, saved_name: Any) -> str | None:
    """What to say of sampling a checkpoint of a run directory that records another run's id than its run.json (an
    earlier run's, which a --force start there left; copied in): these weights are not the directory's run's. None
    for the run's own, one from before ids, or a file outside a run directory."""
    from nsa_train.runtime.resumable import checkpoint_owner, other_run, run_id_of
    from nsa_train.telemetry import schema

    run_dir = path.parent.parent
    own = run_id_of(run_dir) if path.parent.name == schema.CHECKPOINT_DIR else None
    if not other_run(own, saved_id):
        return None
    earlier, owner = checkpoint_owner(saved_id, saved_name, run_dir)
    whose = (
        f"an earlier run in this directory ({owner}), which a --force start replaced"
        if earlier
        else f"another run ({owner})"
    )
    return f"{path.name} was written by {whose}: these are that run's weights, not those of {run_dir} (id {own})"


# ------------------------------------------------------------------ generation
def generate(
    loaded: Loaded,
    prompt: str,
    *,
    max_new_tokens: int,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
) -> str:
    """The continuation of ``prompt`` (without it). temperature 0 is greedy. Stops at EOS."""
    import torch

    tok, model = loaded.tokenizer, loaded.model
    ids = tok.encode(prompt) or [tok.eos_id]  # an empty prompt starts from a document boundary
    window = loaded.cfg.train.seq_len
    gen = torch.Generator(device=loaded.device).manual_seed(seed)
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            ctx = torch.tensor([(ids + new)[-window:]], device=loaded.device)  # [1, T]
            logits = model(ctx)[0, -1].float()  # [V]
            if not bool(torch.isfinite(logits).all()):
                raise SampleError(f"{loaded.path}: the model's next-token logits are not finite (NaN or inf weights?)")
            if temperature <= 0:
                nxt = int(logits.argmax())
            else:
                # shifted by the max first: at any temperature > 0 the largest is 0 and none overflows to inf
                logits = (logits - logits.max()) / temperature
                if top_k is not None and 0 < top_k < logits.numel():
                    kth = torch.topk(logits, top_k).values[-1]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
            if nxt == tok.eos_id:
                break
            new.append(nxt)
    return tok.decode(new)
