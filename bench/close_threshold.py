"""How close the runner-up's estimate must be to the leader's for the worker to encode it whole too
(git_panini/work/planner.py CLOSE): what each threshold saves, and how many extra whole encodes it costs.

    python -m bench.close_threshold [--scale S] [--dir DIR]

Builds the real-file corpus of bench.corpus, commits it, and runs `git panini work --effort 2` on it twice (the
balanced and the archive profile) with the runner-up always encoded whole. Each pack's recipe then records both
finalists' estimates and whole sizes; a threshold T would have encoded the runner-up where its estimate is within
T of the leader's, and saved what the runner-up beat the leader by there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from . import corpus

# The worker, with every runner-up encoded whole beside the leader (n == 1 in planner.choose).
DRIVER = """
import sys
from git_panini.work import planner
planner.CLOSE = float("inf")
sys.argv[0] = "git-panini"
from git_panini.entry import main
main()
"""
THRESHOLDS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.10, 0.15, 0.25)


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def pairs(repo: str) -> list[dict]:
    """Per pack with two ranked finalists: the leader's and runner-up's chains, estimates and whole sizes."""
    out = []
    for line in _git(repo, "ls-tree", "-r", "refs/panini/store", "--", "packs").splitlines():
        recipe = json.loads(_git(repo, "cat-file", "blob", line.split()[2]))
        ranked = sorted((t for t in recipe["tried"] if t["estimate"] is not None), key=lambda t: t["estimate"])
        if len(ranked) < 2 or ranked[0]["size"] is None or ranked[1]["size"] is None:
            continue
        leader, second = ranked[:2]
        out.append({"raw": recipe["size"], "pair": f"{leader['chain']} / {second['chain']}",
                    "gap": second["estimate"] / leader["estimate"] - 1, "leader": leader["size"],
                    "second": second["size"]})
    return out


def run(directory: str, scale: float, profile: str) -> list[dict]:
    src = os.path.join(directory, "corpus")
    if not os.path.isdir(src):
        corpus.build(src, scale)
    repo = os.path.join(directory, profile)
    subprocess.run(["git", "init", "-q", repo], check=True)
    kinds = [f"{kind}/**" for kind in sorted(os.listdir(src))]
    for args in (["panini", "install"], ["panini", "track", *kinds], ["config", "panini.profile", profile]):
        _git(repo, *args)
    subprocess.run(["cp", "-a", src + "/.", repo], check=True)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "corpus")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", DRIVER, "work", "--no-remote", "--effort", "2"], cwd=repo, check=True,
                   env={**os.environ, "PYTHONPATH": root}, capture_output=True)
    return pairs(repo)


def report(profile: str, found: list[dict]) -> None:
    stored = sum(p["leader"] for p in found)
    print(f"\n{profile}: {len(found)} packs ranked on samples, {sum(p['raw'] for p in found)} raw bytes, "
          f"{stored} stored by the leader alone")
    print("| threshold | runner-ups encoded | their raw bytes | bytes saved | % of what the leader stores |")
    print("|---|---|---|---|---|")
    for t in THRESHOLDS:
        picked = [p for p in found if p["gap"] <= t]
        saved = sum(max(0, p["leader"] - p["second"]) for p in picked)
        print(f"| {t:.0%} | {len(picked)} | {sum(p['raw'] for p in picked)} | {saved} | "
              f"{100 * saved / max(stored, 1):.2f} |")
    print("\n| leader / runner-up | gap | runner-up smaller by |")
    print("|---|---|---|")
    for p in sorted(found, key=lambda p: p["gap"]):
        if p["second"] < p["leader"] or p["gap"] <= THRESHOLDS[-1]:
            print(f"| {p['pair']} | {p['gap']:.1%} | {(p['leader'] - p['second']) / p['leader']:+.1%} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="corpus size (bench.corpus; 1.0: 27 MiB on this machine)")
    parser.add_argument("--dir", help="where to build (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or tmp
        for profile in ("balanced", "archive"):
            report(profile, run(directory, args.scale, profile))


if __name__ == "__main__":
    main()
