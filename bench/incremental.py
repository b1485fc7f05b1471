"""What a remote stores when a worker runs after every push (a CI job on each push, the common deployment),
against one `git panini work` over the same history: the `history` scenario's lineage (bench/history.py,
generated from the seed) pushed every `--every` commits to a bare file:// remote, `git panini work` in the
pushing clone after each push; then `reflog expire --expire=now --all && gc --prune=now` in the clone and the
remote. Reported: the remote's objects after gc, its pack data refs and recipes, and the same for one remote
that got the whole history in one push and one `work`. A fresh clone's checkout of HEAD and of the first
commit is checked byte for byte. git-panini alone; whichever `git_panini` is first on PYTHONPATH runs, so
the same command measures two versions:

    PYTHONPATH=/path/to/checkout python -m bench.incremental [--commits 60] [--every 6] [--scale 0.55]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from .history import PATTERNS, Lineage

MiB = 1 << 20


def _run(cmd: list[str], cwd: str, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _objects(path: str) -> int:
    total = 0
    for base, _, names in os.walk(os.path.join(path, "objects")):
        total += sum(os.path.getsize(os.path.join(base, n)) for n in names)
    return total


def _gc(path: str, env: dict):
    _run(["git", "reflog", "expire", "--expire=now", "--all"], path, env)
    _run(["git", "gc", "-q", "--prune=now"], path, env)


def _write(repo: str, files: dict[str, bytes]):
    for rel, data in files.items():
        path = os.path.join(repo, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _flow(root: str, name: str, env: dict, args, every: int) -> dict:
    """The lineage pushed every `every` commits, `git panini work` after each push; gc; what the remote holds."""
    remote, repo = os.path.join(root, f"{name}.git"), os.path.join(root, name)
    _run(["git", "init", "-q", "--bare", remote], root, env)
    _run(["git", "init", "-q", repo], root, env)
    _run(["git", "panini", "install"], repo, env)
    _run(["git", "panini", "track", *PATTERNS], repo, env)
    _run(["git", "remote", "add", "origin", "file://" + remote], repo, env)
    gen = os.path.join(root, f"{name}-gen")
    os.makedirs(gen)
    lineage = Lineage(args.seed, args.scale, gen)
    first, head, works, seconds = {}, {}, 0, 0.0
    for n in range(args.commits):
        changes = lineage.commit(n)
        head.update(changes)
        if n == 0:
            first = dict(changes)
        _write(repo, changes)
        _run(["git", "add", "-A"], repo, env)
        _run(["git", "commit", "-q", "-m", f"commit {n}"], repo, env)
        if (n + 1) % every == 0 or n == args.commits - 1:
            _run(["git", "push", "-q", "origin", "HEAD:main"], repo, env)
            clock = time.perf_counter()
            _run(["git", "panini", "work"], repo, env)
            seconds += time.perf_counter() - clock
            works += 1
    for path in (repo, remote):
        _gc(path, env)
    refs = _run(["git", "for-each-ref", "refs/panini/packs/"], remote, env).split("\n")
    recipes = _run(["git", "ls-tree", "-r", "refs/panini/store", "--", "packs"], remote, env).split("\n")
    fresh = os.path.join(root, f"{name}-fresh")
    _run(["git", "clone", "-q", "file://" + remote, fresh], root, env)
    _check(fresh, head, "HEAD")
    first_commit = _run(["git", "rev-list", "--max-parents=0", "HEAD"], fresh, env).strip()
    _run(["git", "checkout", "-q", first_commit], fresh, env)
    _check(fresh, first, "the first commit")
    shutil.rmtree(gen)
    return {"work_runs": works, "work_seconds": round(seconds, 1), "remote_objects_bytes": _objects(remote),
            "pack_refs": len([r for r in refs if r]), "recipes": len([r for r in recipes if r])}


def _check(clone: str, files: dict[str, bytes], what: str):
    for rel, data in files.items():
        with open(os.path.join(clone, rel), "rb") as f:
            if f.read() != data:
                raise RuntimeError(f"a fresh clone's checkout of {what} wrote different bytes for {rel}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--commits", type=int, default=60)
    p.add_argument("--every", type=int, default=6, help="push (and work) every this many commits")
    p.add_argument("--scale", type=float, default=0.55, help="file sizes, as the history scenario's (quick: 0.55)")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="leave the repositories in place (their path is printed)")
    args = p.parse_args(argv)
    root = tempfile.mkdtemp(prefix="panini-incremental-")
    home = os.path.join(root, "home")
    os.makedirs(home)
    env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"), "GIT_CONFIG_NOSYSTEM": "1"}
    with open(os.path.join(home, ".gitconfig"), "w") as f:
        f.write("[user]\n\tname = Bench\n\temail = bench@panini.invalid\n[init]\n\tdefaultBranch = main\n")
    try:
        _run(["git", "panini", "install", "--global"], root, env)
        out = {"params": vars(args),
               "git_panini": _run([sys.executable, "-c", "import git_panini; print(git_panini.__file__)"], root,
                                  env).strip(),
               "incremental": _flow(root, "incremental", env, args, args.every),
               "one_work": _flow(root, "once", env, args, args.commits)}
        inc, once = out["incremental"], out["one_work"]
        out["ratio"] = round(inc["remote_objects_bytes"] / once["remote_objects_bytes"], 2)
        print(json.dumps(out, indent=1))
        print(f"remote after gc: {inc['remote_objects_bytes'] / MiB:.2f} MiB after {inc['work_runs']} work runs "
              f"({inc['pack_refs']} pack refs, {inc['recipes']} recipes) vs {once['remote_objects_bytes'] / MiB:.2f} "
              f"MiB after one ({once['pack_refs']} pack refs, {once['recipes']} recipes): {out['ratio']}x",
              file=sys.stderr)
    finally:
        if args.keep:
            print(f"left in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
