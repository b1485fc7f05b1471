"""Regenerates docs/dashboard.png: `git panini dashboard` of a realistic repository, photographed in headless Chromium.

`python -m bench.dashboard_shot [--out docs/dashboard.png] [--keep DIR]`. The repository holds the bench
corpus (real files from this machine: Python sources, docs, man pages, wheels, JPEG, PNG, ELF; see
bench/corpus.py), committed and pushed in three rounds with `git panini work` after the first two, so
the page shows completed and pending files and a queue with a history. Needs /usr/bin/chromium and
playwright (the test extra).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from . import corpus

CHROMIUM = "/usr/bin/chromium"
ROUNDS = (("python", "docs"), ("jpeg", "png", "man"), ("wheel", "elf"))   # the last one stays pending


def _env(home: str) -> dict:
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, ".gitconfig"), "w") as f:
        f.write("[user]\n\tname = panini\n\temail = panini@localhost\n[init]\n\tdefaultBranch = main\n")
    return dict(os.environ, HOME=home, GIT_CONFIG_NOSYSTEM="1",
                PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def build_repository(root: str, scale: float) -> str:
    """The repository, as described above; returns its path."""
    env = _env(os.path.join(root, "home"))

    def sh(*cmd, cwd):
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)

    files = os.path.join(root, "corpus")
    made = corpus.build_covering(files, scale=scale)
    repo, remote = os.path.join(root, "assets"), os.path.join(root, "remote.git")
    sh("git", "init", "-q", "--bare", remote, cwd=root)
    sh("git", "init", "-q", repo, cwd=root)
    sh("git", "panini", "install", cwd=repo)
    sh("git", "panini", "track", *(f"{kind}/**" for kind in made), cwd=repo)
    sh("git", "remote", "add", "origin", remote, cwd=repo)
    for i, kinds in enumerate(ROUNDS):
        for kind in kinds:
            shutil.copytree(os.path.join(files, kind), os.path.join(repo, kind), dirs_exist_ok=True)
        if i == 1:   # a vendored copy: deduplicated, nothing new to store
            shutil.copytree(os.path.join(files, "python"), os.path.join(repo, "vendor", "python"))
        sh("git", "add", ".", cwd=repo)
        sh("git", "commit", "-q", "-m", f"add {', '.join(kinds)}", cwd=repo)
        sh("git", "push", "-q", "origin", "HEAD:main", cwd=repo)
        if i < len(ROUNDS) - 1:
            sh("git", "panini", "work", cwd=repo)
    return repo


def photograph(index: str, out: str, width: int = 1280, scheme: str = "light"):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
            page.goto("file://" + os.path.abspath(index))
            page.screenshot(path=out, full_page=True)
        finally:
            browser.close()
    from PIL import Image
    with Image.open(out) as shot:   # a flat page: 256 colours look the same at a third of the bytes
        small = shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    small.save(out, optimize=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("docs", "dashboard.png"))
    parser.add_argument("--scale", type=float, default=0.25, help="of the bench corpus (1.0: about 36 MiB)")
    parser.add_argument("--scheme", choices=("light", "dark"), default="light")
    parser.add_argument("--keep", help="build the repository here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    root = args.keep or tempfile.mkdtemp(prefix="panini-dashboard-")
    os.makedirs(root, exist_ok=True)
    try:
        repo = build_repository(root, args.scale)
        site = os.path.join(root, "site")
        subprocess.run(["git", "panini", "dashboard", "--out", site], cwd=repo, env=_env(os.path.join(root, "home")),
                       check=True)
        photograph(os.path.join(site, "index.html"), args.out, scheme=args.scheme)
        print(f"wrote {args.out}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
