"""`git panini migrate import|export|info` against real histories: plain blobs and real git-lfs, checked
commit by commit through a push and a fresh clone, and back out to the original trees."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


from conftest import git, make_bare, make_repo, run, write_random
from git_panini.format.pointer import parse

KiB = 1 << 10
UNICODE = "ü ber.bin"


def _commit(repo: Path, message: str, *paths: str):
    git(repo, "add", "-A", *paths)
    git(repo, "commit", "-q", "-m", message)


def _plain_history(tmp_path) -> Path:
    """Several commits on two branches, a merge, an annotated and a light tag, a rename, a file that
    changes over commits, a path with a space and non-ASCII bytes, an empty .bin, an existing .gitattributes."""
    repo = make_repo(tmp_path, install=False)
    write_random(repo / "a.bin", 300 * KiB, seed=1)
    write_random(repo / "img" / "x.bin", 150 * KiB, seed=2)
    (repo / "docs").mkdir()
    (repo / "docs" / "readme.txt").write_text("hello\n")
    (repo / ".gitattributes").write_text("*.txt text\n")
    _commit(repo, "c1 first files")
    write_random(repo / "a.bin", 310 * KiB, seed=3)
    write_random(repo / "sp ace.bin", 90 * KiB, seed=4)
    (repo / "empty.bin").write_bytes(b"")
    _commit(repo, "c2 a.bin changes, two more")
    git(repo, "tag", "light")
    git(repo, "checkout", "-q", "-b", "feature")
    write_random(repo / "f.bin", 120 * KiB, seed=5)
    write_random(repo / UNICODE, 70 * KiB, seed=6)
    write_random(repo / "a.bin", 320 * KiB, seed=7)
    _commit(repo, "f1 feature work")
    git(repo, "checkout", "-q", "main")
    git(repo, "mv", "img/x.bin", "img/y.bin")
    (repo / "docs" / "readme.txt").write_text("hello again\n")
    _commit(repo, "c3 rename x to y")
    git(repo, "tag", "-a", "v1", "-m", "version 1")
    git(repo, "merge", "-q", "--no-ff", "-m", "c4 merge feature", "feature")
    write_random(repo / "a.bin", 330 * KiB, seed=8)
    _commit(repo, "c5 a.bin once more")
    return repo


def _files_by_commit(repo: Path, refs=("--branches", "--tags")) -> dict[str, dict[str, str]]:
    """{commit subject: {path: sha256 of its bytes}} for every commit the refs reach."""
    out = {}
    for line in git(repo, "log", "--format=%H %s", *refs).stdout.splitlines():
        commit, subject = line.split(" ", 1)
        files = {}
        listing = git(repo, "ls-tree", "-r", "-z", commit).stdout.split("\0")
        for record in filter(None, listing):
            meta, path = record.split("\t", 1)
            blob = git(repo, "cat-file", "blob", meta.split()[2], binary=True).stdout
            files[path] = hashlib.sha256(blob).hexdigest()
        out[subject] = files
    return out


def _trees_by_commit(repo: Path) -> dict[str, str]:
    return dict(reversed(l.split(" ", 1)) for l in
                git(repo, "log", "--format=%T %s", "--branches", "--tags").stdout.splitlines())


def _worktree_files(path: Path) -> dict[str, str]:
    out = {}
    for base, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            full = Path(base) / name
            out[str(full.relative_to(path))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


def _refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(objectname) %(refname)").stdout


def _one_line_error(proc, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("git-panini: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def _clone_and_check_every_commit(tmp_path, repo: Path, before: dict[str, dict[str, str]], ignore=(".gitattributes",)):
    """Push everything to a bare remote, clone it with the filter installed, check out each commit: every
    file has the bytes it had before the migration."""
    _, url = make_bare(tmp_path, name="migrated.git")
    git(repo, "remote", "add", "origin", url)
    git(repo, "push", "-q", "origin", "--all")
    git(repo, "push", "-q", "origin", "--tags")
    run(["git", "panini", "install", "--global"])
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", url, str(clone)])
    seen = 0
    for line in git(clone, "log", "--format=%H %s", "--remotes", "--tags").stdout.splitlines():
        commit, subject = line.split(" ", 1)
        git(clone, "checkout", "-q", "--detach", commit)
        assert not git(clone, "status", "--porcelain").stdout, subject
        got = {p: h for p, h in _worktree_files(clone).items() if p not in ignore}
        want = {p: h for p, h in before[subject].items() if p not in ignore}
        assert got == want, subject
        seen += 1
    assert seen == len(before)
    run(["git", "panini", "verify", "--all"], cwd=clone)
    return clone


def test_import_of_a_plain_history_then_every_commit_checks_out_bit_identical(tmp_path):
    repo = _plain_history(tmp_path)
    before, trees, old_refs = _files_by_commit(repo), _trees_by_commit(repo), _refs(repo)
    run(["git", "panini", "install"], cwd=repo)
    proc = run(["git", "panini", "migrate", "import", "--include", "*.bin", "--everything"], cwd=repo)
    assert "6 commit(s) read" in proc.stdout and "4 ref(s) rewritten" in proc.stdout
    # Every .bin of the new history is a pointer (the empty one stays empty), .gitattributes gained the line.
    converted = set()
    for line in git(repo, "log", "--format=%H", "--branches", "--tags").stdout.split():
        attributes = git(repo, "cat-file", "blob", f"{line}:.gitattributes").stdout.splitlines()
        assert attributes == ["*.txt text", "*.bin filter=panini diff=panini merge=panini -text"]
        for record in filter(None, git(repo, "ls-tree", "-r", "-z", line).stdout.split("\0")):
            meta, path = record.split("\t", 1)
            data = git(repo, "cat-file", "blob", meta.split()[2], binary=True).stdout
            if path.endswith(".bin") and path != "empty.bin":
                converted.add(parse(data).sha256)
            else:
                assert not data.startswith(b"version git-panini"), path
    assert len(converted) == 8   # a.bin x4, x.bin (renamed, converted once), sp ace, f.bin, ü ber
    # The old tips are kept, the working tree is the new HEAD's and clean, verify passes here.
    backup = [l.split()[1] for l in _refs(repo).splitlines() if "refs/panini-migrate/" in l]
    assert sorted(r.split("/", 3)[3] for r in backup) == sorted(l.split()[1] for l in old_refs.splitlines())
    assert not git(repo, "status", "--porcelain").stdout
    assert (repo / "a.bin").stat().st_size == 330 * KiB
    run(["git", "panini", "verify", "--all"], cwd=repo)
    assert run(["git", "panini", "fsck"], cwd=repo).returncode == 0
    _clone_and_check_every_commit(tmp_path, repo, before)

    # Export brings back the original trees (and, the metadata being kept, the original commits).
    proc = run(["git", "panini", "migrate", "export", "--include", "*.bin", "--everything"], cwd=repo)
    assert "8 blob(s)" in proc.stdout
    assert _trees_by_commit(repo) == trees
    assert git(repo, "rev-parse", "main").stdout == next(
        l.split()[0] + "\n" for l in old_refs.splitlines() if l.endswith(" refs/heads/main"))
    assert not git(repo, "status", "--porcelain").stdout


def test_import_of_one_branch_leaves_the_others_alone_and_info_counts_without_writing(tmp_path):
    repo = _plain_history(tmp_path)
    run(["git", "panini", "install"], cwd=repo)
    objects = git(repo, "count-objects", "-v").stdout
    refs = _refs(repo)
    proc = run(["git", "panini", "migrate", "info", "--include", "*.bin", "--include", "docs/**", "--json",
                "--everything"], cwd=repo)
    import json
    rows = {r["pattern"]: r for r in json.loads(proc.stdout)["patterns"]}
    sizes = [300, 310, 320, 330, 150, 90, 120, 70]
    assert rows["*.bin"]["blobs"] == 8 and rows["*.bin"]["bytes"] == sum(sizes) * KiB
    assert rows["docs/**"]["blobs"] == 2 and rows["docs/**"]["bytes"] == len("hello\n") + len("hello again\n")
    by_ext = run(["git", "panini", "migrate", "info", "--everything"], cwd=repo).stdout.splitlines()
    assert by_ext[0].startswith("*.bin") and "8 blob(s)" in by_ext[0]
    assert git(repo, "count-objects", "-v").stdout == objects and _refs(repo) == refs

    git(repo, "checkout", "-q", "feature")
    run(["git", "panini", "migrate", "import", "-I", "*.bin", "-X", "f.bin"], cwd=repo)
    after = _refs(repo)
    moved = {l.split()[1] for l in set(after.splitlines()) - set(refs.splitlines())}
    assert {m for m in moved if not m.startswith(("refs/panini-migrate/", "refs/panini/"))} == {"refs/heads/feature"}
    assert git(repo, "cat-file", "-s", "HEAD:f.bin").stdout.strip() == str(120 * KiB)   # excluded
    parse(git(repo, "cat-file", "blob", f"HEAD:{UNICODE}", binary=True).stdout)
    assert git(repo, "cat-file", "blob", "HEAD:.gitattributes").stdout.splitlines()[-1] == \
        "f.bin !filter !diff !merge !text"


def _lfs_history(tmp_path) -> tuple[Path, dict[str, bytes]]:
    repo = make_repo(tmp_path, install=False, name="lfs")
    run(["git", "lfs", "install", "--local"], cwd=repo)
    run(["git", "lfs", "track", "*.bin"], cwd=repo)
    data = {}
    for n in range(3):
        for name in ("a.bin", f"n{n}.bin"):
            write_random(repo / name, (100 + 10 * n) * KiB, seed=20 + 10 * n + (name == "a.bin"))
            data[name, n] = (repo / name).read_bytes()
        (repo / "notes.txt").write_text(f"version {n}\n")
        _commit(repo, f"lfs {n}")
    assert git(repo, "cat-file", "blob", "HEAD:a.bin").stdout.startswith("version https://git-lfs")
    return repo, data


def test_import_of_a_git_lfs_history(tmp_path):
    repo, data = _lfs_history(tmp_path)
    before = {}
    for n in range(3):
        before[f"lfs {n}"] = {p: hashlib.sha256(b).hexdigest() for (p, m), b in data.items() if m <= n
                              and not (p == "a.bin" and m < n)}
        before[f"lfs {n}"]["notes.txt"] = hashlib.sha256(f"version {n}\n".encode()).hexdigest()
    run(["git", "panini", "install"], cwd=repo)
    info = run(["git", "panini", "migrate", "info", "-I", "*.bin"], cwd=repo).stdout
    assert "6 git-lfs pointer(s)" in info
    run(["git", "panini", "migrate", "import", "--include", "*.bin"], cwd=repo)
    for n in range(3):
        rev = f"HEAD~{2 - n}"
        assert git(repo, "cat-file", "blob", f"{rev}:.gitattributes").stdout == \
            "*.bin filter=panini diff=panini merge=panini -text\n"
        pointer = parse(git(repo, "cat-file", "blob", f"{rev}:n{n}.bin", binary=True).stdout)
        assert pointer.sha256 == before[f"lfs {n}"][f"n{n}.bin"]
    assert not git(repo, "status", "--porcelain").stdout
    assert (repo / "a.bin").read_bytes() == data["a.bin", 2]
    run(["git", "panini", "verify", "--all"], cwd=repo)
    _clone_and_check_every_commit(tmp_path, repo, before)


def test_a_missing_git_lfs_object_is_named_and_nothing_is_rewritten(tmp_path):
    repo, data = _lfs_history(tmp_path)
    run(["git", "panini", "install"], cwd=repo)
    # An old version: one in the working tree would be cleaned back into .git/lfs by git-lfs's own
    # filter as soon as `git status` looks at it.
    missing = hashlib.sha256(data["a.bin", 1]).hexdigest()
    os.remove(repo / ".git" / "lfs" / "objects" / missing[:2] / missing[2:4] / missing)
    refs = _refs(repo)
    proc = run(["git", "panini", "migrate", "import", "-I", "*.bin"], cwd=repo, check=False)
    assert missing in _one_line_error(proc, 1)
    assert _refs(repo) == refs
    assert not list((repo / ".git" / "panini").glob("journal-*"))


def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path):
    repo = _plain_history(tmp_path)
    outside = tmp_path / "nowhere"
    outside.mkdir()
    _one_line_error(run(["git", "panini", "migrate", "info"], cwd=outside, check=False), 1)
    _one_line_error(run(["git", "panini", "migrate", "import", "-I", "*.bin"], cwd=repo, check=False), 1)  # no filter
    run(["git", "panini", "install"], cwd=repo)
    refs = _refs(repo)
    assert "nosuch" in _one_line_error(run(["git", "panini", "migrate", "import", "-I", "*.bin", "nosuch"],
                                           cwd=repo, check=False), 2)
    _one_line_error(run(["git", "panini", "migrate", "export", "HEAD~1"], cwd=repo, check=False), 2)
    _one_line_error(run(["git", "panini", "migrate", "import", "main", "--everything", "-I", "*.bin"],
                        cwd=repo, check=False), 2)
    _one_line_error(run(["git", "panini", "migrate", "import"], cwd=repo, check=False), 2)   # nothing tracked
    _one_line_error(run(["git", "panini", "migrate", "convert"], cwd=repo, check=False), 2)
    for pattern in ("*.bin\n*", "", "  "):   # would write other lines into every commit's .gitattributes
        for mode in ("import", "info"):
            assert "not a pattern" in _one_line_error(run(["git", "panini", "migrate", mode, "-I", pattern],
                                                          cwd=repo, check=False), 2)
    (repo / "docs" / "readme.txt").write_text("changed\n")
    assert "uncommitted" in _one_line_error(run(["git", "panini", "migrate", "import", "-I", "*.bin"],
                                                cwd=repo, check=False), 1)
    assert _refs(repo) == refs


def test_import_without_include_uses_the_tracked_patterns(tmp_path):
    repo = make_repo(tmp_path, install=False)
    write_random(repo / "big.psd", 200 * KiB, seed=9)
    _commit(repo, "one")
    run(["git", "panini", "install"], cwd=repo)
    run(["git", "panini", "track", "*.psd"], cwd=repo)
    _commit(repo, "track")
    run(["git", "panini", "migrate", "import"], cwd=repo)
    for rev in ("HEAD", "HEAD~1"):
        parse(git(repo, "cat-file", "blob", f"{rev}:big.psd", binary=True).stdout)
    assert git(repo, "cat-file", "blob", "HEAD:.gitattributes").stdout == "*.psd filter=panini diff=panini merge=panini -text\n"


def test_sha256_repository_round_trip(tmp_path):
    repo = make_repo(tmp_path, object_format="sha256", install=False)
    for n in range(3):
        write_random(repo / "data.bin", (200 + n) * KiB, seed=40 + n)
        _commit(repo, f"v{n}")
    trees = _trees_by_commit(repo)
    run(["git", "panini", "install"], cwd=repo)
    run(["git", "panini", "migrate", "import", "-I", "*.bin"], cwd=repo)
    assert parse(git(repo, "cat-file", "blob", "HEAD~2:data.bin", binary=True).stdout).size == 200 * KiB
    run(["git", "panini", "verify", "--all"], cwd=repo)
    run(["git", "panini", "migrate", "export"], cwd=repo)
    assert _trees_by_commit(repo) == trees


def test_export_whose_data_is_gone_fails_in_one_line_and_rewrites_nothing(tmp_path):
    repo = make_repo(tmp_path, install=False)
    for n in range(2):   # the old version is gone for good; the working tree's could be cleaned again
        write_random(repo / "data.bin", 300 * KiB, seed=50 + n)
        _commit(repo, f"v{n}")
    run(["git", "panini", "install"], cwd=repo)
    run(["git", "panini", "migrate", "import", "-I", "*.bin"], cwd=repo)
    # Drop every way back to the chunks: the local store, the old history, then gc.
    for ref in git(repo, "for-each-ref", "--format=%(refname)", "refs/panini/", "refs/panini-migrate/").stdout.split():
        git(repo, "update-ref", "-d", ref)
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    refs = _refs(repo)
    proc = run(["git", "panini", "migrate", "export"], cwd=repo, check=False)
    assert "not in this repository" in _one_line_error(proc, 1)
    # (`git status` re-cleaned the working tree's file into refs/panini/local: not a rewrite)
    assert [l for l in _refs(repo).splitlines() if "refs/panini/" not in l] == refs.splitlines()


def test_a_directory_that_replaced_a_file_of_its_name_survives_import_and_export(tmp_path):
    """git fast-export writes `M img.bin/layer.bin` before `D img.bin`; applied in that order the directory
    would vanish from the rewritten history and the working tree."""
    repo = make_repo(tmp_path, install=False)
    (repo / "img.bin").write_bytes(b"data\n")
    _commit(repo, "a file")
    (repo / "img.bin").unlink()
    (repo / "img.bin").mkdir()
    write_random(repo / "img.bin" / "layer.bin", 50 * KiB, seed=7)
    (repo / "img.bin" / "readme.txt").write_text("notes\n")
    _commit(repo, "a directory where the file was")
    before = _files_by_commit(repo)
    trees = _trees_by_commit(repo)
    run(["git", "panini", "install"], cwd=repo)
    run(["git", "panini", "migrate", "import", "-I", "*.bin"], cwd=repo)
    after = _files_by_commit(repo)
    assert set(after["a directory where the file was"]) == {".gitattributes", "img.bin/layer.bin", "img.bin/readme.txt"}
    assert after["a directory where the file was"]["img.bin/readme.txt"] == before["a directory where the file was"]["img.bin/readme.txt"]
    assert (repo / "img.bin" / "layer.bin").stat().st_size == 50 * KiB
    run(["git", "panini", "verify", "--all"], cwd=repo)
    run(["git", "panini", "migrate", "export"], cwd=repo)
    assert _trees_by_commit(repo) == trees


def test_export_of_a_pattern_removes_its_line_whatever_else_it_says(tmp_path):
    repo = make_repo(tmp_path)
    run(["git", "panini", "track", "--lockable", "*.bin"], cwd=repo)
    write_random(repo / "a.bin", 20 * KiB, seed=9)
    _commit(repo, "a lockable file")
    run(["git", "panini", "migrate", "export", "--include", "*.bin"], cwd=repo)
    assert "filter=panini" not in git(repo, "show", "HEAD:.gitattributes", check=False).stdout
    (repo / "a.bin").touch()
    git(repo, "add", "-A")
    assert int(git(repo, "cat-file", "-s", ":a.bin").stdout) == 20 * KiB   # stays a plain file


def test_import_rewrites_a_nested_git_lfs_gitattributes_so_the_panini_lines_win_there(tmp_path):
    """git-lfs users keep `.gitattributes` in subfolders too; a nested `filter=lfs` line outranks the top-level
    one, so left alone it would route the new pointers through git-lfs (which passes them through as text)."""
    repo = make_repo(tmp_path, install=False, name="nested")
    run(["git", "lfs", "install", "--local"], cwd=repo)
    (repo / "assets" / "deep").mkdir(parents=True)
    (repo / "assets" / ".gitattributes").write_text("*.psd filter=lfs diff=lfs merge=lfs -text\n*.md text\n")
    write_random(repo / "assets" / "deep" / "art.psd", 200 * KiB, seed=41)
    write_random(repo / "assets" / "cover.psd", 120 * KiB, seed=42)
    (repo / "readme.md").write_text("plain\n")
    _commit(repo, "n1 nested lfs")
    assert git(repo, "cat-file", "blob", "HEAD:assets/cover.psd").stdout.startswith("version https://git-lfs")
    write_random(repo / "assets" / "cover.psd", 130 * KiB, seed=43)
    _commit(repo, "n2 cover again")
    before = {"n2 cover again": _worktree_files(repo)}
    git(repo, "checkout", "-q", "HEAD~1")
    before["n1 nested lfs"] = _worktree_files(repo)
    git(repo, "checkout", "-q", "main")
    run(["git", "panini", "install"], cwd=repo)
    run(["git", "panini", "migrate", "import", "-I", "*.psd"], cwd=repo)
    nested = git(repo, "cat-file", "blob", "HEAD:assets/.gitattributes").stdout
    assert nested == "*.md text\n*.psd filter=panini diff=panini merge=panini -text\n"
    for rev in ("HEAD", "HEAD~1"):
        parse(git(repo, "cat-file", "blob", f"{rev}:assets/deep/art.psd", binary=True).stdout)
    _clone_and_check_every_commit(tmp_path, repo, before, ignore=(".gitattributes", "assets/.gitattributes"))
    # And back out: the nested file loses the line again.
    run(["git", "panini", "migrate", "export", "-I", "*.psd"], cwd=repo)
    assert git(repo, "cat-file", "blob", "HEAD:assets/.gitattributes").stdout == "*.md text\n"


def test_info_counts_only_files_import_would_convert(tmp_path):
    """A blob a tag points at has no path (import leaves it alone) and .gitattributes is import's own to
    rewrite: neither is counted as something import would convert."""
    repo = make_repo(tmp_path, install=False, name="info")
    write_random(repo / "a.bin", 50 * KiB, seed=51)
    (repo / "sub").mkdir()
    (repo / "sub" / ".gitattributes").write_text("*.bin -delta\n")
    (repo / ".gitattributes").write_text("*.txt text\n")
    _commit(repo, "i1")
    loose = git(repo, "hash-object", "-w", "--stdin", input="a blob only a tag names\n").stdout.strip()
    git(repo, "tag", "lonely-blob", loose)
    rows = json.loads(run(["git", "panini", "migrate", "info", "--everything", "--json"], cwd=repo).stdout)["patterns"]
    assert [(r["pattern"], r["blobs"]) for r in rows] == [("*.bin", 1)], rows
    # The same bytes at a path that sorts first and is not selected: still counted where they are selected.
    (repo / "0-copy.dat").write_bytes((repo / "a.bin").read_bytes())
    _commit(repo, "i2")
    rows = json.loads(run(["git", "panini", "migrate", "info", "-I", "*.bin", "--json"], cwd=repo).stdout)["patterns"]
    assert [(r["pattern"], r["blobs"], r["paths"], r["bytes"]) for r in rows] == [("*.bin", 1, 1, 50 * KiB)], rows


def test_a_commit_made_while_migrating_is_never_lost(tmp_path):
    """Another process moves a branch (a push into this repository, a commit from a script) while the history
    is being rewritten: the refs move by compare-and-swap, so migrate refuses and the new commit stays."""
    import subprocess
    import time
    repo = make_repo(tmp_path, name="race")
    for i in range(30):
        write_random(repo / f"f{i % 5}.bin", 200 * KiB, seed=100 + i)
        _commit(repo, f"r{i}")
    git(repo, "branch", "side", "HEAD~3")
    env = {**os.environ, "PATH": os.environ["PATH"]}
    proc = subprocess.Popen(["git", "panini", "migrate", "import", "--everything", "-I", "*.bin"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    while not list((repo / ".git" / "panini").glob("migrate-*")):   # the rewrite has begun
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    tree = git(repo, "rev-parse", "side^{tree}").stdout.strip()
    precious = git(repo, "commit-tree", "-p", "side", "-m", "precious", tree).stdout.strip()
    git(repo, "update-ref", "refs/heads/side", precious)
    out, err = proc.communicate()
    assert proc.returncode == 1 and b"refs/heads/side changed while migrating" in err and err.count(b"\n") == 1, err
    assert git(repo, "rev-parse", "side").stdout.strip() == precious
    assert not git(repo, "for-each-ref", "refs/panini-migrate/").stdout   # nothing rewritten, nothing to undo
    assert not list((repo / ".git" / "panini").glob("migrate-*"))
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert git(repo, "log", "-1", "--format=%s", "side").stdout.strip() == "precious"
    # Run again, nothing racing: it goes through and keeps the commit.
    run(["git", "panini", "migrate", "import", "--everything", "-I", "*.bin"], cwd=repo)
    assert git(repo, "log", "-1", "--format=%s", "side").stdout.strip() == "precious"
    parse(git(repo, "cat-file", "blob", "side:f0.bin", binary=True).stdout)


def test_a_branch_checked_out_in_another_worktree_is_not_rewritten(tmp_path):
    repo = make_repo(tmp_path, name="wt")
    write_random(repo / "a.bin", 100 * KiB, seed=61)
    _commit(repo, "w1")
    git(repo, "branch", "feature")
    git(repo, "worktree", "add", "-q", str(tmp_path / "linked"), "feature")
    refs = _refs(repo)
    proc = run(["git", "panini", "migrate", "import", "--everything", "-I", "*.bin"], cwd=repo, check=False)
    assert "refs/heads/feature is checked out in the worktree" in _one_line_error(proc, 1)
    assert _refs(repo) == refs
    run(["git", "panini", "migrate", "import", "-I", "*.bin"], cwd=repo)   # only main: fine
    parse(git(repo, "cat-file", "blob", "main:a.bin", binary=True).stdout)


def test_an_include_that_matches_nothing_rewrites_nothing(tmp_path):
    repo = make_repo(tmp_path, name="nomatch")
    write_random(repo / "a.bin", 100 * KiB, seed=71)
    _commit(repo, "n1")
    refs = _refs(repo)
    out = run(["git", "panini", "migrate", "import", "-I", "*.psd"], cwd=repo).stdout
    assert "0 blob(s)" in out and "0 ref(s) rewritten" in out
    assert _refs(repo) == refs


def test_lockable_git_lfs_patterns_stay_lockable_and_files_git_reads_stay_plain(tmp_path):
    """What a replaced git-lfs line said besides its filter (`lockable`) stays, through import and export;
    `--include '*'` never turns .gitmodules or .mailmap into pointers; an excluded pattern is off the merge
    driver too."""
    repo = make_repo(tmp_path, install=False, name="lockable")
    run(["git", "lfs", "install", "--local"], cwd=repo)
    run(["git", "lfs", "track", "--lockable", "*.psd"], cwd=repo)
    write_random(repo / "art.psd", 80 * KiB, seed=81)
    (repo / ".mailmap").write_text("A <a@example.invalid> <old@example.invalid>\n")
    (repo / ".gitmodules").write_text('[submodule "x"]\n\tpath = x\n\turl = ../x\n')
    (repo / "notes.txt").write_text("plain\n")
    _commit(repo, "l1")
    run(["git", "panini", "install"], cwd=repo)
    run(["git", "panini", "migrate", "import", "-I", "*.psd", "-I", "*", "-X", "*.txt"], cwd=repo)
    assert git(repo, "cat-file", "blob", "HEAD:.gitattributes").stdout.splitlines() == [
        "*.psd filter=panini diff=panini merge=panini -text lockable",
        "* filter=panini diff=panini merge=panini -text",
        "*.txt !filter !diff !merge !text",
    ]
    assert git(repo, "check-attr", "lockable", "art.psd").stdout.strip().endswith("lockable: set")
    assert git(repo, "check-attr", "merge", "notes.txt").stdout.strip().endswith("merge: unspecified")
    for plain in (".mailmap", ".gitmodules", "notes.txt"):
        assert not git(repo, "cat-file", "blob", f"HEAD:{plain}").stdout.startswith("version git-panini")
    parse(git(repo, "cat-file", "blob", "HEAD:art.psd", binary=True).stdout)
    run(["git", "panini", "migrate", "export"], cwd=repo)
    assert git(repo, "check-attr", "lockable", "art.psd").stdout.strip().endswith("lockable: set")
    assert git(repo, "check-attr", "filter", "art.psd").stdout.strip().endswith("filter: unspecified")


def test_export_in_a_fresh_clone_fetches_the_packs_older_commits_need(tmp_path):
    repo = make_repo(tmp_path, name="packed")
    _, url = make_bare(tmp_path, name="packed.git")
    git(repo, "remote", "add", "origin", url)
    versions = []
    for i in range(3):
        write_random(repo / "a.bin", 150 * KiB, seed=90 + i)
        versions.append(hashlib.sha256((repo / "a.bin").read_bytes()).hexdigest())
        _commit(repo, f"p{i}")
    run(["git", "panini", "migrate", "import", "-I", "*.bin"], cwd=repo)
    git(repo, "push", "-q", "origin", "main")
    run(["git", "panini", "work", "--effort", "1"], cwd=repo)
    run(["git", "panini", "install", "--global"])
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", url, str(fresh)])
    git(fresh, "reflog", "expire", "--expire=now", "--all")
    git(fresh, "gc", "-q", "--prune=now")
    run(["git", "panini", "migrate", "export"], cwd=fresh)
    got = [hashlib.sha256(git(fresh, "cat-file", "blob", f"HEAD~{2 - i}:a.bin", binary=True).stdout).hexdigest()
           for i in range(3)]
    assert got == versions


def test_import_then_export_gives_back_the_original_trees_with_a_crlf_gitattributes(tmp_path):
    repo = make_repo(tmp_path, name="crlf")
    (repo / ".gitattributes").write_bytes(b"*.txt text\r\n*.sh eol=lf\r\n")
    write_random(repo / "a.bin", 100 * KiB, seed=95)
    _commit(repo, "c1")
    tree = git(repo, "rev-parse", "HEAD^{tree}").stdout
    run(["git", "panini", "migrate", "import", "-I", "*.bin"], cwd=repo)
    assert git(repo, "cat-file", "blob", "HEAD:.gitattributes", binary=True).stdout == \
        b"*.txt text\r\n*.sh eol=lf\r\n*.bin filter=panini diff=panini merge=panini -text\r\n"
    run(["git", "panini", "migrate", "export"], cwd=repo)
    assert git(repo, "rev-parse", "HEAD^{tree}").stdout == tree
