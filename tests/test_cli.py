"""The command line: --json on every read command, install/uninstall and hook chaining, track, the
pre-push refusal, and clean failures outside a repository."""

import json
import os
import shlex
import stat
import sys
from pathlib import Path

import pytest

from conftest import git, make_bare, make_repo, pointer_of, run, sha256_file, write_random


def panini(repo, *args, check=True):
    return run(["git", "panini", *args], cwd=repo, check=check)


@pytest.fixture
def published(tmp_path):
    """A repo with one tracked file committed and pushed to a bare file:// remote."""
    remote, url = make_bare(tmp_path)
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    write_random(work / "a.bin", 400_000, seed=1)
    git(work, "add", ".gitattributes", "a.bin")
    git(work, "commit", "-q", "-m", "a")
    git(work, "remote", "add", "origin", url)
    git(work, "push", "-q", "-u", "origin", "main")
    return work, remote


def _json(repo, *args, code=0):
    proc = panini(repo, *args, "--json", check=False)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return json.loads(proc.stdout)         # the whole of stdout is one JSON document


def test_every_read_command_prints_json(published):
    work, remote = published
    digest = sha256_file(work / "a.bin")
    p = pointer_of(work, "HEAD:a.bin")

    status = _json(work, "status")
    assert [(f["path"], f["size"], f["manifest"], f["status"]) for f in status["files"]] == \
        [("a.bin", 400_000, p.manifest, "pending")]

    files = _json(work, "ls-files")["files"]
    assert [(f["path"], f["sha256"], f["size"], f["error"]) for f in files] == [("a.bin", digest, 400_000, None)]

    verify = _json(work, "verify")
    assert verify["ok"] is True and [(f["path"], f["ok"]) for f in verify["files"]] == [("a.bin", True)]
    assert _json(work, "verify", "--all")["ok"] is True

    fsck = _json(work, "fsck")
    assert fsck["ok"] is True and fsck["errors"] == []
    assert fsck["counts"]["manifests"] == 1 and fsck["counts"]["notes"] == 1 and fsck["counts"]["raw_chunks"] >= 2
    assert fsck["store"] == git(work, "rev-parse", "refs/panini/store").stdout.strip()

    env = _json(work, "env")
    assert env["object_format"] == "sha1"
    assert all(" " not in key and "-" not in key for key in env)
    assert env["store"] == fsck["store"]
    assert env["remote"] == "origin"
    script = os.path.join(os.path.dirname(sys.executable), "git-panini")   # this installation's, by absolute path
    assert env["filter_process"] == f"{script} filter-process" and env["diff_textconv"] == f"{script} textconv"
    assert all(env["hooks"].values())

    push = _json(work, "push")
    assert push["remote"] == "origin" and push["pushed"] == {}            # the pre-push hook sent it all
    write_random(work / "b.bin", 100_000, seed=9)
    git(work, "add", "b.bin")
    git(work, "commit", "-q", "-m", "b")
    push = _json(work, "push")                                            # publishes b.bin, before the branch
    assert push["pushed"]["refs/panini/store"] == git(remote, "rev-parse", "refs/panini/store").stdout.strip()

    fetch = _json(work, "fetch")
    assert fetch["remote"] == "origin" and set(fetch["merged"]) == {"refs/panini/store", "refs/notes/panini"}


def test_json_when_there_is_nothing(tmp_path):
    work = make_repo(tmp_path, name="empty")
    git(work, "commit", "-q", "--allow-empty", "-m", "nothing")
    assert _json(work, "status") == {"files": []}
    assert _json(work, "ls-files") == {"files": []}
    assert _json(work, "verify") == {"ok": True, "files": []}
    assert _json(work, "fsck")["counts"]["manifests"] == 0
    assert _json(work, "env")["store"] is None
    _, url = make_bare(tmp_path)
    git(work, "remote", "add", "origin", url)
    assert _json(work, "push") == {"remote": "origin", "pushed": {}}
    assert _json(work, "fetch") == {"remote": "origin", "merged": {}}


USER_HOOK = """#!/bin/sh
echo "user hook ran for $1" >> "$(git rev-parse --git-dir)/user-hook.log"
cat >> "$(git rev-parse --git-dir)/user-hook.log"
{tail}
"""


def _write_hook(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_install_chains_the_user_pre_push_hook_and_uninstall_restores_it(tmp_path):
    remote, url = make_bare(tmp_path)
    work = make_repo(tmp_path, name="work", install=False)
    hooks = work / ".git" / "hooks"
    user_hook = USER_HOOK.format(tail="exit 0")
    _write_hook(hooks / "pre-push", user_hook)

    panini(work, "install")
    panini(work, "install")                                   # twice: still one chained user hook
    assert (hooks / "pre-push.local").read_text() == user_hook
    assert "git-panini" in (hooks / "pre-push").read_text()
    for name in ("post-checkout", "post-merge", "post-commit"):
        assert os.access(hooks / name, os.X_OK)

    panini(work, "track", "*.bin")
    write_random(work / "a.bin", 300_000, seed=2)
    git(work, "add", ".gitattributes", "a.bin")
    git(work, "commit", "-q", "-m", "a")
    git(work, "remote", "add", "origin", url)
    git(work, "push", "-q", "origin", "main")
    log = (work / ".git" / "user-hook.log").read_text()
    assert "user hook ran for origin" in log
    assert "refs/heads/main " + git(work, "rev-parse", "HEAD").stdout.strip() in log   # it got git's stdin
    assert git(remote, "rev-parse", "refs/panini/store").returncode == 0                # and ours ran too

    # the user's hook says no: the push is blocked, the remote is untouched
    pushed = git(remote, "rev-parse", "main").stdout.strip()
    _write_hook(hooks / "pre-push.local", USER_HOOK.format(tail='echo "user says no" >&2\nexit 3'))
    git(work, "commit", "-q", "--allow-empty", "-m", "blocked")
    proc = git(work, "push", "origin", "main", check=False)
    assert proc.returncode != 0
    assert "user says no" in proc.stderr
    assert git(remote, "rev-parse", "main").stdout.strip() == pushed

    panini(work, "uninstall")
    assert (hooks / "pre-push").read_text() == USER_HOOK.format(tail='echo "user says no" >&2\nexit 3')
    assert os.access(hooks / "pre-push", os.X_OK)
    assert not (hooks / "pre-push.local").exists()
    for name in ("post-checkout", "post-merge", "post-commit"):
        assert not (hooks / name).exists()
    assert git(work, "config", "--get", "filter.panini.process", check=False).returncode != 0
    # with our hook gone the user's own hook is the only one and still blocks
    assert git(work, "push", "origin", "main", check=False).returncode != 0


def test_install_global_is_filter_only_and_uninstall_global_removes_it(tmp_path, isolated_env):
    panini(tmp_path, "install", "--global")
    config = (isolated_env / ".gitconfig").read_text()
    assert "git-panini filter-process" in config and "required = true" in config
    work = make_repo(tmp_path, name="work", install=False)
    assert not (work / ".git" / "hooks" / "pre-push").exists()
    panini(tmp_path, "uninstall", "--global")
    assert "filter.panini" not in git(tmp_path, "config", "--global", "--list").stdout
    assert "[filter" not in (isolated_env / ".gitconfig").read_text()
    assert "user" in (isolated_env / ".gitconfig").read_text()         # the rest of the file is kept


def test_pre_push_refuses_pointers_whose_chunks_are_missing(tmp_path):
    remote, url = make_bare(tmp_path)
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    write_random(work / "lost.bin", 500_000, seed=3)
    git(work, "add", ".gitattributes", "lost.bin")
    git(work, "commit", "-q", "-m", "lost")
    manifest = pointer_of(work, "HEAD:lost.bin").manifest
    git(work, "update-ref", "-d", "refs/panini/local")      # what kept the data reachable
    git(work, "reflog", "expire", "--expire=now", "--all")
    git(work, "gc", "-q", "--prune=now")
    assert git(work, "cat-file", "-e", manifest, check=False).returncode != 0     # chunks and manifest gone
    git(work, "remote", "add", "origin", url)
    proc = git(work, "push", "origin", "main", check=False)
    assert proc.returncode != 0
    assert "refusing to push" in proc.stderr and "lost.bin" in proc.stderr
    assert git(remote, "for-each-ref").stdout == ""                                # nothing reached the remote


def test_track_untrack_and_attributes(tmp_path):
    work = make_repo(tmp_path, name="work")
    panini(work, "track", "*.psd", "my dir/*.bin")
    assert "already tracked" in panini(work, "track", "*.psd").stdout
    listed = panini(work, "track").stdout.split()
    assert listed == ["*.psd", "my[[:space:]]dir/*.bin"]
    (work / "my dir").mkdir()
    for path in ("x.psd", "my dir/y.bin", "other.bin"):
        attr = git(work, "check-attr", "filter", "diff", "text", "--", path).stdout
        if path == "other.bin":
            assert "filter: unspecified" in attr
        else:
            assert "filter: panini" in attr and "diff: panini" in attr and "text: unset" in attr
    panini(work, "untrack", "*.psd")
    assert panini(work, "track").stdout.split() == ["my[[:space:]]dir/*.bin"]
    assert "unspecified" in git(work, "check-attr", "filter", "--", "x.psd").stdout
    # A .gitattributes that is a link (a cloned repository can hold one) is neither written through nor replaced.
    outside = tmp_path / "outside.txt"
    outside.write_text("someone else's file\n")
    (work / ".gitattributes").unlink()
    (work / ".gitattributes").symlink_to(outside)
    for args in (["track", "*.iso"], ["untrack", "*.bin"]):
        proc = panini(work, *args, check=False)
        assert proc.returncode == 1 and "symbolic link" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert outside.read_text() == "someone else's file\n" and (work / ".gitattributes").is_symlink()


def test_commands_outside_a_repository_fail_cleanly(tmp_path):
    for args in (["status"], ["verify"], ["fsck"], ["ls-files"], ["env"], ["push"], ["fetch"], ["install"]):
        proc = panini(tmp_path, *args, check=False)
        assert proc.returncode != 0, args
        assert "not a git repository" in proc.stderr, args
        assert "Traceback" not in proc.stderr, args


def test_fsck_says_which_files_data_is_not_here(tmp_path):
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    for i in range(3):
        write_random(work / f"f{i}.bin", 100_000, seed=i)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "files")
    _, url = make_bare(tmp_path)
    git(work, "remote", "add", "origin", url)
    git(work, "push", "-q", "origin", "main")
    lazy = tmp_path / "lazy"
    run(["git", "clone", "-q", url, str(lazy)], env={"GIT_PANINI_SKIP_SMUDGE": "1"})
    run(["git", "panini", "install"], cwd=lazy)
    report = _json(lazy, "fsck")
    assert report["counts"]["head_files"] == 3 and report["counts"]["head_files_not_here"] == 3
    assert any("have no data here" in w and "git panini pull" in w for w in report["warnings"])
    assert "data of 0 of 3 HEAD file(s) here" in panini(lazy, "fsck").stdout
    panini(lazy, "pull")
    assert _json(lazy, "fsck")["counts"]["head_files_not_here"] == 0
    # A pointer whose size its manifest does not add up to is an error naming that, not "no data here".
    pointer = git(work, "cat-file", "blob", "HEAD:f0.bin").stdout
    forged = pointer.replace("size 100000", "size 100001")
    git(work, "update-index", "--cacheinfo", f"100644,{git(work, 'hash-object', '-w', '--stdin', input=forged).stdout.strip()},f0.bin")
    git(work, "commit", "-q", "-m", "a pointer whose size is wrong")
    proc = panini(work, "fsck", check=False)
    assert proc.returncode == 1 and "f0.bin (HEAD): manifest" in proc.stdout and "does not add up" in proc.stdout
    assert "no data here" not in proc.stdout


def test_ctrl_c_at_any_moment_is_one_line(tmp_path):
    """A Ctrl-C while the command is still loading (its imports take a moment) or running: one line, exit
    130. (Before Python has started the program at all, the interpreter's own message is out of our hands.)"""
    import signal
    import subprocess
    import time
    work = make_repo(tmp_path, name="work")
    codes = []
    for extra in (0.0, 0.05, 0.3):
        proc = subprocess.Popen(["git-panini", "status"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        maps = Path(f"/proc/{proc.pid}/maps")
        # Our code runs (logs loads datetime, the CLI json) once one of these extension modules is mapped.
        while proc.poll() is None and not any(m in maps.read_text(errors="replace") for m in ("_datetime", "_json")):
            time.sleep(0.002)
        time.sleep(extra)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate()
        assert b"Traceback" not in err, (extra, err)
        # 0: done before the signal; -SIGINT with nothing said: it came while Python was exiting (its own
        # handler already gone); else exactly our one line.
        assert proc.returncode in (0, -signal.SIGINT) and not err.strip(b"\n") or \
            (proc.returncode == 130 and err == b"git-panini: interrupted\n"), (extra, proc.returncode, err)
        codes.append(proc.returncode)
    assert 130 in codes, codes   # a signal came while the command ran, at least once


def test_a_hook_or_the_filter_says_nothing_of_a_ctrl_c(monkeypatch, capsys):
    """git does not wait for its hooks or the filter when Ctrl-C stops it (it waits for `git panini ...`):
    their line came after the shell's next prompt. They exit 130 quietly."""
    from git_panini import entry

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(entry, "_hook", interrupted)
    monkeypatch.setattr(entry, "_filter_process", interrupted)
    for argv in (["git-panini", "hook", "pre-push", "origin", "url"], ["git-panini", "filter-process"]):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as stopped:
            entry.main()
        assert stopped.value.code == 130 and capsys.readouterr().err == ""
    monkeypatch.setattr(entry, "_cli", interrupted)
    monkeypatch.setattr(sys, "argv", ["git-panini", "status"])
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    assert stopped.value.code == 130 and capsys.readouterr().err == "git-panini: interrupted\n"


def test_git_finds_this_installation_with_its_venv_off_path(tmp_path):
    """install records the filter, drivers and hooks by absolute path: add, commit, push, clone and checkout
    work from a shell whose PATH lacks the venv (git-lfs users expect the same)."""
    script = os.path.join(os.path.dirname(sys.executable), "git-panini")
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    hook = (work / ".git" / "hooks" / "pre-push").read_text()
    assert f"\npanini_cmd={shlex.quote(script)}\n" in hook
    remote, url = make_bare(tmp_path)
    git(work, "remote", "add", "origin", url)
    bare_path = {"PATH": "/usr/bin:/bin"}
    assert run(["sh", "-c", "command -v git-panini"], env=bare_path, check=False).returncode != 0
    write_random(work / "a.bin", 300_000, seed=4)
    for args in (["add", "a.bin", ".gitattributes"], ["commit", "-q", "-m", "a"], ["push", "-q", "origin", "main"]):
        run(["git", *args], cwd=work, env=bare_path)
    assert git(remote, "for-each-ref", "refs/panini/raw").stdout   # the pre-push hook ran and sent the data
    digest = sha256_file(work / "a.bin")
    (work / "a.bin").unlink()
    run(["git", "checkout", "--", "a.bin"], cwd=work, env=bare_path)
    assert sha256_file(work / "a.bin") == digest
