"""Hostile manifests and pointers, pushed by a collaborator with push access to a real bare remote.

- Case 4: manifests describing files of GiBs made of a few distinct chunks (a 64 KiB chunk of zeros
  49,152 times: 3 GiB; two chunks alternating; a ZIP header then zeros), each with a `pending` note. The
  worker's memory and time grow with the distinct chunks, not the file's size: it packs each chunk once. A
  manifest whose sizes add up to more than panini.maxFileSize fails alone. A real file of zeros still adds,
  pushes, works and reads back.
- Case 9: pointers in a branch whose data cannot be had (a 257 MiB manifest: over the 256 MiB any manifest
  may be; a manifest nowhere; a sha256 or size that the manifest does not match; a size over the cap). With
  filter.panini.required=true (git panini install sets it) a clone still checks out every other file: each
  such file stays its pointer text, with one line naming it and why; `git panini status` and `fsck` name it;
  `git panini checkout` tries again, and brings a file once its data is there.
- The parse: a manifest of a million lines naming one or two chunks grows memory by a few MiB, not by
  a million (chunk, size) tuples.

Each attack test ends with reflog expiry and `git gc --prune=now` in every repository and the remote, then a
fresh clone over file:// that reads every honest committed file bit-identical.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (MiB, clone, git, make_bare, make_repo, manifest_chunks, notes_of, pointer_of, run, sha256_file,
                      write_random)
from git_panini.format import manifest as manifest_mod
from git_panini.format.pointer import Pointer
from git_panini.git.objects import encode_commit, object_id
from git_panini.git.repo import Repo
from git_panini.git.tree_edit import TreeEditor
from git_panini.store.notes import Notes, new_note
from git_panini.store.shared import RAW_REFS, Store, fan, manifest_path, raw_list_path

GiB = 1 << 30
KiB = 1 << 10
WORK_RSS_LIMIT_KIB = 400 << 10     # today's code: 6.2 GiB for the 3 GiB file of zeros
WORK_SECONDS_LIMIT = 90            # today's code: past 300 s for it (a loaded 2-core machine: generous)


# --- helpers ------------------------------------------------------------------------------------------


def _gc(path):
    git(path, "reflog", "expire", "--expire=now", "--all")
    git(path, "gc", "-q", "--prune=now")


def _honest(tmp_path) -> tuple[Path, str, Path, dict[str, str]]:
    """A bare remote and an honest clone that pushed two files. Returns (bare, url, clone, {path: sha256})."""
    bare, url = make_bare(tmp_path)
    work = make_repo(tmp_path, name="honest", track=("*.bin",))
    git(work, "remote", "add", "origin", url)
    files = {"one.bin": sha256_file(write_random(work / "one.bin", MiB + 12_345, seed=1)),
             "two.bin": sha256_file(write_random(work / "two.bin", 300_000, seed=2))}
    git(work, "add", ".gitattributes", *files)
    git(work, "commit", "-q", "-m", "honest files")
    git(work, "push", "-q", "-u", "origin", "main")
    return bare, url, work, files


def _attacker(tmp_path, url) -> Path:
    """A collaborator's clone, with the remote's store and notes fetched."""
    evil = tmp_path / "evil"
    clone(url, evil)
    run(["git", "panini", "install"], cwd=evil)
    run(["git", "panini", "fetch"], cwd=evil)
    return evil


def _push_store(evil: Path, files: dict[str, tuple[dict[str, bytes], list[tuple[str, int]]]]) -> dict[str, str]:
    """The attacker's push: for each name, ({chunk id: bytes}, manifest lines) becomes a manifest in the
    remote's store, its chunks in a raw batch (listed in the store), and a `pending` note, as a client
    publishes a file; pushed with --no-verify as plain git refs. Returns {name: manifest id}."""
    r = Repo(str(evil))
    try:
        chunks = {c: data for blobs, _ in files.values() for c, data in blobs.items()}
        for c, data in chunks.items():
            assert r.write_object("blob", data) == c
        batch = TreeEditor(r, None)
        for c in chunks:
            batch.set(fan(c), c)
        commit = r.write_object("commit", encode_commit(batch.write(), [], "raw", content_addressed=True))
        r.git("update-ref", RAW_REFS + commit, commit)
        listing = r.write_object("blob", "".join(f"{c}\n" for c in sorted(chunks)).encode())
        manifests = {name: r.write_object("blob", manifest_mod.encode(lines)) for name, (_, lines) in files.items()}

        def apply(editor):
            for m in manifests.values():
                editor.set(manifest_path(m), m)
            editor.set(raw_list_path(commit), listing)
        Store(r).edit(apply, "hostile manifests")
        notes = {}
        for name, (blobs, lines) in files.items():
            notes[manifests[name]] = new_note(sum(s for _, s in lines), len(lines), len(blobs),
                                              sum(len(b) for b in blobs.values()))
        Notes(r).put(notes, "hostile notes")
    finally:
        r.close()
    git(evil, "push", "-q", "--no-verify", "origin", "refs/panini/store:refs/panini/store",
        "refs/notes/panini:refs/notes/panini", f"{RAW_REFS}{commit}:{RAW_REFS}{commit}")
    return manifests


def _chunk(data: bytes) -> tuple[str, bytes]:
    return object_id("blob", data, "sha1"), data


_PROBE = """
import os, resource, signal, subprocess, sys, threading, time
import psutil
timeout, cmd = float(sys.argv[1]), sys.argv[2:]
t = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
peak, done = [0], threading.Event()

def poll():   # the tree's largest process, also when it is killed before its parent could wait for it
    while not done.wait(0.1):
        try:
            procs = [psutil.Process(p.pid)]
            procs += procs[0].children(recursive=True)
            peak[0] = max([peak[0]] + [q.memory_info().rss >> 10 for q in procs])
        except psutil.Error:
            pass
threading.Thread(target=poll, daemon=True).start()
try:
    out, err = p.communicate(timeout=timeout)
    code = str(p.returncode)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)   # the whole tree: git and the git-panini it started
    out, err = p.communicate()
    code = "timeout"
done.set()
rss = max(peak[0], resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stderr.buffer.write(err); sys.stdout.buffer.write(out)
sys.stderr.write("\\nRSS %d %s %.3f\\n" % (rss, code, time.monotonic() - t))
"""


def _measured(cmd: list[str], cwd: Path, timeout: float) -> tuple[subprocess.CompletedProcess, int, float]:
    """Run cmd under a fresh Python parent; (result, peak RSS in KiB of the largest process of its tree: its
    own resource usage, RUSAGE_CHILDREN, or what psutil saw while it ran, seconds). Past `timeout` the
    command's whole process group is killed and its exit is None."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(timeout), *cmd], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout + 60)
    _, rss, code, seconds = [l for l in proc.stderr.splitlines() if l.startswith("RSS ")][-1].split()
    proc.returncode = int(code) if code != "timeout" else None
    return proc, int(rss), float(seconds)


def _fresh_clone_reads(tmp_path, url: str, files: dict[str, str], name: str = "fresh") -> subprocess.CompletedProcess:
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    dest = tmp_path / name
    proc = clone(url, dest)
    for path, digest in files.items():
        assert sha256_file(dest / path) == digest, path
    return proc


# --- case 4: a manifest of a huge file made of few chunks ------------------------------------------------


def test_hostile_manifests_cost_the_worker_their_distinct_chunks_not_their_size(tmp_path, report):
    bare, url, honest, files = _honest(tmp_path)
    evil = _attacker(tmp_path, url)
    zero = _chunk(bytes(64 * KiB))
    ones = _chunk(b"\x01" * (64 * KiB))
    # A ZIP local file header (what the structure scanner follows), then zeros: the scan must not read 3 GiB.
    head = _chunk(b"PK\x03\x04" + bytes(26) + bytes(64 * KiB - 30))
    big = _chunk(bytes(16 << 20))       # the largest chunk a manifest may list
    lines = 3 * GiB // (64 * KiB)
    hostile = _push_store(evil, {
        "zeros": (dict([zero]), [(zero[0], 64 * KiB)] * lines),                                  # 3 GiB
        "alternating": (dict([zero, ones]), [(zero[0], 64 * KiB), (ones[0], 64 * KiB)] * (lines // 2)),
        "zip-then-zeros": (dict([head, zero]), [(head[0], 64 * KiB)] + [(zero[0], 64 * KiB)] * (lines - 1)),
        # 1 TiB and 16 MiB: more than panini.maxFileSize (1 TiB) allows
        "over-cap": (dict([big]), [(big[0], 16 << 20)] * ((1 << 40) // (16 << 20) + 1)),
    })

    work, rss, seconds = _measured(["git", "panini", "work"], honest, WORK_SECONDS_LIMIT)
    report(f"hostile manifests (3 GiB of one chunk, of two alternating, a ZIP head then zeros; 1 TiB over the cap): "
           f"`git panini work` peak RSS {rss >> 10} MiB, {seconds:.1f} s (exit {work.returncode})")
    # exit 1: one file failed (the one over the cap, alone)
    assert work.returncode == 1, f"worker exit {work.returncode} after {seconds:.0f} s\n{work.stdout}\n{work.stderr}"
    assert rss < WORK_RSS_LIMIT_KIB, f"worker peak RSS {rss >> 10} MiB"
    assert "Traceback" not in work.stderr
    failed = [l for l in work.stdout.splitlines() + work.stderr.splitlines() if l.startswith("failed manifest")]
    assert failed and all(hostile["over-cap"] in l and "panini.maxFileSize" in l for l in failed), failed
    notes = notes_of(bare)
    for name in ("zeros", "alternating", "zip-then-zeros"):
        assert notes[hostile[name]]["status"] == "completed", (name, notes[hostile[name]])
    assert notes[hostile["over-cap"]]["status"] == "failed"
    assert "panini.maxFileSize" in notes[hostile["over-cap"]]["error"]
    for path in files:   # the honest files were packed in the same run
        assert notes[pointer_of(honest, f"HEAD:{path}").manifest]["status"] == "completed"
    # Each distinct chunk was packed once: the packs the worker pushed yield zero, ones and head, once each.
    packed = []
    r = Repo(str(bare))
    try:
        store = Store(r)
        for entry in TreeEditor(r, store.tree_of(store.tip())).list("packs"):
            for leaf in TreeEditor(r, store.tree_of(store.tip())).list(f"packs/{entry.name}"):
                packed += [c for c, _, _ in json.loads(r.read_kind(leaf.name, "blob"))["chunks"]]
    finally:
        r.close()
    for chunk in (zero[0], ones[0], head[0]):
        assert packed.count(chunk) == 1, (chunk, packed.count(chunk))

    # Every other reader of the store's manifests stays bounded too (fsck indexes the remote's manifests).
    fsck, fsck_rss, fsck_seconds = _measured(["git", "panini", "fsck"], honest, 120)
    report(f"hostile manifests: `git panini fsck` peak RSS {fsck_rss >> 10} MiB, {fsck_seconds:.1f} s")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert fsck_rss < WORK_RSS_LIMIT_KIB
    run(["git", "panini", "status"], cwd=honest)

    for path in (honest, evil, bare):
        _gc(path)
    _fresh_clone_reads(tmp_path, url, files)


def test_a_real_file_of_zeros_adds_pushes_works_and_reads_back(tmp_path, report):
    bare, url = make_bare(tmp_path)
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    git(work, "remote", "add", "origin", url)
    size = 200 * MiB + 4321
    with open(work / "zeros.bin", "wb") as f:
        for _ in range(200):
            f.write(bytes(MiB))
        f.write(bytes(4321))
    digest = sha256_file(work / "zeros.bin")
    files = {"zeros.bin": digest, "other.bin": sha256_file(write_random(work / "other.bin", 500_000, seed=3))}
    started = time.monotonic()
    git(work, "add", ".gitattributes", *files)
    git(work, "commit", "-q", "-m", "zeros")
    git(work, "push", "-q", "-u", "origin", "main")
    added = time.monotonic() - started
    manifest = pointer_of(work, "HEAD:zeros.bin").manifest
    chunks = manifest_chunks(work, manifest)
    assert sum(s for _, s in chunks) == size and len(set(chunks)) <= 3 and len(chunks) > 100

    done, rss, seconds = _measured(["git", "panini", "work"], work, 120)
    report(f"200 MiB file of zeros: add+commit+push {added:.1f} s; `git panini work` peak RSS {rss >> 10} MiB, "
           f"{seconds:.1f} s")
    assert done.returncode == 0, done.stderr
    assert rss < WORK_RSS_LIMIT_KIB
    assert notes_of(bare)[manifest]["status"] == "completed"
    (work / "zeros.bin").unlink()
    git(work, "checkout", "--", "zeros.bin")
    assert sha256_file(work / "zeros.bin") == digest
    assert run(["git", "panini", "verify"], cwd=work).returncode == 0
    for path in (work, bare):
        _gc(path)
    _fresh_clone_reads(tmp_path, url, files)


# --- case 9: pointers whose data cannot be had ----------------------------------------------------------


def _hostile_branch(evil: Path, honest_pointer: Pointer) -> dict[str, str]:
    """Commit pointers whose data cannot be had, push them with --no-verify. Returns {path: why}."""
    r = Repo(str(evil))
    try:
        # 257 MiB of manifest (one line over and over): more than any manifest may be.
        line = f"{'3' * 40} 65536\n".encode()
        huge = r.write_object("blob", line * ((257 << 20) // len(line) + 1))
        Store(r).edit(lambda editor: editor.set(manifest_path(huge), huge), "a huge manifest")
    finally:
        r.close()
    size = ((257 << 20) // len(line) + 1) * 65536
    pointers = {
        "huge-manifest.bin": (Pointer(huge, "0" * 64, size), "more than a blob here may be"),
        "nowhere.bin": (Pointer("4" * 40, "0" * 64, 123_456), "is not in this repository"),
        "wrong-sha.bin": (Pointer(honest_pointer.manifest, "5" * 64, honest_pointer.size), "does not match sha256"),
        "wrong-size.bin": (Pointer(honest_pointer.manifest, honest_pointer.sha256, honest_pointer.size + 1),
                           "does not add up"),
        "over-cap.bin": (Pointer(honest_pointer.manifest, honest_pointer.sha256, 2 << 40), "panini.maxFileSize"),
    }
    for name, (pointer, _) in pointers.items():
        (evil / name).write_bytes(pointer.encode())
    git(evil, "add", *pointers)
    git(evil, "commit", "-q", "-m", "files nobody can have")
    git(evil, "push", "-q", "--no-verify", "origin", "main", "refs/panini/store:refs/panini/store")
    return {name: why for name, (_, why) in pointers.items()}


def _left_as_pointers(repo: Path, stderr: str, bad: dict[str, str]):
    """Each bad file is its pointer text, named in exactly one line of the filter saying why."""
    for name, why in bad.items():
        assert (repo / name).read_bytes() == git(repo, "cat-file", "blob", f"HEAD:{name}", binary=True).stdout, name
        lines = [l for l in stderr.splitlines() if l.startswith(f"git-panini: {name}: left as its pointer")]
        assert len(lines) == 1 and why in lines[0], (name, stderr)


def test_files_whose_data_cannot_be_had_never_fail_a_clone(tmp_path, report):
    bare, url, honest, files = _honest(tmp_path)
    evil = _attacker(tmp_path, url)
    git(evil, "pull", "-q")
    bad = _hostile_branch(evil, pointer_of(honest, "HEAD:one.bin"))

    # A victim's clone, filter.panini.required=true from `install --global`: it succeeds.
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    assert git(tmp_path, "config", "--global", "filter.panini.required").stdout.strip() == "true"
    victim = tmp_path / "victim"
    started = time.monotonic()
    proc = subprocess.run(["git", "clone", "-q", url, str(victim)], capture_output=True, text=True, timeout=300)
    report(f"clone with {len(bad)} files whose data cannot be had (one names a 257 MiB manifest): exit "
           f"{proc.returncode}, {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for path, digest in files.items():
        assert sha256_file(victim / path) == digest, path
    _left_as_pointers(victim, proc.stderr, bad)
    assert git(victim, "status", "--porcelain").stdout == ""

    # status and fsck name each as missing, and why
    status = run(["git", "panini", "status"], cwd=victim)
    for name, why in bad.items():
        (line,) = [l for l in status.stdout.splitlines() if l.startswith(name + " ")]
        assert "missing" in line and why in line, line
    listed = json.loads(run(["git", "panini", "status", "--json"], cwd=victim).stdout)["files"]
    assert {f["path"] for f in listed if f["status"] == "missing"} == set(bad)
    fsck = run(["git", "panini", "fsck"], cwd=victim, check=False)
    assert fsck.returncode == 1
    for name in bad:
        assert any(l.startswith(f"error: {name}: missing") for l in fsck.stdout.splitlines()), fsck.stdout

    # git panini checkout tries again: still nothing to be had, said again, and it fails
    again = run(["git", "panini", "checkout"], cwd=victim, check=False)
    assert again.returncode == 1 and f"{len(bad)} still missing" in again.stdout
    _left_as_pointers(victim, again.stderr, bad)

    # A file whose data comes later: the remote is away while the victim merges (its branch fetched before),
    # so the merge leaves it as its pointer text; once the remote is back, git panini checkout brings it.
    git(honest, "pull", "-q", "--no-rebase")
    files["late.bin"] = sha256_file(write_random(honest / "late.bin", 400_000, seed=9))
    git(honest, "add", "late.bin")
    git(honest, "commit", "-q", "-m", "late")
    git(honest, "push", "-q", "origin", "main")
    git(victim, "fetch", "-q", "origin")
    away = tmp_path / "away.git"
    shutil.move(bare, away)
    merged = git(victim, "merge", "-q", "--ff-only", "origin/main")
    shutil.move(away, bare)
    late_line = [l for l in merged.stderr.splitlines() if l.startswith("git-panini: late.bin: left as its pointer")]
    assert len(late_line) == 1, merged.stderr
    assert (victim / "late.bin").stat().st_size < 1024
    later = run(["git", "panini", "checkout"], cwd=victim, check=False)
    assert sha256_file(victim / "late.bin") == files["late.bin"]
    assert later.returncode == 1 and f"{len(bad)} still missing" in later.stdout
    statuses = {f["path"]: f["status"] for f in json.loads(run(["git", "panini", "status", "--json"],
                                                               cwd=victim).stdout)["files"]}
    assert statuses["late.bin"] != "missing" and all(statuses[name] == "missing" for name in bad)

    for path in (honest, evil, victim, bare):
        _gc(path)
    fresh = _fresh_clone_reads(tmp_path, url, files)
    _left_as_pointers(tmp_path / "fresh", fresh.stderr, bad)


# --- the parse itself --------------------------------------------------------------------------------

_PARSE_PROBE = """
import resource, sys, time
from git_panini.format import manifest
a, b = manifest.encode([("a" * 40, 65536)]), manifest.encode([("b" * 40, 4096)])
data = a * 1_000_000 if sys.argv[1] == "repeated" else (a + b) * 500_000   # nothing else as large made first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.process_time()
m = manifest.parse(data, 40)
seconds = time.process_time() - t
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grown, seconds, len(m), len({c for c, _ in m}), sum(s for _, s in m))
"""


def test_a_manifest_costs_memory_for_its_distinct_chunks(report):
    """A million lines naming one chunk, or two in turn: the parsed manifest holds the distinct chunks and
    runs of repeats (at most a few bytes per run), never a million (chunk, size) tuples."""
    for kind, size in (("repeated", 1_000_000 * 65536), ("alternating", 500_000 * 69632)):
        out = subprocess.run([sys.executable, "-c", _PARSE_PROBE, kind], capture_output=True, text=True, check=True)
        grown, seconds, lines, distinct, total = out.stdout.split()
        report(f"manifest of 1,000,000 lines ({kind}): parse grew RSS by {int(grown) >> 10} MiB in {float(seconds):.2f} s")
        assert (int(lines), int(distinct), int(total)) == (1_000_000, 1 if kind == "repeated" else 2, size)
        assert int(grown) < 16 << 10, f"{kind}: parsing grew RSS by {int(grown) >> 10} MiB"   # today's code: 336 MiB


def test_a_one_line_manifest_parses_as_any_other():
    """A small file's manifest (one line) takes a short path; it must give what the general one gives."""
    one = manifest_mod.parse(b"a" * 40 + b" 1234\n", 40)
    two = manifest_mod.parse(b"a" * 40 + b" 1234\n" + b"b" * 40 + b" 1\n", 40)
    assert (one.chunks, list(one.sizes), list(one.counts), list(one.runs()), one.size, one.lines) == (
        ["a" * 40], [1234], [1], [("a" * 40, 1234, 1)], 1234, 1)
    assert list(two.runs())[0] == list(one.runs())[0]
    for bad in (b"a" * 40 + b" 0\n", b"a" * 39 + b" 5\n", b"A" * 40 + b" 5\n", b"a" * 40 + b" 16777217\n",
                b"a" * 40 + b" 5"):
        with pytest.raises(manifest_mod.ManifestError):
            manifest_mod.parse(bad, 40)
    with pytest.raises(manifest_mod.TooLarge):
        manifest_mod.parse(b"a" * 40 + b" 1234\n", 40, max_size=1000)
