"""End-to-end transfer rules of the store (DESIGN.md §3, store v2), against a file:// remote and a real
smart-HTTP remote (`git http-backend`, see smart_http.py).

Only real git and the `git panini` command line are used. What is measured:
- bytes: growth of the bare remote's (or a clone's) objects folder, apparent file sizes, and on HTTP
  the request/response body bytes the server saw;
- round trips: POSTs to git-upload-pack seen by the HTTP server.

The rules: a push sends only what the pushed commits need, transfers are incremental, clones are
lazy and batched, a clone with only the global filter keeps the rules, concurrent writers lose
nothing; then skip-smudge, pull, checkout and prune.

At the bottom: a self-test of the HTTP server against plain git (no panini at all).
"""

from __future__ import annotations

import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import MiB, clone, dir_size, git, ls_tree, make_bare, make_repo, note_manifests, run, \
    sha256_file, write_random
from smart_http import HttpRemote, configure_bare, http_remote, serve_http_remote  # noqa: F401 (fixture)

KiB = 1 << 10
POINTER_HEADER = b"version git-panini/1\n"


# --- remotes: the same bare repository configuration, reached through file:// or smart HTTP ------------


@dataclass
class Remote:
    kind: str                      # "file" or "http"
    bare: Path
    url: str
    http: HttpRemote | None        # the server's request log (HTTP only)

    def objects_bytes(self) -> int:
        return dir_size(self.bare / "objects")

    def mark(self):
        if self.http:
            self.http.reset()

    def wire(self) -> str:
        return self.http.summary() if self.http else "(file://: no request log)"


# No `gc --auto` after a push: the remote's size must change only by what was pushed.
MEASURED = {"receive.autogc": "false", "gc.auto": "0"}


@pytest.fixture(params=["file", "http"])
def remote(request, tmp_path):
    if request.param == "file":
        bare, url = make_bare(tmp_path)
        configure_bare(bare, MEASURED)
        yield Remote("file", bare, url, None)
    else:
        with serve_http_remote(tmp_path, config=MEASURED) as served:
            yield Remote("http", served.bare, served.url, served)


# --- helpers -------------------------------------------------------------------------------------------


def objects_bytes(worktree) -> int:
    return dir_size(Path(worktree) / ".git" / "objects")


def work_repo(tmp_path, url: str | None, name: str = "work") -> Path:
    """A repository with `git panini install`, *.bin tracked (committed), origin = url."""
    work = make_repo(tmp_path, name=name, track=("*.bin",))
    git(work, "add", ".gitattributes")
    git(work, "commit", "-q", "-m", "track *.bin")
    if url:
        git(work, "remote", "add", "origin", url)
    return work


def commit_all(repo, message: str):
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def push(repo, *args):
    """A plain `git push` (the pre-push hook is what publishes the data)."""
    return git(repo, "push", "-q", *(args or ("origin", "HEAD")))


def install_global(cwd):
    run(["git", "panini", "install", "--global"], cwd=cwd)


def is_pointer(path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(POINTER_HEADER)) == POINTER_HEADER


def pointer_manifest(data: bytes) -> str:
    for line in data.decode().splitlines():
        if line.startswith("manifest "):
            return line.split()[1]
    raise AssertionError(f"not a pointer: {data[:200]!r}")


def has_object(repo, oid: str) -> bool:
    return git(repo, "cat-file", "-e", oid, check=False).returncode == 0


def assert_files(repo, digests: dict[str, str]):
    """Every file is a real file, bit-identical to what was committed."""
    for name, digest in sorted(digests.items()):
        path = Path(repo) / name
        assert path.is_file(), f"{name} was not checked out"
        assert not is_pointer(path), f"{name} is still a pointer file"
        assert sha256_file(path) == digest, f"{name} differs from the file that was committed"


def all_blobs(bare):
    """(oid, content) of every blob in the repository, reachable or not (loose and packed)."""
    proc = subprocess.Popen(["git", "-C", str(bare), "cat-file", "--batch-all-objects", "--batch"],
                            stdout=subprocess.PIPE)
    out = proc.stdout
    try:
        while header := out.readline():
            oid, kind, size = header.split()
            data = out.read(int(size))
            out.read(1)
            if kind == b"blob":
                yield oid.decode(), data
    finally:
        out.close()
        proc.wait()


# --- a. incremental push ---------------------------------------------------------------------------------


# Slow: ~6-10 s per transport (64 MiB cleaned twice and pushed).
def test_incremental_push_sends_only_new_data(tmp_path, remote, report):
    work = work_repo(tmp_path, remote.url)
    write_random(work / "big.bin", 64 * MiB, seed=1)
    commit_all(work, "big")
    push(work, "-u", "origin", "main")
    base = remote.objects_bytes()
    assert base > 64 * MiB, f"the remote holds {base} bytes after pushing 64 MiB: the data did not go"

    # A new 1 MiB file: the remote grows by about 1 MiB, not by the store's size.
    write_random(work / "small.bin", MiB, seed=2)
    commit_all(work, "small")
    remote.mark()
    push(work)
    grew = remote.objects_bytes() - base
    report(f"transfer/{remote.kind}: push of +1 MiB onto a 64 MiB store: remote grew {grew} bytes; {remote.wire()}")
    assert grew < 1.5 * MiB, f"pushing a 1 MiB file grew the remote by {grew} bytes"
    if remote.http:
        assert remote.http.bytes_received() < 1.5 * MiB, remote.wire()

    # A 4 KiB edit inside the 64 MiB file: only the changed chunks (and a manifest) move.
    base = remote.objects_bytes()
    with open(work / "big.bin", "r+b") as f:
        f.seek(40 * MiB + 12345)
        f.write(random.Random(3).randbytes(4 * KiB))
    commit_all(work, "edit big")
    remote.mark()
    push(work)
    grew = remote.objects_bytes() - base
    report(f"transfer/{remote.kind}: push of a 4 KiB edit in 64 MiB: remote grew {grew} bytes; {remote.wire()}")
    assert grew < 1 * MiB, f"pushing a 4 KiB edit grew the remote by {grew} bytes"
    if remote.http:
        assert remote.http.bytes_received() < 1 * MiB, remote.wire()


# --- b. incremental fetch --------------------------------------------------------------------------------


# Slow: ~8-12 s per transport (32 MiB cleaned, pushed, cloned).
def test_incremental_fetch_gets_only_new_data(tmp_path, remote, report):
    work = work_repo(tmp_path, remote.url)
    write_random(work / "big.bin", 32 * MiB, seed=11)
    commit_all(work, "big")
    push(work, "-u", "origin", "main")
    install_global(tmp_path)
    other = tmp_path / "other"
    clone(remote.url, other)
    assert_files(other, {"big.bin": sha256_file(work / "big.bin")})

    new = write_random(work / "new.bin", MiB, seed=12)
    commit_all(work, "new")
    push(work)

    before = objects_bytes(other)
    remote.mark()
    git(other, "pull", "-q", "--ff-only")
    run(["git", "panini", "fetch"], cwd=other)
    grew = objects_bytes(other) - before
    report(f"transfer/{remote.kind}: fetch of +1 MiB from a 32 MiB store: clone grew {grew} bytes; {remote.wire()}")
    assert_files(other, {"new.bin": sha256_file(new), "big.bin": sha256_file(work / "big.bin")})
    metadata = 256 * KiB
    assert grew < 1.5 * MiB + metadata, f"fetching a 1 MiB file grew the clone by {grew} bytes"
    if remote.http:
        assert remote.http.bytes_sent() < 1.5 * MiB + metadata, remote.wire()


# --- c. lazy clone -----------------------------------------------------------------------------------------


# Slow: ~10-13 s per transport (96 MiB cleaned and pushed, 32 MiB cloned).
def test_clone_downloads_only_head(tmp_path, remote, report):
    work = work_repo(tmp_path, remote.url)
    names = [f"d{i}/file{i}.bin" for i in range(4)]
    for version in range(3):
        for i, name in enumerate(names):
            write_random(work / name, 8 * MiB, seed=100 * version + i)
        commit_all(work, f"version {version}")
        push(work, "-u", "origin", "main")
    digests = {name: sha256_file(work / name) for name in names}
    head_bytes = 4 * 8 * MiB

    install_global(tmp_path)
    fresh = tmp_path / "fresh"
    remote.mark()
    clone(remote.url, fresh)
    got = objects_bytes(fresh)
    report(f"transfer/{remote.kind}: clone of 3 versions x 32 MiB: .git/objects {got} bytes "
           f"({got / head_bytes:.2f}x HEAD); {remote.wire()}")
    assert_files(fresh, digests)
    assert got <= 1.1 * head_bytes + MiB, f"the clone downloaded {got} bytes for {head_bytes} bytes of HEAD files"
    if remote.http:
        assert remote.http.bytes_sent() <= 1.1 * head_bytes + MiB, remote.wire()


# --- d. round trips ------------------------------------------------------------------------------------------


def test_clone_fetches_in_a_few_batches(tmp_path, http_remote, report):
    bare, url = http_remote
    work = work_repo(tmp_path, url)
    rng = random.Random(21)
    digests = {}
    for i in range(300):
        name = f"small/{i // 50}/f{i:03}.bin"
        digests[name] = sha256_file(write_random(work / name, rng.randint(1 * KiB, 20 * KiB), seed=1000 + i))
    commit_all(work, "300 small files")
    push(work, "-u", "origin", "main")

    # The plain part: the same clone without the panini filter configured anywhere (pointers checked out).
    http_remote.reset()
    clone(url, tmp_path / "plain")
    plain = http_remote.upload_pack_posts()
    assert is_pointer(tmp_path / "plain" / "small/0/f000.bin")

    install_global(tmp_path)
    http_remote.reset()
    clone(url, tmp_path / "fresh")
    total = http_remote.upload_pack_posts()
    line = (f"transfer/http: clone of 300 small files: {total} upload-pack POSTs "
            f"(a plain clone takes {plain}); {http_remote.summary()}")
    print(line)
    report(line)
    assert_files(tmp_path / "fresh", digests)
    assert total <= plain + 3, f"the clone took {total} fetch round trips, {total - plain} for the panini data"


# --- e. staged then unstaged data never leaves ---------------------------------------------------------------


def test_unstaged_secret_never_reaches_the_remote(tmp_path, remote):
    work = work_repo(tmp_path, remote.url)
    write_random(work / "public.bin", 200 * KiB, seed=31)
    commit_all(work, "public")
    push(work, "-u", "origin", "main")

    secret = write_random(work / "secret.bin", 600 * KiB + 123, seed=32).read_bytes()
    git(work, "add", "secret.bin")
    manifest = pointer_manifest(git(work, "cat-file", "blob", ":secret.bin", binary=True).stdout)
    git(work, "reset", "-q", "secret.bin")
    (work / "secret.bin").unlink()
    write_random(work / "other.bin", 300 * KiB, seed=33)
    (work / "notes.txt").write_text("something else\n")
    commit_all(work, "something else")
    push(work)

    # Windows every 8 KiB (so every chunk of at least 16 KiB holds one whole) and one at the end.
    windows = {off: secret[off:off + 256] for off in [*range(0, len(secret) - 256, 8 * KiB), len(secret) - 256]}
    leaks = []
    for oid, data in all_blobs(remote.bare):
        hit = next((off for off, w in windows.items() if w in data), None)
        if hit is not None:
            leaks.append(f"{oid} holds the secret's bytes at offset {hit}")
    assert not leaks, f"{len(leaks)} object(s) on the remote hold the unstaged secret: {leaks[:3]}"
    assert not has_object(remote.bare, manifest), "the secret's manifest reached the remote"
    for ref in git(remote.bare, "for-each-ref", "--format=%(refname)", "refs/notes").stdout.split():
        noted = {name.replace("/", "") for name in ls_tree(remote.bare, ref)}
        assert manifest not in noted, f"{ref} on the remote has a note for the secret's manifest"
    assert manifest not in note_manifests(remote.bare)
    local = git(remote.bare, "for-each-ref", "refs/panini/local").stdout
    assert not local, f"the local-only ref reached the remote: {local}"
    # The committed data did go, and reads back.
    install_global(tmp_path)
    clone(remote.url, tmp_path / "fresh")
    assert_files(tmp_path / "fresh", {n: sha256_file(work / n) for n in ("public.bin", "other.bin")})


# --- f. a clone with only the global filter keeps the rules ------------------------------------------------


def test_global_filter_clone_pushes_its_data(tmp_path, remote):
    work = work_repo(tmp_path, remote.url)
    write_random(work / "first.bin", 300 * KiB, seed=41)
    commit_all(work, "first")
    push(work, "-u", "origin", "main")

    install_global(tmp_path)
    second = tmp_path / "second"
    clone(remote.url, second)                 # no `git panini install` here: the filter installs the hooks
    assert_files(second, {"first.bin": sha256_file(work / "first.bin")})
    hook = git(second, "rev-parse", "--git-path", "hooks/pre-push").stdout.strip()
    hook = Path(hook) if os.path.isabs(hook) else second / hook
    assert hook.is_file() and b"git-panini" in hook.read_bytes(), \
        "the filter ran in the clone but did not install the repository's hooks"

    added = write_random(second / "added.bin", 500 * KiB, seed=42)
    commit_all(second, "added in a global-filter clone")
    push(second)

    third = tmp_path / "third"
    clone(remote.url, third)
    assert_files(third, {"first.bin": sha256_file(work / "first.bin"), "added.bin": sha256_file(added)})


# --- g. concurrent writers -------------------------------------------------------------------------------------


# Slow: ~10-15 s per transport (rounds of 3 concurrent pushes; mostly process start-up).
RACE_ROUNDS = 2


def test_concurrent_pushes_lose_no_manifest(tmp_path, remote):
    a = work_repo(tmp_path, remote.url, name="a")
    write_random(a / "base.bin", 100 * KiB, seed=51)
    commit_all(a, "base")
    push(a, "-u", "origin", "main")
    install_global(tmp_path)
    b = tmp_path / "b"
    clone(remote.url, b)
    run(["git", "panini", "install"], cwd=b)

    digests_a, digests_b = {"base.bin": sha256_file(a / "base.bin")}, {"base.bin": sha256_file(a / "base.bin")}
    for round_ in range(RACE_ROUNDS):
        name = f"r{round_}.bin"
        digests_a["a-" + name] = sha256_file(write_random(a / f"a-{name}", 256 * KiB + round_, seed=600 + round_))
        commit_all(a, f"a round {round_}")
        digests_b["b-" + name] = sha256_file(write_random(b / f"b-{name}", 256 * KiB + round_, seed=700 + round_))
        commit_all(b, f"b round {round_}")
        procs = [subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for cmd, cwd in ((["git", "panini", "push", "origin"], a), (["git", "panini", "push", "origin"], a),
                                  (["git", "push", "-q", "origin", "HEAD:refs/heads/b"], b))]
        for proc in procs:
            out = proc.communicate(timeout=300)[0].decode(errors="replace")
            assert proc.returncode == 0, f"round {round_}: {proc.args} failed (exit {proc.returncode}):\n{out[-3000:]}"
    # A's branch goes up without its hook: its data must already be there from `git panini push`.
    git(a, "push", "-q", "--no-verify", "origin", "HEAD:refs/heads/a")

    fresh = tmp_path / "fresh"
    clone(remote.url, fresh)
    for branch, digests in (("a", digests_a), ("b", digests_b)):
        git(fresh, "checkout", "-q", branch)
        assert_files(fresh, digests)


# --- h. skip smudge, pull --include/--exclude --------------------------------------------------------------------


def test_skip_smudge_clone_then_pull(tmp_path, remote):
    work = work_repo(tmp_path, remote.url)
    digests = {name: sha256_file(write_random(work / name, 100 * KiB + i, seed=80 + i))
               for i, name in enumerate(("a/1.bin", "a/2.bin", "b/1.bin"))}
    commit_all(work, "files")
    push(work, "-u", "origin", "main")
    install_global(tmp_path)

    lazy = tmp_path / "lazy"
    run(["git", "clone", "-q", remote.url, str(lazy)], env={"GIT_PANINI_SKIP_SMUDGE": "1"})
    assert all(is_pointer(lazy / n) for n in digests), "GIT_PANINI_SKIP_SMUDGE=1 did not leave pointer files"
    assert git(lazy, "status", "--porcelain").stdout == ""

    run(["git", "panini", "pull", "--include", "a/*"], cwd=lazy)
    assert_files(lazy, {n: d for n, d in digests.items() if n.startswith("a/")})
    assert is_pointer(lazy / "b/1.bin"), "pull --include a/* materialized b/1.bin too"

    run(["git", "panini", "pull", "--exclude", "a/*"], cwd=lazy)
    assert_files(lazy, digests)
    assert git(lazy, "status", "--porcelain").stdout == ""


# --- i. checkout turns pointers into files -------------------------------------------------------------------------


def test_checkout_materializes_pointers_with_local_data(tmp_path):
    work = work_repo(tmp_path, None)
    digest = sha256_file(write_random(work / "x.bin", 200 * KiB, seed=90))
    commit_all(work, "x")
    (work / "x.bin").write_bytes(git(work, "cat-file", "blob", "HEAD:x.bin", binary=True).stdout)
    assert is_pointer(work / "x.bin")
    run(["git", "panini", "checkout"], cwd=work)
    assert_files(work, {"x.bin": digest})


# --- j. prune drops what nothing references ---------------------------------------------------------------------


def _chunks(repo, manifest: str) -> list[str]:
    text = git(repo, "cat-file", "blob", manifest).stdout
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _data_of(repo, spec: str) -> list[str]:
    """The manifest and chunk ids of the pointer at `spec` (e.g. ':x.bin', 'HEAD:x.bin')."""
    manifest = pointer_manifest(git(repo, "cat-file", "blob", spec, binary=True).stdout)
    return [manifest, *_chunks(repo, manifest)]


def test_prune_drops_only_unreferenced_local_data(tmp_path):
    work = work_repo(tmp_path, None)
    digests = {"kept.bin": sha256_file(write_random(work / "kept.bin", 200 * KiB, seed=1))}
    commit_all(work, "kept")
    committed = _data_of(work, "HEAD:kept.bin")

    write_random(work / "amend.bin", 200 * KiB, seed=2)       # only the reflog will reach this version
    commit_all(work, "amend v1")
    in_reflog = _data_of(work, "HEAD:amend.bin")
    digests["amend.bin"] = sha256_file(write_random(work / "amend.bin", 200 * KiB, seed=3))
    git(work, "add", "amend.bin")
    git(work, "commit", "-q", "--amend", "-m", "amend v2")

    stashed_digest = sha256_file(write_random(work / "kept.bin", 200 * KiB, seed=4))
    git(work, "add", "kept.bin")
    stashed = _data_of(work, ":kept.bin")
    git(work, "stash", "-q")

    staged_digest = sha256_file(write_random(work / "staged.bin", 200 * KiB, seed=5))
    git(work, "add", "staged.bin")
    staged = _data_of(work, ":staged.bin")

    write_random(work / "dropped.bin", 300 * KiB, seed=6)
    git(work, "add", "dropped.bin")
    dropped = _data_of(work, ":dropped.bin")
    git(work, "rm", "-q", "--cached", "dropped.bin")
    (work / "dropped.bin").unlink()

    run(["git", "panini", "prune", "--dry-run"], cwd=work)
    git(work, "gc", "-q", "--prune=now")
    assert all(has_object(work, o) for o in dropped), "prune --dry-run (or gc) dropped data"

    run(["git", "panini", "prune"], cwd=work)
    git(work, "gc", "-q", "--prune=now")
    left = [o for o in dropped if has_object(work, o)]
    assert not left, f"{len(left)} of {len(dropped)} object(s) of data nothing references survived prune + gc"
    for what, oids in (("committed", committed), ("reflog", in_reflog), ("stash", stashed), ("index", staged)):
        gone = [o for o in oids if not has_object(work, o)]
        assert not gone, f"prune dropped {len(gone)} object(s) of data the {what} references"

    (work / "staged.bin").unlink()
    git(work, "checkout", "--", "staged.bin")
    assert sha256_file(work / "staged.bin") == staged_digest
    git(work, "stash", "pop", "-q")
    assert sha256_file(work / "kept.bin") == stashed_digest
    (work / "amend.bin").unlink()
    git(work, "checkout", "--", "amend.bin")
    assert sha256_file(work / "amend.bin") == digests["amend.bin"]


# --- the HTTP server itself, with plain git ---------------------------------------------------------------------------


def test_smart_http_serves_plain_git(tmp_path, http_remote):
    bare, url = http_remote
    src = make_repo(tmp_path, name="src", install=False)
    for i in range(40):
        write_random(src / f"files/f{i:02}.dat", 2 * KiB + i, seed=i)
    big = write_random(src / "big.dat", 3 * MiB, seed=99)     # larger than http.postBuffer: a chunked POST
    commit_all(src, "first")
    git(src, "remote", "add", "origin", url)
    push(src, "-u", "origin", "main")
    pushes = [r for r in http_remote.requests if r.service == "git-receive-pack" and r.method == "POST"]
    assert any(r.chunked for r in pushes), "the 3 MiB push did not come chunked"
    assert max(r.request_bytes for r in pushes) > 3 * MiB
    assert not http_remote.errors(), http_remote.errors()
    assert git(bare, "rev-parse", "main").stdout == git(src, "rev-parse", "main").stdout

    # Clone: protocol v2, a couple of fetch round trips, the bytes of the pack counted.
    http_remote.reset()
    clone(url, tmp_path / "c1")
    assert sha256_file(tmp_path / "c1" / "big.dat") == sha256_file(big)
    reqs = http_remote.requests
    assert all("version=2" in r.git_protocol for r in reqs if r.service == "git-upload-pack"), reqs
    posts = http_remote.upload_pack_posts()
    assert 1 <= posts <= 3, http_remote.summary()
    assert http_remote.bytes_sent() > 3 * MiB
    print("plain clone:", http_remote.summary())

    # An incremental push then fetch moves little.
    write_random(src / "more.dat", 10 * KiB, seed=7)
    commit_all(src, "more")
    http_remote.reset()
    push(src)
    assert http_remote.bytes_received() < 64 * KiB, http_remote.summary()
    http_remote.reset()
    git(tmp_path / "c1", "pull", "-q", "--ff-only")
    assert (tmp_path / "c1" / "more.dat").read_bytes() == (src / "more.dat").read_bytes()
    assert http_remote.bytes_sent() < 64 * KiB, http_remote.summary()

    # A partial clone (uploadpack.allowFilter): the checkout fetches the missing blobs in one batch,
    # large enough that git gzips the request body.
    http_remote.reset()
    run(["git", "clone", "-q", "--filter=blob:none", url, str(tmp_path / "partial")])
    assert (tmp_path / "partial" / "more.dat").read_bytes() == (src / "more.dat").read_bytes()
    assert any(r.content_encoding == "gzip" for r in http_remote.requests), http_remote.requests
    assert not http_remote.errors(), http_remote.errors()
    # A blob by id that is reachable (allowReachableSHA1InWant) is served; an unreachable one is not.
    oid = git(src, "rev-parse", "HEAD:files/f00.dat").stdout.strip()
    git(tmp_path / "partial", "fetch", "-q", "origin", oid)
    orphan = git(src, "hash-object", "-w", "--stdin", input="not pushed\n").stdout.strip()
    assert git(tmp_path / "partial", "fetch", "-q", "origin", orphan, check=False).returncode != 0

    # Deleting a branch and concurrent pushes go through the threaded server.
    git(src, "push", "-q", "origin", "main:refs/heads/tmp")
    git(src, "push", "-q", "origin", ":refs/heads/tmp")
    procs = [subprocess.Popen(["git", "push", "-q", "origin", f"main:refs/heads/p{i}"], cwd=src,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(4)]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stdout.read()
    heads = git(bare, "for-each-ref", "--format=%(refname)", "refs/heads").stdout.split()
    assert heads == ["refs/heads/main", "refs/heads/p0", "refs/heads/p1", "refs/heads/p2", "refs/heads/p3"]
