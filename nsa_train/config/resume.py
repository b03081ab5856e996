"""What a resume cannot change: the config values a checkpoint's weights and data position were made under.

Both sides ask before anything heavy: `nsa launch --resume` before it starts a session (a refused attempt
would mark a finished run as crashed, found only on the next `nsa status`), the trainer before it builds the
data stream and the model. Both name the keys and their two values. The trainer's own checks stay behind
this one (the strict load of the weights, the saved data position's fields), so a key missing here is still
refused, only later and by tensor name; tests/trainer/test_resume_pins.py holds this list to the model's
shapes and the data position's fields, key by key. Standard library only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nsa_train.config.loader import absolute_data_path, config_to_dict, flatten, load_config
from nsa_train.config.schema import TOKENIZER_VOCAB, Config, ConfigError

WEIGHTS = "weights"
DATA = "data position"


def pinned_values(cfg: Config) -> dict[str, tuple[str, object, str]]:
    """Key -> (what depends on it, its value as the model or the data stream resolves it, how to show it): a
    null head_dim and dim // n_heads are the same model, and an MLP ratio counts by the width it rounds up to."""
    m, d = cfg.model, cfg.data
    head_dim = m.resolved_head_dim
    vocab = m.vocab_size or TOKENIZER_VOCAB[d.tokenizer]
    # local files count by where they are: data/x and /work/data/x (typed in /work) are one source
    source = ("local", absolute_data_path(d.path)) if d.source == "local" and d.path else d.source_description
    pins: dict[str, tuple[str, object, str]] = {
        "model.attention": (WEIGHTS, m.attention, m.attention),
        "model.dim": (WEIGHTS, m.dim, str(m.dim)),
        "model.n_layers": (WEIGHTS, m.n_layers, str(m.n_layers)),
        "model.n_heads": (WEIGHTS, m.n_heads, str(m.n_heads)),
        "model.n_kv_heads": (WEIGHTS, m.n_kv_heads, str(m.n_kv_heads)),
        "model.head_dim": (WEIGHTS, head_dim, f"{head_dim}" + (" (dim // n_heads)" if m.head_dim is None else "")),
        "model.mlp_ratio": (WEIGHTS, m.mlp_hidden, f"{m.mlp_ratio:g} (MLP width {m.mlp_hidden})"),
        "model.vocab_size": (
            WEIGHTS,
            vocab,
            f"{vocab}" + (f" (the {d.tokenizer} tokenizer's)" if m.vocab_size is None else ""),
        ),
        "model.tie_embeddings": (WEIGHTS, m.tie_embeddings, str(m.tie_embeddings).lower()),
        "data.tokenizer": (DATA, d.tokenizer, d.tokenizer),  # and, through a null vocab_size, the weights
        # data.path, hf_name, hf_config and hf_split count as the source they name
        "data.source": (DATA, source, repr(d.source_description)),
        "data.text_field": (DATA, d.text_field, repr(d.text_field)),  # the column a document's text comes from
        "data.seed": (DATA, d.seed, str(d.seed)),
        "data.val_docs": (DATA, d.val_docs, str(d.val_docs)),
        "train.seq_len": (DATA, cfg.train.seq_len, str(cfg.train.seq_len)),
    }
    if m.attention == "nsa":
        pins["nsa.l"] = (WEIGHTS, cfg.nsa.l, str(cfg.nsa.l))  # φ's first layer and position encoding span l keys
    return pins


def resume_conflicts(saved: Config, new: Config) -> list[tuple[str, str]]:
    """(key, 'old -> new') for each pinned value that ``new`` changes, in pinned_values' order; a head_dim or
    MLP width that only follows a changed dim (or n_heads), or a vocabulary that only follows the tokenizer, is left
    to that key."""
    before, after = pinned_values(saved), pinned_values(new)
    # a key only one side has (nsa.l across an attention change) goes with model.attention, which differs
    changed = [key for key, (_, value, _) in before.items() if key in after and after[key][1] != value]
    sm, nm = saved.model, new.model
    # derived values that differ only because what they derive from does: the user changed that key, not these
    follows = {
        "model.head_dim": (sm.head_dim is None and nm.head_dim is None, ("model.dim", "model.n_heads")),
        "model.mlp_ratio": (sm.mlp_ratio == nm.mlp_ratio, ("model.dim",)),
        "model.vocab_size": (sm.vocab_size is None and nm.vocab_size is None, ("data.tokenizer",)),
    }
    changed = [
        key
        for key in changed
        if not (key in follows and follows[key][0] and any(k in changed for k in follows[key][1]))
    ]
    said = []
    for key in changed:
        if key == "data.source" and saved.data.source == new.data.source == "local":
            # the source is local files either way: what changed is where they are
            said.append(("data.path", f"{saved.data.path!r} -> {new.data.path!r}"))
        else:
            said.append((key, f"{before[key][2]} -> {after[key][2]}"))
    return said


def moved_corpus(run_dir: Path, saved: Config, new: Config) -> bool:
    """Local files that moved (another data.path) and are the files the run's last start read, by run.json's
    listing (names relative to data.path, sizes, samples of their bytes): a corpus moved to another disk continues
    (the checkpoint's own fingerprint, with the document count, is compared again once they are read). False when
    the listing is not known (a run.json without one, more files than it lists)."""
    return moved_corpus_changes(run_dir, saved, new) == []


def moved_corpus_changes(run_dir: Path, saved: Config, new: Config) -> list[str] | None:
    """For local files at another data.path: how they differ, file by file, from those the run's last start read
    (nsa_train.data.fingerprint.listing_differences; empty: the same files, moved). None when data.path is the
    same, the source is not local files, or run.json's listing is not known."""
    from nsa_train.data.fingerprint import is_listing, listing_differences

    if not (saved.data.source == new.data.source == "local") or saved.data.path == new.data.path:
        return None
    listings = _listings(run_dir, new)
    if listings is None or not is_listing(listings[0]):
        return None
    return listing_differences(*listings)


def _listings(run_dir: Path, new: Config) -> tuple[Any, list[list[Any]]] | None:
    """(run.json's data_listing: the files the run's last start read, the listing of the local files ``new``
    names); None for another source, or when either cannot be read (the trainer's later checks say why)."""
    import json

    from nsa_train.data.errors import DataError
    from nsa_train.data.sources import data_listing
    from nsa_train.telemetry.schema import RUN_DATA_LISTING, RUN_JSON

    if new.data.source != "local" or not new.data.path:
        return None
    try:
        then = json.loads((run_dir / RUN_JSON).read_text(encoding="utf-8")).get(RUN_DATA_LISTING)
        now = data_listing(new.data)
    except (OSError, ValueError, AttributeError, DataError):
        return None
    return None if now is None else (then, now)


def load_saved_config(path: Path) -> Config | None:
    """A run's config.yaml, or None when it is missing or no longer loads (what the checks then leave alone)."""
    if not path.is_file():
        return None
    try:
        return load_config(path, [])
    except ConfigError:
        return None


def check_resume_config(saved_config: Path, new: Config, where: str) -> None:
    """Raise ConfigError when ``new`` changes what the checkpoint of the run at ``where`` depends on.

    ``saved_config`` is the run's config.yaml (the config its latest checkpoint was made under). A run without
    one, or with one that no longer loads, is left to the trainer's own checks."""
    saved = load_saved_config(saved_config)
    if saved is None:
        return
    changed = resume_conflicts(saved, new)
    moved = moved_corpus_changes(saved_config.parent, saved, new)
    if moved == []:  # the same files elsewhere: their position still holds
        changed = [(key, c) for key, c in changed if key != "data.path"]
    elif moved:  # files moved and changed: which ones, not only the path (the user may have moved them on purpose)
        from nsa_train.data.fingerprint import named_changes

        why = f" (not the files the run's last start read: {named_changes(moved)})"
        changed = [(key, c + why if key == "data.path" else c) for key, c in changed]
    if not changed:
        return
    pins = pinned_values(saved)
    depends = " and ".join(sorted({pins[key][0] if key in pins else DATA for key, _ in changed}, reverse=True))
    verb = "depends" if depends == DATA else "depend"
    one = len(changed) == 1
    # its weights fit a new run where only the data position depends on what changed (train.init_from)
    # (not data.tokenizer's: a data key, yet the embeddings are of its tokens, and init_from refuses another)
    fits = WEIGHTS not in depends and "data.tokenizer" not in {key for key, _ in changed}
    weights = f" from its weights (--set train.init_from={where}, in another --run-dir)" if fits else ""
    raise ConfigError(
        f"--resume: {where} cannot continue with {', '.join(f'{k} {c}' for k, c in changed)}: its checkpoint's "
        f"{depends} {verb} on {'it' if one else 'them'}. Resume with the run's values (leave "
        f"{'this key' if one else 'these keys'} out of --set and --config) or start a new run{weights}"
    )


SCHEDULE_KEYS = ("train.lr", "train.min_lr", "train.warmup_steps", "train.steps")


def schedule_change(saved_config: Path, new: Config, step: int) -> str | None:
    """A warning when ``new`` trains a step after ``step`` at another lr than the run's saved schedule did, None when
    it does not (or the saved config is missing or unreadable). The step after ``step`` is compared first; when its
    lr is unchanged (a resume inside the warmup of a run made longer), the first later step whose lr differs is said.

    Not an error: extending a finished cosine (train.steps 600 -> 800) re-warms the lr on purpose for some and by
    surprise for others, who see the loss jump and suspect the resume. Either way it is said before training."""
    from nsa_train.config.schedule import lr_at

    saved = load_saved_config(saved_config)
    if saved is None:
        return None

    def at(c: Config, s: int) -> float:
        t = c.train
        return lr_at(s, lr=t.lr, min_lr=t.min_lr, warmup_steps=t.warmup_steps, total_steps=t.steps)

    changed = [
        f"{key} {old:g} -> {cur:g}"
        for key in SCHEDULE_KEYS
        if (old := getattr(saved.train, key.split(".")[1])) != (cur := getattr(new.train, key.split(".")[1]))
    ]
    if not changed:  # the lr is these keys' alone: the usual resume walks no steps
        return None

    def same(s: int, rel_tol: float) -> bool:
        return math.isclose(at(saved, s), at(new, s), rel_tol=rel_tol, abs_tol=1e-12)

    # the first step 1% apart (what is warned of), stopping there: a changed schedule differs from its warmup's end
    # at the latest; and the first step apart at all, where the curves part
    first = next((s for s in range(step + 1, new.train.steps + 1) if not same(s, 0.01)), None)
    if first is None:
        return None
    parts = next(s for s in range(step + 1, first + 1) if not same(s, 1e-9))
    before, after = at(saved, first), at(new, first)
    ratio = f" ({after / before:.2f}x)" if before > 0 else ""  # a min_lr of 0 ends a schedule at 0
    said = f"step {first} trains at lr {after:.2e}, where the run's schedule had {before:.2e}{ratio}"
    if first > step + 1:  # the lr chart shows no jump at the resume: say where the curves part
        said = f"step {step + 1} trains at the lr the run's schedule had, and from step {parts} on they part: " + said
    msg = f"the lr schedule changes with this resume ({', '.join(changed)}): {said}"
    ended = step >= saved.train.steps and step >= new.train.warmup_steps
    if ended and first == step + 1 and after > before > 0:
        msg += (
            f". To go on at the lr it ended with instead: --set train.lr={before:.2e} --set train.min_lr={before:.2e}"
        )
    return msg


def val_set_change(saved_config: Path, new: Config) -> str | None:
    """A warning when ``new`` scores another validation set than the run's saved config did, None when it does not
    (or the saved config is missing or unreadable).

    The held-out windows scored are train.eval_batches x train.batch_size (split over ranks and accumulation alike),
    and a resume may change either: allowed (a batch size is a choice), but the val losses before and after are then
    not comparable, and the `best` checkpoint is picked across both sets."""
    saved = load_saved_config(saved_config)
    if saved is None:
        return None
    before = saved.train.eval_batches * saved.train.batch_size
    after = new.train.eval_batches * new.train.batch_size
    if before == after:  # with eval_every 0 too: the final evaluation always runs, and picks `best` across both
        return None
    changed = [
        f"{key} {old} -> {cur}"
        for key in ("train.eval_batches", "train.batch_size")
        if (old := getattr(saved.train, key.split(".")[1])) != (cur := getattr(new.train, key.split(".")[1]))
    ]
    msg = (
        f"the validation set changes with this resume ({', '.join(changed)}): {after} held-out windows are scored "
        f"instead of {before} (train.eval_batches x train.batch_size), so val losses before and after it do not "
        "compare, and checkpoints/best is chosen across both"
    )
    if before % new.train.batch_size == 0:  # the same windows again, at this batch size
        msg += f". To keep the run's set: --set train.eval_batches={before // new.train.batch_size}"
    return msg


SHOWN_CHANGES = 8  # keys named in full; the rest are counted


def config_changes(saved_config: Path, new: Config, overrides: list[str]) -> str | None:
    """A warning naming what ``new`` changes in the run's saved config besides the keys this command's --set
    gives; None when nothing else changes, or the saved config is missing or unreadable.

    A config file given on a resume (--config, or a CONFIG left exported in the shell) replaces the run's whole
    config, not only the keys the user had in mind: grad_clip, weight decay, keep_last (which then prunes) changed
    without a word. What a resume cannot change was refused before this (resume_conflicts)."""
    saved = load_saved_config(saved_config)
    if saved is None:
        return None
    given = {o.split("=", 1)[0].strip() for o in overrides}
    old, cur = flatten(config_to_dict(saved)), flatten(config_to_dict(new))
    # train.init_from is not read on a resume (the run keeps its own): not a value "the run goes on with"; a config
    # without one (the shipped file, given with --config) leaves the run's as it is
    init = INIT_FROM not in given and cur.get(INIT_FROM) is not None and old.get(INIT_FROM) != cur.get(INIT_FROM)
    changed = [
        f"{k} {old.get(k)!r} -> {v!r}" for k, v in cur.items() if k not in given and k != INIT_FROM and old.get(k) != v
    ]
    unread = (
        f"its {INIT_FROM} {cur.get(INIT_FROM)!r} is not read on a resume (the run continues its own checkpoint)"
        if init
        else ""
    )
    if not changed:
        return f"this resume's config: {unread}" if unread else None
    more = len(changed) - SHOWN_CHANGES
    listed = ", ".join(changed[:SHOWN_CHANGES]) + (f" and {more} more" if more > 0 else "")
    return (
        f"this resume's config changes the run's beyond --set: {listed}; the run goes on with these values (to keep "
        "the run's own, resume without --config and with CONFIG unset: its config.yaml is read)"
        + (f"; {unread}" if unread else "")
    )


INIT_FROM = "train.init_from"


def ignored_on_resume(overrides: list[str]) -> str | None:
    """A warning for --set keys a resume takes no value from: train.seed seeds the initial weights and the
    random state, and a resume restores both from the checkpoint; train.init_from names a fresh start's weights,
    and a resume continues the run's own checkpoint."""
    given = {o.split("=", 1)[0].strip() for o in overrides}
    said = {
        "train.seed": "the weights and the random state continue from the checkpoint",
        "train.init_from": "the run continues its own checkpoint (init_from is read on a fresh start only)",
    }
    ignored = [f"{key} has no effect on a resume: {why}" for key, why in said.items() if key in given]
    return "; ".join(ignored) or None


def resume_notes(saved_config: Path, new: Config, step: int | None, overrides: list[str]) -> list[str]:
    """What a resume changes that is allowed but worth saying, in the order a reader needs it: keys a config file
    changed beyond --set, the lr schedule (when the checkpoint's step is known), the validation set, a --set that
    does nothing. One list for the trainer's start warnings and `nsa launch --resume`'s plan."""
    saved = load_saved_config(saved_config)
    moved = saved is not None and moved_corpus(saved_config.parent, saved, new)
    said = [
        f"data.path {saved.data.path} -> {new.data.path}: the same files as the run's last start (run.json's "
        "data_listing)"
        if moved and saved is not None
        else None,
        config_changes(saved_config, new, overrides),
        schedule_change(saved_config, new, step) if step is not None else None,
        val_set_change(saved_config, new),
        ignored_on_resume(overrides),
    ]
    return [w for w in said if w]


def missing_config_message(saved_config: Path) -> str:
    """A resume given no config, of a run whose config.yaml is gone: the default config would continue the run
    (another lr, keep_last, ... without a word; a copy of checkpoints/ alone to another machine has none)."""
    return (
        f"--resume: {saved_config} is missing, and it is the config this run continues with: put it back, or pass "
        "the run's config with --config FILE"
    )


def data_change(run_dir: Path, new: Config) -> str | None:
    """Why a resume cannot continue on the local files ``new`` names: they are not the files (names, sizes, samples
    of their bytes) run.json says the run's last start read. None when that is not known (another source, a run.json
    without a listing, files that do not resolve: the trainer's later checks say those)."""
    from nsa_train.data.diagnose import shown
    from nsa_train.data.fingerprint import listing_change

    listings = _listings(run_dir, new)
    return None if listings is None else listing_change(shown(new.data.path), *listings, run_dir.absolute())
