"""The worker on real data: a mixed corpus packed at effort 2 reconstructs bit-perfectly and shrinks per
type (Lepton on JPEGs, re-deflated wheels); the claim rules; failures retried then marked failed;
chunks shared by files packed once; a second run does nothing."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import sysconfig
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import notes_of, MiB, git, ls_tree, make_bare, make_repo, run, sha256_file, write_random, write_text
from git_panini import codecs
from git_panini.work.claims import claimable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import corpus  # noqa: E402

TYPES = ("python", "docs", "man", "wheel", "jpeg", "png", "elf")


def _pointer_manifests(path, names) -> dict[str, tuple[str, int]]:
    """{path: (manifest, size)} of the pointers HEAD holds for these paths."""
    from git_panini.format.pointer import parse
    out = {}
    for name in names:
        p = parse(git(path, "cat-file", "blob", f"HEAD:{name}", binary=True).stdout)
        out[name] = (p.manifest, p.size)
    return out


def _yielders(path) -> dict[str, set[str]]:
    """chunk -> the packs whose recipe yields it (refs/panini/store)."""
    out = defaultdict(set)
    for name, (_, oid, _) in ls_tree(path, "refs/panini/store", "packs").items():
        for chunk, _, _ in json.loads(git(path, "cat-file", "-p", oid).stdout)["chunks"]:
            out[chunk].add(name.split("/")[2])
    return out


# --- a mixed corpus ---------------------------------------------------------------------------------------


def test_mixed_corpus_packs_bit_perfect_and_smaller_per_type(tmp_path, report):
    path = make_repo(tmp_path, name="corpus")
    made = corpus.build(str(path), scale=0.1)
    if not made["wheel"]:
        # scale 0.1 leaves 0.6 MiB for wheels, less than any wheel bench.corpus finds: add the smallest
        # wheel this Python bundles, so the zip codecs are exercised too.
        bundled = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "ensurepip", "_bundled", "*.whl")),
                         key=os.path.getsize)
        assert bundled, "no wheel found on this machine"
        name = "wheel/0000-" + os.path.basename(bundled[0])
        shutil.copyfile(bundled[0], path / name)
        made["wheel"] = [name]
    for kind in TYPES:
        assert made[kind], f"the corpus has no {kind} files"
    run(["git", "panini", "track", *[f"{kind}/**" for kind in TYPES]], cwd=path)
    names = [n for kind in TYPES for n in made[kind]]
    digests = {n: sha256_file(path / n) for n in names}
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "corpus")

    # The one commit is hot: only the archive profile lets the strongest codecs, measured here, at it.
    git(path, "config", "panini.profile", "archive")
    out = run(["git", "panini", "work", "--no-remote", "--effort", "2", "--json"], cwd=path).stdout
    results = json.loads(out)["files"]
    assert results and all(r["ok"] for r in results)

    pointers = _pointer_manifests(path, names)
    notes = notes_of(path)
    assert {m for m, _ in pointers.values()} == set(notes)
    assert {n["status"] for n in notes.values()} == {"completed"}
    verify = run(["git", "panini", "verify", "--all"], cwd=path).stdout
    assert f"{len(set(pointers.values()))} of " in verify and "FAILED" not in verify
    fsck = json.loads(run(["git", "panini", "fsck", "--json"], cwd=path).stdout)
    assert fsck["ok"] and fsck["counts"]["raw_chunks"] == 0, fsck

    for n in names:
        (path / n).unlink()
    git(path, "checkout", "--", ".")
    for n, digest in digests.items():
        assert sha256_file(path / n) == digest, n
    assert git(path, "status", "--porcelain").stdout == ""

    table = {}
    for kind in TYPES:
        files = [pointers[n] for n in made[kind]]
        raw = sum(size for _, size in files)
        stored = sum(notes[m]["stored_bytes"] for m, _ in files)
        chains = defaultdict(int)
        for m, _ in files:
            for chain, size in (notes[m].get("codecs") or {}).items():
                chains[chain] += size
        table[kind] = (len(files), raw, stored, max(chains, key=chains.get) if chains else "-")
    report("corpus (scale 0.1, effort 2): type, files, bytes, stored, ratio, main codec chain")
    for kind, (count, raw, stored, chain) in table.items():
        report(f"  {kind:7s} {count:4d} {raw:10d} {stored:10d} {stored / raw:7.1%}  {chain}")
    raw_all, stored_all = sum(t[1] for t in table.values()), sum(t[2] for t in table.values())
    report(f"  {'total':7s} {len(names):4d} {raw_all:10d} {stored_all:10d} {stored_all / raw_all:7.1%}")

    if codecs.get("jpeg-lepton").available():
        assert table["jpeg"][2] < 0.80 * table["jpeg"][1]
    assert table["wheel"][2] < 0.85 * table["wheel"][1]
    assert stored_all < 0.75 * raw_all


# --- the queue --------------------------------------------------------------------------------------------


def test_claimable_rules():
    now = datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc)
    past = (now - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    future = (now + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert claimable({"status": "pending"}, now)
    assert not claimable(None, now) and not claimable({}, now)
    assert not claimable({"status": "completed"}, now)
    assert not claimable({"status": "processing", "lease_until": future}, now)
    assert claimable({"status": "processing", "lease_until": past}, now, skew=0)        # the worker died: retake
    # Another machine's lease is retaken only once expired by more than the clock-skew margin.
    assert not claimable({"status": "processing", "lease_until": past}, now)
    long_past = (now - timedelta(seconds=31)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert claimable({"status": "processing", "lease_until": long_past}, now)
    assert claimable({"status": "processing", "lease_until": "not a time"}, now)      # protects nothing
    assert not claimable({"status": "queued", "lease_until": future, "job": "j1"}, now)
    assert claimable({"status": "queued", "lease_until": future, "job": "j1"}, now, job="j1")
    assert not claimable({"status": "queued", "lease_until": future, "job": "j1"}, now, job="j2")
    assert claimable({"status": "queued", "lease_until": past, "job": "j1"}, now, skew=0)
    assert claimable({"status": "failed", "attempts": 2}, now, max_attempts=3)
    assert not claimable({"status": "failed", "attempts": 3}, now, max_attempts=3)


def test_a_file_that_cannot_be_read_is_retried_then_failed_and_the_rest_completes(tmp_path):
    from git_panini.format import manifest as manifest_mod
    from git_panini.store.notes import Notes, new_note
    from git_panini.git.repo import Repo
    from git_panini.store.shared import Store, manifest_path

    path = make_repo(tmp_path, track=("*.bin",))
    good = sha256_file(write_text(path / "good.bin", MiB, seed=1))
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "good")
    remote, url = make_bare(tmp_path)
    git(path, "remote", "add", "origin", url)
    git(path, "push", "-q", "origin", "main")
    # On the remote, a manifest whose chunk is nowhere (as after a push that lost objects), queued as
    # pending work. (A push from here refuses to publish such a manifest.)
    lost = "ab" * 20
    repo = Repo(str(remote))
    try:
        bad = repo.write_object("blob", manifest_mod.encode([(lost, 1000)]))
        Store(repo).edit(lambda editor: editor.set(manifest_path(bad), bad), "test: a manifest without its chunk")
        Notes(repo).put({bad: new_note(1000, 1, 1, 1000)}, "test: pending")
    finally:
        repo.close()

    # Through a remote: each failure must survive the merge with the worker's own published claim.
    proc = run(["git", "panini", "work", "--remote", "origin", "--effort", "0"], cwd=path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"failed manifest {bad}" in proc.stdout and lost in proc.stdout
    good_manifest = _pointer_manifests(path, ["good.bin"])["good.bin"][0]
    for where in (path, remote):
        notes = notes_of(where)
        assert notes[bad]["status"] == "failed" and notes[bad]["attempts"] == 3 and lost in notes[bad]["error"]
        assert notes[bad]["lease_until"] is None
        assert notes[good_manifest]["status"] == "completed" and notes[good_manifest]["attempts"] == 0
        assert notes[good_manifest]["stored_bytes"] < MiB // 2

    # Nothing is left to do: a second run changes neither the store nor the notes.
    tips = git(path, "rev-parse", "refs/panini/store", "refs/notes/panini").stdout
    proc = run(["git", "panini", "work", "--remote", "origin", "--effort", "0"], cwd=path)
    assert proc.stdout.startswith("0 file(s) worked")
    assert git(path, "rev-parse", "refs/panini/store", "refs/notes/panini").stdout == tips
    (path / "good.bin").unlink()
    git(path, "checkout", "--", "good.bin")
    assert sha256_file(path / "good.bin") == good
    run(["git", "panini", "verify"], cwd=path)


def test_chunks_shared_by_files_of_one_batch_are_packed_once(tmp_path):
    path = make_repo(tmp_path, track=("*.bin",))
    base = write_random(path / "a.bin", 3 * MiB // 2, seed=4).read_bytes()
    (path / "b.bin").write_bytes(base + os.urandom(300_000))               # a's chunks, then more
    (path / "c.bin").write_bytes(write_text(path / "t.txt", MiB, seed=5).read_bytes() + base[:MiB])
    (path / "t.txt").unlink()
    digests = {n: sha256_file(path / n) for n in ("a.bin", "b.bin", "c.bin")}
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "overlapping files")
    run(["git", "panini", "work", "--no-remote", "--effort", "0"], cwd=path)
    yielders = _yielders(path)
    assert yielders and all(len(packs) == 1 for packs in yielders.values()), \
        [c for c, p in yielders.items() if len(p) > 1]
    for name in digests:
        (path / name).unlink()
    git(path, "checkout", "--", ".")
    for name, digest in digests.items():
        assert sha256_file(path / name) == digest
    run(["git", "panini", "verify"], cwd=path)


def test_work_keeps_its_own_lines_out_of_the_terminal_and_in_a_log(tmp_path):
    """The worker's lines (each segment, delta, retry) went between the progress bars; they go to one log,
    and the summary says where."""
    path = make_repo(tmp_path, track=("*.bin",))
    write_text(path / "a.bin", MiB, seed=3)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "a")
    proc = run(["git", "panini", "work", "--effort", "0"], cwd=path)
    assert "segment of" not in proc.stderr and "segment of" not in proc.stdout
    assert proc.stdout.startswith("1 file(s) worked") and "details: git panini logs last" in proc.stdout
    assert "segment of" in run(["git", "panini", "logs", "last"], cwd=path).stdout
