"""Pack retirement (work/retire.py) against a collaborator with ordinary push access, using only git
plumbing: a push that only looks like a retirement."""

from __future__ import annotations

from conftest import clone, git, make_bare, make_repo, run
from test_retire_packs import Lineage, _attacker, _gc, _pack_refs, _reads_every_version, _recipes, _store_commit
from git_panini.store.shared import STORE_REF, bulk_list_path, pack_path


def test_a_forged_retirement_of_the_only_pack_is_taken_for_a_loss(tmp_path):
    """A collaborator deletes the only pack data ref and drops its recipe and list in one push, as a worker
    retiring it would (a remote without the hook takes it): no pack there yields its chunks any more, so
    it is no retirement. The next ordinary push from a clone that holds the data says so and pushes it
    back, and after gc on both sides a fresh clone reads every version."""
    remote, url = make_bare(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    lineage = Lineage(repo, seed=3, size=300_000)
    lineage.commit()
    run(["git", "panini", "work"], cwd=repo)
    [ref] = _pack_refs(remote)
    [pack] = _recipes(remote)
    attacker = _attacker(tmp_path, url)
    commit = _pack_refs(attacker)[ref]

    def drop(editor, repo_):
        editor.remove(pack_path(pack))
        editor.remove(bulk_list_path(commit))
    _store_commit(attacker, drop)
    git(attacker, "push", "-q", "--atomic", "origin", f"{STORE_REF}:{STORE_REF}", f":{ref}")
    assert not _pack_refs(remote)

    (repo / "note.txt").write_text("hello\n")
    git(repo, "add", "note.txt")
    git(repo, "commit", "-q", "-m", "note")
    lineage.versions[git(repo, "rev-parse", "HEAD").stdout.strip()] = lineage.versions[next(iter(lineage.versions))]
    pushed = git(repo, "push", "-q", "origin", "main")
    assert "lost data" in pushed.stderr, pushed.stderr
    _gc(remote, repo)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    _reads_every_version(fresh, lineage.versions)
