"""Help where a Git user looks for it (`git panini --help` through man, `-h`, `help COMMAND`), and usage
errors as one line with exit 2."""

from __future__ import annotations

import re

import pytest

from conftest import make_repo, run
from git_panini.cli import manpage


def test_the_committed_man_page_is_the_one_the_cli_renders():
    assert manpage.PAGE.read_text() == manpage.render(), "run: python -m git_panini.cli.manpage"


def test_git_panini_dash_dash_help_opens_the_man_page(tmp_path):
    repo = make_repo(tmp_path)  # `git panini install` puts the page beside the console script
    proc = run(["git", "panini", "--help"], cwd=repo, env={"MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100"})
    assert "GIT-PANINI(1)" in proc.stdout and "git panini verify" in proc.stdout


@pytest.mark.parametrize("args", [["-h"], ["help"], ["help", "status"], ["status", "-h"], ["status", "--help"], []])
def test_help_is_reachable_every_way(tmp_path, args):
    proc = run(["git", "panini", *args], cwd=tmp_path)
    assert proc.stdout.startswith("Usage: git panini"), proc.stdout[:200]
    assert "<bool>" not in proc.stdout
    assert not proc.stderr


def test_usage_lines_name_arguments_as_git_does():
    """PATH..., [REV]: never typer's {paths}... (checked on the page that renders every command)."""
    page = manpage.render()
    assert "{" not in "".join(line for line in page.splitlines() if "git panini" in line), page
    assert "git panini lock [OPTIONS] PATHS..." in page.replace("\\", "")


def test_help_names_values_as_git_does_never_typer_types(tmp_path):
    """PATTERNS..., --top N, -I, --include PATTERN: never typer's `paths... <list[str]>` or `<int range>`, on
    the page that renders every command and in `git panini help`."""
    page = manpage.render().replace("\\e", "\\")
    assert re.findall(r"<[a-z][^>]*>", page) == []
    for line in ("  PATTERNS...  Patterns such as", "  PATHS...  Files or directories", "  --top N ",
                 "  -I, --include PATTERN ", "  -j, --jobs N ", "  --rev REV ", "  --listen HOST:PORT "):
        assert line in page, line
    proc = run(["git", "panini", "help", "track"], cwd=tmp_path)
    assert "  PATTERNS...  Patterns such as" in proc.stdout and "<" not in proc.stdout


@pytest.mark.parametrize("args", [["statu"], ["status", "--bogus"], ["help", "nope"], ["verify", "--rev"],
                                  ["work", "-j", "many"]])
def test_a_usage_error_is_one_line_and_exit_2(tmp_path, args):
    proc = run(["git", "panini", *args], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("git-panini: "), proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout


@pytest.mark.parametrize("args", [["status", "--rev", "nosuch"], ["ls-files", "nosuch"], ["verify", "--all", "HEAD"],
                                  ["verify", "nosuch..HEAD"], ["ls-files", "--", "-x"]])
def test_a_bad_revision_is_one_line_and_exit_2(tmp_path, args):
    repo = make_repo(tmp_path)
    run(["git", "commit", "-q", "--allow-empty", "-m", "first"], cwd=repo)
    proc = run(["git", "panini", *args], cwd=repo, check=False)
    assert proc.returncode == 2, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("git-panini: "), proc.stderr
    assert not proc.stdout


def test_a_branch_without_commits_has_no_files_not_an_error(tmp_path):
    proc = run(["git", "panini", "status"], cwd=make_repo(tmp_path))
    assert "no git-panini files" in proc.stdout


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    proc = run(["git", "panini", "demo", str(tmp_path)], check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not an empty directory" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_install_leaves_the_configuration_alone_when_a_hook_is_in_the_way(tmp_path):
    repo = make_repo(tmp_path, install=False)
    hooks = repo / ".git" / "hooks"
    for name in ("pre-push", "pre-push.local"):  # chaining would need pre-push.local, which is taken
        (hooks / name).write_text("#!/bin/sh\nexit 0\n")
        (hooks / name).chmod(0o755)
    proc = run(["git", "panini", "install"], cwd=repo, check=False)
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1
    assert run(["git", "config", "--get", "filter.panini.process"], cwd=repo, check=False).returncode == 1


def test_errors_are_logged_in_full_and_shown_by_logs(tmp_path):
    repo = make_repo(tmp_path)
    assert run(["git", "panini", "logs"], cwd=repo).stdout.strip() == "no logs"
    proc = run(["git", "panini", "work", "--remote", "nowhere"], cwd=repo, check=False)
    assert proc.returncode != 0 and len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    listed = run(["git", "panini", "logs"], cwd=repo).stdout.split()
    assert len(listed) == 1 and listed[0].endswith(".log")
    last = run(["git", "panini", "logs", "last"], cwd=repo).stdout
    assert "command: " in last and "work --remote nowhere" in last
    assert proc.stderr.strip().removeprefix("git-panini: ") in last
    assert run(["git", "panini", "logs", "nope"], cwd=repo, check=False).returncode == 2
    run(["git", "panini", "logs", "--clear"], cwd=repo)
    assert run(["git", "panini", "logs"], cwd=repo).stdout.strip() == "no logs"


def test_filter_process_run_by_hand_is_one_line(tmp_path):
    repo = make_repo(tmp_path)
    proc = run(["git", "panini", "filter-process"], cwd=repo, input="not the filter protocol\n", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("git-panini: ")
