"""Do the `-delta` lines `git panini install` writes to `.git/info/attributes` change what `git gc` costs on
a store? Builds one store, copies it per variant (no lines, the old `chunks/** -delta` / `packs/** -delta`,
today's lines scoped to the store's own paths), runs `git gc` in each copy, and prints CPU seconds (git
and its children) and the pack size.

    python bench/delta_attributes.py [WORKDIR] [--mib 48] [--versions 4] [--aggressive]

The store: `--mib` MiB of random files in 8 files, then `--versions - 1` more commits that each rewrite
16 scattered 100-byte spans per file (new chunks nearly equal to old ones: the case where deltas
would pay), and a worker run (its pack data blobs are compressed: deltas never pay there).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import tempfile

from git_panini.cli.install import OLD_STORE_ATTRIBUTES, STORE_ATTRIBUTES

VARIANTS = {"no -delta lines": "", "old chunks/** packs/** lines": OLD_STORE_ATTRIBUTES,
            "scoped lines (today)": STORE_ATTRIBUTES}


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def build(root: str, mib: int, versions: int, work: bool) -> str:
    repo = os.path.join(root, "store")
    git(root, "init", "-q", repo)
    git(repo, "panini", "install")
    git(repo, "panini", "track", "*.bin")
    rng = random.Random(1)
    size = mib * (1 << 20) // 8
    for n in range(8):
        with open(os.path.join(repo, f"f{n}.bin"), "wb") as f:
            f.write(rng.randbytes(size))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    for v in range(2, versions + 1):
        for n in range(8):
            with open(os.path.join(repo, f"f{n}.bin"), "r+b") as f:
                for _ in range(16):
                    f.seek(rng.randrange(size - 100))
                    f.write(rng.randbytes(100))
        git(repo, "commit", "-q", "-am", f"v{v}")
    if work:
        git(repo, "panini", "work")
    return repo


def measure(repo: str, lines: str, aggressive: bool) -> tuple[float, int]:
    attributes = os.path.join(repo, ".git", "info", "attributes")
    text = open(attributes).read() if os.path.exists(attributes) else ""
    text = text.replace(OLD_STORE_ATTRIBUTES, "").replace(STORE_ATTRIBUTES, "")
    with open(attributes, "w") as f:
        f.write(text + lines)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    git(repo, "gc", "-q", "--prune=now", *(["--aggressive"] if aggressive else []))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    packs = os.path.join(repo, ".git", "objects", "pack")
    size = sum(os.path.getsize(os.path.join(packs, p)) for p in os.listdir(packs) if p.endswith(".pack"))
    return cpu, size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", nargs="?")
    parser.add_argument("--mib", type=int, default=48)
    parser.add_argument("--versions", type=int, default=4)
    parser.add_argument("--aggressive", action="store_true", help="git gc --aggressive (a deeper delta search)")
    args = parser.parse_args()
    root = args.workdir or tempfile.mkdtemp(prefix="panini-delta-")
    for work in (False, True):
        base = os.path.join(root, f"work-{work}")
        os.makedirs(base, exist_ok=True)
        repo = build(base, args.mib, args.versions, work)
        for name, lines in VARIANTS.items():
            copy = os.path.join(base, "copy")
            shutil.copytree(repo, copy, symlinks=True)
            cpu, size = measure(copy, lines, args.aggressive)
            print(f"store {'after a worker run' if work else 'raw chunks only'}: git gc"
                  f"{' --aggressive' if args.aggressive else ''}, {name}: "
                  f"{cpu:.2f} s CPU, pack {size / (1 << 20):.1f} MiB", flush=True)
            shutil.rmtree(copy)
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
