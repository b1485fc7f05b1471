"""git panini report: the rows and totals a range gives (from pointers and notes), the three formats,
verify over the range (a corrupted pack fails it), and --github: job summary, commit statuses and one
PR comment kept up to date, through the real PyGithub client and the fake GitHub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import file_url, git, make_bare, make_repo, pointer_of, run, write_text
from github_fake import FakeGitHub
from git_panini import codecs
from git_panini.format import manifest as manifest_mod
from git_panini.cli import app
from git_panini.git.objects import encode_commit
from git_panini.git.repo import Repo
from git_panini.report.report import MARKER, build, render_markdown
from git_panini.store.shared import PACK_REFS, STORE_REF, Store, fan, leaves, pack_path
from git_panini.git.tree_edit import TreeEditor
from git_panini.work.worker import Worker

WEIRD = "we|rd `name`.bin"


# --- helpers other test modules use too ----------------------------------------------------------------

def copy_template(tmp_path, tmp_path_factory, name: str, build_fn) -> Path:
    """Build a set-up once per session (build_fn(directory)), then give each test its own copy;
    file:// URLs inside .git/config files are re-pointed at the copy."""
    template = tmp_path_factory.getbasetemp() / f"template-{name}"
    if not (template / ".built").exists():
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir()
        build_fn(template)
        (template / ".built").touch()
    target = tmp_path / name
    shutil.copytree(template, target, symlinks=True)
    for config in target.glob("**/config"):
        text = config.read_text(errors="replace")
        if file_url(template) in text:
            config.write_text(text.replace(file_url(template), file_url(target)))
    return target


def corrupt_chunk(repo_path, manifest: str) -> str:
    """Replace the pack holding one of the manifest's chunks by a pack whose data decodes to other bytes
    (one byte of that chunk flipped), as a buggy worker or a damaged store would; the good pack's data
    becomes unreachable. The store keeps its shape (the recipe is valid, the sizes add up): only
    re-hashing the chunk can tell. Returns the chunk."""
    r = Repo(str(repo_path))
    try:
        store = Store(r)
        editor = TreeEditor(r, store.tree_of(store.tip()))
        chunks = list(manifest_mod.parse(r.read_kind(manifest, "blob"), r.hex_len))
        target = chunks[len(chunks) // 2][0]
        for pack in leaves(r, store.tree_of(store.tip()), "packs"):
            recipe = json.loads(r.read_kind(pack.name, "blob"))
            hits = [c for c in recipe["chunks"] if c[0] == target]
            if not hits:
                continue
            deps = {d: r.read_kind(d, "blob") for d in recipe.get("deps", [])}
            raw = bytearray(codecs.decode_chain(r.read_kind(recipe["data"], "blob"), recipe["steps"], deps,
                                                recipe["size"]))
            _, offset, length = hits[0]
            raw[offset + length // 2] ^= 0x55
            encoded, steps = codecs.encode_chain(bytes(raw), [("store", {})], {})
            data = r.write_object("blob", encoded)
            bad = dict(recipe, steps=steps, deps=[], data=data, encoded_size=len(encoded))
            recipe_oid = r.write_object("blob", json.dumps(bad, sort_keys=True).encode())
            editor.remove(pack_path(pack.name))
            editor.set(pack_path(recipe_oid), recipe_oid)
            # The good data goes: the bulk ref that held it is rewritten without it, with the bad data.
            [(ref, tree)] = [(ref, tree) for ref, tree in _pack_bulk_trees(r) if TreeEditor(r, tree).get(fan(recipe["data"]))]
            bulk = TreeEditor(r, tree)
            bulk.remove(fan(recipe["data"]))
            bulk.set(fan(data), data)
            bulk_commit = r.write_object("commit", encode_commit(bulk.write(), [], "panini: corrupted pack data"))
            r.git("update-ref", PACK_REFS + bulk_commit, bulk_commit)
            r.git("update-ref", "-d", ref)
            commit = r.write_object("commit", encode_commit(editor.write(), [store.tip()], "panini: a corrupted pack"))
            r.git("update-ref", STORE_REF, commit)
            return target
        raise AssertionError(f"no pack holds chunk {target}")
    finally:
        r.close()


def _pack_bulk_trees(r) -> list[tuple[str, str]]:
    refs = r.git("for-each-ref", "--format=%(refname)", PACK_REFS).stdout.decode().split()
    return [(ref, r.git("rev-parse", ref + "^{tree}").stdout.decode().strip()) for ref in refs]


def forget_raw_copies(repo_path):
    """Drop what would heal a read of a corrupted pack: the chunk index, every unreachable object (raw
    chunks that packs replaced, replaced packs), and the remote (it still holds raw copies)."""
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):   # its write-ahead log with it
        (Path(repo_path) / ".git" / "panini" / name).unlink(missing_ok=True)
    git(repo_path, "remote", "remove", "origin", check=False)
    git(repo_path, "reflog", "expire", "--expire=now", "--all")
    git(repo_path, "gc", "--quiet", "--prune=now")


# --- fixtures ------------------------------------------------------------------------------------------

def _build(base: Path):
    repo = make_repo(base, track=("*.bin",))
    write_text(repo / "edit.bin", 400_000, seed=1)
    (repo / "README").write_text("plain file\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", "base")
    _, url = make_bare(base)                            # pushes publish the files: notes say what was new
    git(repo, "remote", "add", "origin", url)
    git(repo, "push", "-q", "-u", "origin", "main")
    shutil.copy(repo / "edit.bin", repo / "copy.bin")   # added: all of it deduplicated against the base
    with open(repo / "edit.bin", "ab") as f:            # modified: mostly the same chunks
        f.write(b"appended line\n" * 2000)
    write_text(repo / WEIRD, 30_000, seed=2)            # added: new bytes, a name that needs escaping
    (repo / "README").write_text("changed plain file\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "head")
    git(repo, "push", "-q")


@pytest.fixture
def repo(tmp_path, tmp_path_factory) -> Path:
    return copy_template(tmp_path, tmp_path_factory, "report", _build) / "repo"


def work(path):
    r = Repo(str(path))
    try:
        results = Worker(r, effort=0).run()
    finally:
        r.close()
    assert results and all(x.ok for x in results)


@pytest.fixture
def panini(monkeypatch):
    """`git panini ARGS` in this process: panini(cwd, *args, env={...}) -> exit_code, stdout, stderr."""
    from typer.testing import CliRunner

    def invoke(cwd, *args, env=None):
        with monkeypatch.context() as m:
            m.chdir(cwd)
            for key, value in (env or {}).items():
                m.setenv(key, value)
            return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return invoke


def _report(path, base="base", head="HEAD", verify=False):
    r = Repo(str(path))
    try:
        return build(r, base, head, verify=verify)
    finally:
        r.close()


# --- rows and totals -----------------------------------------------------------------------------------

def test_rows_of_a_pending_range(repo):
    report = _report(repo)
    rows = {r.path: r for r in report.rows}
    assert sorted(rows) == sorted(["copy.bin", "edit.bin", WEIRD])          # README is no pointer
    assert rows["edit.bin"].change == "modified" and rows["copy.bin"].change == "added"
    for path, row in rows.items():
        assert row.size == (repo / path).stat().st_size
        assert row.status == "pending" and row.stored_bytes is None and row.ratio is None
    assert rows["copy.bin"].unique_bytes == 0                                # the base had this content
    assert rows["copy.bin"].pending_bytes == rows["copy.bin"].size           # ... still raw, though
    assert rows["edit.bin"].pending_bytes == rows["edit.bin"].unique_bytes
    assert 0 < rows["edit.bin"].unique_bytes < rows["edit.bin"].size         # the appended tail only
    assert rows[WEIRD].unique_bytes == rows[WEIRD].size
    t = report.totals
    assert t["files"] == 3 and t["completed_files"] == 0 and t["ratio"] is None
    assert t["size"] == sum(r.size for r in report.rows) and t["pending_files"] == 3
    assert report.verify is None


def test_rows_after_work(repo):
    work(repo)
    report = _report(repo, verify=True)
    for row in report.rows:
        assert row.status == "completed" and row.pending_bytes == 0
        assert row.stored_bytes is not None and 0 < row.ratio < 1          # generated text compresses
        assert row.codecs and all(isinstance(v, int) for v in row.codecs.values())
    t = report.totals
    assert t["stored_bytes"] == sum(r.stored_bytes for r in report.rows)
    assert t["ratio"] == round(t["stored_bytes"] / t["size"], 4)
    assert report.verify == {"ok": True, "checked": 3, "bytes": t["size"], "failed": []}


def test_formats(repo, panini):
    work(repo)
    text = panini(repo, "report", "--base", "base")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["file", "change", "size", "new", "stored", "pending", "ratio", "codecs", "status"]
    assert "3 files" in lines[-1] and "compressed" in lines[-1]
    md = panini(repo, "report", "--base", "base", "--format", "markdown", "--verify").stdout
    assert md.startswith(MARKER + "\n### git-panini: 3 files")
    assert "**Verify** ✅ 3 of 3 file(s) verified bit-perfect" in md
    assert "| `we\\|rd 'name'.bin` | added |" in md                          # escaped for the table
    chart = md.split("```text\n")[1].split("```")[0].splitlines()
    assert len(chart) == 3 and all("█" in line and line.endswith("%") for line in chart)
    data = json.loads(panini(repo, "report", "--base", "base", "--format", "json").stdout)
    assert json.loads(panini(repo, "report", "--base", "base", "--json").stdout) == data
    assert [f["path"] for f in data["files"]] == sorted(["copy.bin", "edit.bin", WEIRD])
    assert data["totals"]["files"] == 3 and data["verify"] is None
    empty = panini(repo, "report", "--base", "HEAD", "--head", "HEAD", "--format", "markdown").stdout
    assert "no git-panini files added or changed" in empty and "|---|" not in empty
    bad = panini(repo, "report", "--base", "nope")
    assert bad.exit_code == 2 and bad.stderr.strip() == "git-panini: bad revision 'nope'"


def test_pending_chart_shows_raw_and_saved(repo):
    md = render_markdown(_report(repo))
    lines = md.split("```text\n")[1].split("```")[0].splitlines()
    chart = {line.split()[0]: line.split()[1] for line in lines}
    assert set(chart["copy.bin"]) == {"░"}                                    # nothing new: all saved
    assert "▒" in chart["edit.bin"] and "░" in chart["edit.bin"]              # new tail raw, the rest saved
    assert chart["edit.bin"].startswith("▒")


def test_verify_catches_a_corrupted_pack(repo, panini):
    work(repo)
    chunk = corrupt_chunk(repo, pointer_of(repo, "HEAD:" + WEIRD).manifest)
    forget_raw_copies(repo)
    result = panini(repo, "report", "--base", "base", "--format", "json", "--verify")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "1 of 3 file(s) FAILED verification" in result.stderr
    data = json.loads(result.stdout)
    [failure] = data["verify"]["failed"]
    assert failure["path"] == WEIRD and chunk in failure["error"] and "corrupt" in failure["error"]
    # the same verdict as `git panini verify` over the range
    assert run(["git", "panini", "verify", "base..HEAD"], cwd=repo, check=False).returncode == 1


# --- --github -------------------------------------------------------------------------------------------

def test_github_statuses_summary_and_one_comment(repo, tmp_path, panini):
    work(repo)
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    summary = tmp_path / "summary.md"
    with FakeGitHub() as fake:
        env = dict(fake.env(), GITHUB_STEP_SUMMARY=str(summary), GITHUB_SERVER_URL="https://github.com",
                   GITHUB_RUN_ID="77")
        for _ in range(2):       # a second push updates the same comment
            result = panini(repo, "report", "--base", "base", "--github", "--comment", "--pr", "12", env=env)
            assert result.exit_code == 0, result.stderr
        ratio, verify = fake.status_of(head, "panini/ratio"), fake.status_of(head, "panini/verify")
        assert ratio["state"] == "success" and "3 file(s)" in ratio["description"] and "stored" in ratio["description"]
        assert verify["state"] == "success" and verify["description"] == "3 of 3 file(s) bit-perfect"
        assert verify["target_url"] == f"https://github.com/{fake.repository}/actions/runs/77"
        [comment] = fake.comments[12]
        assert comment["body"].startswith(MARKER) and "| `copy.bin` |" in comment["body"]
        assert [r.method for r in fake.requests] == ["POST", "POST", "GET", "POST", "POST", "POST", "GET", "PATCH"]
        assert "created the report comment on #12" in result.stderr or "updated the report comment" in result.stderr

        # the same range with a corrupted pack: panini/verify fails, the comment says so
        corrupt_chunk(repo, pointer_of(repo, "HEAD:copy.bin").manifest)
        forget_raw_copies(repo)
        result = panini(repo, "report", "--base", "base", "--github", "--comment", "--pr", "12", env=env)
        assert result.exit_code == 1
        verify = fake.status_of(head, "panini/verify")
        assert verify["state"] == "failure" and verify["description"].startswith("2 of 3 FAILED: ")
        assert fake.status_of(head, "panini/ratio")["state"] == "success"
        [comment] = fake.comments[12]
        assert "**Verify** ❌ 2 of 3 file(s) FAILED verification" in comment["body"]
    assert summary.read_text().count(MARKER) == 3


def test_github_errors_are_one_line(repo, tmp_path, panini):
    summary = tmp_path / "summary.md"
    with FakeGitHub() as fake:
        fake.permissions["statuses"] = "read"
        env = dict(fake.env(), GITHUB_STEP_SUMMARY=str(summary))
        result = panini(repo, "report", "--base", "base", "--github", env=env)
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [
            "git-panini: GitHub refused setting status panini/ratio on "
            f"{git(repo, 'rev-parse', 'HEAD').stdout.strip()[:12]} (403 Resource not accessible by integration): "
            "the token needs `statuses: write`"]
        assert MARKER in summary.read_text()          # the summary is written before any call
        fake.permissions["statuses"] = "write"
        fake.fail("POST", r"/issues/\d+/comments$", 404, {"message": "Not Found"})
        result = panini(repo, "report", "--base", "base", "--github", "--comment", "--pr", "999", env=env)
        assert result.exit_code == 1 and "found nothing while commenting on #999" in result.stderr
    result = panini(repo, "report", "--base", "base", "--comment")
    assert result.exit_code == 2 and "--comment goes with --github" in result.stderr  # a usage error
