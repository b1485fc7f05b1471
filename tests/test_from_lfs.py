"""Moving from git-lfs (3.3, the real one) in one step: `track` replaces git-lfs's line, `migrate import`
takes git-lfs's patterns by default and its objects (fetched when a clone lacks them), -I/-X take git-lfs's
comma lists, and a clone of the result reads every file with no git-lfs anywhere."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import file_url, git, make_bare, make_repo, run, write_random
from git_panini.format.pointer import parse

KiB = 1 << 10
ATTRS = "filter=panini diff=panini merge=panini -text"

pytestmark = pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")


def _commit(repo: Path, message: str):
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def _lfs_upstream(tmp_path) -> tuple[Path, dict[str, dict[str, str]]]:
    """A git-lfs repository pushed (git-lfs objects too) to a file:// remote: `*.bin` at the top, `*.psd`
    in a nested assets/.gitattributes, and `*.dat` tracked in the first commit only (its line and file gone
    later, so HEAD's .gitattributes no longer names it). Returns (remote, {subject: {path: sha256}})."""
    repo = make_repo(tmp_path, install=False, name="upstream")
    run(["git", "lfs", "install", "--local"], cwd=repo)
    run(["git", "lfs", "track", "*.bin", "*.dat"], cwd=repo)
    (repo / "assets").mkdir()
    (repo / "assets" / ".gitattributes").write_text("*.psd filter=lfs diff=lfs merge=lfs -text\n")
    write_random(repo / "old.dat", 90 * KiB, seed=1)
    write_random(repo / "a.bin", 120 * KiB, seed=2)
    write_random(repo / "assets" / "deep" / "cover.psd", 110 * KiB, seed=3)
    (repo / "notes.txt").write_text("one\n")
    _commit(repo, "c1")
    (repo / "old.dat").unlink()
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    write_random(repo / "a.bin", 130 * KiB, seed=4)
    write_random(repo / "b.bin", 100 * KiB, seed=5)
    _commit(repo, "c2")
    for path in ("old.dat", "a.bin", "assets/deep/cover.psd"):
        assert git(repo, "cat-file", "blob", f"HEAD~1:{path}").stdout.startswith("version https://git-lfs"), path
    before = {}
    for subject, rev in (("c1", "main~1"), ("c2", "main")):   # main: HEAD is c1 once detached there
        git(repo, "checkout", "-q", "--detach", rev)     # git-lfs smudges: the real bytes of each commit
        before[subject] = _worktree_files(repo)
    git(repo, "checkout", "-q", "main")
    remote, url = make_bare(tmp_path, name="upstream.git")
    git(repo, "remote", "add", "origin", url)
    git(repo, "push", "-q", "origin", "main")          # git-lfs's pre-push hook sends its objects
    assert list((remote / "lfs" / "objects").rglob("*")), "git-lfs pushed no object"
    return remote, before


def _worktree_files(path: Path) -> dict[str, str]:
    out = {}
    for base, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            full = Path(base) / name
            if name != ".gitattributes":
                out[str(full.relative_to(path))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


def _no_lfs_env(tmp_path) -> dict[str, str]:
    """A HOME with a global config holding git-panini's filter only, no system config, and a PATH with git,
    git-panini and a shell but no git-lfs."""
    home, bindir = tmp_path / "bare-home", tmp_path / "bin-without-lfs"
    home.mkdir()
    bindir.mkdir()
    for tool in ("git", "sh", "env"):
        os.symlink(shutil.which(tool), bindir / tool)
    config = home / ".gitconfig"
    config.write_text("[user]\n\tname = No LFS\n\temail = nolfs@panini.invalid\n")
    env = {"HOME": str(home), "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1",
           "PATH": os.pathsep.join([str(bindir), os.path.dirname(sys.executable)])}
    assert run(["git", "lfs", "version"], env=env, check=False).returncode != 0       # no git-lfs here
    run(["git", "panini", "install", "--global"], env=env)
    assert "filter.lfs" not in run(["git", "config", "--list"], env=env, cwd=tmp_path).stdout
    return env


def test_import_in_a_git_lfs_clone_takes_its_patterns_fetches_its_objects_and_needs_no_git_lfs_after(tmp_path):
    remote, before = _lfs_upstream(tmp_path)
    # A clone that did not download git-lfs's objects: none in .git/lfs/objects.
    work = tmp_path / "work"
    run(["git", "clone", "-q", file_url(remote), str(work)], env={"GIT_LFS_SKIP_SMUDGE": "1"})
    assert not [p for p in (work / ".git").rglob("*") if p.is_file() and "lfs/objects" in str(p)]
    run(["git", "panini", "install"], cwd=work)
    proc = run(["git", "panini", "migrate", "import"], cwd=work)
    assert "git-lfs objects missing here were fetched first (git lfs fetch --all)" in proc.stdout
    assert "patterns: *.bin *.dat assets/**/*.psd" in proc.stdout
    assert "5 blob(s)" in proc.stdout, proc.stdout      # old.dat, a.bin x2, b.bin, cover.psd
    for rev, paths in (("HEAD~1", ("old.dat", "a.bin", "assets/deep/cover.psd")), ("HEAD", ("a.bin", "b.bin"))):
        for path in paths:
            parse(git(work, "cat-file", "blob", f"{rev}:{path}", binary=True).stdout)    # a git-panini pointer
        attributes = git(work, "cat-file", "blob", f"{rev}:.gitattributes").stdout
        assert "filter=lfs" not in attributes and f"*.bin {ATTRS}" in attributes
    nested = git(work, "cat-file", "blob", "HEAD:assets/.gitattributes").stdout.splitlines()
    assert nested[-1] == f"**/*.psd {ATTRS}"             # after git-lfs's `*.psd`, so it wins there

    # Published, then cloned where git-lfs does not exist: every file of every commit, bit for bit.
    _, url = make_bare(tmp_path, name="migrated.git")
    git(work, "push", "-q", url, "main")
    env = _no_lfs_env(tmp_path)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", url, str(clone)], env=env)
    for subject, rev in (("c1", "main~1"), ("c2", "main")):
        run(["git", "checkout", "-q", "--detach", rev], cwd=clone, env=env)
        assert not run(["git", "status", "--porcelain"], cwd=clone, env=env).stdout, subject
        assert _worktree_files(clone) == before[subject], subject


def test_without_git_lfs_objects_or_a_way_to_fetch_them_one_line_and_nothing_rewritten(tmp_path):
    remote, _ = _lfs_upstream(tmp_path)
    shutil.rmtree(remote / "lfs")                          # the server lost them
    work = tmp_path / "work"
    run(["git", "clone", "-q", file_url(remote), str(work)], env={"GIT_LFS_SKIP_SMUDGE": "1"})
    run(["git", "panini", "install"], cwd=work)
    refs = git(work, "for-each-ref").stdout
    proc = run(["git", "panini", "migrate", "import", "--from-lfs"], cwd=work, check=False)
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "is not in .git/lfs/objects and git lfs fetch --all" in lines[0], proc.stderr
    assert git(work, "for-each-ref").stdout == refs


def test_from_lfs_in_a_repository_without_git_lfs_is_a_usage_error(tmp_path):
    repo = make_repo(tmp_path)
    write_random(repo / "a.bin", 10 * KiB, seed=1)
    _commit(repo, "one")
    proc = run(["git", "panini", "migrate", "import", "--from-lfs"], cwd=repo, check=False)
    assert proc.returncode == 2 and proc.stderr == \
        "git-panini: --from-lfs: no .gitattributes in this history tracks files with git-lfs\n"


def test_include_and_exclude_take_git_lfs_comma_lists(tmp_path):
    repo = make_repo(tmp_path, install=False)
    for name, seed in (("a.png", 1), ("lib.so", 2), ("skip.so", 3), ("c.txt", 4)):
        write_random(repo / name, 20 * KiB, seed=seed)
    _commit(repo, "one")
    run(["git", "panini", "install"], cwd=repo)
    info = run(["git", "panini", "migrate", "info", "-I", "*.png,*.so", "-X", "skip.so, c.txt"], cwd=repo).stdout
    assert sorted(l.split()[0] for l in info.splitlines()) == ["*.png", "*.so"] and info.count("1 blob(s)") == 2
    proc = run(["git", "panini", "migrate", "import", "-I", "*.png, *.so", "-X", "skip.so,c.txt"], cwd=repo)
    assert "2 blob(s)" in proc.stdout
    for path in ("a.png", "lib.so"):
        parse(git(repo, "cat-file", "blob", f"HEAD:{path}", binary=True).stdout)
    assert git(repo, "cat-file", "-s", "HEAD:skip.so").stdout.strip() == str(20 * KiB)
    assert git(repo, "cat-file", "blob", "HEAD:.gitattributes").stdout.splitlines() == [
        f"*.png {ATTRS}", f"*.so {ATTRS}", "skip.so !filter !diff !merge !text", "c.txt !filter !diff !merge !text"]


def test_track_replaces_git_lfs_line_for_the_same_pattern_and_says_so(tmp_path):
    repo = make_repo(tmp_path, install=False)
    run(["git", "lfs", "install", "--local"], cwd=repo)
    run(["git", "lfs", "track", "--lockable", "*.bin"], cwd=repo)
    run(["git", "lfs", "track", "*.iso"], cwd=repo)
    write_random(repo / "a.bin", 30 * KiB, seed=1)
    _commit(repo, "git-lfs")
    run(["git", "panini", "install"], cwd=repo)
    proc = run(["git", "panini", "track", "*.bin"], cwd=repo)
    assert proc.stdout.count("\n") == 1 and "replaced git-lfs's line" in proc.stdout
    assert "git add --renormalize ." in proc.stdout and "git panini migrate import" in proc.stdout
    assert (repo / ".gitattributes").read_text().splitlines() == [
        "*.iso filter=lfs diff=lfs merge=lfs -text", f"*.bin {ATTRS} lockable"]
    assert run(["git", "panini", "track", "*.bin"], cwd=repo).stdout == "already tracked: *.bin\n"
    # As the message says: the files git-lfs stored become git-panini's with the next commit.
    git(repo, "add", "--renormalize", ".")
    _commit(repo, "to git-panini")
    assert parse(git(repo, "cat-file", "blob", "HEAD:a.bin", binary=True).stdout).size == 30 * KiB


def test_attribute_lines_are_split_as_git_splits_them(tmp_path):
    """A form feed inside a .gitattributes line is part of that line to git (whose pattern then matches no
    file); split like str.splitlines, `track` wrote it back as a live `* filter=lfs` line for every file."""
    repo = make_repo(tmp_path, install=False)
    odd = "x\x0c* filter=lfs diff=lfs merge=lfs -text"
    (repo / ".gitattributes").write_bytes(f"{odd}\n*.bin filter=lfs diff=lfs merge=lfs -text\n".encode())
    run(["git", "panini", "install"], cwd=repo)
    run(["git", "panini", "track", "*.bin"], cwd=repo)
    lines = (repo / ".gitattributes").read_bytes().decode().split("\n")
    assert odd in lines and "* filter=lfs diff=lfs merge=lfs -text" not in lines
    assert git(repo, "check-attr", "filter", "--", "plain.txt").stdout.strip().endswith("unspecified")


def test_git_lfs_pointer_text_in_the_working_tree_is_never_stored_as_the_files_data(tmp_path):
    """A clone whose git-lfs did not download the objects holds git-lfs's pointer text in its working tree.
    `track` replaces git-lfs's line and says to run `git add --renormalize .`: that stored the pointer text as
    the file's data (a 131-byte a.bin in the next commit, for everyone). The filter leaves the pointer as it
    is, says so in one line, and `migrate import` still converts the real bytes."""
    remote, before = _lfs_upstream(tmp_path)
    work = tmp_path / "work"
    run(["git", "clone", "-q", file_url(remote), str(work)], env={"GIT_LFS_SKIP_SMUDGE": "1"})
    assert (work / "a.bin").read_bytes().startswith(b"version https://git-lfs")
    lfs_blob = git(work, "rev-parse", "HEAD:a.bin").stdout.strip()
    run(["git", "panini", "install"], cwd=work)
    run(["git", "panini", "track", "*.bin"], cwd=work)
    added = git(work, "add", "--renormalize", ".")
    said = [line for line in added.stderr.splitlines() if "a.bin" in line]
    assert len(said) == 1 and "git-lfs's pointer, not its data" in said[0], added.stderr
    assert git(work, "rev-parse", ":a.bin").stdout.strip() == lfs_blob      # the index holds git-lfs's pointer
    git(work, "commit", "-q", "-m", "track with git-panini")
    assert git(work, "rev-parse", "HEAD:a.bin").stdout.strip() == lfs_blob

    run(["git", "panini", "migrate", "import"], cwd=work)
    _, url = make_bare(tmp_path, name="migrated.git")
    git(work, "push", "-q", url, "main")
    env = _no_lfs_env(tmp_path)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", url, str(clone)], env=env)
    assert _worktree_files(clone) == before["c2"]
