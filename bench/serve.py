"""The `serve` scenario (issue 11): the webhook worker's throughput against `git panini work` on one corpus.

The mixed real-file corpus (bench.corpus.build_covering, cfg.corpus_scale) is committed and pushed,
pending, to a bare file:// remote; each run starts from its own copy of that remote and works it all,
three ways, in a rotating order:

- `work -j 2`: a partial clone (blob:none, no checkout), `git panini fetch`, `git panini work -j 2`;
- `2 jobs direct`: the two jobs `git panini dispatch` planned (half the bytes each) run as two
  `git panini work --job` processes at once, each in a partial clone of its own (as serve runs them):
  the serve path without HTTP;
- `serve`: `git panini serve --concurrency 2` (started fresh; it clones and fetches for the first job),
  the two jobs POSTed to it, then GET /jobs/<id> polled until both completed.

The jobs of `2 jobs direct` and `serve` are planned once per run on identical notes (the same files
per job). Measured: wall seconds (serve: first POST to the last job seen completed) and CPU seconds of
the whole worker-side process tree (serve: the server and everything it ran, by wait4, including its
own start, measured apart as `serve idle`). HTTP-layer overhead: the server process's own CPU (its
requests, job pool, records and notes reads; its start excluded) over `2 jobs direct`'s CPU, the
figure with no packing noise in it; beside it serve / 2 jobs direct - 1 and serve / work -j 2 - 1 on
the whole trees (the latter also differs by how the files were split), which on a shared machine carry
the noise of the packing itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

import requests

TOKEN = "bench-token"
WAYS = ("work -j 2", "2 jobs direct", "serve")


def _seed_remote(bench, bench_module, corpus_module, cfg) -> tuple[str, dict]:
    src = os.path.join(bench.root, "serve-corpus")
    made = corpus_module.build_covering(src, cfg.corpus_scale)
    kinds = [k for k, names in made.items() if names]
    repo = bench_module._corpus_repo(bench, "panini", "serve-seed", src, kinds)
    remote = os.path.join(bench.root, "serve-remote.git")
    bench.run("panini", ["git", "init", "-q", "--bare", remote], bench.root)
    bench.run("panini", ["git", "config", "uploadpack.allowFilter", "true"], remote)
    bench.run("panini", ["git", "remote", "add", "origin", "file://" + remote], repo)
    bench.run("panini", ["git", "push", "-q", "origin", "main"], repo)
    names = [n for k in kinds for n in made[k]]
    info = {"files": len(names), "bytes": sum(os.path.getsize(os.path.join(src, n)) for n in names)}
    shutil.rmtree(repo)
    shutil.rmtree(src)
    return remote, info


def _clone(bench, url: str, path: str) -> list[list[str]]:
    """The commands a worker machine runs before working (timed with the work)."""
    return [["git", "clone", "-q", "--filter=blob:none", "--no-checkout", url, path],
            ["git", "-C", path, "panini", "fetch", "origin"]]


def _plan(bench, url: str, root: str, total: int) -> list[str]:
    """Two jobs of about half the bytes each, queued and published by `git panini dispatch`."""
    planner = os.path.join(root, "planner")
    bench.run("panini", ["git", "clone", "-q", "--no-checkout", url, planner], root)
    bench.run("panini", ["git", "panini", "fetch", "origin"], planner)
    out = json.loads(bench.run("panini", ["git", "panini", "dispatch", "--backend", "github", "--matrix",
                                          "--max-jobs", "2", "--job-bytes", str(total // 2 + 1), "--json"], planner))
    return [j["id"] for j in out["jobs"]]


def _completed(bench, remote: str) -> list[str]:
    """The remote's statuses of every file; for one not completed, its note as the remote has it."""
    path = _checkout(bench, remote)
    files = json.loads(bench.run("panini", ["git", "panini", "status", "--json"], path))["files"]
    for f in files:
        if f["status"] != "completed":
            note = bench.run("panini", ["git", "notes", "--ref=panini", "show", f["manifest"]], path)
            raise RuntimeError(f"{f['path']} is {f['status']} on the remote: {note.strip()}")
    return sorted(f["status"] for f in files)


def _checkout(bench, remote: str) -> str:
    path = remote + "-check"
    shutil.rmtree(path, ignore_errors=True)
    bench.run("panini", ["git", "clone", "-q", "--no-checkout", "file://" + remote, path], bench.root)
    bench.run("panini", ["git", "panini", "fetch", "origin"], path)
    return path


def _script(commands: list[list[str]], parallel: list[list[str]]) -> list[str]:
    """sh -c: the commands one after the other, then the parallel ones at once (all must succeed)."""
    quote = lambda args: " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)  # noqa: E731
    lines = [quote(c) for c in commands]
    lines += [f"{quote(c)} > /dev/null & p{i}=$!" for i, c in enumerate(parallel)]
    lines += [f"wait $p{i} || exit 1" for i in range(len(parallel))]
    return ["sh", "-ec", "\n".join(lines)]


def _serve(bench, workdir: str, effort: int) -> tuple[subprocess.Popen, str]:
    env = {**bench.envs["panini"], "PANINI_WEBHOOK_TOKEN": TOKEN}
    os.makedirs(workdir)
    log = os.path.join(workdir, "serve.log")    # a file: a pipe nobody drains would block the server
    with open(log, "w") as out:
        proc = subprocess.Popen(["git-panini", "serve", "--listen", "127.0.0.1:0", "--workdir", workdir,
                                 "--concurrency", "2", "--effort", str(effort)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (m := re.search(r"^listening on (http://\S+) ", open(log).read(), re.M)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"git panini serve did not start: {open(log).read()[-500:]}")
        time.sleep(0.05)
    url = m.group(1)
    while requests.get(url + "/healthz", timeout=10).status_code != 200:
        time.sleep(0.05)
    return proc, url


def _own_cpu(pid: int) -> float:
    """CPU seconds of the server process itself, without its children: the HTTP layer, the job pool, the
    job records and the notes it reads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen) -> float:
    """SIGTERM the server; CPU seconds of its whole tree (wait4 counts the children it reaped)."""
    proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"git panini serve exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


def _run_serve(bench, url: str, root: str, jobs: list[str], effort: int) -> dict:
    proc, server = _serve(bench, os.path.join(root, "serve"), effort)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        start = time.perf_counter()
        for job in jobs:
            answer = requests.post(server + "/jobs", json={"job": job, "remote": url}, headers=headers, timeout=30)
            if answer.status_code != 202:
                raise RuntimeError(f"POST /jobs answered {answer.status_code}: {answer.text}")
        results = {}
        while len(results) < len(jobs):
            for job in jobs:
                record = requests.get(f"{server}/jobs/{job}", headers=headers, timeout=30).json()
                if record["state"] in ("completed", "failed"):
                    results[job] = record
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        own = _own_cpu(proc.pid)
    finally:
        cpu = _stop(proc) if proc.poll() is None else None
    failed = [j for j, r in results.items() if r["state"] != "completed"]
    if failed:
        raise RuntimeError(f"serve: job {failed[0]} {results[failed[0]]['state']}: {results[failed[0]]['result']}")
    return {"seconds": round(seconds, 4), "cpu_seconds": round(cpu, 3), "server_own_cpu_seconds": round(own, 3),
            "packed_bytes": sum(r["result"]["packed_bytes"] for r in results.values()),
            "stored_bytes": sum(r["result"]["stored_bytes"] for r in results.values())}


def _idle_serve(bench, root: str) -> float:
    """CPU seconds of a server that starts, answers /healthz and stops: its one-off cost."""
    proc, _ = _serve(bench, os.path.join(tempfile.mkdtemp(dir=root), "idle"), 0)
    return round(_stop(proc), 3)


def run(bench, cfg, bench_module) -> tuple[dict, list]:
    from . import corpus as corpus_module
    row = bench_module.row
    effort = cfg.serve_effort
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    seed, info = _seed_remote(bench, bench_module, corpus_module, cfg)
    raw: dict = {"corpus": info, "scale": cfg.corpus_scale, "effort": effort, "runs": []}
    for n in range(cfg.serve_runs):
        measured = {}
        for way in bench_module.rotation(n, WAYS):
            root = os.path.join(bench.root, f"serve-run{n}-{way.replace(' ', '')}")
            os.makedirs(root)
            remote = os.path.join(root, "remote.git")
            subprocess.run(["cp", "-a", seed, remote], check=True)
            url = "file://" + remote
            worker = os.path.join(root, "worker")
            if way == "work -j 2":
                args = _script(_clone(bench, url, worker) + [["git", "-C", worker, "panini", "work", "-j", "2",
                                                              "--remote", "origin", "--effort", str(effort)]], [])
                measured[way] = bench.timed("panini", args, root)
            elif way == "2 jobs direct":
                jobs = _plan(bench, url, root, info["bytes"])
                # One clone per job, as serve keeps one per job running at once.
                work = [["git", "-C", f"{worker}{i}", "panini", "work", "--job", job, "--remote", "origin",
                         "--effort", str(effort), "--threads", threads] for i, job in enumerate(jobs)]
                setup = [c for i in range(len(jobs)) for c in _clone(bench, url, f"{worker}{i}")]
                measured[way] = bench.timed("panini", _script(setup, work), root)
            else:
                jobs = _plan(bench, url, root, info["bytes"])
                measured[way] = _run_serve(bench, url, root, jobs, effort)
            statuses = _completed(bench, remote)
            if statuses != ["completed"] * info["files"]:
                raise RuntimeError(f"{way}: not every file completed: {sorted(set(statuses))}")
            shutil.rmtree(root)
        measured["serve idle"] = {"cpu_seconds": _idle_serve(bench, bench.root)}
        raw["runs"].append(measured)
    shutil.rmtree(seed)
    return raw, _rows(raw, row)


def _rows(raw: dict, row) -> list:
    median = lambda way, key: statistics.median(r[way][key] for r in raw["runs"])  # noqa: E731
    mb = raw["corpus"]["bytes"] / 1e6
    n = len(raw["runs"])
    wall = {way: round(mb / median(way, "seconds"), 3) for way in WAYS}
    cpu = {way: round(median(way, "cpu_seconds"), 3) for way in WAYS}
    idle = median("serve idle", "cpu_seconds")
    label = f"({mb:.1f} MB corpus, {raw['corpus']['files']} files, effort {raw['effort']})"
    own = statistics.median(r["serve"]["server_own_cpu_seconds"] for r in raw["runs"])
    overhead = {
        "server process": round((own - idle) / cpu["2 jobs direct"] * 100, 2),
        "vs 2 jobs direct": round((cpu["serve"] / cpu["2 jobs direct"] - 1) * 100, 2),
        "vs work -j 2": round((cpu["serve"] / cpu["work -j 2"] - 1) * 100, 2),
        "vs 2 jobs direct, server start excluded": round(((cpu["serve"] - idle) / cpu["2 jobs direct"] - 1) * 100, 2),
    }
    wall_overhead = {"vs 2 jobs direct": round((wall["2 jobs direct"] / wall["serve"] - 1) * 100, 2),
                     "vs work -j 2": round((wall["work -j 2"] / wall["serve"] - 1) * 100, 2)}
    return [
        row(f"wall MB/s, clone to all completed {label}", "MB/s", wall, better="higher", subject="serve",
            anchors=("2 jobs direct", "work -j 2"), n=n),
        row(f"CPU seconds of the worker side {label}", "s", {**cpu, "serve idle": idle}, better="lower",
            subject="serve", anchors=("2 jobs direct", "work -j 2"), n=n),
        row("HTTP layer overhead, CPU seconds", "%", overhead, better="lower", subject="server process", anchors=(),
            n=n, note="server process: the server's own CPU (its start excluded) / 2 jobs direct; the others: "
                      "serve / baseline - 1, which carry the noise of the work itself; the issue asks < 5 %"),
        row("HTTP layer overhead, wall time", "%", wall_overhead, better="lower", subject="vs 2 jobs direct",
            anchors=(), n=n, note="on a shared machine wall time is noisy; CPU seconds are the figure"),
    ]
