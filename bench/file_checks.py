"""What the start-up checks on files cost: the numbers docs/data.md, docs/launch.md and docs/nsa.md quote.

    .venv/bin/python bench/file_checks.py [--gib 1] [--repeat 3] [--dir DIR]

Writes a file of --gib GiB (random bytes) and a torch.save checkpoint of about that size under --dir (default: a
temp dir on /tmp), then times, each --repeat times with the file in the page cache (medians):
  - the data listing's content sample of the file (nsa_train.data.fingerprint.content_sample: <= 160 KiB read)
    against hashing it whole with the same blake2b;
  - verify_archive with its CRC pass (nsa_train.runtime.checkpoint: a resume reads the whole checkpoint once),
    per GiB;
  - parsing the embedded corpus (nsa_train.data.corpus.embedded_documents, in a fresh process);
  - the resident memory that importing sympy and torch._dynamo adds to a process that has imported torch (each in
    a fresh process): what a layer's backward or torch.utils.checkpoint would pull in.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _args import positive_float, positive_int
from _needs import needs  # bench/ is the running script's own directory, first on sys.path

needs("torch")

GIB = 2**30


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    fn()  # into the page cache
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _hash_whole(path: Path) -> str:
    h = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * 2**20):
            h.update(chunk)
    return h.hexdigest()


def _child(code: str) -> str:
    """One fresh interpreter's stdout (imports measured there are not yet in this process)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


# the resident set now (VmRSS), not its peak: importing torch peaks above where it settles
IMPORT_RSS = (
    "import torch\n"
    "def rss(): return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024\n"
    "a = rss()\n"
    "import {module}\n"
    "print(rss() - a)\n"
)
CORPUS = (
    "import time\n"
    "t = time.perf_counter()\n"
    "from nsa_train.data.corpus import embedded_documents\n"
    "docs = embedded_documents()\n"
    "print(time.perf_counter() - t, len(docs))\n"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=positive_float, default=1.0, help="size of the data file and the checkpoint")
    ap.add_argument("--repeat", type=positive_int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="where the files are written (default: a temp dir)")
    args = ap.parse_args()
    if args.dir is not None:  # made if missing, as status_speed.py and report_speed.py make theirs
        try:
            args.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            ap.error(f"--dir {args.dir}: {e.strerror}")

    import torch

    from nsa_train.data.fingerprint import content_sample
    from nsa_train.runtime.checkpoint import verify_archive

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        data = Path(tmp) / "data.bin"
        size = int(args.gib * GIB)
        with open(data, "wb") as fh:
            for start in range(0, size, 64 * 2**20):  # the last chunk short: --gib 0.01 is 0.01 GiB, not empty
                fh.write(os.urandom(min(64 * 2**20, size - start)))
        st = os.stat(data)
        sample_s = _median_s(lambda: content_sample(str(data), st), args.repeat)
        whole_s = _median_s(lambda: _hash_whole(data), args.repeat)
        gib = st.st_size / GIB
        rows.append((f"content sample of a {gib:.2f} GiB file (`content_sample`)", f"{sample_s * 1e3:.2f} ms"))
        rows.append((f"blake2b of the whole {gib:.2f} GiB file", f"{whole_s:.2f} s"))
        data.unlink()

        ckpt = Path(tmp) / "ckpt.pt"
        torch.save({"w": torch.randn(size // 4)}, ckpt)
        verify_s = _median_s(lambda: verify_archive(ckpt), args.repeat)
        index_s = _median_s(lambda: verify_archive(ckpt, checksums=False), args.repeat)
        ck_gib = ckpt.stat().st_size / GIB
        rows.append((f"`verify_archive` CRC pass, {ck_gib:.2f} GiB checkpoint", f"{verify_s / ck_gib:.2f} s per GiB"))
        rows.append(("`verify_archive(checksums=False)` (its index only)", f"{index_s * 1e3:.2f} ms"))

    runs = [_child(CORPUS).split() for _ in range(args.repeat)]
    corpus_s = statistics.median(float(r[0]) for r in runs)
    rows.append((f"parse the embedded corpus ({runs[0][1]} documents, fresh process)", f"{corpus_s:.2f} s"))
    for module in ("sympy", "torch._dynamo"):
        mb = statistics.median(float(_child(IMPORT_RSS.format(module=module))) for _ in range(args.repeat))
        rows.append((f"resident memory `import {module}` adds after torch", f"{mb:.0f} MiB"))

    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, median of {args.repeat}, files in the page cache\n")
    print("| what | cost |\n|---|---:|")
    for what, cost in rows:
        print(f"| {what} | {cost} |")


if __name__ == "__main__":
    main()
