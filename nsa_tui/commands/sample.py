"""`nsa sample [RUN|CHECKPOINT] [--prompt TEXT ...] [--max-new-tokens N] [--temperature T] [--top-k K]
[--seed S] [--best|--latest] [--device D] [--host HOST [--remote-dir DIR]] [--json]`: text from a
trained checkpoint. With --host it runs where the checkpoint is (the `nsa sample` there, found as
every --host command finds `nsa`), and its output comes back as it is.

With --json every sample carries repetition metrics (distinct-1/2/3, the longest back-to-back
repeat; docs/after.md) so mode collapse is a number. torch is imported inside the command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from nsa_tui.commands._options import HostOpt, RemoteDirOpt, check_remote_dir
from nsa_tui.errors import NOT_FOUND_EXIT, USAGE_EXIT, UserError, fail
from nsa_tui.reader_gone import decided

DEFAULT_PROMPTS = ("ROMEO:", "The ")


def run_sample(
    target: str | None,
    prompts: list[str],
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
    which: str | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """{checkpoint, step, device, note, samples: [{prompt, text, seed, metrics}]}: sample i uses seed + i."""
    from nsa_train.telemetry import schema
    from nsa_tui.rundir import no_run_dir, resolve_run, runs_root

    p = Path(target) if target is not None else None
    a_file = False
    if p is not None:
        try:
            if p.suffix == schema.CHECKPOINT_SUFFIX and not p.exists() and not (runs_root() / p).is_dir():
                # a checkpoint's path, not a run's: "no run directory" would send the user looking for the wrong thing
                where = "" if p.is_absolute() else f" (looked at {p.absolute()})"
                raise UserError(f"checkpoint file {target} does not exist{where}", NOT_FOUND_EXIT)
            a_file = p.is_file()
        except OSError as e:  # a name over NAME_MAX: it was a traceback
            raise no_run_dir(p, e) from None
    if p is None or not a_file:
        p = resolve_run(target)  # None: the newest run
    from nsa_train.sample import SampleError, generate, load_for_sampling, repetition_metrics, resolve_checkpoint

    try:
        ckpt = resolve_checkpoint(p, which)
        loaded = load_for_sampling(ckpt, device)
        samples = []
        for i, prompt in enumerate(prompts):
            text = generate(
                loaded, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed + i
            )
            samples.append({"prompt": prompt, "text": text, "seed": seed + i, "metrics": repetition_metrics(text)})
    except SampleError as e:
        raise UserError(str(e), NOT_FOUND_EXIT) from None
    return {
        "checkpoint": str(ckpt),
        "step": loaded.step,
        "device": str(loaded.device),
        "note": loaded.note,  # null, or that the checkpoint is another run's, or of other NSA maths
        "samples": samples,
    }


@dataclass(frozen=True)
class SampleOptions:
    """What to generate, as the command line gave it (top_k 0: no filter; which None: best when it exists)."""

    prompts: list[str]
    max_new_tokens: int
    temperature: float
    top_k: int
    seed: int
    which: str | None
    device: str


def remote_sample_argv(target: str | None, o: SampleOptions, json_out: bool) -> list[str]:
    """The `nsa sample` argv for the host: every option spelled out, so the host's defaults never differ; the
    target last, after '--' (a run name may start with '-')."""
    argv = ["sample"]
    for p in o.prompts:
        argv += ["--prompt", p]
    argv += ["--max-new-tokens", str(o.max_new_tokens), "--temperature", repr(o.temperature), "--top-k", str(o.top_k)]
    argv += ["--seed", str(o.seed), "--device", o.device]
    if o.which is not None:
        argv.append(f"--{o.which}")
    if json_out:
        argv.append("--json")
    return argv if target is None else [*argv, "--", target]


def register(app: typer.Typer) -> None:
    @app.command("sample")
    def sample(
        target: Annotated[
            str | None,
            typer.Argument(metavar="[RUN|CHECKPOINT]", help="run dir/name or a .pt checkpoint (default: newest run)"),
        ] = None,
        prompt: Annotated[list[str] | None, typer.Option("--prompt", "-p", help="prompt (repeatable)")] = None,
        max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=1)] = 200,
        temperature: Annotated[float, typer.Option("--temperature", "-t", min=0.0, max=100.0, help="0 = greedy")] = 0.8,
        top_k: Annotated[int, typer.Option("--top-k", min=0, help="0 = no top-k filter")] = 50,
        seed: Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="sample i uses seed + i")] = 0,
        best: Annotated[
            bool, typer.Option("--best", help="the best-by-val checkpoint (default when it exists)")
        ] = False,
        latest: Annotated[bool, typer.Option("--latest", help="the newest checkpoint")] = False,
        device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda")] = "auto",
        json_out: Annotated[bool, typer.Option("--json", help="JSON with repetition metrics per sample")] = False,
        host: HostOpt = None,
        remote_dir: RemoteDirOpt = None,
    ) -> None:
        """Generate text from a run's best (or latest) checkpoint."""
        if best and latest:
            fail("--best and --latest exclude each other", USAGE_EXIT)
        if device not in ("auto", "cpu", "cuda"):
            fail(f"--device must be auto, cpu or cuda, not {device!r}", USAGE_EXIT)
        options = SampleOptions(
            prompt or list(DEFAULT_PROMPTS),
            max_new_tokens,
            temperature,
            top_k,
            seed,
            "best" if best else "latest" if latest else None,
            device,
        )
        try:
            code = sample_here_or_on_host(target, options, json_out, host, remote_dir)
        except UserError as e:
            fail(str(e), e.code)
        raise typer.Exit(code)


def sample_here_or_on_host(
    target: str | None, o: SampleOptions, json_out: bool, host: str | None, remote_dir: str | None
) -> int:
    """Sample here and print the result (text, or JSON), or run `nsa sample` on ``host``, which prints its own: the
    exit status (UserError for a user's mistake)."""
    check_remote_dir(host, remote_dir)
    if host is not None:
        from nsa_tui.launch.remote import run_nsa

        return run_nsa(host, remote_dir, remote_sample_argv(target, o, json_out))[0]
    out = run_sample(
        target,
        o.prompts,
        max_new_tokens=o.max_new_tokens,
        temperature=o.temperature,
        top_k=o.top_k or None,
        seed=o.seed,
        which=o.which,
        device=o.device,
    )
    code = decided(0)  # before the output: a reader may leave early
    print(json.dumps(out, indent=2) if json_out else samples_text(out))
    return code


def samples_text(out: dict[str, Any]) -> str:
    """run_sample's result for a terminal: the checkpoint, then each prompt's text and its repetition metrics."""
    lines = [f"# {out['checkpoint']} (step {out['step']}, {out['device']})"]
    if out.get("note"):
        lines.append(f"# note: {out['note']}")
    for s in out["samples"]:
        m = s["metrics"]
        d = ", ".join(f"{m[k]:.2f}" if m[k] is not None else "-" for k in ("distinct_1", "distinct_2", "distinct_3"))
        chars = m["longest_char_repeat"]["chars"]
        lines += [
            f"\n--- prompt {s['prompt']!r} (seed {s['seed']})",
            s["prompt"] + s["text"],
            f"--- distinct-1/2/3 {d} | longest repeat {m['longest_repeat']['words']} words, "
            f"{chars} of {m['chars']} characters",
        ]
    return "\n".join(lines)
