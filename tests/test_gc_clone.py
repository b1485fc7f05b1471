"""Once chunks are packed, their raw blobs are unreachable: `git gc --prune=now` drops them locally, and a
fresh clone downloads only the packs, so it is smaller than a clone taken before the work."""

from __future__ import annotations

import json

from conftest import (MiB, clone, dir_size, git, ls_tree, make_bare, make_repo, manifest_chunks, pointer_of, run,
                      sha256_file, write_random, write_text)


def _packed_chunks(repo) -> set[str]:
    """Chunk ids that some recipe (packs/<fan>/<id>) in refs/panini/store yields."""
    recipes = [oid for path, (_, oid, _) in ls_tree(repo, "refs/panini/store", "packs").items()]
    chunks = set()
    for oid in recipes:
        chunks |= {c for c, _, _ in json.loads(git(repo, "cat-file", "-p", oid).stdout)["chunks"]}
    return chunks


def _present(repo, oids) -> set[str]:
    """Which of these objects the repository has (loose or packed), asked in one `git cat-file --batch-check`."""
    out = git(repo, "cat-file", "--batch-check", input="".join(f"{o}\n" for o in sorted(oids))).stdout
    return {line.split()[0] for line in out.splitlines() if not line.endswith(" missing")}


def test_gc_drops_packed_raw_chunks_and_a_clone_downloads_only_packs(tmp_path, report):
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    digests = {}
    for i in range(3):
        digests[f"text{i}.bin"] = sha256_file(write_text(work / f"text{i}.bin", 3 * MiB // 2, seed=i))
    digests["noise.bin"] = sha256_file(write_random(work / "noise.bin", MiB // 2, seed=9))
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "files")
    chunks = set()
    for name in digests:
        chunks |= {c for c, _ in manifest_chunks(work, pointer_of(work, f"HEAD:{name}").manifest)}
    raw_bytes = sum(len(open(work / n, "rb").read()) for n in digests)
    _, url = make_bare(tmp_path)
    git(work, "remote", "add", "origin", url)
    git(work, "push", "-q", "origin", "main")          # pre-push sends the store (raw chunks) and notes
    run(["git", "panini", "install", "--global"], cwd=tmp_path)

    # A clone before any work: the smudge fetches the store, raw chunks and all.
    before = tmp_path / "before"
    clone(url, before)
    for name, digest in digests.items():
        assert sha256_file(before / name) == digest
    assert _present(before, chunks) == chunks
    before_bytes = dir_size(before / ".git" / "objects")

    # Work, pushing the packs; then gc: every packed chunk's raw blob is gone here.
    run(["git", "panini", "work", "--remote", "origin", "--effort", "1"], cwd=work)
    packed = _packed_chunks(work)
    assert packed == chunks, "the worker left chunks unpacked"
    assert _present(work, packed) == packed      # gc has not run yet: the raw blobs are still on disk
    git(work, "gc", "-q", "--prune=now")
    kept = _present(work, packed)
    assert not kept, f"{len(kept)} raw chunk blob(s) of packed chunks survived gc, e.g. {sorted(kept)[0]}"
    for name in digests:
        (work / name).unlink()
    git(work, "checkout", "--", ".")
    for name, digest in digests.items():
        assert sha256_file(work / name) == digest, name
    run(["git", "panini", "verify", "--all"], cwd=work)

    # A clone after the work gets the packs only, and is smaller (its read cache off: it keeps what the checkout
    # decoded, at raw size, which is no download; test_read_cache.py covers it).
    after = tmp_path / "after"
    run(["git", "clone", "-q", "-c", "panini.cacheSize=0", url, str(after)])
    for name, digest in digests.items():
        assert sha256_file(after / name) == digest, name
    assert _packed_chunks(after) == chunks
    kept = _present(after, chunks)
    assert not kept, f"the clone downloaded {len(kept)} raw chunk blob(s) of packed chunks"
    after_bytes = dir_size(after / ".git" / "objects")
    out = run(["git", "panini", "verify", "--all"], cwd=after).stdout
    assert f"{len(digests)} of {len(digests)} file(s) verified bit-perfect" in out
    fsck = json.loads(run(["git", "panini", "fsck", "--json"], cwd=after).stdout)
    assert fsck["ok"] and fsck["counts"]["raw_chunks"] == 0
    report(f"gc/clone: {raw_bytes} bytes of files ({len(chunks)} chunks); clone .git/objects before work "
           f"{before_bytes} bytes, after work + push {after_bytes} bytes ({after_bytes / before_bytes:.1%})")
    assert after_bytes < before_bytes
