"""Windows, as far as it can be tried here: no module needs fcntl (or resource), and the filter, the hooks, a
crashed filter's replay and `status` run in processes where `import fcntl` fails; the CI workflow's Windows job
runs through the Actions simulation the same way."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zlib

import pytest

from conftest import MiB, git, make_bare, make_repo, run, sha256_file, write_random

HIDE = "import sys\nsys.modules['fcntl'] = None   # as on Windows: import fcntl raises ImportError\n"


@pytest.fixture
def no_fcntl(tmp_path, monkeypatch):
    """Every Python process started from here on (git's filter and hooks included) finds no fcntl: a
    sitecustomize on PYTHONPATH, which the interpreter loads at start."""
    shim = tmp_path / "no-fcntl"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")])))
    assert run([sys.executable, "-c", "import fcntl"], check=False).returncode != 0
    return shim


IMPORT_ALL = """
import importlib, pkgutil, git_panini
failed = []
for module in pkgutil.walk_packages(git_panini.__path__, "git_panini."):
    if not module.name.endswith("__main__"):        # that one runs the CLI
        try:
            importlib.import_module(module.name)
        except Exception as e:
            failed.append(f"{module.name}: {e!r}")
print("\\n".join(failed))
"""


def test_every_module_imports_without_fcntl(no_fcntl):
    proc = run([sys.executable, "-c", IMPORT_ALL])
    assert proc.stdout.strip() == ""


def test_filter_hooks_replay_and_status_without_fcntl(tmp_path, no_fcntl):
    """A `git add` whose filter is killed before its store commit leaves a journal; the commit's hooks replay
    it (under the replay lock), status and fsck read the store, and a clone's smudge reads every file back."""
    remote, url = make_bare(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    digests = {name: sha256_file(write_random(repo / name, size, seed=i))
               for i, (name, size) in enumerate((("small.bin", 100 * 1024), ("big.bin", 6 * MiB)))}
    run(["git", "add", "small.bin"], cwd=repo, env={"PANINI_CRASH_AT": "session-end"}, check=False)
    assert list((repo / ".git" / "panini").glob("journal-*")), "the kill did not land before the session commit"
    git(repo, "add", "big.bin")
    commit = git(repo, "commit", "-q", "-m", "data")
    assert "lost" not in commit.stderr, commit.stderr
    assert not list((repo / ".git" / "panini").glob("journal-*"))    # replayed by the hooks
    status = run(["git", "panini", "status"], cwd=repo)
    assert "small.bin" in status.stdout and "big.bin" in status.stdout
    assert '"ok": true' in run(["git", "panini", "fsck", "--json"], cwd=repo).stdout
    git(repo, "push", "-q", "origin", "main")
    run(["git", "panini", "install", "--global"], cwd=repo)   # the clone's smudge
    run(["git", "clone", "-q", url, str(tmp_path / "clone")])
    for name, digest in digests.items():
        assert sha256_file(tmp_path / "clone" / name) == digest, name


def test_ppmd_decodes_where_there_is_no_resource_module(tmp_path):
    """Windows has no `resource` (rlimits): the PPMd child decodes there without them."""
    pyppmd = pytest.importorskip("pyppmd")
    from git_panini.codecs import ppmd_child

    data = b"git-panini on Windows " * 2000
    encoder = pyppmd.Ppmd7Encoder(6, 16 << 20)
    encoded = encoder.encode(data) + encoder.flush()
    child = textwrap.dedent(f"""
        import runpy, sys
        sys.modules["resource"] = None
        sys.argv = ["ppmd_child.py", "6", str(16 << 20), "{len(data)}", str(1 << 30), "30"]
        runpy.run_path({ppmd_child.__file__!r}, run_name="__main__")
    """)
    proc = subprocess.run([sys.executable, "-I", "-c", child], input=encoded, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    assert zlib.crc32(proc.stdout) == zlib.crc32(data)


def test_the_ci_windows_job_runs_in_the_actions_simulation(tmp_path, no_fcntl):
    """ci.yml's Windows job, run by the simulation (its steps in bash, as Git Bash runs them on the
    Windows runner) with fcntl hidden: the demo passes end to end."""
    yaml = pytest.importorskip("yaml")
    from github_fake import FakeGitHub
    from test_actions_sim import WORKFLOWS, ActionsSim

    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    job = ci["jobs"]["windows"]
    assert job["runs-on"].startswith("windows-") and job["defaults"]["run"]["shell"] == "bash"
    only = tmp_path / "wf" / ".github" / "workflows"
    only.mkdir(parents=True)
    (only / "ci-windows.yml").write_text(yaml.safe_dump({**ci, "jobs": {"windows": job}}))
    _, url = make_bare(tmp_path)
    dev = make_repo(tmp_path, name="dev", install=False)
    (dev / "README").write_text("hello\n")
    git(dev, "add", "README")
    git(dev, "commit", "-q", "-m", "first")
    git(dev, "push", "-q", url, "main")
    sha = git(dev, "rev-parse", "HEAD").stdout.strip()
    with FakeGitHub(refs=("main",)) as fake:
        (tmp_path / "actions").mkdir()
        sim = ActionsSim(tmp_path / "actions", url, fake, only)
        jobs = sim.run(only / "ci-windows.yml", "push", {"ref": "refs/heads/main", "after": sha},
                       "refs/heads/main", sha)
    windows = jobs["windows"]
    demo = windows.step("Demo")
    assert windows.result == "success", demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "clone is bit-identical to the original: yes" in demo.stdout
