"""A real full disk (a small tmpfs, mounted in a private user + mount namespace, no root needed): `git add` of
a file that does not fit fails, leaves no temporary or orphan pack behind, `git gc` still works, and once
space is freed the next add and commit go through. Skipped where unprivileged namespaces are disabled."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import run

SCENARIO = r"""
set -e
mount -t tmpfs -o size=40m tmpfs "$1"
cd "$1"
git init -q repo
cd repo
git panini install >/dev/null
git panini track '*.bin' >/dev/null
git add .gitattributes
git commit -qm attributes
# 30 MB in the working tree leaves about 10 MiB for objects: the add cannot fit.
"$2" -c "import random, sys; sys.stdout.buffer.write(random.Random(1).randbytes(30_000_000))" > big.bin
set +e
git add big.bin 2>add.err
echo "add-exit $?"
echo "staged [$(git ls-files big.bin)]"
echo "pack-dir [$(ls .git/objects/pack | tr '\n' ' ')]"
echo "keeps [$(ls .git/objects/pack | grep -c keep)]"
git gc -q --prune=now
echo "gc-exit $?"
rm big.bin
"$2" -c "import random, sys; sys.stdout.buffer.write(random.Random(2).randbytes(3_000_000))" > small.bin
git add small.bin
echo "add-small-exit $?"
git commit -qm small
echo "commit-exit $?"
rm small.bin
git checkout -- small.bin
echo "checkout-sha [$(sha256sum small.bin | cut -c1-64)]"
echo "expected-sha [$("$2" -c "import hashlib, random; print(hashlib.sha256(random.Random(2).randbytes(3_000_000)).hexdigest())")]"
cat add.err >&2
"""


def _on_a_small_tmpfs(tmp_path, script: str):
    """Run a scenario script in a user + mount namespace on the tmpfs it mounts; (process, {key: value} of
    the "key value" lines it printed). Skips where such namespaces are disabled."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unprivileged user + mount namespaces are disabled here")
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = run(["unshare", "-rm", "sh", "-c", script, "scenario", str(disk), sys.executable], check=False)
    return proc, dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


def test_git_add_on_a_full_disk_fails_and_leaves_no_packs(tmp_path):
    proc, out = _on_a_small_tmpfs(tmp_path, SCENARIO)
    assert out.get("add-exit") not in (None, "0"), f"git add exited 0 on a full disk\n{proc.stdout}\n{proc.stderr}"
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert out["staged"] == "[]"
    assert out["pack-dir"] == "[]", f"leftovers of the failed add: {out['pack-dir']}"
    assert out["gc-exit"] == "0" and out["add-small-exit"] == "0" and out["commit-exit"] == "0", proc.stdout
    assert out["checkout-sha"] == out["expected-sha"]


SMALL_FILES = r"""
set -e
mount -t tmpfs -o size=40m tmpfs "$1"
cd "$1"
git init -q repo
cd repo
git panini install >/dev/null
git panini track '*.bin' >/dev/null
git add .gitattributes
git commit -qm attributes
# 1400 files of 20 kB (28 MB) leave about 12 MiB: their write-ahead log and packs cannot all fit.
"$2" -c "
import os, random
rng = random.Random(1)
for i in range(1400):
    os.makedirs(f'd{i % 10}', exist_ok=True)
    with open(f'd{i % 10}/f{i}.bin', 'wb') as f:
        f.write(rng.randbytes(20000))
"
set +e
git add . 2>add.err
echo "add-exit $?"
git gc -q --prune=now
echo "gc-exit $?"
rm -r d5 d6 d7 d8 d9
git add . 2>>add.err
echo "add-half-exit $?"
git commit -qm half 2>>add.err
echo "commit-exit $?"
echo "left [$(ls .git/panini | grep -c -e '^wal-' -e '^journal-')]"
git reflog expire --expire=now --all && git gc -q --prune=now
rm d3/f1003.bin
git checkout -- d3/f1003.bin
echo "checkout-sha [$(sha256sum d3/f1003.bin | cut -c1-64)]"
echo "expected-sha [$("$2" -c "
import hashlib, random
rng = random.Random(1)
for i in range(1004):
    data = rng.randbytes(20000)
print(hashlib.sha256(data).hexdigest())")]"
cat add.err >&2
"""


def test_git_add_of_many_small_files_on_a_full_disk(tmp_path):
    """The write-ahead-log path on a full disk: `git add` fails with one-line messages, `git gc` still works,
    and once space is freed the next add and commit go through, leaving no WAL or journal behind."""
    proc, out = _on_a_small_tmpfs(tmp_path, SMALL_FILES)
    assert out.get("add-exit") not in (None, "0"), f"git add exited 0 on a full disk\n{proc.stdout}\n{proc.stderr}"
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert out["gc-exit"] == "0" and out["add-half-exit"] == "0" and out["commit-exit"] == "0", proc.stdout
    assert out["left"] == "[0]", proc.stdout
    assert out["checkout-sha"] == out["expected-sha"]
