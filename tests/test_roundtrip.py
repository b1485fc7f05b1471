"""The whole trip: add through the filter, commit, push to a bare file:// remote, gc both, clone
elsewhere with only the user-level filter, check out: the same bytes, a clean status, verify --all."""

import shutil

import pytest

from conftest import (MiB, clone, git, make_bare, make_repo, manifest_chunks, note_manifests,
                      pointer_of, run, sha256_file, store_entries, write_random, write_text)

SIZE = 64 * MiB


@pytest.fixture(scope="session")
def big_files(tmp_path_factory):
    """A 64 MiB random file and a 64 MiB text file, generated once and copied into each test."""
    d = tmp_path_factory.mktemp("data")
    files = {"data/random.bin": write_random(d / "random.bin", SIZE, seed=1),
             "docs/words.txt": write_text(d / "words.txt", SIZE, seed=2)}
    return {name: (path, sha256_file(path)) for name, path in files.items()}


@pytest.mark.parametrize("fmt", ["sha1", "sha256"])
def test_round_trip_64mib_through_a_bare_remote(tmp_path, fmt, big_files):
    remote, url = make_bare(tmp_path, fmt)
    work = make_repo(tmp_path, fmt, name="work", track=("*.bin", "*.txt"))
    for name, (src, _) in big_files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, work / name)
    git(work, "add", ".gitattributes", *big_files)
    git(work, "commit", "-q", "-m", "two big files")

    # what the branch holds: small canonical pointers naming the right content
    manifests = set()
    for name, (_, digest) in big_files.items():
        size = int(git(work, "cat-file", "-s", f"HEAD:{name}").stdout)
        assert size < 1024
        p = pointer_of(work, f"HEAD:{name}")
        assert (p.size, p.sha256) == (SIZE, digest)
        assert len(p.manifest) == (40 if fmt == "sha1" else 64)
        assert sum(s for _, s in manifest_chunks(work, p.manifest)) == SIZE
        manifests.add(p.manifest)
    assert set(store_entries(work, "manifests")) == manifests
    assert note_manifests(work) == set()                 # nothing is published before a push

    git(work, "remote", "add", "origin", url)
    git(work, "push", "-q", "origin", "main")          # the pre-push hook publishes the data first
    remote_refs = git(remote, "for-each-ref", "--format=%(refname)").stdout.split()
    assert {"refs/heads/main", "refs/panini/store", "refs/notes/panini"} <= set(remote_refs)
    assert [r for r in remote_refs if r.startswith("refs/panini/raw/")]
    assert "refs/panini/local" not in remote_refs
    assert note_manifests(work) == note_manifests(remote) == manifests

    # gc --prune=now at any moment after a commit must not lose a byte
    for r in (work, remote):
        git(r, "gc", "-q", "--prune=now")
    run(["git", "panini", "verify", "--all"], cwd=work)

    # a user who only ran `git panini install --global` clones elsewhere
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    assert "git-panini filter-process" in git(tmp_path, "config", "--global", "filter.panini.process").stdout
    elsewhere = tmp_path / "elsewhere"
    clone(url, elsewhere)
    assert git(elsewhere, "rev-parse", "--show-object-format").stdout.strip() == fmt
    assert git(elsewhere, "config", "--local", "--get", "filter.panini.process", check=False).returncode != 0
    for name, (_, digest) in big_files.items():
        assert (elsewhere / name).stat().st_size == SIZE
        assert sha256_file(elsewhere / name) == digest
    assert git(elsewhere, "status", "--porcelain").stdout == ""
    result = run(["git", "panini", "verify", "--all"], cwd=elsewhere)
    assert "2 of 2 file(s) verified" in result.stdout
    # the clone got the store it needed to smudge, with every manifest
    assert set(store_entries(elsewhere, "manifests")) == manifests
    # and the branch's blobs in the remote really are pointers, not 64 MiB blobs
    for name in big_files:
        assert int(git(remote, "cat-file", "-s", f"main:{name}").stdout) < 1024


def test_small_round_trip_with_history_and_edits(tmp_path):
    """Several commits that change, rename and delete tracked files; every version comes back."""
    remote, url = make_bare(tmp_path)
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    git(work, "remote", "add", "origin", url)
    git(work, "add", ".gitattributes")
    git(work, "commit", "-q", "-m", "attrs")
    versions = []
    for i in range(4):
        write_random(work / "a.bin", 300_000 + i * 70_001, seed=100 + i)
        write_random(work / f"v{i}.bin", 50_000, seed=200 + i)
        if i == 2:
            git(work, "mv", "v0.bin", "renamed.bin")
        if i == 3:
            git(work, "rm", "-q", "v1.bin")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"version {i}")
        commit = git(work, "rev-parse", "HEAD").stdout.strip()
        versions.append((commit, {p.name: sha256_file(p) for p in work.glob("*.bin")}))
    git(work, "push", "-q", "origin", "main")
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    other = tmp_path / "other"
    clone(url, other)
    for commit, files in versions:
        git(other, "checkout", "-q", commit)
        assert {p.name: sha256_file(p) for p in other.glob("*.bin")} == files
        assert git(other, "status", "--porcelain").stdout == ""
    out = run(["git", "panini", "verify", "--all"], cwd=other).stdout
    assert "FAIL" not in out
