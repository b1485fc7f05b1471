"""Benchmarks git-panini against git-lfs and plain git: `python -m bench.run [--quick|--full]`."""

from __future__ import annotations

import argparse
import datetime
import filecmp
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version

MiB = 1 << 20
TOOLS = ("panini", "lfs", "git")
GLOBAL_SETUP = {"panini": [["git", "panini", "install", "--global"]], "lfs": [["git", "lfs", "install"]], "git": []}
REPO_SETUP = {"panini": [["git", "panini", "install"], ["git", "panini", "track", "*.bin"]],
              "lfs": [["git", "lfs", "track", "*.bin"]], "git": []}
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
# Without GNU time: a fresh interpreter runs the command and reports its children's peak RSS (KiB).
RUSAGE_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
                  "sys.stderr.write(f'\\nMaximum resident set size (kbytes): "
                  "{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n'); sys.exit(rc)")
SCENARIOS = {}


def scenario(name: str, issue: str):
    """Register a scenario: fn(bench, cfg) -> (raw measurements, summary rows)."""
    def register(fn):
        SCENARIOS[name] = (issue, fn)
        return fn
    return register


def row(metric: str, unit: str, values: dict) -> dict:
    lfs = values.get("lfs")
    return {"metric": metric, "unit": unit, "values": values,
            "ratio_vs_lfs": {t: round(v / lfs, 3) if lfs else None for t, v in values.items()}}


class Bench:
    """Fresh repos under one temp dir, each tool with its own HOME, commands timed with peak RSS."""

    def __init__(self, root: str):
        self.root = root
        self.envs = {}
        for tool in TOOLS:
            home = os.path.join(root, "home", tool)
            os.makedirs(home)
            self.envs[tool] = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"),
                               "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
            self.run(tool, ["git", "config", "--global", "user.name", "bench"], home)
            self.run(tool, ["git", "config", "--global", "user.email", "bench@example.com"], home)
            self.run(tool, ["git", "config", "--global", "init.defaultBranch", "main"], home)
            for args in GLOBAL_SETUP[tool]:
                self.run(tool, args, home)

    def run(self, tool: str, args: list[str], cwd: str):
        done = subprocess.run(args, cwd=cwd, env=self.envs[tool], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"[{tool}] {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")

    def timed(self, tool: str, args: list[str], cwd: str) -> dict:
        """Wall seconds and peak RSS (KiB, the largest single process of the command tree)."""
        wrapper = [GNU_TIME, "-v"] if GNU_TIME else [sys.executable, "-c", RUSAGE_WRAPPER]
        os.sync()  # earlier steps' writeback must not land inside this measurement
        start = time.perf_counter()
        done = subprocess.run(wrapper + args, cwd=cwd, env=self.envs[tool], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(f"[{tool}] {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
        return {"seconds": round(seconds, 4), "peak_rss_kib": rss}

    def repo(self, tool: str, name: str) -> str:
        path = os.path.join(self.root, f"{name}-{tool}")
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        self.run(tool, ["git", "init", "-q"], path)
        for args in REPO_SETUP[tool]:
            self.run(tool, args, path)
        if os.path.exists(os.path.join(path, ".gitattributes")):
            self.run(tool, ["git", "add", ".gitattributes"], path)
        return path


def write_random(path: str, size: int, seed: int):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for done in range(0, size, 16 * MiB):
            f.write(rng.randbytes(min(16 * MiB, size - done)))


def preread(path: str):
    """Page caches cannot be dropped here, so every timed input is read once beforehand instead."""
    with open(path, "rb") as f:
        while f.read(16 * MiB):
            pass


def disk_usage(*paths: str) -> dict:
    """Allocated bytes (st_blocks) and apparent bytes under paths, each inode counted once."""
    seen, blocks, apparent = set(), 0, 0
    for top in paths:
        for base, _, files in os.walk(top):
            for name in files:
                st = os.lstat(os.path.join(base, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    blocks += st.st_blocks * 512
                    apparent += st.st_size
    return {"disk_bytes": blocks, "apparent_bytes": apparent}


def median(values):
    return round(statistics.median(values), 2)


@scenario("add-checkout", issue="#2")
def add_checkout(bench: Bench, cfg) -> tuple[dict, list]:
    """`git add` and checkout (smudge) throughput of one big random file, medians of cfg.runs."""
    raw, rows = {}, []
    for size_mib in cfg.sizes:
        source = os.path.join(bench.root, f"random-{size_mib}.bin")
        write_random(source, size_mib * MiB, cfg.seed)
        runs = raw[f"{size_mib}MiB"] = {tool: [] for tool in TOOLS}
        for n in range(cfg.runs):
            for tool in TOOLS[n % len(TOOLS):] + TOOLS[:n % len(TOOLS)]:  # rotate, so no tool always runs first
                repo = bench.repo(tool, "add")
                big = os.path.join(repo, "big.bin")
                os.link(source, big)
                preread(big)
                add = bench.timed(tool, ["git", "add", "big.bin"], repo)
                bench.run(tool, ["git", "commit", "-q", "-m", "big"], repo)
                os.remove(big)
                checkout = bench.timed(tool, ["git", "checkout", "--", "big.bin"], repo)
                if not filecmp.cmp(source, big, shallow=False):
                    raise RuntimeError(f"[{tool}] checkout wrote different bytes")
                runs[tool].append({"add": add, "checkout": checkout})
                shutil.rmtree(repo)
        os.remove(source)
        for step in ("add", "checkout"):
            rows.append(row(f"{step} {size_mib} MiB", "MiB/s",
                            {t: median([size_mib / r[step]["seconds"] for r in runs[t]]) for t in TOOLS}))
            rows.append(row(f"{step} {size_mib} MiB peak RSS", "MiB",
                            {t: median([r[step]["peak_rss_kib"] / 1024 for r in runs[t]]) for t in TOOLS}))
    return raw, rows


def edit(data: bytearray, rng: random.Random, kind: str, size: int = 4096):
    offset = rng.randrange(len(data) - size)
    if kind == "overwrite":
        data[offset:offset + size] = rng.randbytes(size)
    else:
        data[offset:offset] = rng.randbytes(size)


@scenario("versions", issue="#2")
def versions(bench: Bench, cfg) -> tuple[dict, list]:
    """On-disk size of a file committed in 10 versions, each with one seeded 4 KiB edit."""
    raw, rows = {}, []
    for kind in ("overwrite", "insert"):
        sizes = raw[kind] = {}
        for tool in TOOLS:
            rng = random.Random(cfg.seed)
            data = bytearray(rng.randbytes(cfg.versions_mib * MiB))
            repo = bench.repo(tool, "versions")
            git_dir = os.path.join(repo, ".git")
            start = time.perf_counter()
            for n in range(cfg.versions):
                if n:
                    edit(data, rng, kind)
                with open(os.path.join(repo, "big.bin"), "wb") as f:
                    f.write(data)
                bench.run(tool, ["git", "add", "big.bin"], repo)
                bench.run(tool, ["git", "commit", "-q", "-m", f"v{n}"], repo)
            sizes[tool] = {"seconds": round(time.perf_counter() - start, 2),
                           "store": disk_usage(os.path.join(git_dir, "objects"), os.path.join(git_dir, "lfs")),
                           "dot_git": disk_usage(git_dir)}
            if tool == "git":
                gc = bench.timed(tool, ["git", "gc", "-q"], repo)
                sizes["git+gc"] = {**gc, "store": disk_usage(os.path.join(git_dir, "objects"))}
            shutil.rmtree(repo)
        rows.append(row(f"{cfg.versions} x {cfg.versions_mib} MiB, 4 KiB {kind}: .git/objects+lfs", "MiB",
                        {t: round(s["store"]["disk_bytes"] / MiB, 1) for t, s in sizes.items()}))
    return raw, rows


def machine() -> dict:
    cpu = re.search(r"^model name\s*:\s*(.*)$", open("/proc/cpuinfo").read(), re.M)
    tool_versions = {}
    for name, args in (("git", ["git", "--version"]), ("git-lfs", ["git", "lfs", "version"])):
        tool_versions[name] = subprocess.run(args, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.strip()
    tool_versions["git-panini"] = f"{version('git-panini')} ({head})"
    return {"nproc": os.cpu_count(), "cpu": cpu.group(1) if cpu else platform.processor(),
            "kernel": platform.release(), "python": platform.python_version(),
            "peak_rss_via": "GNU time -v" if GNU_TIME else "getrusage(RUSAGE_CHILDREN)", **tool_versions}


def print_table(results: dict):
    rows = [(f"{name}: {r['metric']}", r) for name, result in results.items() for r in result["summary"]]
    columns = list(dict.fromkeys(t for _, r in rows for t in r["values"]))
    width = max(len(label) for label, _ in rows) + 2
    print(f"\n{'scenario: metric':<{width}}{'unit':>6}" + "".join(f"{c:>10}" for c in columns) + f"{'panini/lfs':>12}")
    for label, r in rows:
        cells = "".join(f"{r['values'].get(c, ''):>10}" for c in columns)
        print(f"{label:<{width}}{r['unit']:>6}{cells}{r['ratio_vs_lfs'].get('panini', ''):>12}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick")
    mode.add_argument("--full", dest="mode", action="store_const", const="full")
    p.add_argument("--size", type=int, help="MiB for the add/checkout file (default: 512; --full: 256 512 1024)")
    p.add_argument("--runs", type=int, help="repetitions per measurement (default: 3; --full: 5)")
    p.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run only these scenarios")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--seed", type=int, default=2)
    cfg = p.parse_args(argv)
    cfg.mode = cfg.mode or "quick"
    full = cfg.mode == "full"
    cfg.sizes = [cfg.size] if cfg.size else ([256, 512, 1024] if full else [512])
    cfg.runs = cfg.runs or (5 if full else 3)
    cfg.versions, cfg.versions_mib = 10, 64
    return cfg


def main(argv=None):
    cfg = parse_args(argv)
    results, load_before = {}, os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="panini-bench-", dir="/tmp") as root:
        bench = Bench(root)
        for name, (issue, fn) in SCENARIOS.items():
            if cfg.only and name not in cfg.only:
                continue
            print(f"running {name} ({issue}) ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            raw, rows = fn(bench, cfg)
            results[name] = {"issue": issue, "doc": fn.__doc__, "seconds": round(time.perf_counter() - start, 1),
                             "raw": raw, "summary": rows}
    print_table(results)
    os.makedirs(cfg.out, exist_ok=True)
    path = os.path.join(cfg.out, f"{datetime.date.today():%Y-%m-%d}-{cfg.mode}.json")
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "mode": cfg.mode,
              "config": {k: getattr(cfg, k) for k in ("sizes", "runs", "seed", "versions", "versions_mib")},
              "machine": {**machine(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
              "notes": "inputs pre-read once before each timed command (page caches cannot be dropped); "
                       "os.sync() before each; peak RSS is the largest single process of the timed command tree",
              "scenarios": results}
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
