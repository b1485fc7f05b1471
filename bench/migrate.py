"""The `migrate` scenario (issue 10): `git panini migrate import` vs `git lfs migrate import` on one history.

One history is generated with `git fast-import` (quick: 100 commits, 100 MiB of binaries; full: 1,000
commits, 2 GiB), then copied once per tool. Each commit touches one binary under assets/ and a text
file: a third of the commits add a new random binary, the others rewrite an existing one with one
seeded 4 KiB overwrite (a new blob of the whole size each time, as an edited asset is); tags every
10 % of the history. "Bytes of binaries" is the sum of the distinct binary blobs, what git-lfs has to
store. Each tool converts every branch and tag (`--include '*.bin' --everything`); timed with the
bench's wrapper (wall, CPU of the whole command tree, peak RSS). git-lfs 3.3 leaves pointer files in
the working tree after its rewrite, so its figures include the `git lfs checkout` that makes them real
files (git-panini's migrate checks out real files itself); both are kept apart in the raw results.
Then: the working tree must be the source's byte for byte, and the repository's size is measured as the tool left it (old objects
still referenced by the reflog / backup refs) and after dropping the old history (backup refs and
reflogs expired, `git gc --prune=now`).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess

MiB = 1 << 20
TOOLS = ("panini", "lfs")
COMMANDS = {"panini": ["git", "panini", "migrate", "import", "--include", "*.bin", "--everything"],
            "lfs": ["git", "lfs", "migrate", "import", "--include=*.bin", "--everything"]}


def generate(bench, path: str, commits: int, total_bytes: int, seed: int, pool: str) -> dict:
    """A history streamed into `git fast-import`; binaries are kept in `pool` (on disk) between versions."""
    rng = random.Random(seed)
    bench.run("git", ["git", "init", "-q", path], bench.root)
    os.makedirs(pool, exist_ok=True)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, env=bench.envs["git"],
                            stdin=subprocess.PIPE)
    out = proc.stdin
    files: list[str] = []
    made = new_size = 0
    average = total_bytes // commits
    for n in range(commits):
        if not files or n % 3 == 0:
            name = f"assets/a{len(files):04d}.bin"
            size = max(64 << 10, int(average * rng.uniform(0.5, 1.5)))
            with open(os.path.join(pool, name.replace("/", "_")), "wb") as f:
                f.write(rng.randbytes(size))
            files.append(name)
        else:
            name = rng.choice(files)
            with open(os.path.join(pool, name.replace("/", "_")), "r+b") as f:
                size = f.seek(0, 2)
                f.seek(rng.randrange(size - 4096))
                f.write(rng.randbytes(4096))
        with open(os.path.join(pool, name.replace("/", "_")), "rb") as f:
            data = f.read()
        made += len(data)
        new_size += len(data) if n % 3 == 0 else 4096
        text = f"commit {n}: {name} is {len(data)} bytes\n".encode()
        message = f"change {n}: {name}".encode()
        out.write(b"blob\nmark :%d\ndata %d\n" % (2 * n + 1, len(data)) + data + b"\n")
        out.write(b"commit refs/heads/main\nmark :%d\ncommitter bench <bench@example.com> %d +0000\n"
                  % (2 * n + 2, 1700000000 + 60 * n))
        out.write(b"data %d\n%s\n" % (len(message), message))
        if n:
            out.write(b"from :%d\n" % (2 * n))
        out.write(b"M 100644 :%d %s\n" % (2 * n + 1, name.encode()))
        out.write(b"M 100644 inline log.txt\ndata %d\n%s\n\n" % (len(text), text))
        if (n + 1) % max(1, commits // 10) == 0:
            out.write(b"reset refs/tags/t%d\nfrom :%d\n\n" % (n, 2 * n + 2))
    out.close()
    if proc.wait():
        raise RuntimeError("git fast-import failed generating the history")
    bench.run("git", ["git", "checkout", "-q", "-f", "main"], path)
    shutil.rmtree(pool)
    return {"commits": commits, "binary_files": len(files), "binary_blob_bytes": made,
            "distinct_content_bytes_approx": new_size}


def run(bench, cfg, bench_module) -> tuple[dict, list]:
    row = bench_module.row

    def git_size(repo: str) -> int:
        return bench_module.disk_usage(*bench_module.store_dirs(repo))["disk_bytes"]

    commits, total = cfg.migrate_commits, cfg.migrate_mib * MiB
    source = os.path.join(bench.root, "migrate-source")
    raw = {"history": generate(bench, source, commits, total, cfg.seed, os.path.join(bench.root, "migrate-pool"))}
    raw["history"]["git_bytes"] = git_size(source)
    for n, tool in enumerate(bench_module.rotation(cfg.seed, TOOLS)):
        repo = os.path.join(bench.root, f"migrate-{tool}")
        shutil.copytree(source, repo, symlinks=True)
        if tool == "panini":
            bench.run(tool, ["git", "panini", "install"], repo)
        bench.run(tool, ["git", "update-index", "-q", "--refresh"], repo)   # the copy's new inodes, untimed
        before = git_size(repo)
        result = raw[tool] = bench.timed(tool, COMMANDS[tool], repo)
        if tool == "lfs":
            # git-lfs 3.3 leaves pointer files in the working tree after the rewrite: its own checkout
            # makes them real files, which git-panini's migrate does itself; counted in the totals.
            result["checkout"] = bench.timed(tool, ["git", "lfs", "checkout"], repo)
            for key in ("seconds", "cpu_seconds"):
                result[key] = round(result[key] + result["checkout"][key], 3)
            result["peak_rss_kib"] = max(result["peak_rss_kib"], result["checkout"]["peak_rss_kib"])
        if not bench_module.same_tree(os.path.join(source, "assets"), os.path.join(repo, "assets")):
            raise RuntimeError(f"[{tool}] the migrated working tree differs from the source")
        if bench.run(tool, ["git", "status", "--porcelain"], repo).strip():
            raise RuntimeError(f"[{tool}] the working tree is not clean after the migration")
        result["git_growth_bytes"] = git_size(repo) - before
        # Drop the old history: backup refs (panini), reflogs, unreachable objects.
        backups = bench.run(tool, ["git", "for-each-ref", "--format=delete %(refname)", "refs/panini-migrate/"], repo)
        if backups:
            subprocess.run(["git", "update-ref", "--stdin"], input=backups, text=True, cwd=repo,
                           env=bench.envs[tool], check=True)
        bench.run(tool, ["git", "reflog", "expire", "--expire=now", "--all"], repo)
        bench.run(tool, ["git", "gc", "-q", "--prune=now"], repo)
        result["git_bytes_after_gc"] = git_size(repo)
        shutil.rmtree(repo)
    shutil.rmtree(source)
    h = raw["history"]
    label = f"{h['commits']} commits, {h['binary_blob_bytes'] / MiB:.0f} MiB of binaries"
    pick = lambda key, scale=1.0, digits=2: {t: round(raw[t][key] / scale, digits) for t in TOOLS}  # noqa: E731
    anchors = ("lfs",)
    rows = [
        row(f"migrate import, {label}", "s", pick("seconds"), better="lower", anchors=anchors, n=1),
        row(f"migrate import, {label}: CPU (whole command tree)", "s", pick("cpu_seconds"), better="lower",
            anchors=anchors, n=1),
        row(f"migrate import, {label}: binaries per CPU second", "MiB/s",
            {t: round(h["binary_blob_bytes"] / MiB / max(raw[t]["cpu_seconds"], 1e-3), 1) for t in TOOLS},
            better="higher", anchors=anchors, n=1),
        row(f"migrate import, {label}: peak RSS", "MiB", pick("peak_rss_kib", 1024, 1), better="lower",
            anchors=anchors, n=1),
        row(f"migrate import, {label}: .git/objects + .git/lfs growth", "MiB", pick("git_growth_bytes", MiB, 1),
            better="lower", anchors=anchors, n=1),
        row(f"migrate import, {label}: .git after dropping the old history (gc --prune=now)", "MiB",
            pick("git_bytes_after_gc", MiB, 1), better="lower", anchors=anchors, n=1,
            note=f"plain-git history before: {h['git_bytes'] / MiB:.1f} MiB"),
    ]
    return raw, rows
