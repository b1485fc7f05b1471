"""The read cache (refs/panini/cache): what a checkout decoded from packs or fetched by id stays, so the next
checkout of the same files decodes and fetches nothing; it survives `git gc --prune=now`, holds at most
panini.cacheSize, is dropped by `git panini prune`, survives a kill -9, and never leaves the machine.

One remote is built and packed by `git panini work` once for the module; each test clones a copy of it."""

from __future__ import annotations

import shutil

import pytest
from conftest import (
    MiB,
    file_url,
    git,
    isolate,
    make_bare,
    make_repo,
    manifest_chunks,
    pointer_of,
    run,
    sha256_file,
    write_random,
    write_text,
)

CACHE = "refs/panini/cache"
FILES = {"a.bin": 0, "b.bin": 1, "c.bin": 2}   # name -> seed


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A bare remote whose files the worker packed: (path, {name: sha256}, {name: chunks})."""
    tmp = tmp_path_factory.mktemp("packed")
    with pytest.MonkeyPatch.context() as mp:
        (tmp / "home").mkdir()
        isolate(mp, tmp / "home")
        work = make_repo(tmp, name="work", track=("*.bin",))
        digests = {name: sha256_file(write_text(work / name, MiB, seed=seed)) for name, seed in FILES.items()}
        git(work, "add", ".")
        git(work, "commit", "-q", "-m", "files")
        bare, url = make_bare(tmp)
        git(work, "remote", "add", "origin", url)
        git(work, "push", "-q", "origin", "main")
        run(["git", "panini", "work", "--remote", "origin", "--effort", "1"], cwd=work)
        chunks = {name: {c for c, _ in manifest_chunks(work, pointer_of(work, f"HEAD:{name}").manifest)}
                  for name in FILES}
    return bare, digests, chunks


@pytest.fixture
def remote(packed, tmp_path):
    """A copy of the packed remote for this test (which may push to it or take it away), and its url."""
    path = tmp_path / "remote.git"
    shutil.copytree(packed[0], path)
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    return path, file_url(path)


def _clone(url, dest, env=None):
    run(["git", "clone", "-q", url, str(dest)], env=env)
    return dest


def _gc(repo):
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")


def _present(repo, oids) -> set[str]:
    out = git(repo, "cat-file", "--batch-check", input="".join(f"{o}\n" for o in sorted(oids))).stdout
    return {line.split()[0] for line in out.splitlines() if not line.endswith(" missing")}


def _cached(repo) -> set[str]:
    """The chunk ids refs/panini/cache keeps."""
    out = git(repo, "ls-tree", "-r", "--name-only", CACHE, "chunks", check=False).stdout
    return {path.rsplit("/", 1)[1] for path in out.split()}


def _local_chunks(repo) -> set[str]:
    out = git(repo, "ls-tree", "-r", "--name-only", "refs/panini/local", "chunks").stdout
    return {path.rsplit("/", 1)[1] for path in out.split()}


def _cache_bytes(repo) -> int:
    out = git(repo, "ls-tree", "--name-only", f"{CACHE}:buckets", check=False).stdout
    return sum(int(name.split("-")[1]) for name in out.split())


def _pack_blobs(repo) -> set[str]:
    """The data blobs (and dictionaries) of every pack the store's recipes name."""
    import json
    out = git(repo, "ls-tree", "-r", "refs/panini/store", "packs").stdout
    blobs = set()
    for line in out.splitlines():
        recipe = json.loads(git(repo, "cat-file", "blob", line.split()[2]).stdout)
        blobs |= {recipe["data"], *recipe.get("deps", [])}
    return blobs


def _check_out_again(repo, names):
    for name in names:
        (repo / name).unlink()
    git(repo, "checkout", "--", *names)


def test_a_second_checkout_decodes_nothing_after_gc_and_with_the_remote_gone(remote, packed, tmp_path):
    """The strongest form: after the first checkout, gc drops the fetched pack blobs (no ref reaches them) and the
    remote goes away, so nothing can be decoded or fetched; the files still check out bit-identical. Without the
    cache (panini.cacheSize=0) the same steps leave pointers: the test has teeth."""
    _, digests, chunks = packed
    every = set().union(*chunks.values())
    clone = _clone(remote[1], tmp_path / "clone")
    for name, digest in digests.items():
        assert sha256_file(clone / name) == digest
    assert _cached(clone) == every
    assert not _present(clone, every) - _present(clone, _cached(clone))
    _gc(clone)
    assert not _present(clone, _pack_blobs(clone)), "gc kept the fetched pack blobs: the test proves nothing"
    assert _present(clone, every) == every, "gc dropped cached chunks"
    remote[0].rename(tmp_path / "gone.git")
    _check_out_again(clone, list(digests))
    for name, digest in digests.items():
        assert sha256_file(clone / name) == digest, name
    (tmp_path / "gone.git").rename(remote[0])

    uncached = tmp_path / "uncached"
    git(tmp_path, "-c", "panini.cacheSize=0", "clone", "-q", remote[1], str(uncached))
    git(uncached, "config", "panini.cacheSize", "0")
    assert not _cached(uncached)
    _gc(uncached)
    remote[0].rename(tmp_path / "gone.git")
    _check_out_again(uncached, ["a.bin"])
    assert sha256_file(uncached / "a.bin") != digests["a.bin"], "the file checked out without cache or remote"


def test_cache_size_bounds_the_cache_and_keeps_the_newest(remote, packed, tmp_path):
    """A cache smaller than all files: each checkout adds its own chunks and evicts the oldest buckets, so the
    cache never holds more than panini.cacheSize and always the file written last."""
    _, digests, chunks = packed
    bound = MiB + MiB // 2
    env = {"GIT_PANINI_SKIP_SMUDGE": "1"}
    clone = _clone(remote[1], tmp_path / "clone", env=env)
    git(clone, "config", "panini.cacheSize", f"{bound // 1024}k")
    for name in sorted(digests):
        _check_out_again(clone, [name])
        assert sha256_file(clone / name) == digests[name]
        held = _cached(clone)
        assert chunks[name] <= held, f"{name}, written last, is not cached whole"
        assert 0 < _cache_bytes(clone) <= bound
        assert sum(s for c, s in _sizes(clone, held)) == _cache_bytes(clone)
    assert not chunks["a.bin"] - chunks["c.bin"] <= _cached(clone), "the oldest file was never evicted"


def _sizes(repo, oids):
    out = git(repo, "cat-file", "--batch-check", input="".join(f"{o}\n" for o in sorted(oids))).stdout
    return [(line.split()[0], int(line.split()[2])) for line in out.splitlines()]


def test_prune_drops_the_cache_and_keeps_local_data(remote, packed, tmp_path):
    """`prune` drops the whole cache (gc then frees it); a chunk the cache shares with refs/panini/local (a file
    added again here) stays, kept by that ref."""
    _, digests, chunks = packed
    clone = _clone(remote[1], tmp_path / "clone")
    assert _cached(clone)
    shutil.copy(clone / "a.bin", clone / "copy.bin")
    git(clone, "add", "copy.bin")
    git(clone, "commit", "-q", "-m", "a copy of a.bin")
    out = run(["git", "panini", "prune", "--dry-run"], cwd=clone).stdout
    assert "would drop the read cache" in out and _cached(clone)
    out = run(["git", "panini", "prune", "--cache-only"], cwd=clone).stdout
    assert out.startswith("dropped the read cache,"), out
    assert git(clone, "for-each-ref", CACHE).stdout == ""
    _gc(clone)
    local = _local_chunks(clone)
    assert chunks["a.bin"] <= local
    assert _present(clone, local) == local, "prune dropped chunks refs/panini/local keeps"
    # (git add may clean the checked-out files again too: what it records is local's, the rest only cached)
    assert not _present(clone, set().union(*chunks.values()) - local), "gc kept what only the cache held"
    run(["git", "panini", "prune"], cwd=clone)   # nothing cached: says so, drops nothing of local
    _check_out_again(clone, list(digests))
    for name, digest in digests.items():
        assert sha256_file(clone / name) == digest


@pytest.mark.parametrize("point", ["cache-packed", "update-ref:3"])
def test_a_kill_during_a_cached_checkout_loses_nothing(remote, packed, tmp_path, point):
    """The clone's filter killed after writing the cache's pack, before the ref names it (cache-packed), or just
    after the cache's ref moved, before its .keep file goes (the third ref it moves: two are the store's fetch):
    after gc, a fresh clone reads every file bit-identical, and so does the killed clone, whose next checkout
    caches again."""
    _, digests, _ = packed
    trace = tmp_path / "trace"
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", remote[1], str(clone)], check=False,
        env={"PANINI_CRASH_AT": point, "PANINI_CRASH_TRACE": str(trace)})
    reached = trace.read_text().split()
    assert reached[-1] == point.split(":")[0] and "cache-packed" in reached, f"the kill did not land: {reached}"
    assert bool(_cached(clone)) == (point != "cache-packed")
    _gc(clone)
    fresh = _clone(remote[1], tmp_path / "fresh")
    for name, digest in digests.items():
        assert sha256_file(fresh / name) == digest, name
    _check_out_again(clone, list(digests))
    for name, digest in digests.items():
        assert sha256_file(clone / name) == digest, name
    assert _cached(clone), "the next checkout did not cache"
    assert not list((clone / ".git" / "objects" / "pack").glob("*.keep")), "the dead filter's .keep stayed"
    run(["git", "panini", "fsck"], cwd=clone)


def test_the_cache_is_never_pushed(remote, packed, tmp_path):
    clone = _clone(remote[1], tmp_path / "clone")
    assert _cached(clone)
    write_random(clone / "new.bin", 300 * 1024, seed=9)
    git(clone, "add", "new.bin")
    git(clone, "commit", "-q", "-m", "new")
    git(clone, "push", "-q", "origin", "main")
    run(["git", "panini", "push"], cwd=clone)
    assert git(remote[0], "for-each-ref", "refs/panini/cache", "refs/panini/local").stdout == ""
    fresh = _clone(remote[1], tmp_path / "fresh")
    git(fresh, "fetch", "-q", "origin", "+refs/panini/*:refs/remotes/origin-panini/*")
    assert "cache" not in git(fresh, "for-each-ref", "--format=%(refname)").stdout.replace(CACHE, "")
    assert sha256_file(fresh / "new.bin") == sha256_file(clone / "new.bin")


def test_a_cache_that_cannot_be_written_is_one_warning_and_the_checkout_goes_on(remote, packed, tmp_path):
    """The cache's ref cannot be created (a ref refs/panini/cache/x is in its way, a real git failure): the files
    check out bit-identical, one line says so, and the session's pack is deleted, .keep and all."""
    _, digests, chunks = packed
    clone = _clone(remote[1], tmp_path / "clone", env={"GIT_PANINI_SKIP_SMUDGE": "1"})
    git(clone, "update-ref", f"{CACHE}/x", "HEAD")
    proc = run(["git", "panini", "checkout"], cwd=clone)
    for name, digest in digests.items():
        assert sha256_file(clone / name) == digest, name
    said = [line for line in proc.stderr.splitlines() if "read cache" in line]
    assert len(said) == 1 and said[0].startswith("git-panini: could not keep"), proc.stderr
    pack_dir = clone / ".git" / "objects" / "pack"
    assert not [p.name for p in pack_dir.iterdir() if p.suffix == ".keep" or p.name.startswith("tmp_")]
    assert not _present(clone, set().union(*chunks.values())), "the session's pack was left behind"
