"""The embedded end-to-end demo: a repository with a local bare remote, real files, work, push, clone, verify."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import subprocess
import sys
import sysconfig
import zlib
from pathlib import Path

from rich.console import Console


def _demo_files(rng: random.Random) -> dict[str, bytes]:
    """Real files from this machine where it has them (Python's own sources and bundled wheel),
    generated ones otherwise: random bytes (incompressible), a PNG."""
    stdlib = sysconfig.get_paths()["stdlib"]
    sources = b"".join(open(p, "rb").read() for p in sorted(glob.glob(os.path.join(stdlib, "*.py")))[:120])
    wheels = sorted(glob.glob(os.path.join(stdlib, "ensurepip", "_bundled", "*.whl")))
    files = {"data/random.bin": rng.randbytes(8 << 20), "data/stdlib-sources.py.txt": sources}
    if wheels:
        files["data/" + os.path.basename(wheels[-1])] = open(wheels[-1], "rb").read()
    pixels = bytes(rng.randrange(256) if x % 7 == 0 else x % 256 for x in range(512 * 512 * 3))
    raw = b"".join(b"\0" + pixels[y * 1536:(y + 1) * 1536] for y in range(512))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    files["data/image.png"] = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (512).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0]))
                               + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    return files


def run_demo(directory: str, console: Console) -> int:
    os.makedirs(directory, exist_ok=True)
    directory = os.path.abspath(directory)
    home = os.path.join(directory, "home")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home, GIT_CONFIG_NOSYSTEM="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    with open(os.path.join(home, ".gitconfig"), "w") as f:
        f.write("[user]\n\tname = panini demo\n\temail = demo@localhost\n[init]\n\tdefaultBranch = main\n")

    def sh(*cmd, cwd=directory, show=True):
        if show:
            console.print(f"[bold cyan]$ {' '.join(cmd)}[/]", highlight=False)
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        if show:   # line by line: the console shows a line break inside one text as \x0a
            for line in proc.stdout.rstrip().splitlines():
                console.print(line, markup=False, highlight=False)
        if proc.returncode != 0:
            console.print(proc.stderr.rstrip(), markup=False, style="red")
            raise SystemExit(f"demo step failed: {' '.join(cmd)}")
        return proc.stdout

    remote, work, clone = (os.path.join(directory, n) for n in ("remote.git", "work", "clone"))
    url = Path(remote).as_uri()   # file:///C:/... on Windows, where "file://" + path is no URL
    for path in (remote, work, clone):
        if os.path.exists(path):
            raise SystemExit(f"{path} exists: give the demo an empty directory")
    sh("git", "init", "--quiet", "--bare", remote)
    sh("git", "init", "--quiet", work)
    sh("git", "remote", "add", "origin", url, cwd=work)
    sh("git", "panini", "install", cwd=work)
    sh("git", "panini", "track", "data/**", cwd=work)
    files = _demo_files(random.Random(42))
    for name, data in files.items():
        os.makedirs(os.path.join(work, os.path.dirname(name)), exist_ok=True)
        with open(os.path.join(work, name), "wb") as f:
            f.write(data)
    sh("git", "panini", "add", ".gitattributes", "data", cwd=work)
    sh("git", "commit", "--quiet", "-m", "add demo data", cwd=work)
    sh("git", "panini", "status", cwd=work)
    sh("git", "push", "--quiet", "origin", "main", cwd=work)
    # The embedded default worker: recompress the pending files here, push the packs.
    sh("git", "panini", "work", "--effort", "1", cwd=work)
    sh("git", "panini", "status", cwd=work)
    files_status = json.loads(sh("git", "panini", "status", "--json", cwd=work, show=False))["files"]
    raw = sum(f["size"] for f in files_status)
    stored = sum(f["stored_bytes"] or 0 for f in files_status)
    sh("git", "panini", "install", "--global", cwd=work)
    sh("git", "clone", "--quiet", url, clone)
    sh("git", "panini", "verify", "--all", cwd=clone)
    same = all(hashlib.sha256(open(os.path.join(clone, n), "rb").read()).digest() == hashlib.sha256(d).digest()
               for n, d in files.items())
    console.print(f"clone is bit-identical to the original: {'yes' if same else 'NO'}",
                  style="green" if same else "red")
    console.print(f"stored {stored:,} bytes for {raw:,} bytes of files: {1 - stored / raw:.1%} saved",
                  style="bold", highlight=False)
    dashboard = os.path.join(directory, "dashboard")
    sh("git", "panini", "dashboard", "--out", dashboard, cwd=clone)
    console.print(f"the dashboard: open {os.path.join(dashboard, 'index.html')} in a browser", highlight=False)
    return 0 if same else 1
