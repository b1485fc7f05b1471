"""A forged recipe beside honest packs, pushed by a collaborator with ordinary push access: it claims the
chunks of HEAD, so readers, the read-bound checker and the worker's repack planner would choose it over the
honest packs. It may cost no more than one failed try per session, and never a checkout, a worker run or a
false verdict of `fsck --amplification`."""

from __future__ import annotations

import json
import random

import pytest

from conftest import (clone, edit_in_place, file_url, git, ls_tree, make_bare, make_repo, manifest_chunks, pointer_of,
                      run, sha256_file, short_words)
from git_panini.git.objects import encode_commit
from git_panini.git.repo import Repo
from git_panini.git.tree_edit import TreeEditor
from git_panini.store.shared import STORE_REF, Store, pack_path

MISSING_BLOB = "1" * 40   # names no object anywhere: the remote refuses to serve it


def _commit_versions(repo, files: dict[str, bytearray], rng: random.Random, versions: int, rewrite=False):
    """Each version edits every file in one place (rewrite: writes it anew, so versions share no chunk)."""
    for _ in range(versions):
        for path, data in files.items():
            if rewrite:
                files[path] = data = short_words(rng, len(data))
            edit_in_place(data, rng)
        for path, data in files.items():
            (repo / path).write_bytes(data)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "version")
    git(repo, "push", "-q", "origin", "main")


def _packed_history(tmp_path, hot_commits: int | None = None, rewrite=False):
    """(honest clone, bare remote, url, files): 4 versions of 2 files pushed and packed by `work`."""
    remote, url = make_bare(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    rng = random.Random(11)
    files = {"a.bin": short_words(rng, 400_000), "b.bin": short_words(rng, 300_000)}
    _commit_versions(repo, files, rng, 4, rewrite)
    if hot_commits is not None:
        git(repo, "config", "panini.hotCommits", str(hot_commits))
    run(["git", "panini", "work"], cwd=repo)
    return repo, remote, url, files, rng


def _chunks_of(repo, rev: str = "HEAD") -> dict[str, int]:
    out = {}
    for name in ("a.bin", "b.bin"):
        out.update(manifest_chunks(repo, pointer_of(repo, f"{rev}:{name}").manifest))
    return out


def _push_forged_recipe(tmp_path, url, recipe: dict):
    """The attacker: a clone that adds one recipe to the remote's store, a fast-forward like any push."""
    path = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", "--no-checkout", url, str(path))
    git(path, "fetch", "-q", "origin", f"+{STORE_REF}:{STORE_REF}")
    repo = Repo(str(path))
    try:
        tip = repo.ref(STORE_REF)
        forged = repo.write_object("blob", json.dumps(recipe).encode())
        editor = TreeEditor(repo, Store(repo).tree_of(tip))
        editor.set(pack_path(forged), forged)
        commit = repo.write_object("commit", encode_commit(editor.write(), [tip], "panini: packs"))
        repo.git("update-ref", STORE_REF, commit)
    finally:
        repo.close()
    git(path, "push", "-q", "origin", f"{STORE_REF}:{STORE_REF}")


def _recipe(chunks: list[list], size: int) -> dict:
    return {"format": "git-panini-recipe/1", "size": size, "steps": [], "deps": [], "data": MISSING_BLOB,
            "encoded_size": 1, "chunks": chunks, "tried": []}


def test_a_recipe_claiming_more_than_its_data_holds_is_refused_everywhere(tmp_path):
    """Chunks claimed at one offset (each as long as the pack, or each at its true size): the entries
    overlap, which no worker writes. Refused: the worker goes on repacking, the checker is not fooled."""
    repo, remote, url, files, rng = _packed_history(tmp_path)
    before = json.loads(run(["git", "panini", "fsck", "--amplification", "--json"], cwd=repo, check=False).stdout)
    chunks = _chunks_of(repo)
    size = 4 << 20
    _push_forged_recipe(tmp_path, url, _recipe([[c, 0, size] for c in sorted(chunks)], size))
    (tmp_path / "attacker").rename(tmp_path / "attacker-1")
    _push_forged_recipe(tmp_path, url, _recipe([[c, 0, n] for c, n in sorted(chunks.items())], max(chunks.values())))

    _commit_versions(repo, files, rng, 2)
    work = run(["git", "panini", "work"], cwd=repo, check=False)
    assert work.returncode == 0, work.stderr[-2000:]
    after = json.loads(run(["git", "panini", "fsck", "--amplification", "--json"], cwd=repo, check=False).stdout)
    ratios = {c["commit"]: c["decode_ratio"] for c in after["commits"]}
    # The forged recipes claim everything for almost nothing: were they believed, HEAD would read under 0.5x.
    assert all(r >= 1.0 for r in ratios.values() if r), ratios
    assert before["summary"]["commits"] + 2 == after["summary"]["commits"]

    for where in (repo, remote):
        git(where, "reflog", "expire", "--expire=now", "--all")
        git(where, "gc", "-q", "--prune=now")
    assert git(remote, "for-each-ref", "refs/panini/raw").stdout == ""   # only the honest packs hold the files
    fresh = tmp_path / "fresh"
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    clone(file_url(remote), fresh)
    for name in files:
        assert sha256_file(fresh / name) == sha256_file(repo / name)


def test_a_pack_that_cannot_be_had_is_tried_once_per_checkout(tmp_path):
    """A forged recipe with honest chunk sizes and offsets, whose data blob the remote cannot serve, claims
    an old (cold) commit's chunks: readers prefer it to the honest solid segments, which hold other
    versions too. The checkout tries it once, then reads every chunk from the honest packs, instead of one
    failed fetch per chunk."""
    repo, remote, url, files, _ = _packed_history(tmp_path, hot_commits=1, rewrite=True)
    old = git(repo, "rev-parse", "HEAD~1").stdout.strip()
    chunks = _chunks_of(repo, old)
    entries, offset = [], 0
    for chunk, size in sorted(chunks.items()):
        entries.append([chunk, offset, size])
        offset += size
    _push_forged_recipe(tmp_path, url, _recipe(entries, offset))
    for where in (repo, remote):
        git(where, "reflog", "expire", "--expire=now", "--all")
        git(where, "gc", "-q", "--prune=now")
    assert git(remote, "for-each-ref", "refs/panini/raw").stdout == ""   # only packs can give the files

    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    git(tmp_path, "config", "--global", "panini.cacheSize", "0")   # HEAD's chunks must not come from the cache
    fresh = tmp_path / "fresh"
    clone(file_url(remote), fresh)
    trace = tmp_path / "trace.json"
    run(["git", "checkout", "-q", old], cwd=fresh, env={"GIT_TRACE2_EVENT": str(trace)})
    git(repo, "checkout", "-q", old)
    for name in files:
        assert sha256_file(fresh / name) == sha256_file(repo / name), name
    fetches = sum(1 for line in trace.read_text().splitlines()
                  if '"event":"cmd_name"' in line and '"name":"fetch"' in line)
    # The whole request and its raw fallback (both refused), the forged pack once, the honest packs:
    # not one more try of the forged pack per chunk (13 fetches for these 9 chunks before).
    assert len(chunks) >= 8 and fetches <= 6, (fetches, len(chunks))


def test_delta_packs_decode_one_level_deep_and_a_newer_format_is_named(tmp_path):
    """A delta pack decodes against its base's bytes; a base that has a base itself (a chain, which no worker
    writes, or a cycle) is refused with one line, and so is a recipe format newer than this client reads."""
    from git_panini import codecs
    from git_panini.format.recipe import RecipeError, parse_recipe
    from git_panini.store.chunk_source import ChunkSource, ReadError

    repo = make_repo(tmp_path, install=False)
    r = Repo(str(repo))
    rng = random.Random(3)
    v1 = bytes(short_words(rng, 200_000))
    v2 = v1[:1000] + b"an edit" + v1[1007:]
    v3 = v2[:5000] + b"another" + v2[5007:]

    def pack(data: bytes, base: str | None, base_bytes: bytes | None) -> tuple[str, str]:
        chain = [("zstd", {"level": 19, **({"prefix": base} if base else {})})]
        encoded, steps = codecs.encode_chain(data, chain, {base: base_bytes} if base else {})
        chunk = r.write_object("blob", data)
        recipe = {"format": "git-panini-recipe/2" if base else "git-panini-recipe/1", "size": len(data),
                  "steps": steps, "deps": [], "data": r.write_object("blob", encoded),
                  "encoded_size": len(encoded), "chunks": [[chunk, 0, len(data)]], "tried": [],
                  **({"base": base} if base else {})}
        oid = r.write_object("blob", json.dumps(recipe).encode())
        Store(r).edit(lambda e: e.set(pack_path(oid), oid), "test: a pack")
        git(repo, "update-ref", "-d", "refs/panini/local")
        return oid, chunk

    one, _ = pack(v1, None, None)
    two, chunk2 = pack(v2, one, v1)
    three, chunk3 = pack(v3, two, v2)
    for c in (chunk2, chunk3):   # only the packs can give these chunks
        path = repo / ".git" / "objects" / c[:2] / c[2:]
        path.unlink()
    source = ChunkSource(r)
    assert source.read(chunk2, len(v2)) == v2                 # decoded against pack one
    # Pack two is a delta, so it is no base for another: pack three yields nothing (the index leaves it out),
    # and its decode would be refused if it were ever tried.
    assert source.index.locate(chunk3) == []
    with pytest.raises(ReadError, match="not in this repository"):
        source.read(chunk3, len(v3))
    with pytest.raises(ReadError, match="has a base itself"):
        source.decoded_pack(three)
    source.close()
    r.close()

    newer = json.dumps({"format": "git-panini-recipe/3", "size": 1, "chunks": []}).encode()
    with pytest.raises(RecipeError, match="newer than this git-panini reads"):
        parse_recipe(newer, 40)
    with pytest.raises(RecipeError, match="base"):
        parse_recipe(json.dumps({"format": "git-panini-recipe/1", "size": 1, "chunks": [], "data": "a" * 40,
                                 "base": "b" * 40}).encode(), 40)


def test_a_delta_is_never_made_against_a_pack_the_remote_does_not_hold(tmp_path):
    """The attacker adds to the store a valid pack yielding exactly the chunks the next version replaced,
    its data on an ordinary branch (no pack ref holds it) and its id made to sort first. The honest worker
    must not make the new version a delta against it, since deleting that branch would then lose the
    version everywhere once the raw batch is retired. After the branch is deleted and everything gc'd,
    a fresh clone reads every version."""
    from git_panini import codecs
    from git_panini.format.recipe import RECIPE_FORMAT
    from git_panini.store import manifests as manifest_store
    from git_panini.store.chunk_source import ChunkSource
    from git_panini.transfer.remote import remote_objects

    remote, url = make_bare(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    rng = random.Random(3)
    data = short_words(rng, 600_000)
    digests = {}
    for version in range(4):
        if version:
            for at in (100_000, 400_000):
                data[at:at + 40] = rng.randbytes(40)
        (repo / "big.bin").write_bytes(data)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"v{version}")
        digests[git(repo, "rev-parse", "HEAD").stdout.strip()] = sha256_file(repo / "big.bin")
        if version == 2:
            git(repo, "push", "-q", "origin", "main")
            run(["git", "panini", "work"], cwd=repo)
    git(repo, "push", "-q", "origin", "main")

    attacker = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", "--no-checkout", url, str(attacker))
    git(attacker, "fetch", "-q", "origin", f"+{STORE_REF}:{STORE_REF}")
    a = Repo(str(attacker))
    old, new = (manifest_store.load(a, pointer_of(attacker, f"{rev}:big.bin").manifest) for rev in ("HEAD~1", "HEAD"))
    replaced = [(c, s) for c, s in old.distinct() if c not in set(new.chunks)]
    source = ChunkSource(a, fetcher=remote_objects(a, "origin"))
    body = b"".join(source.read(c, s) for c, s in replaced)
    source.close()
    encoded, steps = codecs.encode_chain(body, [("zstd", {"level": 3})], {})
    data_oid = a.write_object("blob", encoded)
    entries, offset = [], 0
    for chunk, size in replaced:
        entries.append([chunk, offset, size])
        offset += size
    nonce = 0
    while True:   # an id that sorts first wins ties among candidate bases
        recipe = {"format": RECIPE_FORMAT, "size": len(body), "data": data_oid, "encoded_size": len(encoded),
                  "steps": steps, "deps": [], "chunks": entries, "tried": [{"chain": str(nonce)}]}
        forged = a.write_object("blob", json.dumps(recipe).encode())
        if forged.startswith("0"):
            break
        nonce += 1
    tip = a.ref(STORE_REF)
    editor = TreeEditor(a, Store(a).tree_of(tip))
    editor.set(pack_path(forged), forged)
    store = a.write_object("commit", encode_commit(editor.write(), [tip], "panini: packs"))
    junk = a.write_object("commit", encode_commit(a.write_object("tree", b"100644 data\0" + bytes.fromhex(data_oid)),
                                                  [], "junk"))
    a.close()
    git(attacker, "push", "-q", "--no-verify", "origin", f"{store}:{STORE_REF}", f"{junk}:refs/heads/junk")

    run(["git", "panini", "work"], cwd=repo)
    bases = [json.loads(git(repo, "cat-file", "-p", oid).stdout).get("base")
             for _, oid, _ in ls_tree(repo, STORE_REF, "packs").values()]
    assert forged not in bases and any(bases)   # deltas were made, against packs the remote holds

    git(attacker, "push", "-q", "--no-verify", "origin", ":refs/heads/junk")
    for where in (repo, remote, attacker):
        git(where, "reflog", "expire", "--expire=now", "--all")
        git(where, "gc", "-q", "--prune=now")
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    clone(file_url(remote), fresh)
    for commit, digest in digests.items():
        git(fresh, "checkout", "-q", commit)
        assert sha256_file(fresh / "big.bin") == digest, commit
