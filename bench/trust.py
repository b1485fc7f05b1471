"""The `trust` scenario (DESIGN.md §4): what proving the remote's holdings from its objects costs.

Since "Trust: what a remote holds is proven by its bulk refs' objects", a push lists the remote's
refs/panini/raw/* and refs/panini/packs/* (one more `git ls-remote`) and checks every chunk of every file
the pushed commits reference against what those refs prove; `git panini fsck --remote` checks every file
of the remote's branches and tags the same way. This scenario runs that code ("new", the checkout this
file is in) beside the code before it ("old") in one run, interleaved, plus git-lfs and plain git:

1. push after adding 1 MiB to a remote whose store holds 500 MiB (25 random files of 20 MiB in one
   commit; `PANINI_BENCH_TRUST_STORE_MIB` scales it): bytes on the wire, seconds, git connections, each
   tool against its own bare `file://` remote. The store is built once per tool (untimed); then `--runs`
   rounds (default 3), each adding, committing and pushing one more random 1 MiB file in every tool, the
   tools' order rotated per round. Median and min–max of the rounds.
2. `git panini fsck --remote` (new code only; the old code has no such command) in the clone that pushed a
   history of 10,000 files of 1–4 KiB over 50 commits (`PANINI_BENCH_TRUST_FILES` scales it), beside
   plain git fetching the same remote's store refs (refs/panini/store and refs/notes/panini) into a fresh
   `git init`, alternated `--runs` times: seconds and bytes on the wire.

Which installation is which: each is a directory holding a `git-panini` (a venv's bin). "new" is
`PANINI_NEW_BIN`, by default the directory of the Python running the bench (run it with the new
checkout's venv); "old" is `PANINI_OLD_BIN`, required, e.g. the bin of a venv with the commit before
installed (`pip install -e .` of a worktree at it). Each gets its own HOME (`git panini install --global`)
and its bin first on PATH, so git, its hooks and its filter all find that version's git-panini.

    cd /work/main && git worktree add /tmp/panini-old 3d28114 --detach
    (cd /tmp/panini-old && python3 -m venv .venv && .venv/bin/pip install -q -e .)
    PANINI_OLD_BIN=/tmp/panini-old/.venv/bin .venv/bin/python -m bench.run --only trust --label trust

Bytes on the wire are counted as in bench/transfer.py: relays in place of git-upload-pack and
git-receive-pack (GIT_EXEC_PATH) count every connection any process opens, both directions; git-lfs's
standalone file transfer copies objects outside git, so its bytes are the growth of the remote's
lfs/objects. The relays are Python: every connection costs every tool a few tens of ms of wall time.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time

from .transfer import Wire, _lfs_objects, _write_tree

MiB = 1 << 20
KiB = 1 << 10
PUSH_TOOLS = ("new", "old", "lfs", "git")
PARTS = ("push", "fsck")
KIND = {"new": "panini", "old": "panini", "lfs": "lfs", "git": "git"}
LABELS = {"new": "git-panini (new)", "old": "git-panini (old)"}


def params(cfg) -> dict:
    store_mib = int(os.environ.get("PANINI_BENCH_TRUST_STORE_MIB", "500"))
    return {"store_mib": store_mib, "store_file_mib": 20 if store_mib >= 20 else store_mib,
            "increment_mib": 1, "runs": cfg.runs,
            "fsck_files": int(os.environ.get("PANINI_BENCH_TRUST_FILES", "10000")), "fsck_commits": 50,
            "fsck_min": KiB, "fsck_max": 4 * KiB}


def _bins(with_old: bool) -> dict:
    bins = {"new": os.environ.get("PANINI_NEW_BIN") or os.path.dirname(sys.executable)}
    if with_old:
        bins["old"] = os.environ.get("PANINI_OLD_BIN")
        if not bins["old"]:
            raise RuntimeError("trust: set PANINI_OLD_BIN to the bin directory of the old git-panini installation "
                               "(or PANINI_BENCH_TRUST_PARTS=fsck to run only the fsck part)")
    for d in bins.values():
        if not os.access(os.path.join(d, "git-panini"), os.X_OK):
            raise RuntimeError(f"trust: no git-panini in {d}")
    return {tool: os.path.abspath(d) for tool, d in bins.items()}


def _add_env(bench, h, tool: str, bin_dir: str | None):
    """bench.envs[tool]: a HOME of its own (like Bench's), PATH led by bin_dir."""
    base = bench.envs[KIND[tool]]
    home = os.path.join(bench.root, "home", tool)
    if tool in bench.envs:
        return
    shutil.copytree(base["HOME"], home)
    env = {**base, "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config")}
    if bin_dir:
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    bench.envs[tool] = env
    if KIND[tool] == "panini":
        bench.run(tool, ["git", "panini", "install", "--global"], home)


def _where(bench, tool: str) -> str:
    """Which git_panini a tool's git-panini imports (its script's interpreter, from its shebang)."""
    script = shutil.which("git-panini", path=bench.envs[tool]["PATH"])
    with open(script) as f:
        python = f.readline()[2:].strip()
    done = subprocess.run([python, "-c", "import git_panini, os; print(os.path.dirname(os.path.dirname("
                           "git_panini.__file__)))"], capture_output=True, text=True, cwd="/")
    top = done.stdout.strip()
    rev = subprocess.run(["git", "-C", top, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"{top} @ {rev.stdout.strip()}"


def _repo(bench, h, tool: str, name: str) -> str:
    path = os.path.join(bench.root, f"{name}-{tool}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    bench.run(tool, ["git", "init", "-q"], path)
    for args in h.REPO_SETUP[KIND[tool]]:
        bench.run(tool, args, path)
    if os.path.exists(os.path.join(path, ".gitattributes")):
        bench.run(tool, ["git", "add", ".gitattributes"], path)
    return path


def _bare(bench, tool: str, name: str) -> str:
    remote = os.path.join(bench.root, f"{name}-{tool}-remote.git")
    shutil.rmtree(remote, ignore_errors=True)
    bench.run(tool, ["git", "init", "-q", "--bare", remote], bench.root)
    return remote


def _setup_push(bench, tool: str, repo: str) -> dict:
    quick = ["-c", "pack.window=0"] if tool == "git" else []   # random data never deltas
    return bench.timed(tool, ["git", *quick, "push", "-q", "origin", "main"], repo)


# --- 1: push of 1 MiB into a big store ---------------------------------------------------------------

def _push_setup(bench, h, p, wire: Wire, tool: str, src: str) -> dict:
    repo = _repo(bench, h, tool, "trust")
    h.link_tree(src, repo)
    clock = time.perf_counter()
    bench.run(tool, ["git", "add", "."], repo)
    bench.run(tool, ["git", "commit", "-q", "-m", "store"], repo)
    add_seconds = time.perf_counter() - clock
    remote = _bare(bench, tool, "trust")
    bench.run(tool, ["git", "remote", "add", "origin", "file://" + remote], repo)
    first, counted = wire.measure(lambda: _setup_push(bench, tool, repo))
    return {"repo": repo, "remote": remote, "setup_add_commit_seconds": round(add_seconds, 2),
            "setup_push_seconds": first["seconds"], "setup_push_wire_bytes": counted["bytes"],
            "remote_after_setup": h.disk_usage(*h.store_dirs(remote))["apparent_bytes"], "rounds": []}


def _push_round(bench, h, p, wire: Wire, tool: str, state: dict, n: int, data: bytes) -> dict:
    repo, remote = state["repo"], state["remote"]
    with open(os.path.join(repo, f"new{n}.bin"), "wb") as f:
        f.write(data)
    bench.run(tool, ["git", "add", f"new{n}.bin"], repo)
    bench.run(tool, ["git", "commit", "-q", "-m", f"one more MiB ({n})"], repo)
    before = h.disk_usage(*h.store_dirs(remote))["apparent_bytes"]
    lfs_before = _lfs_objects(remote, h)
    push, counted = wire.measure(lambda: bench.timed(tool, ["git", "push", "-q", "origin", "main"], repo))
    counted["lfs_objects"] = _lfs_objects(remote, h) - lfs_before
    if not counted["receive_pack"]:
        raise RuntimeError(f"[{tool}] trust: the push went through no counting relay (GIT_EXEC_PATH ignored?)")
    return {**push, "wire": counted, "remote_growth": h.disk_usage(*h.store_dirs(remote))["apparent_bytes"] - before}


# --- 2: fsck --remote vs a plain fetch of the store refs ---------------------------------------------

def _fsck_setup(bench, h, p, wire: Wire) -> dict:
    tool = "new"
    repo = _repo(bench, h, tool, "fsck")
    rng = random.Random(cfg_seed_fsck)
    per_commit = -(-p["fsck_files"] // p["fsck_commits"])
    total = made = 0
    clock = time.perf_counter()
    for c in range(p["fsck_commits"]):
        files = {}
        for i in range(min(per_commit, p["fsck_files"] - made)):
            files[f"d{c:02d}/f{i:04d}.bin"] = rng.randbytes(rng.randint(p["fsck_min"], p["fsck_max"]))
        made += len(files)
        total += sum(len(d) for d in files.values())
        _write_tree(repo, files)
        bench.run(tool, ["git", "add", "."], repo)
        bench.run(tool, ["git", "commit", "-q", "-m", f"batch {c}"], repo)
    build = time.perf_counter() - clock
    remote = _bare(bench, tool, "fsck")
    bench.run(tool, ["git", "remote", "add", "origin", "file://" + remote], repo)
    push, counted = wire.measure(lambda: _setup_push(bench, tool, repo))
    refs = bench.run("git", ["git", "for-each-ref", "--format=%(refname)"], remote).split()
    return {"repo": repo, "remote": remote, "files": made, "file_bytes": total, "build_seconds": round(build, 1),
            "push_seconds": push["seconds"], "push_wire_bytes": counted["bytes"],
            "remote_refs": {"panini_raw": sum(r.startswith("refs/panini/raw/") for r in refs),
                            "panini_packs": sum(r.startswith("refs/panini/packs/") for r in refs),
                            "all": len(refs)}}


cfg_seed_fsck = 0   # set by run()


def _fsck_round(bench, h, wire: Wire, state: dict, n: int, order: tuple) -> dict:
    out = {}
    for what in order:
        if what == "fsck":
            timing, counted = wire.measure(lambda: bench.timed("new", ["git", "panini", "fsck", "--remote"],
                                                               state["repo"], stdout=True))
            out["fsck"] = {**timing, "wire": counted}
        else:
            target = os.path.join(bench.root, f"fetch-{n}")
            shutil.rmtree(target, ignore_errors=True)
            bench.run("git", ["git", "init", "-q", target], bench.root)
            timing, counted = wire.measure(lambda: bench.timed("git", [
                "git", "fetch", "-q", "--no-tags", "file://" + state["remote"],
                "refs/panini/store:refs/panini/store", "refs/notes/panini:refs/notes/panini"], target))
            shutil.rmtree(target)
            out["fetch"] = {**timing, "wire": counted}
    return out


# --- the scenario ------------------------------------------------------------------------------------

def parts() -> tuple[str, ...]:
    """The parts to run: PANINI_BENCH_TRUST_PARTS (e.g. "fsck", which needs no old installation), else both."""
    chosen = tuple(os.environ.get("PANINI_BENCH_TRUST_PARTS", ",".join(PARTS)).replace(",", " ").split())
    unknown = set(chosen) - set(PARTS)
    if unknown or not chosen:
        raise RuntimeError(f"trust: PANINI_BENCH_TRUST_PARTS names {' '.join(sorted(unknown)) or 'nothing'}; "
                           f"the parts are {', '.join(PARTS)}")
    return chosen


def run(bench, cfg, h) -> tuple[dict, list]:
    global cfg_seed_fsck
    cfg_seed_fsck = cfg.seed + 808
    p = params(cfg)
    chosen = parts()
    bins = _bins("push" in chosen)
    for tool in PUSH_TOOLS if "push" in chosen else ("new",):
        _add_env(bench, h, tool, bins.get(tool))
    raw: dict = {"params": p, "parts": list(chosen), "bins": bins,
                 "where": {t: _where(bench, t) for t in bins}, "steps_seconds": {}}
    wire = Wire(bench.root)
    saved = {t: dict(bench.envs[t]) for t in bench.envs}
    for t in bench.envs:
        bench.envs[t].update(wire.env())
    try:
        if "push" in chosen:
            raw["push"] = _push_part(bench, h, p, wire, cfg, raw["steps_seconds"])
        if "fsck" in chosen:
            raw["fsck"] = _fsck_part(bench, h, p, wire, raw["steps_seconds"])
    finally:
        for t in saved:
            bench.envs[t].clear()
            bench.envs[t].update(saved[t])
    return raw, _rows(h, p, raw)


def _push_part(bench, h, p, wire: Wire, cfg, steps: dict) -> dict:
    clock = time.perf_counter()
    src = os.path.join(bench.root, "trust-src")
    rng = random.Random(cfg.seed + 1)
    left, i = p["store_mib"], 0
    while left > 0:
        size = min(p["store_file_mib"], left)
        _write_tree(src, {f"s{i:03d}.bin": rng.randbytes(size * MiB)})
        left, i = left - size, i + 1
    states = {}
    for t in h.rotation(0, PUSH_TOOLS):
        states[t] = _push_setup(bench, h, p, wire, t, src)
        print(f"  trust: {t} store pushed ({states[t]['setup_push_seconds']} s)", file=sys.stderr, flush=True)
    shutil.rmtree(src)
    steps["push_setup"] = round(time.perf_counter() - clock, 1)
    clock = time.perf_counter()
    for n in range(p["runs"]):
        data = random.Random(cfg.seed + 101 + n).randbytes(p["increment_mib"] * MiB)
        for t in h.rotation(n, PUSH_TOOLS):
            states[t]["rounds"].append(_push_round(bench, h, p, wire, t, states[t], n, data))
    steps["push_rounds"] = round(time.perf_counter() - clock, 1)
    for t in PUSH_TOOLS:
        for path in (states[t].pop("repo"), states[t].pop("remote")):
            shutil.rmtree(path)
    return states


def _fsck_part(bench, h, p, wire: Wire, steps: dict) -> dict:
    clock = time.perf_counter()
    fsck = _fsck_setup(bench, h, p, wire)
    steps["fsck_setup"] = round(time.perf_counter() - clock, 1)
    clock = time.perf_counter()
    # The first check reads the whole history; the rounds' re-read only what changed since (nothing).
    timing, counted = wire.measure(lambda: bench.timed("new", ["git", "panini", "fsck", "--remote"], fsck["repo"]))
    fsck["first"] = {**timing, "wire": counted}
    fsck["rounds"] = [_fsck_round(bench, h, wire, fsck, n, ("fsck", "fetch") if n % 2 == 0 else ("fetch", "fsck"))
                      for n in range(p["runs"])]
    steps["fsck_rounds"] = round(time.perf_counter() - clock, 1)
    fsck["fsck_stdout_last"] = fsck["rounds"][-1]["fsck"].get("stdout", "")[-500:]
    for r in fsck["rounds"]:
        r["fsck"].pop("stdout", None)
    for path in (fsck.pop("repo"), fsck.pop("remote")):
        shutil.rmtree(path)
    return fsck


def _span(values, digits=2) -> str:
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}"


def _rows(h, p, raw: dict) -> list:
    return ((_push_rows(h, p, raw["push"]) if "push" in raw else [])
            + (_fsck_rows(h, p, raw["fsck"]) if "fsck" in raw else []))


def _mib(b) -> float:
    return round(b / MiB, 3)


def _push_rows(h, p, push: dict) -> list:
    row, mib = h.row, _mib
    moved = lambda w: w["bytes"] + w.get("lfs_objects", 0)  # noqa: E731
    what = f"push after adding {p['increment_mib']} MiB to a {p['store_mib']} MiB store"
    rounds = {t: push[t]["rounds"] for t in PUSH_TOOLS}
    wire = {t: [moved(r["wire"]) for r in rounds[t]] for t in PUSH_TOOLS}
    secs = {t: [r["seconds"] for r in rounds[t]] for t in PUSH_TOOLS}
    anchors = ("old", "lfs", "git")
    n = p["runs"]
    return [
        row(f"{what}: bytes on the wire (median)", "MiB", {t: mib(h.median(wire[t])) for t in PUSH_TOOLS},
            better="lower", anchors=anchors, subject="new", n=n,
            note=f"new ÷ the new data {h.median(wire['new']) / (p['increment_mib'] * MiB):.3f} (target ≤ 1.2); "
                 "git connections both ways + git-lfs objects copied"),
        row(f"{what}: wall time (median)", "s", {t: h.median(secs[t]) for t in PUSH_TOOLS}, better="lower",
            anchors=anchors, subject="new", n=n,
            note="target new ≤ 2× old; min–max " + ", ".join(f"{LABELS.get(t, t)} {_span(secs[t])}" for t in PUSH_TOOLS)),
        row(f"{what}: CPU seconds of the command tree (median)", "s",
            {t: h.median([r["cpu_seconds"] for r in rounds[t]]) for t in PUSH_TOOLS}, better="lower",
            anchors=anchors, subject="new", n=n),
        row(f"{what}: git connections", "count",
            {t: max(r["wire"]["connections"] for r in rounds[t]) for t in PUSH_TOOLS}, better="lower",
            anchors=anchors, subject="new",
            note="upload-pack: " + ", ".join(f"{LABELS.get(t, t)} {rounds[t][-1]['wire']['upload_pack']}"
                                             for t in PUSH_TOOLS)),
        row(f"{what}: remote's growth (median)", "MiB",
            {t: mib(h.median([r["remote_growth"] for r in rounds[t]])) for t in PUSH_TOOLS}, better="lower",
            anchors=anchors, subject="new", n=n),
    ]


def _fsck_rows(h, p, f: dict) -> list:
    row, mib, n = h.row, _mib, p["runs"]
    fr = f["rounds"]
    fs = {"fsck": [r["fsck"]["seconds"] for r in fr], "fetch": [r["fetch"]["seconds"] for r in fr]}
    label = (f"{f['files']:,} files of 1–4 KiB over {p['fsck_commits']} commits "
             f"({f['remote_refs']['panini_raw']} raw / {f['remote_refs']['panini_packs']} pack refs)")
    vals = lambda fn: {"panini fsck --remote": fn("fsck"), "git fetch store + notes": fn("fetch")}  # noqa: E731
    first = f.get("first")
    return [
        row(f"{label}: wall time (median)", "s", vals(lambda k: h.median(fs[k])), better="lower",
            anchors=("git fetch store + notes",), subject="panini fsck --remote", n=n,
            note="target ≤ 2×; a check again, nothing new since the last; min–max fsck " + _span(fs["fsck"])
                 + ", fetch " + _span(fs["fetch"])),
        *([row(f"{label}: wall time of the first check (nothing read before)", "s",
               {"panini fsck --remote": first["seconds"], "git fetch store + notes": h.median(fs["fetch"])},
               better="lower", anchors=("git fetch store + notes",), subject="panini fsck --remote", n=1,
               note="once, right after the push, beside the rounds' median fetch")] if first else []),
        row(f"{label}: CPU seconds of the command tree (median)", "s",
            vals(lambda k: h.median([r[k]["cpu_seconds"] for r in fr])), better="lower",
            anchors=("git fetch store + notes",), subject="panini fsck --remote", n=n),
        row(f"{label}: bytes on the wire", "MiB", vals(lambda k: mib(h.median([r[k]["wire"]["bytes"] for r in fr]))),
            better="lower", anchors=("git fetch store + notes",), subject="panini fsck --remote",
            note="fsck in the clone that pushed, which holds the objects already"),
        row(f"{label}: git connections", "count", vals(lambda k: max(r[k]["wire"]["connections"] for r in fr)),
            better="lower", anchors=("git fetch store + notes",), subject="panini fsck --remote"),
    ]


if __name__ == "__main__":
    # `python -m bench.trust fsck [bench.run options]`: only these parts, through bench.run (results file and all).
    from . import run as bench_run
    os.environ["PANINI_BENCH_TRUST_PARTS"] = " ".join(a for a in sys.argv[1:] if a in PARTS)
    parts()
    bench_run.main(["--only", "trust", *(a for a in sys.argv[1:] if a not in PARTS)])
