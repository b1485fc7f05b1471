"""The `panini` diff driver: `git diff`, `log -p` and `show` compare a tracked text file's real lines, and a
binary's one summary line, never pointer text or "Binary files differ"."""

from __future__ import annotations

from conftest import git, make_repo, write_random


def test_diff_log_and_show_see_real_text_and_binary_summaries(tmp_path):
    repo = make_repo(tmp_path, track=("*.txt", "*.bin"))
    (repo / "a.txt").write_text("".join(f"line {i}\n" for i in range(5000)))
    write_random(repo / "b.bin", 200_000, seed=1)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    (repo / "a.txt").write_text("".join(f"line {i}\n" if i != 1234 else "changed\n" for i in range(5000)))
    write_random(repo / "b.bin", 201_000, seed=2)

    worktree = git(repo, "diff").stdout
    assert "-line 1234\n+changed\n" in worktree
    assert "Binary files" not in worktree and "version git-panini" not in worktree
    assert "+git-panini: 201000 bytes, sha256 " in worktree and "-git-panini: 200000 bytes, sha256 " in worktree

    git(repo, "commit", "-q", "-a", "-m", "two")
    for out in (git(repo, "log", "-p", "-1").stdout, git(repo, "show", "HEAD").stdout,
                git(repo, "diff", "HEAD~1", "HEAD").stdout):
        assert "-line 1234\n+changed\n" in out
        assert "+git-panini: 201000 bytes" in out and "Binary files" not in out
    lines = git(repo, "diff", "HEAD~1", "HEAD", "--", "a.txt").stdout.splitlines()
    assert [line for line in lines if line.startswith("+") and not line.startswith("+++")] == ["+changed"]


def test_a_file_whose_data_cannot_be_read_diffs_as_its_summary(tmp_path):
    repo = make_repo(tmp_path, track=("*.txt",))
    (repo / "a.txt").write_text("hello\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    pointer = git(repo, "cat-file", "-p", "HEAD:a.txt").stdout
    (tmp_path / "p").write_text(pointer.replace("size 6", "size 7"))  # its manifest no longer adds up
    out = git(repo, "panini", "textconv", str(tmp_path / "p")).stdout
    assert out.startswith("git-panini: 7 bytes, sha256 ") and out.rstrip().endswith("data not readable here")
