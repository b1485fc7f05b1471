"""Four workers on four clones of one bare remote, started together, share one backlog: afterwards a fresh
clone sees every file completed, verifies bit-perfect, and the store holds few duplicated chunks. And
several worker processes sharing ONE clone (dispatch --backend local, work --job, work -j) finish every
file: a claim one of them loses is never stranded by a sibling's push."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import threading
from collections import defaultdict

from conftest import (MiB, clone, file_url, git, ls_tree, make_bare, make_repo, notes_of, pointer_of, run,
                      sha256_file, write_random, write_text)

WORKERS = 4
FILES = 24


def _backlog(work, rng: random.Random) -> dict[str, str]:
    """24 files, 64 KiB to 3 MiB: text, random binary, and text with binary islands. Returns {name: sha256}."""
    digests = {}
    for i in range(FILES):
        size = rng.choice([64 << 10, 200 << 10, 700 << 10, int(1.5 * MiB), 3 * MiB])
        name = f"f{i:02d}.bin"
        kind = i % 3
        if kind == 0:
            write_text(work / name, size, seed=100 + i)
        elif kind == 1:
            write_random(work / name, size, seed=200 + i)
        else:
            text = write_text(work / name, size, seed=300 + i).read_bytes()
            r = random.Random(400 + i)
            cut = r.randrange(len(text) // 2)
            (work / name).write_bytes(text[:cut] + r.randbytes(size // 4) + text[cut:])
        digests[name] = sha256_file(work / name)
    return digests


def _pack_chunks(repo) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Parse every recipe under packs/ in refs/panini/store: chunk -> packs yielding it, chunk -> size."""
    yielders: dict[str, set[str]] = defaultdict(set)
    sizes: dict[str, int] = {}
    recipes = {path: oid for path, (_, oid, _) in ls_tree(repo, "refs/panini/store", "packs").items()}
    assert recipes, "the store holds no packs at all"
    batch = git(repo, "cat-file", "--batch", input="".join(f"{oid}\n" for oid in recipes.values()),
                binary=True).stdout
    pos = 0
    for path in recipes:
        header_end = batch.index(b"\n", pos)
        _, kind, size = batch[pos:header_end].split()
        assert kind == b"blob"
        body = batch[header_end + 1:header_end + 1 + int(size)]
        pos = header_end + 1 + int(size) + 1
        pack = path.split("/")[2]
        for chunk, _offset, length in json.loads(body)["chunks"]:
            yielders[chunk].add(pack)
            sizes[chunk] = length
    return yielders, sizes


def test_four_workers_on_four_clones_complete_one_backlog(tmp_path, report):
    remote, url = make_bare(tmp_path)
    seed = make_repo(tmp_path, name="seed", track=("*.bin",))
    digests = _backlog(seed, random.Random(3))
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "backlog")
    git(seed, "remote", "add", "origin", url)
    git(seed, "push", "-q", "origin", "main")      # the pre-push hook sends the store and the pending notes
    assert len(ls_tree(remote, "refs/notes/panini")) == FILES

    # Four worker machines: plain clones (no checkout: a worker reads the store, not the files).
    clones = []
    for n in range(WORKERS):
        path = tmp_path / f"worker{n}"
        run(["git", "clone", "-q", "--no-checkout", url, str(path)])
        clones.append(path)

    barrier = threading.Barrier(WORKERS)
    results: list[subprocess.CompletedProcess | None] = [None] * WORKERS

    def work(n: int):
        barrier.wait()
        results[n] = subprocess.run(["git", "panini", "work", "--remote", "origin", "--effort", "0", "--json"],
                                    cwd=clones[n], capture_output=True, text=True, timeout=600)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worked = {}
    for n, proc in enumerate(results):
        assert proc is not None and proc.returncode == 0, f"worker {n}:\n{proc and proc.stdout}\n{proc and proc.stderr}"
        assert "Traceback" not in proc.stderr
        files = json.loads(proc.stdout)["files"]
        assert all(f["ok"] for f in files), files
        worked[n] = len(files)

    # A fresh clone (filter from ~/.gitconfig): checkout smudges every file from the packs.
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    for name, digest in digests.items():
        assert sha256_file(fresh / name) == digest, name
    run(["git", "panini", "fetch"], cwd=fresh)

    manifests = {pointer_of(fresh, f"HEAD:{name}").manifest for name in digests}
    from git_panini.store.notes import Notes
    from git_panini.git.repo import Repo
    repo = Repo(str(fresh))
    try:
        notes = Notes(repo).all()
    finally:
        repo.close()
    assert set(notes) == manifests
    assert {m: n["status"] for m, n in notes.items()} == {m: "completed" for m in manifests}
    assert all(n["stored_bytes"] is not None and n["lease_until"] is None for n in notes.values())
    by_worker = defaultdict(int)
    for n in notes.values():
        by_worker[n["worker"]] += 1

    out = run(["git", "panini", "verify", "--all"], cwd=fresh).stdout
    assert f"{FILES} of {FILES} file(s) verified bit-perfect" in out
    fsck = json.loads(run(["git", "panini", "fsck", "--json"], cwd=fresh).stdout)
    assert fsck["ok"] and fsck["counts"]["raw_chunks"] == 0, fsck

    # Duplicates: chunks that more than one pack yields. Each worker claims under a lease and keeps only
    # the claims that survive its push, but two workers that fetched the same pending notes before either
    # pushed may both win for a moment (the notes merge picks one claim afterwards, once both are packing);
    # the store merge then keeps both packs (either decodes). So a race costs some duplicated bytes, never
    # a lost or undecodable chunk; with batches claimed whole it must stay a small fraction.
    yielders, sizes = _pack_chunks(fresh)
    wanted = set()
    for m in manifests:
        wanted |= {line.split()[0] for line in git(fresh, "cat-file", "blob", m).stdout.splitlines()}
    assert wanted <= set(yielders), "a chunk of some file is in no pack"
    total = sum(sizes.values())
    duplicated = {c: len(p) - 1 for c, p in yielders.items() if len(p) > 1}
    dup_bytes = sum(sizes[c] * extra for c, extra in duplicated.items())
    packs = {p for ps in yielders.values() for p in ps}
    report(f"cluster: {WORKERS} workers, files worked per worker {sorted(worked.values(), reverse=True)}, "
           f"completed per worker {sorted(by_worker.values(), reverse=True)}; {len(packs)} packs; "
           f"{len(duplicated)} of {len(yielders)} chunks in more than one pack, "
           f"{dup_bytes} duplicated bytes of {total} ({dup_bytes / total:.1%})")
    assert sum(worked.values()) >= FILES
    assert dup_bytes < 0.25 * total


# --- processes sharing one clone -------------------------------------------------------------------

SHARED_FILES = 30
# How the processes start: dispatch's own workers, `work --job` processes started at once on jobs
# queued elsewhere, and `work -j`'s process pool.
SHARED_KINDS = ("dispatch", "jobs", "pool")


def _start_together(cmds: list[list[str]], cwd) -> list[subprocess.CompletedProcess]:
    """Run the commands in cwd at the same instant; their results in order."""
    logs = [(cwd.parent / f"{cwd.name}-{n}.out", cwd.parent / f"{cwd.name}-{n}.err") for n in range(len(cmds))]
    procs = []
    for cmd, (out, err) in zip(cmds, logs):
        with open(out, "w") as stdout, open(err, "w") as stderr:   # the child keeps its own copies
            procs.append(subprocess.Popen(cmd, cwd=cwd, stdout=stdout, stderr=stderr))
    codes = [p.wait(timeout=600) for p in procs]
    return [subprocess.CompletedProcess(p.args, code, out.read_text(), err.read_text())
            for p, code, (out, err) in zip(procs, codes, logs)]


def _shared_round(tmp_path, pristine, manifests: set[str], digests: dict[str, str], total: int, rnd: int) -> str:
    """One race in a fresh copy of the remote; returns a line for the report."""
    rng = random.Random(rnd)
    kind = SHARED_KINDS[rnd % len(SHARED_KINDS)]
    remote = tmp_path / f"remote{rnd}.git"
    shutil.copytree(pristine, remote)
    url = file_url(remote)
    work = tmp_path / f"shared{rnd}"
    run(["git", "clone", "-q", "--no-checkout", url, str(work)])
    # Two or three jobs that together take the whole backlog (first fit wastes less than a file per job).
    job_bytes = str(int(rng.uniform(0.45, 0.7) * total))
    if kind == "dispatch":
        proc = run(["git", "panini", "dispatch", "--backend", "local", "--max-jobs", "3", "--job-bytes", job_bytes,
                    "--effort", "0", "--json"], cwd=work, check=False)
        workers = json.loads(proc.stdout)["workers"] if proc.stdout.strip() else []
        assert proc.returncode == 0 and len(workers) >= 2, f"round {rnd}: {proc.stdout}\n{proc.stderr}"
        assert all(w["exit"] == 0 for w in workers), f"round {rnd}: {workers}"
        started = len(workers)
    else:
        if kind == "jobs":
            planner = tmp_path / f"planner{rnd}"
            run(["git", "clone", "-q", "--no-checkout", url, str(planner)])
            out = run(["git", "panini", "dispatch", "--backend", "github", "--matrix", "--max-jobs", "3",
                       "--job-bytes", job_bytes, "--json"], cwd=planner).stdout
            cmds = [["git", "panini", "work", "--job", job["id"], "--remote", "origin", "--effort", "0",
                     "--threads", "1"] for job in json.loads(out)["jobs"]]
        else:
            cmds = [["git", "panini", "work", "-j", "3", "--remote", "origin", "--effort", "0", "--threads", "1"]]
        results = _start_together(cmds, work)
        for proc in results:
            assert proc.returncode == 0, f"round {rnd} ({kind}): {proc.args}\n{proc.stdout}\n{proc.stderr}"
            assert "Traceback" not in proc.stderr
        started = len(cmds) if kind == "jobs" else 3
    # Every file completed on the remote: none left queued or processing under a process that is gone.
    statuses = {m: n["status"] for m, n in notes_of(remote).items()}
    assert statuses == {m: "completed" for m in manifests}, f"round {rnd} ({kind}): {sorted(statuses.values())}"
    # Only what refs reach counts: a fresh clone after gc gets every file back, bit for bit.
    git(remote, "reflog", "expire", "--expire=now", "--all")
    git(remote, "gc", "-q", "--prune=now")
    fresh = tmp_path / f"fresh{rnd}"
    clone(url, fresh)
    for name, digest in digests.items():
        assert sha256_file(fresh / name) == digest, f"round {rnd} ({kind}): {name}"
    return f"{kind} ({started} processes)"


def test_processes_sharing_one_clone_complete_every_file(tmp_path, slow, report):
    remote, url = make_bare(tmp_path, name="pristine.git")
    seed = make_repo(tmp_path, name="seed", track=("*.bin",))
    rng = random.Random(11)
    digests, total = {}, 0
    for i in range(SHARED_FILES):
        name = f"s{i:02d}.bin"
        size = rng.randrange(8 << 10, 64 << 10)
        (write_text if i % 2 else write_random)(seed / name, size, seed=500 + i)
        digests[name] = sha256_file(seed / name)
        total += size
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "backlog")
    git(seed, "remote", "add", "origin", url)
    git(seed, "push", "-q", "origin", "main")
    manifests = {pointer_of(seed, f"HEAD:{name}").manifest for name in digests}
    run(["git", "panini", "install", "--global"], cwd=tmp_path)   # the fresh clones smudge
    rounds = [_shared_round(tmp_path, remote, manifests, digests, total, rnd) for rnd in range(12 if slow else 3)]
    report(f"one clone, processes racing: {len(rounds)} rounds all completed: {', '.join(rounds)}")
