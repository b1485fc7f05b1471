"""The `transfer` scenario (DESIGN.md §3, §7): what push, fetch and clone move, side by side.

git-panini, git-lfs and plain git, each against its own bare `file://` remote:

1. push after adding 1 MiB to a repository that holds a big store (quick: 128 MiB; full: 512 MiB);
2. fetch of that change into a second clone (`git pull --ff-only`; git-panini's filter fetches
   what the smudge lacks, as a user's pull would);
3. fresh clone of a history of 6 versions of 8 files (quick: 4 MiB each; full: 32 MiB), every
   version rewriting every file with new random bytes: bytes downloaded ÷ HEAD's file bytes;
4. fresh clone of many small files (quick: 2,000 of 1–8 KiB; full: 10,000): round trips;
5. per-commit latency: `git add` + `git commit` of one small tracked file among 500 committed;
6. push and fetch of one more small file into stores of many small files (quick: 1,000 vs
   5,000; full: 1,000 vs 100,000): time and bytes should stay flat.

How bytes and requests are counted: git runs the other end of a `file://` transport as a
child process (`git-upload-pack` for fetch / clone / ls-remote, `git-receive-pack` for push),
found through its exec path. The scenario points `GIT_EXEC_PATH` at a copy of git's exec dir
(symlinks) whose `git-upload-pack` and `git-receive-pack` are relays: they run the real one
and count the bytes in each direction of that connection. So every connection any process
makes (git, the git-panini hooks and filter, git-lfs) is seen, whatever remote name or URL it
uses: "bytes on the wire" is the sum over the connections of an operation (both directions,
pack data plus protocol), and "git connections" is how many were opened — each one at least
one round trip over a network. git-lfs's `file://` transfer (its standalone file agent) copies
objects outside git, so its bytes are the growth of the other side's `lfs/objects`, and its
requests are read from `GIT_TRACE`: one "tq: sending batch" per batch API call (≤ 100
objects); over HTTP each object is then one more request. The relays are Python: each connection
costs every tool a few tens of ms more wall time. Untimed setup pushes of plain git skip its
delta search (`pack.window=0`; random data never deltas); the timed operations run as configured.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
import random
import shutil
import stat
import subprocess
import sys
import time

from . import corpus

MiB = 1 << 20
KiB = 1 << 10
TOOLS = ("panini", "lfs", "git")

RELAY = r'''#!{python} -S
# Counting relay for the bench: runs the real {service} and counts the bytes each way.
import json, os, subprocess, sys, threading, time
start = time.perf_counter()
child = subprocess.Popen([{real!r}] + sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
counts = [0, 0]

def pump(src, dst, slot, close_dst):
    while True:
        try:
            block = os.read(src, 1 << 20)
        except OSError:
            block = b""
        if not block:
            break
        counts[slot] += len(block)
        view = memoryview(block)
        while view:
            view = view[os.write(dst, view):]
    if close_dst:
        os.close(dst)

up = threading.Thread(target=pump, args=(0, child.stdin.fileno(), 0, True), daemon=True)
up.start()
pump(child.stdout.fileno(), 1, 1, False)
rc = child.wait()
up.join(0.05)
log = os.environ.get("PANINI_BENCH_WIRE_LOG")
if log:
    line = json.dumps({{"service": {service!r}, "to_server": counts[0], "from_server": counts[1],
                        "seconds": round(time.perf_counter() - start, 4), "args": sys.argv[1:]}}) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode())
    os.close(fd)
sys.exit(rc)
'''


def params(cfg) -> dict:
    full = cfg.mode == "full"
    return {
        "store_files": 32 if full else 8, "store_file_mib": 16,       # 1, 2: 512 / 128 MiB store
        "increment_mib": 1,
        "history_versions": 6, "history_files": 8, "history_file_mib": 32 if full else 4,   # 3
        "many_files": 10000 if full else 2000, "many_min": KiB, "many_max": 8 * KiB,      # 4
        "commit_files": 500, "commit_runs": 5,                                              # 5
        "flat_counts": [1000, 100000] if full else [1000, 5000],                            # 6
    }


class Wire:
    """The relay's exec dir and log: wire.measure(fn) -> (fn's result, {connections, bytes, ...})."""

    def __init__(self, root: str):
        real = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
        self.exec_path = os.path.join(root, "git-exec-path")
        self.log = os.path.join(root, "wire.log")
        os.makedirs(self.exec_path)
        for name in os.listdir(real):
            if name not in ("git-upload-pack", "git-receive-pack"):
                os.symlink(os.path.join(real, name), os.path.join(self.exec_path, name))
        for service in ("upload-pack", "receive-pack"):
            path = os.path.join(self.exec_path, f"git-{service}")
            with open(path, "w") as f:
                f.write(RELAY.format(python=sys.executable, service=service,
                                     real=os.path.join(real, f"git-{service}")))
            os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def env(self) -> dict:
        return {"GIT_EXEC_PATH": self.exec_path, "PANINI_BENCH_WIRE_LOG": self.log}

    def measure(self, fn):
        open(self.log, "w").close()
        result = fn()
        with open(self.log) as f:
            conns = [json.loads(line) for line in f if line.strip()]
        out = {"connections": len(conns),
               "upload_pack": sum(c["service"] == "upload-pack" for c in conns),
               "receive_pack": sum(c["service"] == "receive-pack" for c in conns),
               "to_server": sum(c["to_server"] for c in conns),
               "from_server": sum(c["from_server"] for c in conns),
               "detail": [{k: c[k] for k in ("service", "to_server", "from_server", "seconds")} for c in conns]}
        out["bytes"] = out["to_server"] + out["from_server"]
        return result, out


def _lfs_objects(git_dir: str, h) -> int:
    return h.disk_usage(os.path.join(git_dir, "lfs", "objects"))["apparent_bytes"]


def _write_tree(root: str, files: dict[str, bytes]):
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _same(path: str, data: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read() == data


def _bare(bench, tool: str, name: str) -> str:
    remote = os.path.join(bench.root, f"{name}-{tool}-remote.git")
    shutil.rmtree(remote, ignore_errors=True)
    bench.run(tool, ["git", "init", "-q", "--bare", remote], bench.root)
    return remote


def _setup_push(bench, tool: str, repo: str):
    """An untimed push that builds the remote. Plain git skips its delta search there (random data never
    deltas; on 4-16 MiB blobs the search alone costs tens of seconds on 2 cores)."""
    quick = ["-c", "pack.window=0"] if tool == "git" else []
    return bench.timed(tool, ["git", *quick, "push", "-q", "origin", "main"], repo)


def _clone(bench, tool: str, remote: str, name: str, wire: Wire):
    clone = os.path.join(bench.root, f"{name}-{tool}-clone")
    shutil.rmtree(clone, ignore_errors=True)
    timing, counted = wire.measure(lambda: bench.timed(tool, ["git", "clone", "-q", "file://" + remote, clone],
                                                       bench.root))
    return clone, timing, counted


def _committed(bench, h, tool: str, name: str, src: str) -> tuple[str, str]:
    """A repository of the tool holding src in one commit, with an empty bare remote as origin."""
    repo = bench.repo(tool, name)
    h.link_tree(src, repo)
    bench.run(tool, ["git", "add", "."], repo)
    bench.run(tool, ["git", "commit", "-q", "-m", name], repo)
    remote = _bare(bench, tool, name)
    bench.run(tool, ["git", "remote", "add", "origin", "file://" + remote], repo)
    return repo, remote


# --- 1 + 2: incremental push and fetch -------------------------------------------------------------

def _increment(bench, h, cfg, p, wire: Wire, tool: str, store_src: str, store_bytes: int) -> dict:
    repo, remote = _committed(bench, h, tool, "xfer", store_src)
    out = {"store_bytes": store_bytes}
    first, out["setup_push_wire"] = wire.measure(lambda: _setup_push(bench, tool, repo))
    out["setup_push_seconds"] = first["seconds"]
    if tool == "git":   # the same for the setup clone below (upload-pack reads the remote's config)
        bench.run(tool, ["git", "config", "pack.window", "0"], remote)
    clone, timing, counted = _clone(bench, tool, remote, "xfer", wire)
    out["setup_clone_seconds"], out["setup_clone_wire"] = timing["seconds"], counted
    rng = random.Random(cfg.seed + 101)
    data = rng.randbytes(p["increment_mib"] * MiB)
    with open(os.path.join(repo, "new.bin"), "wb") as f:
        f.write(data)
    bench.run(tool, ["git", "add", "new.bin"], repo)
    bench.run(tool, ["git", "commit", "-q", "-m", "one more MiB"], repo)

    before = h.disk_usage(*h.store_dirs(remote))["apparent_bytes"]
    lfs_before = _lfs_objects(remote, h)
    push, counted = wire.measure(lambda: bench.timed(tool, ["git", "push", "-q", "origin", "main"], repo))
    counted["lfs_objects"] = _lfs_objects(remote, h) - lfs_before
    if not counted["receive_pack"]:
        raise RuntimeError(f"[{tool}] transfer: the push went through no counting relay (GIT_EXEC_PATH ignored?)")
    out["push"] = {**push, "wire": counted,
                   "remote_growth": h.disk_usage(*h.store_dirs(remote))["apparent_bytes"] - before}

    clone_git = os.path.join(clone, ".git")
    before = h.disk_usage(*h.store_dirs(clone_git))["apparent_bytes"]
    lfs_before = _lfs_objects(clone_git, h)
    pull, counted = wire.measure(lambda: bench.timed(tool, ["git", "pull", "-q", "--ff-only", "origin", "main"],
                                                     clone))
    counted["lfs_objects"] = _lfs_objects(clone_git, h) - lfs_before
    if not _same(os.path.join(clone, "new.bin"), data):
        raise RuntimeError(f"[{tool}] transfer: the second clone's new.bin is not the pushed file")
    out["fetch"] = {**pull, "wire": counted,
                    "local_growth": h.disk_usage(*h.store_dirs(clone_git))["apparent_bytes"] - before}
    for path in (repo, remote, clone):
        shutil.rmtree(path)
    return out


# --- 3: fresh clone of a history of full rewrites ----------------------------------------------------

def _history(bench, h, cfg, p, wire: Wire, tool: str) -> dict:
    repo = bench.repo(tool, "history")
    rng = random.Random(cfg.seed + 303)
    size = p["history_file_mib"] * MiB
    head = {}
    for v in range(p["history_versions"]):
        head = {f"f{i}.bin": rng.randbytes(size) for i in range(p["history_files"])}
        _write_tree(repo, head)
        bench.run(tool, ["git", "add", "."], repo)
        bench.run(tool, ["git", "commit", "-q", "-m", f"v{v}"], repo)
    remote = _bare(bench, tool, "history")
    bench.run(tool, ["git", "remote", "add", "origin", "file://" + remote], repo)
    _setup_push(bench, tool, repo)
    out = {"head_bytes": sum(len(d) for d in head.values()), "remote": h.disk_usage(*h.store_dirs(remote))}
    clone, timing, counted = _clone(bench, tool, remote, "history", wire)
    for name, data in head.items():
        if not _same(os.path.join(clone, name), data):
            raise RuntimeError(f"[{tool}] transfer: the clone's {name} is not HEAD's")
    counted["lfs_objects"] = _lfs_objects(os.path.join(clone, ".git"), h)
    out["clone"] = {**timing, "wire": counted, "objects": h.disk_usage(*h.store_dirs(os.path.join(clone, ".git")))}
    for path in (repo, remote, clone):
        shutil.rmtree(path)
    return out


# --- 4: round trips of a checkout of many small files ------------------------------------------------

def _many(bench, h, cfg, p, wire: Wire, tool: str, src: str) -> dict:
    repo, remote = _committed(bench, h, tool, "many", src)
    _setup_push(bench, tool, repo)
    trace = os.path.join(bench.root, "many-trace.log")
    open(trace, "w").close()
    bench.envs[tool]["GIT_TRACE"] = trace
    try:
        clone, timing, counted = _clone(bench, tool, remote, "many", wire)
    finally:
        del bench.envs[tool]["GIT_TRACE"]
    with open(trace, errors="replace") as f:
        text = f.read()
    counted["lfs_batches"] = text.count("tq: sending batch")
    counted["lfs_objects"] = _lfs_objects(os.path.join(clone, ".git"), h)
    os.remove(trace)
    if not h.same_tree(src, clone):
        raise RuntimeError(f"[{tool}] transfer: the clone of the small files wrote different bytes")
    out = {"clone": {**timing, "wire": counted}}
    for path in (repo, remote, clone):
        shutil.rmtree(path)
    return out


# --- 5: per-commit latency ---------------------------------------------------------------------------

def _commit_latency(bench, h, cfg, p, tool: str, src: str) -> dict:
    repo = bench.repo(tool, "commit")
    h.link_tree(src, repo)
    bench.run(tool, ["git", "add", "."], repo)
    bench.run(tool, ["git", "commit", "-q", "-m", "500 files"], repo)
    rng = random.Random(cfg.seed + 505)
    runs = []
    names = sorted(os.listdir(os.path.join(src, "d00")))
    for n in range(p["commit_runs"]):
        rel = os.path.join("d00", names[n % len(names)])
        path = os.path.join(repo, rel)
        os.remove(path)                          # a hard link into src: write a new file instead
        with open(path, "wb") as f:
            f.write(rng.randbytes(4 * KiB))
        add = bench.timed(tool, ["git", "add", rel], repo)
        commit = bench.timed(tool, ["git", "commit", "-q", "-m", f"edit {n}"], repo)
        runs.append({"add": add["seconds"], "commit": commit["seconds"],
                     "total": round(add["seconds"] + commit["seconds"], 4), "timings": {"add": add, "commit": commit}})
    shutil.rmtree(repo)
    return {"runs": runs}


# --- 6: flatness in the number of stored files -------------------------------------------------------

def _flat(bench, h, cfg, p, wire: Wire, tool: str, src: str, count: int) -> dict:
    repo = bench.repo(tool, f"flat{count}")
    h.link_tree(src, repo)
    bench.run(tool, ["git", "add", "."], repo)
    bench.run(tool, ["git", "commit", "-q", "-m", f"{count} files"], repo)
    remote = _bare(bench, tool, f"flat{count}")
    bench.run(tool, ["git", "remote", "add", "origin", "file://" + remote], repo)
    _setup_push(bench, tool, repo)
    clone = os.path.join(bench.root, f"flat{count}-{tool}-clone")
    bench.run(tool, ["git", "clone", "-q", "file://" + remote, clone], bench.root)
    data = random.Random(cfg.seed + 606).randbytes(4 * KiB)
    with open(os.path.join(repo, "one-more.bin"), "wb") as f:
        f.write(data)
    bench.run(tool, ["git", "add", "one-more.bin"], repo)
    bench.run(tool, ["git", "commit", "-q", "-m", "one more"], repo)
    lfs_before = _lfs_objects(remote, h)
    push, push_wire = wire.measure(lambda: bench.timed(tool, ["git", "push", "-q", "origin", "main"], repo))
    push_wire["lfs_objects"] = _lfs_objects(remote, h) - lfs_before
    lfs_before = _lfs_objects(os.path.join(clone, ".git"), h)
    pull, pull_wire = wire.measure(lambda: bench.timed(tool, ["git", "pull", "-q", "--ff-only", "origin", "main"],
                                                       clone))
    pull_wire["lfs_objects"] = _lfs_objects(os.path.join(clone, ".git"), h) - lfs_before
    if not _same(os.path.join(clone, "one-more.bin"), data):
        raise RuntimeError(f"[{tool}] transfer: one-more.bin did not arrive in the clone")
    for path in (repo, remote, clone):
        shutil.rmtree(path)
    return {"push": {**push, "wire": push_wire}, "fetch": {**pull, "wire": pull_wire}}


# --- the scenario ------------------------------------------------------------------------------------

@contextmanager
def wired(bench, wire: Wire, tools=TOOLS):
    """Every tool's git goes through the wire's relays while the block runs; their environments are put back
    after it."""
    saved = {t: dict(bench.envs[t]) for t in tools}
    for t in tools:
        bench.envs[t].update(wire.env())
    try:
        yield
    finally:
        for t in tools:
            bench.envs[t].clear()
            bench.envs[t].update(saved[t])


def run(bench, cfg, h) -> tuple[dict, list]:
    """h: bench.run's module (row, disk_usage, link_tree, ... live there)."""
    p = params(cfg)
    wire = Wire(bench.root)
    raw: dict = {"params": p, "steps_seconds": {}}
    with wired(bench, wire):
        clock = time.perf_counter()
        store_src = os.path.join(bench.root, "xfer-src")
        rng = random.Random(cfg.seed + 1)
        store_bytes = 0
        for i in range(p["store_files"]):
            _write_tree(store_src, {f"s{i:03d}.bin": rng.randbytes(p["store_file_mib"] * MiB)})
            store_bytes += p["store_file_mib"] * MiB
        raw["increment"] = {t: _increment(bench, h, cfg, p, wire, t, store_src, store_bytes)
                            for t in h.rotation(0, TOOLS)}
        shutil.rmtree(store_src)
        raw["steps_seconds"]["increment"] = round(time.perf_counter() - clock, 1)

        clock = time.perf_counter()
        raw["history"] = {t: _history(bench, h, cfg, p, wire, t) for t in h.rotation(1, TOOLS)}
        raw["steps_seconds"]["history"] = round(time.perf_counter() - clock, 1)

        clock = time.perf_counter()
        many_src = os.path.join(bench.root, "many-src")
        raw["many_bytes"] = corpus.small_files(many_src, p["many_files"], p["many_min"], p["many_max"],
                                               random.Random(cfg.seed + 404))
        raw["many"] = {t: _many(bench, h, cfg, p, wire, t, many_src) for t in h.rotation(2, TOOLS)}
        shutil.rmtree(many_src)
        raw["steps_seconds"]["many"] = round(time.perf_counter() - clock, 1)

        clock = time.perf_counter()
        commit_src = os.path.join(bench.root, "commit-src")
        corpus.small_files(commit_src, p["commit_files"], KiB, 8 * KiB, random.Random(cfg.seed + 500))
        raw["commit"] = {t: _commit_latency(bench, h, cfg, p, t, commit_src) for t in h.rotation(0, TOOLS)}
        shutil.rmtree(commit_src)
        raw["steps_seconds"]["commit"] = round(time.perf_counter() - clock, 1)

        clock = time.perf_counter()
        raw["flat"] = {}
        for count in p["flat_counts"]:
            flat_src = os.path.join(bench.root, f"flat-src-{count}")
            corpus.small_files(flat_src, count, 256, 2 * KiB, random.Random(cfg.seed + count))
            raw["flat"][count] = {t: _flat(bench, h, cfg, p, wire, t, flat_src, count)
                                  for t in h.rotation(count, TOOLS)}
            shutil.rmtree(flat_src)
        raw["steps_seconds"]["flat"] = round(time.perf_counter() - clock, 1)
    return raw, _rows(h, p, raw)


def _rows(h, p, raw: dict) -> list:
    row = h.row
    mib = lambda b: round(b / MiB, 3)  # noqa: E731
    moved = lambda w: w["bytes"] + w.get("lfs_objects", 0)  # noqa: E731
    inc = raw["increment"]
    store = f"{inc['panini']['store_bytes'] / MiB:.0f} MiB store"
    rows = [
        row(f"push after adding {p['increment_mib']} MiB to a {store}: bytes on the wire", "MiB",
            {t: mib(moved(inc[t]["push"]["wire"])) for t in TOOLS}, better="lower",
            note="git connections both ways + git-lfs objects copied"),
        row(f"push after adding {p['increment_mib']} MiB to a {store}: remote's growth", "MiB",
            {t: mib(inc[t]["push"]["remote_growth"]) for t in TOOLS}, better="lower"),
        row(f"push after adding {p['increment_mib']} MiB to a {store}: wall time", "s",
            {t: round(inc[t]["push"]["seconds"], 2) for t in TOOLS}, better="lower"),
        row(f"push after adding {p['increment_mib']} MiB to a {store}: git connections", "count",
            {t: inc[t]["push"]["wire"]["connections"] for t in TOOLS}, better="lower"),
        row("fetch that change into a second clone (git pull): bytes on the wire", "MiB",
            {t: mib(moved(inc[t]["fetch"]["wire"])) for t in TOOLS}, better="lower"),
        row("fetch that change into a second clone: local .git/objects + lfs growth", "MiB",
            {t: mib(inc[t]["fetch"]["local_growth"]) for t in TOOLS}, better="lower"),
        row("fetch that change into a second clone: wall time", "s",
            {t: round(inc[t]["fetch"]["seconds"], 2) for t in TOOLS}, better="lower"),
        row("fetch that change into a second clone: git connections", "count",
            {t: inc[t]["fetch"]["wire"]["connections"] for t in TOOLS}, better="lower"),
    ]
    hist = raw["history"]
    label = (f"clone of {p['history_versions']} versions x {p['history_files']} x {p['history_file_mib']} MiB "
             f"(all rewritten)")
    head = hist["panini"]["head_bytes"]
    rows += [
        row(f"{label}: bytes on the wire ÷ HEAD's file bytes", "x",
            {t: round(moved(hist[t]["clone"]["wire"]) / head, 3) for t in TOOLS}, better="lower",
            note=f"HEAD {head / MiB:.0f} MiB; target for git-panini ≤ 1.1x + 1 %"),
        row(f"{label}: clone's .git/objects + lfs ÷ HEAD's file bytes", "x",
            {t: round(hist[t]["clone"]["objects"]["apparent_bytes"] / head, 3) for t in TOOLS}, better="lower"),
        row(f"{label}: wall time", "s", {t: round(hist[t]["clone"]["seconds"], 2) for t in TOOLS}, better="lower"),
        row(f"{label}: git connections", "count", {t: hist[t]["clone"]["wire"]["connections"] for t in TOOLS},
            better="lower"),
    ]
    many = raw["many"]
    label = f"clone of {p['many_files']:,} files of 1–8 KiB"
    conns = {t: many[t]["clone"]["wire"]["connections"] for t in TOOLS}
    lfs_w = many["lfs"]["clone"]["wire"]
    rows += [
        row(f"{label}: git connections (upload-pack)", "count", conns, better="lower",
            note="each at least one round trip"),
        row(f"{label}: git-lfs batch API calls (GIT_TRACE \"tq: sending batch\")", "count",
            {"lfs": lfs_w["lfs_batches"]}, anchors=(), subject="lfs"),
        row(f"{label}: requests over a network (connections + lfs batches + 1 per lfs object)", "count",
            {"panini": conns["panini"], "git": conns["git"],
             "lfs": conns["lfs"] + lfs_w["lfs_batches"] + p["many_files"]}, better="lower",
            note="git-lfs over HTTP downloads each object in its own request; file:// copies them"),
        row(f"{label}: bytes on the wire ÷ file bytes", "x",
            {t: round(moved(many[t]["clone"]["wire"]) / raw["many_bytes"], 3) for t in TOOLS}, better="lower"),
        row(f"{label}: wall time", "s", {t: round(many[t]["clone"]["seconds"], 2) for t in TOOLS}, better="lower"),
    ]
    com = raw["commit"]
    for key, label in (("add", "git add"), ("commit", "git commit"), ("total", "git add + git commit")):
        rows.append(row(f"{label} of one 4 KiB tracked file among {p['commit_files']} committed (median)", "s",
                        {t: h.median([r[key] for r in com[t]["runs"]]) for t in TOOLS},
                        better="lower", n=p["commit_runs"]))
    flat = raw["flat"]
    lo, hi = p["flat_counts"][0], p["flat_counts"][-1]
    for op in ("push", "fetch"):
        for n in p["flat_counts"]:
            what = f"{op} of one more 4 KiB file, {n:,} small files stored"
            rows.append(row(f"{what}: bytes on the wire", "KiB",
                            {t: round(moved(flat[n][t][op]["wire"]) / KiB, 1) for t in TOOLS}, better="lower"))
            rows.append(row(f"{what}: wall time", "s", {t: round(flat[n][t][op]["seconds"], 2) for t in TOOLS},
                            better="lower"))
        rows.append(row(f"{op} of one more file: bytes on the wire, {hi:,} ÷ {lo:,} files stored", "x",
                        {t: round(moved(flat[hi][t][op]["wire"]) / max(1, moved(flat[lo][t][op]["wire"])), 2)
                         for t in TOOLS}, anchors=(), note="flat is 1"))
    return rows
