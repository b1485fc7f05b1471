"""Benchmarks git-panini against git-lfs, plain git and xz / zstd / brotli: `python -m bench.run [--quick|--full]`."""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import filecmp
import json
import lzma
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version

from . import corpus

MiB = 1 << 20
KiB = 1 << 10
TOOLS = ("panini", "lfs", "git")
GLOBAL_SETUP = {"panini": [["git", "panini", "install", "--global"]], "lfs": [["git", "lfs", "install"]], "git": []}
REPO_SETUP = {"panini": [["git", "panini", "install"], ["git", "panini", "track", "*.bin"]],
              "lfs": [["git", "lfs", "track", "*.bin"]], "git": []}
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
# Without GNU time: a fresh interpreter runs the command and reports its children's rusage.
RUSAGE_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
                  "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
                  "sys.stderr.write(f'\\nMaximum resident set size (kbytes): {r.ru_maxrss}\\n"
                  "User time (seconds): {r.ru_utime}\\nSystem time (seconds): {r.ru_stime}\\n"
                  "File system outputs: {r.ru_oublock}\\n'); sys.exit(rc)")
SCENARIOS = {}


def scenario(name: str, issue: str):
    """Register a scenario: fn(bench, cfg) -> (raw measurements, summary rows)."""
    def register(fn):
        SCENARIOS[name] = (issue, fn)
        return fn
    return register


def row(metric: str, unit: str, values: dict, better: str | None = None, anchors=("lfs", "git"),
        subject: str = "panini", n: int | None = None, note: str | None = None) -> dict:
    """One summary line. ratios[a] = subject value / anchor a's value (so above 1 is better for a
    'higher' metric such as MiB/s, worse for a 'lower' one such as bytes or seconds)."""
    lfs = values.get("lfs")
    mine = values.get(subject)
    ratios = {a: round(mine / values[a], 3) for a in anchors
              if mine is not None and values.get(a) not in (None, 0)}
    out = {"metric": metric, "unit": unit, "values": values, "better": better, "subject": subject,
           "ratios": ratios, "ratio_vs_lfs": {t: round(v / lfs, 3) if lfs and v is not None else None
                                              for t, v in values.items()}}
    if n is not None:
        out["n"] = n
    if note:
        out["note"] = note
    return out


class Bench:
    """Fresh repos under one temp dir, each tool with its own HOME, commands timed with peak RSS."""

    def __init__(self, root: str):
        self.root = root
        self.envs = {}
        # A user's Python has compiled bytecode (pip compiles at install; an editable install writes it on first
        # import): a sandbox's PYTHONDONTWRITEBYTECODE would charge git-panini a compile of every module it
        # loads on every command (about 0.1-0.4 s, profiled on a checkout's filter), which no user pays.
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for tool in TOOLS:
            home = os.path.join(root, "home", tool)
            os.makedirs(home)
            self.envs[tool] = {**environ, "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"),
                               "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
            self.run(tool, ["git", "config", "--global", "user.name", "bench"], home)
            self.run(tool, ["git", "config", "--global", "user.email", "bench@example.com"], home)
            self.run(tool, ["git", "config", "--global", "init.defaultBranch", "main"], home)
            self.run(tool, ["git", "config", "--global", "advice.detachedHead", "false"], home)
            for args in GLOBAL_SETUP[tool]:
                self.run(tool, args, home)

    def run(self, tool: str, args: list[str], cwd: str) -> str:
        done = subprocess.run(args, cwd=cwd, env=self.envs[tool], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"[{tool}] {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def timed(self, tool: str, args: list[str], cwd: str, stdout: bool = False, env: dict | None = None) -> dict:
        """Wall seconds, CPU seconds (user + system, the whole command tree), peak RSS (KiB, the largest
        single process of the tree) and file-system writes (bytes, the whole tree)."""
        wrapper = [GNU_TIME, "-v"] if GNU_TIME else [sys.executable, "-c", RUSAGE_WRAPPER]
        os.sync()  # earlier steps' writeback must not land inside this measurement
        start = time.perf_counter()
        done = subprocess.run(wrapper + args, cwd=cwd, env={**self.envs[tool], **(env or {})}, capture_output=True,
                              text=True)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(f"[{tool}] {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        field = lambda name: float(re.search(rf"{name}: ([\d.]+)", done.stderr).group(1))  # noqa: E731
        out = {"seconds": round(seconds, 4), "peak_rss_kib": int(field(r"Maximum resident set size \(kbytes\)")),
               "cpu_seconds": round(field(r"User time \(seconds\)") + field(r"System time \(seconds\)"), 3),
               "fs_write_bytes": int(field("File system outputs")) * 512}
        if stdout:
            out["stdout"] = done.stdout
        return out

    def repo(self, tool: str, name: str, track: list[str] | None = None) -> str:
        path = os.path.join(self.root, f"{name}-{tool}")
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        self.run(tool, ["git", "init", "-q"], path)
        for args in REPO_SETUP[tool]:
            if track is not None and args[-1] == "*.bin":
                args = args[:-1] + track
            self.run(tool, args, path)
        if os.path.exists(os.path.join(path, ".gitattributes")):
            self.run(tool, ["git", "add", ".gitattributes"], path)
        return path


# --- inputs --------------------------------------------------------------------------------------------

def write_random(path: str, size: int, seed: int):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for done in range(0, size, 16 * MiB):
            f.write(rng.randbytes(min(16 * MiB, size - done)))


def write_text(path: str, size: int, seed: int):
    """Text that compresses like source code but never repeats at chunk scale: runs of 1-40 consecutive
    lines drawn at random from this Python's standard library sources."""
    base = corpus.source_text()
    starts = [0] + [m.end() for m in re.finditer(b"\n", base)]
    rng = random.Random(seed)
    written = 0
    with open(path, "wb") as f:
        while written < size:
            parts, block = [], 0
            while block < 16 * MiB:
                first = rng.randrange(len(starts) - 41)
                piece = base[starts[first]:starts[first + rng.randint(1, 40)]]
                parts.append(piece)
                block += len(piece)
            data = b"".join(parts)[:size - written]
            f.write(data)
            written += len(data)


def preread(path: str):
    """Page caches cannot be dropped here, so every timed input is read once beforehand instead."""
    with open(path, "rb") as f:
        while f.read(16 * MiB):
            pass


def disk_usage(*paths: str) -> dict:
    """Allocated bytes (st_blocks) and apparent bytes under paths, each inode counted once."""
    seen, blocks, apparent = set(), 0, 0
    for top in paths:
        for base, _, files in os.walk(top):
            for name in files:
                st = os.lstat(os.path.join(base, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    blocks += st.st_blocks * 512
                    apparent += st.st_size
    return {"disk_bytes": blocks, "apparent_bytes": apparent}


def store_dirs(repo: str) -> list[str]:
    """Where a repository keeps file data: .git/objects (panini, git) and .git/lfs (git-lfs)."""
    git_dir = repo if repo.endswith(".git") and not os.path.isdir(os.path.join(repo, ".git")) \
        else os.path.join(repo, ".git")
    return [os.path.join(git_dir, "objects"), os.path.join(git_dir, "lfs")]


def median(values):
    return round(statistics.median(values), 2) if values else None


def spread(values) -> float:
    """(max - min) / median: how much the runs of one measurement disagree."""
    if len(values) < 2:
        return 0.0
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else 0.0


def rotation(n: int, tools=TOOLS) -> tuple:
    """Run n's tool order: rotated, so no tool always runs first."""
    return tools[n % len(tools):] + tools[:n % len(tools)]


def link_tree(src: str, dst: str):
    """Hard-link every file of src into dst (no copy dirties the page cache before timing)."""
    for base, _, files in os.walk(src):
        target = os.path.join(dst, os.path.relpath(base, src))
        os.makedirs(target, exist_ok=True)
        for name in files:
            os.link(os.path.join(base, name), os.path.join(target, name))


def same_tree(src: str, dst: str) -> bool:
    for base, _, files in os.walk(src):
        for name in files:
            a = os.path.join(base, name)
            if not filecmp.cmp(a, os.path.join(dst, os.path.relpath(a, src)), shallow=False):
                return False
    return True


def edit_file(path: str, rng: random.Random, kind: str, size: int = 4096):
    """A seeded 4 KiB overwrite in place, or a 4 KiB insert (the file is rewritten)."""
    length = os.path.getsize(path)
    offset = rng.randrange(length - size)
    patch = rng.randbytes(size)
    if kind == "overwrite":
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(patch)
        return
    tmp = path + ".edit"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        done = 0
        while done < offset:
            block = src.read(min(16 * MiB, offset - done))
            dst.write(block)
            done += len(block)
        dst.write(patch)
        shutil.copyfileobj(src, dst, 16 * MiB)
    os.replace(tmp, path)


# --- #2, #5: one big file ----------------------------------------------------------------------------

def _add_checkout_once(bench: Bench, tool: str, source: str, edits_seed: int | None, verify: bool = False) -> dict:
    repo = bench.repo(tool, "add")
    big = os.path.join(repo, "big.bin")
    os.link(source, big)
    preread(big)
    out = {"add": bench.timed(tool, ["git", "add", "big.bin"], repo)}
    bench.run(tool, ["git", "commit", "-q", "-m", "big"], repo)
    os.remove(big)
    out["checkout"] = bench.timed(tool, ["git", "checkout", "--", "big.bin"], repo)
    if not filecmp.cmp(source, big, shallow=False):
        raise RuntimeError(f"[{tool}] checkout wrote different bytes")
    if verify:
        # Each tool's own full check of what it stores (sha256 / object ids), on the same file.
        args = {"panini": ["git", "panini", "verify"], "lfs": ["git", "lfs", "fsck"],
                "git": ["git", "fsck", "--full", "--no-progress"]}[tool]
        out["verify"] = bench.timed(tool, args, repo)
    if edits_seed is not None:
        # The checkout wrote a fresh file (no longer the hard link): edit it and add it again.
        rng = random.Random(edits_seed)
        git_dir = os.path.join(repo, ".git")
        for kind in ("overwrite", "insert"):
            edit_file(big, rng, kind)
            preread(big)
            before = disk_usage(git_dir)["disk_bytes"]
            readd = bench.timed(tool, ["git", "add", "big.bin"], repo)
            readd["git_growth_bytes"] = disk_usage(git_dir)["disk_bytes"] - before
            out[f"readd_{kind}"] = readd
            bench.run(tool, ["git", "commit", "-q", "-m", kind], repo)
    shutil.rmtree(repo)
    return out


@scenario("add-checkout", issue="#2 #5")
def add_checkout(bench: Bench, cfg) -> tuple[dict, list]:
    """`git add` and checkout (smudge) of one big random / text file: MiB/s and peak RSS; then the
    same file re-added after a 4 KiB overwrite and after a 4 KiB insert: seconds and .git growth."""
    raw, rows = {}, []
    for kind in cfg.kinds:
        for size_mib in cfg.sizes:
            source = os.path.join(bench.root, f"{kind}-{size_mib}.bin")
            (write_random if kind == "random" else write_text)(source, size_mib * MiB, cfg.seed)
            runs = raw[f"{kind}-{size_mib}MiB"] = {tool: [] for tool in TOOLS}
            edits = kind == "random"
            for n in range(cfg.runs):
                for tool in rotation(n):
                    if tool == "git" and n >= cfg.git_runs:
                        continue
                    runs[tool].append(_add_checkout_once(bench, tool, source, cfg.seed + n if edits else None,
                                                         verify=n == 0))
            # A noisy measurement (the machine is shared) gets more runs, while the budget allows.
            reruns = {}
            for tool in ("panini", "lfs"):
                while (len(runs[tool]) < cfg.runs + cfg.max_reruns and time.monotonic() < cfg.rerun_deadline
                       and max(spread([r[s]["seconds"] for r in runs[tool]]) for s in ("add", "checkout"))
                       > cfg.noise):
                    reruns[tool] = reruns.get(tool, 0) + 1
                    runs[tool].append(_add_checkout_once(bench, tool, source,
                                                         cfg.seed + len(runs[tool]) if edits else None))
            runs["reruns"] = reruns
            os.remove(source)
            n_of = {t: len(runs[t]) for t in TOOLS}
            label = f"{size_mib} MiB {kind}"
            for step in ("add", "checkout"):
                rows.append(row(f"{step} {label}", "MiB/s",
                                {t: median([size_mib / r[step]["seconds"] for r in runs[t]]) for t in TOOLS},
                                better="higher", n=min(n_of.values()),
                                note=f"runs {n_of}" + (f", reruns {reruns}" if reruns else "")))
                rows.append(row(f"{step} {label}: peak RSS", "MiB",
                                {t: median([r[step]["peak_rss_kib"] / 1024 for r in runs[t]]) for t in TOOLS},
                                better="lower"))
            rows.append(row(f"verify {label} (panini verify / git lfs fsck / git fsck --full)", "MiB/s",
                            {t: round(size_mib / runs[t][0]["verify"]["seconds"], 1) for t in TOOLS},
                            better="higher", n=1))
            if edits:
                for edit in ("overwrite", "insert"):
                    step = f"readd_{edit}"
                    rows.append(row(f"re-add {label} after 4 KiB {edit}", "s",
                                    {t: median([r[step]["seconds"] for r in runs[t]]) for t in TOOLS},
                                    better="lower"))
                    rows.append(row(f"re-add {label} after 4 KiB {edit}: .git growth", "MiB",
                                    {t: median([r[step]["git_growth_bytes"] / MiB for r in runs[t]]) for t in TOOLS},
                                    better="lower"))
    return raw, rows


# --- #2, #5: a history of small edits: storage, push and clone -------------------------------------

@scenario("versions", issue="#2 #5")
def versions(bench: Bench, cfg) -> tuple[dict, list]:
    """A random file committed in cfg.versions versions, each one seeded 4 KiB edit (overwrites and
    inserts alternate): local storage before and after `git gc`, then push to a bare file:// remote
    (remote's objects + lfs) and clone from it (the clone's .git)."""
    raw = {}
    mib = cfg.versions_mib
    for tool in TOOLS:
        rng = random.Random(cfg.seed)
        data = bytearray(rng.randbytes(mib * MiB))
        repo = bench.repo(tool, "versions")
        big = os.path.join(repo, "big.bin")
        adds = []
        for n in range(cfg.versions):
            if n:
                offset = rng.randrange(len(data) - 4096)
                if n % 2:
                    data[offset:offset + 4096] = rng.randbytes(4096)
                else:
                    data[offset:offset] = rng.randbytes(4096)
            with open(big, "wb") as f:
                f.write(data)
            adds.append(bench.timed(tool, ["git", "add", "big.bin"], repo)["seconds"])
            bench.run(tool, ["git", "commit", "-q", "-m", f"v{n}"], repo)
        result = raw[tool] = {"add_seconds": adds, "store": disk_usage(*store_dirs(repo))}
        remote = os.path.join(bench.root, f"versions-{tool}-remote.git")
        shutil.rmtree(remote, ignore_errors=True)
        bench.run(tool, ["git", "init", "-q", "--bare", remote], bench.root)
        bench.run(tool, ["git", "remote", "add", "origin", "file://" + remote], repo)
        result["push"] = bench.timed(tool, ["git", "push", "-q", "origin", "main"], repo)
        result["remote"] = disk_usage(*store_dirs(remote))
        clone = os.path.join(bench.root, f"versions-{tool}-clone")
        shutil.rmtree(clone, ignore_errors=True)
        result["clone"] = bench.timed(tool, ["git", "clone", "-q", "file://" + remote, clone], bench.root)
        with open(os.path.join(clone, "big.bin"), "rb") as f:
            if f.read() != data:
                raise RuntimeError(f"[{tool}] the clone's big.bin is not the last version")
        result["clone_git"] = disk_usage(os.path.join(clone, ".git"))
        result["clone_store"] = disk_usage(*store_dirs(clone))
        result["gc"] = bench.timed(tool, ["git", "gc", "-q"], repo)
        result["store_after_gc"] = disk_usage(*store_dirs(repo))
        for path in (repo, remote, clone):
            shutil.rmtree(path)
    label = f"{cfg.versions} x {mib} MiB, 4 KiB edits"
    get = lambda key, unit=MiB: {t: round(raw[t][key]["disk_bytes"] / unit, 1) for t in TOOLS}  # noqa: E731
    rows = [
        row(f"{label}: re-add per version (median)", "s", {t: median(raw[t]["add_seconds"][1:]) for t in TOOLS},
            better="lower"),
        row(f"{label}: .git/objects + .git/lfs", "MiB", get("store"), better="lower"),
        row(f"{label}: same after git gc", "MiB", get("store_after_gc"), better="lower"),
        row(f"{label}: push to file:// bare remote", "s", {t: round(raw[t]["push"]["seconds"], 2) for t in TOOLS},
            better="lower"),
        row(f"{label}: remote's objects + lfs after push", "MiB", get("remote"), better="lower"),
        row(f"{label}: clone from it", "s", {t: round(raw[t]["clone"]["seconds"], 2) for t in TOOLS}, better="lower"),
        row(f"{label}: clone's .git", "MiB", get("clone_git"), better="lower"),
    ]
    return raw, rows


# --- #5: many small files ----------------------------------------------------------------------------

@scenario("small-files", issue="#5")
def small_files(bench: Bench, cfg) -> tuple[dict, list]:
    """Many random files (10 000 by default) of 1-64 KiB in 100 directories: `git add .` and, after a commit and
    deleting them, `git checkout -- .`: seconds, peak RSS."""
    rng = random.Random(cfg.seed)
    src = os.path.join(bench.root, "small-src")
    total = 0
    for i in range(cfg.small_files):
        directory = os.path.join(src, f"d{i % 100:02d}")
        os.makedirs(directory, exist_ok=True)
        size = rng.randint(KiB, 64 * KiB)
        with open(os.path.join(directory, f"f{i:05d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))
        total += size
    raw = {"files": cfg.small_files, "bytes": total, "runs": {t: [] for t in TOOLS}}
    for n in range(cfg.small_runs):
        for tool in rotation(n):
            repo = bench.repo(tool, "small")
            link_tree(src, repo)
            add = bench.timed(tool, ["git", "add", "."], repo)
            bench.run(tool, ["git", "commit", "-q", "-m", "small"], repo)
            for d in os.listdir(src):
                shutil.rmtree(os.path.join(repo, d))
            checkout = bench.timed(tool, ["git", "checkout", "--", "."], repo)
            if not same_tree(src, repo):
                raise RuntimeError(f"[{tool}] checkout of the small files wrote different bytes")
            raw["runs"][tool].append({"add": add, "checkout": checkout})
            shutil.rmtree(repo)
    shutil.rmtree(src)
    runs = raw["runs"]
    label = f"{cfg.small_files} files of 1-64 KiB ({total / MiB:.0f} MiB)"
    rows = []
    for step in ("add", "checkout"):
        rows.append(row(f"{step} {label}", "s", {t: median([r[step]["seconds"] for r in runs[t]]) for t in TOOLS},
                        better="lower", n=cfg.small_runs))
        rows.append(row(f"{step} {label}: peak RSS", "MiB",
                        {t: median([r[step]["peak_rss_kib"] / 1024 for r in runs[t]]) for t in TOOLS}, better="lower"))
    return raw, rows


ADD_SETS = (("300 files of 1-40 KiB", 300, KiB, 40 * KiB), ("3000 files of 1-4 KiB", 3000, KiB, 4 * KiB),
            ("one 50 MiB file", 1, 50 * MiB, 50 * MiB))
# (column, tool, git options): each tool as installed, and git-panini and plain git asked to fsync everything.
ADD_SERIES = tuple((t, t, []) for t in TOOLS) + (("panini fsync=all", "panini", ["-c", "core.fsync=all"]),
                                                  ("git fsync=all", "git", ["-c", "core.fsync=all"]))


@scenario("add", issue="#9")
def add_files(bench: Bench, cfg) -> tuple[dict, list]:
    """`git add .` of many small random files (300 of 1-40 KiB, 3000 of 1-4 KiB) and of one 50 MiB random file,
    each into a fresh repository: wall and CPU seconds (the whole command tree), `cfg.runs` runs each, in
    rotated order; also git-panini and plain git under `core.fsync=all`. git-panini's add is durable (a pointer
    leaves the filter only once its data survives kill -9 and `gc --prune=now`; power loss as core.fsync asks)."""
    rng = random.Random(cfg.seed)
    raw, rows = {}, []
    for label, count, low, high in ADD_SETS:
        src = os.path.join(bench.root, "add-src")
        total = corpus.small_files(src, count, low, high, rng, dirs=10)
        runs = {name: [] for name, _, _ in ADD_SERIES}
        for n in range(cfg.runs):
            for name, tool, options in rotation(n, ADD_SERIES):
                repo = bench.repo(tool, "addset")
                link_tree(src, repo)
                for base, _, files in os.walk(src):
                    for file in files:
                        preread(os.path.join(base, file))
                runs[name].append(bench.timed(tool, ["git", *options, "add", "."], repo))
                shutil.rmtree(repo)
        shutil.rmtree(src)
        raw[label] = {"files": count, "bytes": total, "runs": runs}
        for metric, key in (("wall", "seconds"), ("CPU", "cpu_seconds")):
            values = {name: [r[key] for r in measured] for name, measured in runs.items()}
            note = "min-max: " + "; ".join(f"{name} {min(v):.2f}-{max(v):.2f}" for name, v in values.items())
            rows.append(row(f"add {label} ({total / MiB:.1f} MiB): {metric}", "s",
                            {name: median(v) for name, v in values.items()}, better="lower", n=cfg.runs,
                            note=note))
    return raw, rows


# --- #5: compression of real files by type, worker and verify throughput ------------------------------

def _baseline_sizes(path: str) -> dict:
    """Per-file compressed sizes and CPU seconds of the anchors (run in a worker process)."""
    import brotli
    import zstandard
    with open(path, "rb") as f:
        data = f.read()
    zstd_long = zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters.from_level(
        19, source_size=len(data), enable_ldm=True, window_log=27))
    out = {}
    for name, fn in (("xz -9e", lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME)),
                     ("zstd -19 --long", zstd_long.compress),
                     ("brotli -q 11", lambda d: brotli.compress(d, quality=11, lgwin=24))):
        start = time.process_time()
        out[name] = (len(fn(data)), time.process_time() - start)
    return out


BASELINES = ("xz -9e", "zstd -19 --long", "brotli -q 11")
XZ_SOLID = "xz -9e, solid per type"
GIT_AGGRESSIVE = "git gc --aggressive"


def _git_stored_by_path(bench: Bench, repo: str) -> dict[str, int]:
    """Bytes each file's blob takes in the repository's packs (a delta counts for the file it rebuilds)."""
    by_oid = {}
    pack_dir = os.path.join(repo, ".git", "objects", "pack")
    for idx in sorted(f for f in os.listdir(pack_dir) if f.endswith(".idx")):
        for line in bench.run("git", ["git", "verify-pack", "-v", os.path.join(pack_dir, idx)], repo).splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[1] in ("blob", "tree", "commit", "tag") and parts[3].isdigit():
                by_oid[parts[0]] = int(parts[3])
    out = {}
    for line in bench.run("git", ["git", "ls-files", "-s", "-z"], repo).split("\0"):
        meta, _, path = line.partition("\t")
        if path:
            out[path] = by_oid.get(meta.split()[1], 0)
    return out


def _panini_work(bench: Bench, base_repo: str, name: str, effort: int, types: dict[str, str]) -> dict:
    """Copy a repository holding the corpus as pending files, run `git panini work` at one effort level
    there; return the timing, what each type stores, and the verify timing afterwards."""
    repo = os.path.join(bench.root, f"{name}-e{effort}")
    shutil.rmtree(repo, ignore_errors=True)
    subprocess.run(["cp", "-a", base_repo, repo], check=True)
    work = bench.timed("panini", ["git", "panini", "work", "--no-remote", "-j", "1", "--effort", str(effort),
                                  "--json"], repo, stdout=True)
    files = json.loads(work.pop("stdout"))["files"]
    stored, raw = {}, {}
    for f in files:
        if not f["ok"]:
            raise RuntimeError(f"git panini work failed on {f['manifest']}: {f['error']}")
        kind = types[f["manifest"]]
        stored[kind] = stored.get(kind, 0) + f["stored_bytes"]
        raw[kind] = raw.get(kind, 0) + f["raw_bytes"]
    verify = bench.timed("panini", ["git", "panini", "verify", "--all"], repo)
    out = {"work": work, "packed_bytes": sum(f["packed_bytes"] for f in files), "stored": stored, "raw": raw,
           "verify": verify, "repo": repo}
    return out


def _panini_types(bench: Bench, repo: str) -> dict[str, str]:
    listing = json.loads(bench.run("panini", ["git", "panini", "ls-files", "--json"], repo))["files"]
    return {f["manifest"]: f["path"].split("/")[0] for f in listing}


def _corpus_repo(bench: Bench, tool: str, name: str, src: str, kinds) -> str:
    repo = bench.repo(tool, name, track=[f"{k}/**" for k in kinds])
    link_tree(src, repo)
    bench.run(tool, ["git", "add", "."], repo)
    bench.run(tool, ["git", "commit", "-q", "-m", "corpus"], repo)
    return repo


@scenario("compression", issue="#5")
def compression(bench: Bench, cfg) -> tuple[dict, list]:
    """The mixed real-file corpus (bench.corpus): what `git panini work` stores per file type at each
    effort, against per-file xz -9e, zstd -19 --long, brotli -q 11 and plain git (add + gc --aggressive);
    worker throughput per core (CPU seconds); `git panini verify --all` throughput before and after work,
    beside `git lfs fsck` and `git fsck --full` on the same files."""
    src = os.path.join(bench.root, "corpus")
    made = corpus.build_covering(src, cfg.corpus_scale)
    kinds = [k for k, names in made.items() if names]
    type_of = {name: k for k, names in made.items() for name in names}
    sizes = {name: os.path.getsize(os.path.join(src, name)) for name in type_of}
    raw_by_type = {k: sum(sizes[n] for n in made[k]) for k in kinds}
    total = sum(raw_by_type.values())
    raw: dict = {"scale": cfg.corpus_scale, "files": len(sizes), "raw_by_type": raw_by_type}

    # Anchors: each file compressed on its own.
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        per_file = dict(zip(sizes, pool.map(_baseline_sizes, [os.path.join(src, n) for n in sizes])))
    base = {b: {k: sum(per_file[n][b][0] for n in made[k]) for k in kinds} for b in BASELINES}
    # Files compressed together (as a worker's solid segments do): all of one type in one xz stream.
    base[XZ_SOLID] = {}
    for k in kinds:
        data = bytearray()
        for n in made[k]:
            with open(os.path.join(src, n), "rb") as f:
                data += f.read()
        base[XZ_SOLID][k] = len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    base_cpu = {b: sum(per_file[n][b][1] for n in sizes) for b in BASELINES}

    # Plain git: add, gc --aggressive, the packs' bytes per file.
    git_repo = _corpus_repo(bench, "git", "corpus", src, kinds)
    raw["git_gc_aggressive"] = bench.timed("git", ["git", "gc", "--aggressive", "-q"], git_repo)
    by_path = _git_stored_by_path(bench, git_repo)
    base[GIT_AGGRESSIVE] = {k: sum(by_path.get(n, 0) for n in made[k]) for k in kinds}
    raw["git_objects_after_gc"] = disk_usage(os.path.join(git_repo, ".git", "objects"))
    raw["git_fsck"] = bench.timed("git", ["git", "fsck", "--full", "--no-progress"], git_repo)
    shutil.rmtree(git_repo)

    lfs_repo = _corpus_repo(bench, "lfs", "corpus", src, kinds)
    raw["lfs_fsck"] = bench.timed("lfs", ["git", "lfs", "fsck"], lfs_repo)
    shutil.rmtree(lfs_repo)

    # git-panini: add, verify the raw store, then work at each effort on a copy.
    pan_repo = _corpus_repo(bench, "panini", "corpus", src, kinds)
    raw["panini_verify_raw"] = bench.timed("panini", ["git", "panini", "verify", "--all"], pan_repo)
    types = _panini_types(bench, pan_repo)
    efforts = {}
    for effort in cfg.efforts:
        result = efforts[effort] = _panini_work(bench, pan_repo, "corpus-work", effort, types)
        if effort == max(cfg.efforts):
            work_repo = result["repo"]
            bench.run("panini", ["git", "gc", "-q", "--prune=now"], work_repo)
            raw["panini_objects_after_gc"] = disk_usage(os.path.join(work_repo, ".git", "objects"))
        shutil.rmtree(result.pop("repo"))
    raw["efforts"] = efforts
    shutil.rmtree(pan_repo)

    # Effort 3 tries everything with minutes per segment: a smaller corpus.
    if cfg.effort3_scale:
        mini = os.path.join(bench.root, "corpus-mini")
        mini_made = corpus.build_covering(mini, cfg.effort3_scale)
        mini_kinds = [k for k, names in mini_made.items() if names]
        mini_repo = _corpus_repo(bench, "panini", "corpus-mini", mini, mini_kinds)
        mini_types = _panini_types(bench, mini_repo)
        raw["effort3"] = {}
        for effort in (2, 3):
            result = raw["effort3"][effort] = _panini_work(bench, mini_repo, "corpus-mini-work", effort, mini_types)
            shutil.rmtree(result.pop("repo"))
        raw["effort3"]["raw_bytes"] = sum(os.path.getsize(os.path.join(mini, n))
                                          for names in mini_made.values() for n in names)
        shutil.rmtree(mini_repo)
        shutil.rmtree(mini)
    shutil.rmtree(src)

    rows = []
    top = max(cfg.efforts)
    pct = lambda part, whole: round(100 * part / whole, 2) if whole else None  # noqa: E731
    anchors = BASELINES + (XZ_SOLID, GIT_AGGRESSIVE)
    for k in kinds + ["all"]:
        whole = total if k == "all" else raw_by_type[k]
        def pick(d: dict, k=k) -> int:
            return sum(d.values()) if k == "all" else d.get(k, 0)
        values = {f"panini e{e}": pct(pick(efforts[e]["stored"]), whole) for e in cfg.efforts}
        values.update({b: pct(pick(base[b]), whole) for b in anchors})
        rows.append(row(f"stored % of raw: {k} ({whole / MiB:.2f} MiB)", "%", values, better="lower",
                        subject=f"panini e{top}", anchors=anchors))
    rows.append(row("whole .git/objects after gc (panini: work + gc --prune=now)", "MiB",
                    {f"panini e{top}": round(raw["panini_objects_after_gc"]["disk_bytes"] / MiB, 2),
                     GIT_AGGRESSIVE: round(raw["git_objects_after_gc"]["disk_bytes"] / MiB, 2)},
                    better="lower", subject=f"panini e{top}", anchors=(GIT_AGGRESSIVE,),
                    note=f"raw corpus {total / MiB:.2f} MiB"))
    speed = {f"panini e{e}": round(efforts[e]["packed_bytes"] / 1e6 / efforts[e]["work"]["cpu_seconds"], 2)
             for e in cfg.efforts}
    speed.update({b: round(total / 1e6 / base_cpu[b], 2) for b in BASELINES if base_cpu[b]})
    rows.append(row("compression throughput per core (input MB / CPU s)", "MB/s", speed, better="higher",
                    subject=f"panini e{top}", anchors=BASELINES))
    rows.append(row("worker wall throughput, -j 1", "MB/s",
                    {f"panini e{e}": round(efforts[e]["packed_bytes"] / 1e6 / efforts[e]["work"]["seconds"], 2)
                     for e in cfg.efforts}, better="higher", subject=f"panini e{top}", anchors=()))
    if cfg.effort3_scale:
        e3 = raw["effort3"]
        whole = e3["raw_bytes"]
        rows.append(row(f"effort 3 on a {whole / MiB:.2f} MiB corpus: stored % of raw", "%",
                        {f"panini e{e}": pct(sum(e3[e]["stored"].values()), whole) for e in (2, 3)},
                        better="lower", subject="panini e3", anchors=("panini e2",)))
        rows.append(row(f"effort 3 on a {whole / MiB:.2f} MiB corpus: throughput per core", "MB/s",
                        {f"panini e{e}": round(e3[e]["packed_bytes"] / 1e6 / e3[e]["work"]["cpu_seconds"], 3)
                         for e in (2, 3)}, better="higher", subject="panini e3", anchors=("panini e2",)))
    mibs = lambda t: round(total / MiB / t["seconds"], 1)  # noqa: E731
    rows.append(row("verify every file (panini verify --all / git lfs fsck / git fsck --full)", "MiB/s",
                    {"panini raw": mibs(raw["panini_verify_raw"]),
                     f"panini e{top}": mibs(efforts[top]["verify"]),
                     "lfs": mibs(raw["lfs_fsck"]), "git": mibs(raw["git_fsck"])},
                    better="higher", subject=f"panini e{top}", anchors=("lfs", "git")))
    return raw, rows


# --- issue 9: worker throughput per core, this version beside the one before it ----------------------

def _per_file_anchor(path: str) -> dict:
    """Per-file `xz -9e` and `zstd -19`: compressed bytes and CPU seconds (run in a worker process)."""
    import zstandard
    with open(path, "rb") as f:
        data = f.read()
    out = {}
    for name, fn in (("xz -9e", lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME)),
                     ("zstd -19", zstandard.ZstdCompressor(level=19).compress)):
        start = time.process_time()
        out[name] = (len(fn(data)), time.process_time() - start)
    return out


def _export_baseline(bench: Bench, rev: str) -> str | None:
    """git_panini as of `rev`, exported under the bench root (None if this checkout lacks rev)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.path.join(bench.root, f"baseline-{rev}")
    os.makedirs(target, exist_ok=True)
    archive = subprocess.run(["git", "archive", rev, "git_panini"], cwd=here, capture_output=True)
    if archive.returncode:
        return None
    subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)
    return target


@scenario("worker", issue="#9")
def worker(bench: Bench, cfg) -> tuple[dict, list]:
    """`git panini work --no-remote -j 1` on the mixed real-file corpus (bench.corpus.build_covering) at
    effort 0, 1 and 2: input MB per CPU second of the whole command tree (children included), and stored
    bytes; beside per-file `xz -9e` and `zstd -19`, and the same runs of the version at cfg.baseline
    (its git_panini exported with `git archive` and put first on PYTHONPATH), in the same run."""
    src = os.path.join(bench.root, "worker-corpus")
    made = corpus.build_covering(src, cfg.corpus_scale)
    kinds = [k for k, names in made.items() if names]
    names = [n for k in kinds for n in made[k]]
    total = sum(os.path.getsize(os.path.join(src, n)) for n in names)
    raw: dict = {"scale": cfg.corpus_scale, "files": len(names), "bytes": total, "baseline": cfg.baseline}
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        per_file = list(pool.map(_per_file_anchor, [os.path.join(src, n) for n in names]))
    anchors = {a: {"stored": sum(f[a][0] for f in per_file), "cpu_seconds": round(sum(f[a][1] for f in per_file), 3)}
               for a in ("xz -9e", "zstd -19")}
    raw["anchors"] = anchors
    base_repo = _corpus_repo(bench, "panini", "worker", src, kinds)
    versions = {"panini": None}
    exported = _export_baseline(bench, cfg.baseline) if cfg.baseline else None
    if exported:
        versions[f"panini {cfg.baseline}"] = exported
    raw["runs"] = {}
    for label, pythonpath in versions.items():
        env = {"PYTHONPATH": pythonpath} if pythonpath else None
        for effort in cfg.efforts:
            repo = os.path.join(bench.root, f"worker-e{effort}")
            shutil.rmtree(repo, ignore_errors=True)
            subprocess.run(["cp", "-a", base_repo, repo], check=True)
            work = bench.timed("panini", ["git", "panini", "work", "--no-remote", "-j", "1", "--effort", str(effort),
                                          "--json"], repo, stdout=True, env=env)
            files = json.loads(work.pop("stdout"))["files"]
            failed = [f for f in files if not f["ok"]]
            if failed:
                raise RuntimeError(f"[{label}] git panini work failed on {failed[0]['manifest']}: {failed[0]['error']}")
            packed = sum(f["packed_bytes"] for f in files)
            raw["runs"][f"{label} e{effort}"] = {"work": work, "packed_bytes": packed,
                                                 "stored_bytes": sum(f["stored_bytes"] for f in files)}
            shutil.rmtree(repo)
    shutil.rmtree(base_repo)
    shutil.rmtree(src)
    base = f"panini {cfg.baseline}" if exported else None
    rows = []
    for effort in cfg.efforts:
        mine, old = raw["runs"][f"panini e{effort}"], raw["runs"].get(f"{base} e{effort}") if base else None
        speed = {"panini": round(mine["packed_bytes"] / 1e6 / mine["work"]["cpu_seconds"], 3)}
        stored = {"panini": mine["stored_bytes"]}
        if old:
            speed[base] = round(old["packed_bytes"] / 1e6 / old["work"]["cpu_seconds"], 3)
            stored[base] = old["stored_bytes"]
        for a, v in anchors.items():
            speed[a] = round(total / 1e6 / v["cpu_seconds"], 3) if v["cpu_seconds"] else None
            stored[a] = v["stored"]
        names_ = tuple(speed)[1:]
        rows.append(row(f"effort {effort}: worker MB/s per core (CPU s incl. children)", "MB/s", speed,
                        better="higher", anchors=names_, n=1))
        rows.append(row(f"effort {effort}: stored bytes ({total / MiB:.2f} MiB corpus, {len(names)} files)", "bytes",
                        stored, better="lower", anchors=names_, n=1))
        rows.append(row(f"effort {effort}: worker wall MB/s", "MB/s",
                        {"panini": round(mine["packed_bytes"] / 1e6 / mine["work"]["seconds"], 3),
                         **({base: round(old["packed_bytes"] / 1e6 / old["work"]["seconds"], 3)} if old else {})},
                        better="higher", anchors=names_[:1] if old else (), n=1))
    return raw, rows


# --- #5: scaling with the number of chunks -----------------------------------------------------------

INDEX_PROBE = """
import json, os, sys, time
from git_panini.git.repo import Repo
from git_panini.store.shared import Store
from git_panini.store.chunk_index import ChunkIndex
repo = Repo(".")
path = os.path.join(repo.panini_dir, "index.sqlite")
if os.path.exists(path):
    os.remove(path)
store = Store(repo)
t = time.perf_counter(); index = ChunkIndex(store); index.refresh(); rebuild = time.perf_counter() - t
chunks = [c for (c,) in index.db.execute("select chunk from chunks")]
t = time.perf_counter()
for c in chunks:
    index.locate(c)
locate = time.perf_counter() - t
t = time.perf_counter(); index.refresh(); noop = time.perf_counter() - t
index.close()
print(json.dumps({"rebuild_seconds": rebuild, "locate_seconds": locate, "noop_refresh_seconds": noop,
                  "indexed_chunks": len(chunks), "db_bytes": os.path.getsize(path)}))
"""


@scenario("scaling", issue="#5")
def scaling(bench: Bench, cfg) -> tuple[dict, list]:
    """git-panini alone, files of N x 64 KiB (about N chunks) for each N in cfg.scaling: add, checkout,
    verify, work --effort 0, then the chunk index (rebuilt from the store; every chunk looked up) and
    the cost of adding one more 64 KiB file to a store that holds N chunks. Time per chunk should stay flat."""
    raw = {}
    for count in cfg.scaling:
        size = count * 64 * KiB
        repo = bench.repo("panini", "scale")
        big = os.path.join(repo, "big.bin")
        write_random(big, size, cfg.seed + count)
        preread(big)
        r = raw[count] = {"bytes": size}
        r["add"] = bench.timed("panini", ["git", "add", "big.bin"], repo)
        bench.run("panini", ["git", "commit", "-q", "-m", "big"], repo)
        keep = os.path.join(bench.root, "scale-source.bin")
        os.replace(big, keep)
        r["checkout"] = bench.timed("panini", ["git", "checkout", "--", "big.bin"], repo)
        if size <= 1 << 30 and not filecmp.cmp(keep, big, shallow=False):
            raise RuntimeError("scaling: checkout wrote different bytes")
        os.remove(keep)
        # The checkout left big.bin racily clean (written in the same clock tick as the index): the
        # next index write would re-clean the whole file to compare. Settle that outside the timings.
        time.sleep(0.05)
        bench.run("panini", ["git", "update-index", "-q", "--refresh"], repo)
        verify = bench.timed("panini", ["git", "panini", "verify", "--json"], repo, stdout=True)
        r["chunks"] = json.loads(verify.pop("stdout"))["files"][0]["chunks"]
        r["verify"] = verify
        r["work"] = bench.timed("panini", ["git", "panini", "work", "--no-remote", "--effort", "0"], repo)
        r["store_tree_entries"] = len(bench.run("panini", ["git", "ls-tree", "-r", "refs/panini/store"], repo)
                                      .splitlines())
        probe = subprocess.run([sys.executable, "-c", INDEX_PROBE], cwd=repo, env=bench.envs["panini"],
                               capture_output=True, text=True, check=True)
        r["index"] = json.loads(probe.stdout)
        small = os.path.join(repo, "small.bin")
        write_random(small, 64 * KiB, cfg.seed - count)
        r["add_one_more"] = bench.timed("panini", ["git", "add", "small.bin"], repo)
        # Raw chunks stay in the object store until gc drops them (the packs replaced them): only
        # then does verify read the packs.
        r["gc"] = bench.timed("panini", ["git", "gc", "-q", "--prune=now"], repo)
        r["verify_packed"] = bench.timed("panini", ["git", "panini", "verify"], repo)
        shutil.rmtree(repo)
    us = lambda key, c: round(1e6 * raw[c][key]["seconds"] / raw[c]["chunks"], 1)  # noqa: E731
    cols = lambda fn: {f"N={c}": fn(c) for c in cfg.scaling}  # noqa: E731
    anchor = (f"N={min((c for c in cfg.scaling if c >= 1000), default=cfg.scaling[-1])}",)
    rows = [row("chunks per file (actual)", "chunks", cols(lambda c: raw[c]["chunks"]), anchors=())]
    for key, label in (("add", "add"), ("checkout", "checkout"), ("verify", "verify, raw chunks"),
                       ("work", "work --effort 0"), ("gc", "git gc --prune=now after work"),
                       ("verify_packed", "verify, packed (after work + gc)")):
        rows.append(row(f"{label}: µs per chunk", "µs", cols(lambda c, k=key: us(k, c)), better="lower",
                        subject=f"N={cfg.scaling[-1]}", anchors=anchor))
    rows.append(row("chunk index rebuild from the store: µs per chunk", "µs",
                    cols(lambda c: round(1e6 * raw[c]["index"]["rebuild_seconds"] / max(1, raw[c]["chunks"]), 1)),
                    better="lower", subject=f"N={cfg.scaling[-1]}", anchors=anchor))
    rows.append(row("chunk index lookup: µs per chunk", "µs",
                    cols(lambda c: round(1e6 * raw[c]["index"]["locate_seconds"]
                                         / max(1, raw[c]["index"]["indexed_chunks"]), 1)),
                    better="lower", subject=f"N={cfg.scaling[-1]}", anchors=anchor))
    rows.append(row("add one more 64 KiB file to a store of N chunks", "s",
                    cols(lambda c: round(raw[c]["add_one_more"]["seconds"], 3)), better="lower",
                    subject=f"N={cfg.scaling[-1]}", anchors=anchor))
    rows.append(row("add: peak RSS", "MiB", cols(lambda c: round(raw[c]["add"]["peak_rss_kib"] / 1024, 1)),
                    better="lower", subject=f"N={cfg.scaling[-1]}", anchors=anchor))
    return raw, rows


# --- store v2 (DESIGN.md §3, §7): what push, fetch and clone move ----------------------------------

@scenario("transfer", issue="§3 store v2")
def transfer(bench: Bench, cfg) -> tuple[dict, list]:
    """git-panini, git-lfs and plain git against bare file:// remotes (bench/transfer.py): push after adding
    1 MiB to a big store and the fetch of it into a second clone (bytes on the wire, remote / local growth,
    seconds, connections); a fresh clone of a history of full rewrites (bytes ÷ HEAD's bytes); a clone of many
    small files (round trips); add + commit latency of one small file; push / fetch of one more file into
    stores of few vs many small files. Bytes and connections are counted by relays in place of
    git-upload-pack / git-receive-pack (GIT_EXEC_PATH), git-lfs's objects by its lfs/objects growth and its
    batch calls by GIT_TRACE."""
    from . import transfer as transfer_mod
    return transfer_mod.run(bench, cfg, sys.modules[__name__])


# --- issue 18: a history of real binary formats -------------------------------------------------

@scenario("history", issue="#18")
def history(bench: Bench, cfg) -> tuple[dict, list]:
    """A lineage of real binary formats (PNG, SQLite, ZIP, docx-like ZIP, sfnt-like font) generated from the seed
    and edited over 200 commits (--full: 250, files 5.5x bigger), replayed commit by commit into git-panini,
    git-lfs and plain git with pushes to bare file:// remotes (bench/history.py): add and commit latency per
    commit, push bytes, remote size, fresh clone and old-commit checkouts before and after `git panini work`
    (plain git: after `gc --aggressive`), stored size, read amplification when fsck can report it. Every
    checkout is checked against the generated files."""
    from . import history as history_mod
    return history_mod.run(bench, cfg, sys.modules[__name__])


# --- DESIGN.md §4: proving what the remote holds --------------------------------------------------

@scenario("trust", issue="§4 trust")
def trust(bench: Bench, cfg) -> tuple[dict, list]:
    """The trust change's cost (bench/trust.py): push after adding 1 MiB to a remote whose store holds 500 MiB,
    new git-panini (this checkout; PANINI_NEW_BIN) vs the version before it (PANINI_OLD_BIN) vs git-lfs vs plain
    git, --runs rounds interleaved (bytes on the wire, seconds, connections); `git panini fsck --remote` over a
    history of 10,000 small files vs plain git fetching the same store and notes refs into a fresh repository."""
    from . import trust as trust_mod
    return trust_mod.run(bench, cfg, sys.modules[__name__])


# --- issue 10: bringing an existing history in -----------------------------------------------------

@scenario("migrate", issue="#10")
def migrate(bench: Bench, cfg) -> tuple[dict, list]:
    """`git panini migrate import` vs `git lfs migrate import` (bench/migrate.py) of one generated history (quick:
    100 commits with 100 MiB of binaries; full: 1,000 commits with 2 GiB), each commit adding a random binary or
    rewriting one with a 4 KiB edit: seconds, CPU seconds of the whole command tree, peak RSS, .git growth, and
    .git once the old history is dropped (gc --prune=now). The working tree is checked against the source."""
    from . import migrate as migrate_mod
    return migrate_mod.run(bench, cfg, sys.modules[__name__])


@scenario("reads", issue="#9")
def reads(bench: Bench, cfg) -> tuple[dict, list]:
    """Packed reads per type (bench/reads.py): `git panini verify --all` and checkout of JPEG, PNG, ZIP and text
    after work and gc, MB/s per core; peak RSS of the filter's smudge of a big file (pointer with raw or
    packed chunks, non-pointer blob) and of the worker on it."""
    from . import reads as reads_mod
    return reads_mod.run(bench, cfg, sys.modules[__name__])


@scenario("serve", issue="#11")
def serve(bench: Bench, cfg) -> tuple[dict, list]:
    """`git panini serve --concurrency 2` fed two jobs over HTTP vs the same two jobs as `git panini work --job`
    processes and vs `git panini work -j 2` (bench/serve.py), on the mixed corpus from a file:// remote: wall
    MB/s and CPU seconds of the worker side; the HTTP layer's overhead in %."""
    from . import serve as serve_mod
    return serve_mod.run(bench, cfg, sys.modules[__name__])


# --- the run -----------------------------------------------------------------------------------------

def machine() -> dict:
    cpu = re.search(r"^model name\s*:\s*(.*)$", open("/proc/cpuinfo").read(), re.M)
    tool_versions = {}
    for name, args in (("git", ["git", "--version"]), ("git-lfs", ["git", "lfs", "version"])):
        tool_versions[name] = subprocess.run(args, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.strip()
    # Where the git-panini command imports git_panini from (not this process: `python -m` puts the
    # checkout first); PYTHONPATH may point it at another tree, e.g. an export of an older commit.
    where = subprocess.run([sys.executable, "-c", "import os, git_panini; "
                            "print(os.path.dirname(os.path.dirname(os.path.abspath(git_panini.__file__))))"],
                           capture_output=True, text=True, cwd="/").stdout.strip()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tool_versions["git-panini"] = f"{version('git-panini')} ({head if where == here else 'from ' + where})"
    return {"nproc": os.cpu_count(), "cpu": cpu.group(1) if cpu else platform.processor(),
            "kernel": platform.release(), "python": platform.python_version(),
            "peak_rss_via": "GNU time -v" if GNU_TIME else "getrusage(RUSAGE_CHILDREN)", **tool_versions}


def print_table(results: dict):
    for name, result in results.items():
        rows = result["summary"]
        columns = list(dict.fromkeys(t for r in rows for t in r["values"]))
        width = max(len(r["metric"]) for r in rows) + 2
        print(f"\n{name} ({result['issue']}, {result['seconds']} s)")
        print(f"{'metric':<{width}}{'unit':>7}" + "".join(f"{c[:14]:>15}" for c in columns) + "  ratios")
        for r in rows:
            cells = "".join(f"{'' if r['values'].get(c) is None else r['values'][c]!s:>15}" for c in columns)
            ratios = ", ".join(f"÷{a} {v}" for a, v in r["ratios"].items())
            print(f"{r['metric']:<{width}}{r['unit']:>7}{cells}  {ratios}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick")
    mode.add_argument("--full", dest="mode", action="store_const", const="full")
    p.add_argument("--size", type=int, help="MiB for the add/checkout file (default: 512; --full: 256 512 1024)")
    p.add_argument("--runs", type=int, help="repetitions per measurement (default: 3; --full: 5)")
    p.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run only these scenarios")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--label", help="results file name after the date (default: the mode), e.g. transfer-before")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (they need matplotlib)")
    p.add_argument("--baseline", default="8e09e94",
                   help="worker: also run the git_panini of this commit (git archive), '' for none")
    cfg = p.parse_args(argv)
    cfg.mode = cfg.mode or "quick"
    full = cfg.mode == "full"
    cfg.sizes = [cfg.size] if cfg.size else ([256, 512, 1024] if full else [512])
    cfg.runs = cfg.runs or (5 if full else 3)
    cfg.kinds = ["random", "text"]
    # Plain git needs 20-25 s per 512 MiB add here; in quick mode it is timed once per file.
    cfg.git_runs = cfg.runs if full else 1
    cfg.noise, cfg.max_reruns = 0.25, (2 if full else 1)
    cfg.versions, cfg.versions_mib = (50 if full else 10), 64
    cfg.small_files, cfg.small_runs = 10000, (5 if full else 1)
    cfg.corpus_scale, cfg.efforts, cfg.effort3_scale = (1.0 if full else 0.1), [0, 1, 2], (0.1 if full else 0.02)
    cfg.scaling = [1, 10, 100, 1000, 10000] + ([100000] if full else [])
    cfg.migrate_commits, cfg.migrate_mib = (1000, 2048) if full else (100, 100)
    cfg.rerun_budget = 3600 if full else 60
    cfg.serve_runs, cfg.serve_effort = (5 if full else cfg.runs), 2
    return cfg


def main(argv=None):
    cfg = parse_args(argv)
    results, load_before = {}, os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="panini-bench-", dir="/tmp") as root:
        bench = Bench(root)
        for name, (issue, fn) in SCENARIOS.items():
            if cfg.only and name not in cfg.only:
                continue
            print(f"running {name} ({issue}) ...", file=sys.stderr, flush=True)
            start, load = time.perf_counter(), os.getloadavg()
            cfg.rerun_deadline = time.monotonic() + cfg.rerun_budget
            raw, rows = fn(bench, cfg)
            results[name] = {"issue": issue, "doc": fn.__doc__, "seconds": round(time.perf_counter() - start, 1),
                             "loadavg_before": load, "loadavg_after": os.getloadavg(), "raw": raw, "summary": rows}
            print(f"  {name}: {results[name]['seconds']} s", file=sys.stderr, flush=True)
    print_table(results)
    os.makedirs(cfg.out, exist_ok=True)
    stem = os.path.join(cfg.out, f"{datetime.date.today():%Y-%m-%d}-{cfg.label or cfg.mode}")
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "mode": cfg.mode,
              "seconds": round(time.monotonic() - started, 1),
              "config": {k: getattr(cfg, k) for k in ("sizes", "runs", "git_runs", "kinds", "seed", "versions",
                                                      "versions_mib", "small_files", "small_runs", "corpus_scale",
                                                      "efforts", "effort3_scale", "scaling", "noise", "max_reruns",
                                                      "baseline", "migrate_commits", "migrate_mib", "serve_runs",
                                                      "serve_effort")},
              "machine": {**machine(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
              "notes": "inputs pre-read once before each timed command (page caches cannot be dropped); "
                       "os.sync() before each; peak RSS is the largest single process of the timed command tree; "
                       "CPU seconds and file-system writes are summed over the tree",
              "scenarios": results}
    if cfg.only:
        report["only"] = cfg.only
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=1)
    from . import report as report_mod
    with open(stem + ".md", "w") as f:
        f.write(report_mod.markdown(report))
    print(f"\nwrote {stem}.json and {stem}.md ({report['seconds']} s in all)")
    if not cfg.no_plots:
        made = report_mod.plots(report, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                     "docs", "img"))
        if made:
            print("plots: " + ", ".join(made))


if __name__ == "__main__":
    main()
