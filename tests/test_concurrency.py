"""Two writers pushing the store and notes to one bare remote at the same moment, round after round:
both succeed (fetch, merge, push with a lease, retry), and nothing either of them wrote is lost."""

import subprocess
import threading

from conftest import (clone, git, make_bare, make_repo, manifest_chunks, note_manifests, pointer_of, run,
                      sha256_file, store_entries, write_random)

ROUNDS = 3


def _push_together(clones: list) -> list[subprocess.CompletedProcess]:
    """Run `git panini push --json` in every clone, released at the same instant."""
    barrier = threading.Barrier(len(clones))
    results = [None] * len(clones)

    def push(i, path):
        barrier.wait()
        results[i] = subprocess.run(["git", "panini", "push", "--json"], cwd=path, capture_output=True, text=True)

    threads = [threading.Thread(target=push, args=(i, c)) for i, c in enumerate(clones)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def test_concurrent_pushes_all_land(tmp_path):
    remote, url = make_bare(tmp_path)
    seed = make_repo(tmp_path, name="seed", track=("*.bin",))
    write_random(seed / "seed.bin", 200_000, seed=1)
    git(seed, "add", ".gitattributes", "seed.bin")
    git(seed, "commit", "-q", "-m", "seed")
    git(seed, "remote", "add", "origin", url)
    git(seed, "push", "-q", "origin", "main")

    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    writers = {}
    for name in ("a", "b"):
        path = tmp_path / name
        clone(url, path)
        run(["git", "panini", "install"], cwd=path)
        git(path, "checkout", "-q", "-b", name)
        writers[name] = path

    files: dict[str, dict[str, str]] = {name: {} for name in writers}
    for rnd in range(ROUNDS):
        for n, (name, path) in enumerate(writers.items()):
            own = path / f"{name}-{rnd}.bin"
            write_random(own, 150_000 + 40_000 * rnd + n, seed=1000 * rnd + n)
            # both writers also add the very same content: identical chunk and manifest paths
            shared = path / f"shared-{rnd}.bin"
            write_random(shared, 100_000, seed=99 + rnd)
            git(path, "add", own.name, shared.name)
            git(path, "commit", "-q", "-m", f"{name} round {rnd}")
            files[name].update({own.name: sha256_file(own), shared.name: sha256_file(shared)})
        results = _push_together(list(writers.values()))
        for name, proc in zip(writers, results):
            assert proc is not None and proc.returncode == 0, \
                f"round {rnd}: push from {name} failed\n{proc and proc.stdout}\n{proc and proc.stderr}"
            assert '"refs/panini/store"' in proc.stdout

    for name, path in writers.items():
        git(path, "push", "-q", "origin", name)

    # everything each writer has must be on the remote: manifests, chunks (listed and present), notes
    remote_manifests = set(store_entries(remote, "manifests"))
    remote_chunks = set(store_entries(remote, "chunks"))
    remote_notes = note_manifests(remote)
    wanted_manifests, wanted_chunks = set(), set()
    for name, path in writers.items():
        assert set(store_entries(path, "manifests")) <= remote_manifests
        for file in files[name]:
            p = pointer_of(path, f"HEAD:{file}")
            wanted_manifests.add(p.manifest)
            wanted_chunks |= {c for c, _ in manifest_chunks(path, p.manifest)}
    assert len(wanted_manifests) == 3 * ROUNDS            # own files of a and b, plus one shared per round
    assert wanted_manifests <= remote_manifests
    assert wanted_chunks <= remote_chunks
    assert wanted_manifests <= remote_notes
    query = "".join(f"{oid}\n" for oid in sorted(wanted_manifests | wanted_chunks))
    check = git(remote, "cat-file", "--batch-check", input=query).stdout
    assert "missing" not in check and check.count(" blob ") == len(wanted_manifests | wanted_chunks)

    # a third, fresh clone gets every file of both writers back and verifies everything
    third = tmp_path / "third"
    clone(url, third)
    for name in writers:
        git(third, "checkout", "-q", name)
        for file, digest in files[name].items():
            assert sha256_file(third / file) == digest
        assert git(third, "status", "--porcelain").stdout == ""
    out = run(["git", "panini", "verify", "--all"], cwd=third).stdout
    assert f"{len(wanted_manifests) + 1} of {len(wanted_manifests) + 1} file(s) verified" in out
    fsck = run(["git", "panini", "fsck", "--json"], cwd=third).stdout
    assert '"ok": true' in fsck
