"""Shared fixtures: an isolated HOME per test, real repositories and bare remotes, streaming data writers.

Every test runs with HOME set to its own temporary directory (with a .gitconfig holding user.name,
user.email and init.defaultBranch=main) and GIT_CONFIG_NOSYSTEM=1, so neither the machine's nor the
user's git configuration, and in particular no global panini filter, leaks in. Remotes are bare
repositories reached through file:// URLs, so clones go through the real transport (a plain local
path clone hardlinks the objects and would hide transport bugs).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MiB = 1 << 20

# Environment variables that would point git somewhere else than the test's own repositories.
_GIT_LEAKS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_CONFIG",
              "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
              "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES",
              "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_NAME",
              "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE", "GIT_PANINI_PROGRESS_BYTES", "XDG_CONFIG_HOME",
              "GIT_TRACE", "GIT_TRACE_PACKET")

_REPORT: list[str] = []


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run tests marked slow, and run the long versions of scaled tests (e.g. conformance)")


def pytest_configure(config):
    config.addinivalue_line("markers", "big: a multi-GiB test the issue requires; runs in CI, kept lean")
    config.addinivalue_line("markers", "slow: runs only with --slow")


def pytest_runtest_setup(item):
    if item.get_closest_marker("slow") and not item.config.getoption("--slow"):
        pytest.skip("slow: run with --slow")


@pytest.fixture
def slow(request) -> bool:
    """True under --slow: a test scales its work (steps, seeds, sizes) up."""
    return request.config.getoption("--slow")


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section("git-panini measurements")
        for line in _REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def report():
    """report(line): a measured number, printed in the summary at the end of the run."""
    def add(line: str):
        _REPORT.append(line)
        print(line)
    return add


# --- isolation ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch) -> Path:
    """A fresh HOME for every test (the only global config git sees), no system config."""
    return isolate(monkeypatch, tmp_path_factory.mktemp("home"))


def isolate(monkeypatch, home: Path) -> Path:
    """HOME (with a .gitconfig) and the environment as every test sees it; a module-scoped fixture uses
    it with its own pytest.MonkeyPatch.context()."""
    for name in _GIT_LEAKS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    # git finds `git-panini` (for `git panini` and the filter) on PATH: make sure the one installed
    # next to this interpreter is first.
    bindir = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(bindir, "git-panini")):
        monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    assert shutil.which("git-panini"), "git-panini is not on PATH (pip install -e .)"
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Panini Test\n\temail = test@panini.invalid\n"
        "[init]\n\tdefaultBranch = main\n"
        "[advice]\n\tdetachedHead = false\n")
    return home


# --- running commands ---------------------------------------------------------------------------


def run(cmd, cwd=None, check=True, input=None, env=None, binary=False) -> subprocess.CompletedProcess:
    """Run a command (a list, or a string split like a shell would); capture stdout and stderr.

    check=True fails the test with the command's output when it exits non-zero. Output is text
    (UTF-8, undecodable bytes replaced) unless binary=True.
    """
    args = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
    if isinstance(input, str):
        input = input.encode()
    full_env = None if env is None else {**os.environ, **env}
    proc = subprocess.run(args, cwd=cwd, input=input, capture_output=True, env=full_env)
    if not binary:
        proc.stdout = proc.stdout.decode("utf-8", "replace")
        proc.stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        out = proc.stdout if not binary else proc.stdout.decode("utf-8", "replace")
        err = proc.stderr if not binary else proc.stderr.decode("utf-8", "replace")
        raise AssertionError(f"command failed with exit {proc.returncode}: {shlex.join(args)}\n(cwd {cwd})\n"
                             f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}")
    return proc


def git(repo, *args, check=True, input=None, binary=False) -> subprocess.CompletedProcess:
    return run(["git", *args], cwd=repo, check=check, input=input, binary=binary)


def file_url(path) -> str:
    return Path(path).resolve().as_uri()


def make_repo(tmp, object_format: str = "sha1", name: str = "repo", install: bool = True,
              track: tuple[str, ...] = ()) -> Path:
    """A new non-bare repository; `git panini install` (filter + hooks) unless install=False.

    Built once per test run (per worker) for each set of arguments, user configuration and git-panini, then
    copied: `install` and `track` are two CLI starts otherwise, for nearly every test. Nothing they write
    names the repository's path."""
    path = Path(tmp) / name
    user_config = [Path(os.environ.get("HOME", "/")) / ".gitconfig",
                   Path(os.environ.get("XDG_CONFIG_HOME", "/")) / "git" / "config"]
    key = (object_format, install, tuple(track), shutil.which("git-panini"),
           *(p.read_bytes() if p.is_file() else b"" for p in user_config))
    if key not in _PRISTINE:
        pristine = _PRISTINE_DIR / f"{len(_PRISTINE)}"
        run(["git", "init", "-q", f"--object-format={object_format}", str(pristine)])
        if install:
            run(["git", "panini", "install"], cwd=pristine)
        if track:
            run(["git", "panini", "track", *track], cwd=pristine)
        _PRISTINE[key] = pristine
    shutil.copytree(_PRISTINE[key], path, symlinks=True, dirs_exist_ok=True)
    return path


_PRISTINE: dict[tuple, Path] = {}
_PRISTINE_DIR = Path()   # set once per session by pristine_dir


@pytest.fixture(scope="session", autouse=True)
def pristine_dir(tmp_path_factory):
    """Where make_repo keeps the repositories it copies."""
    global _PRISTINE_DIR
    _PRISTINE_DIR = tmp_path_factory.mktemp("pristine")


def make_bare(tmp, object_format: str = "sha1", name: str = "remote.git") -> tuple[Path, str]:
    """A new bare repository; returns (path, file:// url)."""
    path = Path(tmp) / name
    run(["git", "init", "-q", "--bare", f"--object-format={object_format}", str(path)])
    return path, file_url(path)


def clone(url: str, dest, check=True) -> subprocess.CompletedProcess:
    return run(["git", "clone", "-q", url, str(dest)], check=check)


# --- data ---------------------------------------------------------------------------------------


def bomb(name: str) -> bytes:
    """A decompression bomb (zeros, compressed), committed gzipped under tests/data/bombs/ by its make.py:
    building them took about 30 s of CPU per run."""
    return gzip.decompress((Path(__file__).parent / "data" / "bombs" / f"{name}.gz").read_bytes())


def sha256_file(path, block: int = 4 * MiB) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(block):
            h.update(data)
    return h.hexdigest()


def write_random(path, size: int, seed: int = 0, block: int = 4 * MiB) -> Path:
    """`size` pseudo-random (incompressible) bytes, streamed, reproducible from `seed`."""
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(block, left)
            f.write(rng.randbytes(n))
            left -= n
    return path


def _vocabulary(rng: random.Random, n: int = 4000) -> list[str]:
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = [26 - i for i in range(26)]
    return ["".join(rng.choices(letters, weights, k=rng.randint(2, 11))) for _ in range(n)]


def write_text(path, size: int, seed: int = 0) -> Path:
    """`size` bytes of generated text: lines of words from a fixed vocabulary, streamed."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            picked = rng.choices(words, k=12 * 4000)
            lines = [" ".join(picked[i:i + rng.randint(6, 12)]) for i in range(0, len(picked), 12)]
            data = ("\n".join(lines) + "\n").encode()[:left]
            f.write(data)
            left -= len(data)
    return path


def short_words(rng: random.Random, size: int) -> bytearray:
    """`size` bytes of words from a small vocabulary: compressible, and versions that differ by small edits
    share most chunks (histories for the worker and the read bound)."""
    vocabulary = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(300)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(vocabulary) + b" "
    return out[:size]


def edit_in_place(data: bytearray, rng: random.Random, edits: int = 1, width: int = 40):
    """Overwrite `edits` random runs of `width` bytes: a new version of a file, the same size."""
    for _ in range(edits):
        at = rng.randrange(len(data) - width - 24)
        data[at:at + width] = rng.randbytes(width)


# --- reading what git-panini stored ---------------------------------------------------------------


def notes_of(path) -> dict[str, dict]:
    """Every status note of the repository at path, by manifest id."""
    from git_panini.store.notes import Notes
    from git_panini.git.repo import Repo
    repo = Repo(str(path))
    try:
        return Notes(repo).all()
    finally:
        repo.close()


def ls_tree(repo, treeish: str, path: str = "") -> dict[str, tuple[str, str, int | None]]:
    """{path: (type, oid, size)} of every blob under `path` in `treeish` (recursive)."""
    args = ["ls-tree", "-r", "-l", "-z", "--full-tree", treeish]
    if path:
        args += ["--", path]
    proc = git(repo, *args, check=False)
    if proc.returncode != 0:
        return {}
    out = {}
    for record in proc.stdout.split("\0"):
        if not record:
            continue
        meta, _, name = record.partition("\t")
        _, kind, oid, size = meta.split()
        out[name] = (kind, oid, None if size == "-" else int(size))
    return out


def store_entries(repo, top: str) -> dict[str, int]:
    """{oid: size} of what this repository keeps under `top`: 'packs' of refs/panini/store, 'manifests'
    of refs/panini/store and refs/panini/local, 'chunks' of refs/panini/local and every raw batch."""
    def entries(ref, path):
        return {name.rsplit("/", 1)[1]: size for name, (_, _, size) in ls_tree(repo, ref, path).items()}
    if top == "manifests":
        return entries("refs/panini/store", top) | entries("refs/panini/local", top)
    if top != "chunks":
        return entries("refs/panini/store", top)
    out = entries("refs/panini/local", "chunks")
    for ref in git(repo, "for-each-ref", "--format=%(refname)", "refs/panini/raw/").stdout.split():
        out.update(entries(ref, ""))
    return out


def note_manifests(repo) -> set[str]:
    """Manifest ids that refs/notes/panini holds a note for (whatever the fanout)."""
    return {name.replace("/", "") for name in ls_tree(repo, "refs/notes/panini")}


def pointer_of(repo, rev_path: str):
    """The parsed pointer stored at e.g. 'HEAD:big.bin'."""
    from git_panini.format.pointer import parse
    return parse(git(repo, "cat-file", "blob", rev_path, binary=True).stdout)


def manifest_chunks(repo, manifest: str) -> list[tuple[str, int]]:
    text = git(repo, "cat-file", "blob", manifest).stdout
    return [(oid, int(size)) for oid, size in (line.split() for line in text.splitlines())]


def dir_size(path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path) -> Path:
    """A sha1 repository with git-panini installed and *.bin tracked (.gitattributes committed)."""
    path = make_repo(tmp_path, track=("*.bin",))
    git(path, "add", ".gitattributes")
    git(path, "commit", "-q", "-m", "track *.bin")
    return path
