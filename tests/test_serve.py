"""git panini serve and dispatch --backend webhook, as real processes on 127.0.0.1: jobs delivered over HTTP
complete a repository's pending files through a file:// remote; the HTTP layer refuses what it must (401,
400, 404, 405, 413); a job posted twice runs once; a server killed mid-job loses nothing and its files are
retaken; a stop hands the leases back; a delivery that fails for good leaves the files pending; a token holder
cannot queue without bound (429), nor hold a slot past --job-timeout (a remote that never answers, a worker that
hangs), nor learn the server's paths from its errors."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import file_url, git, make_bare, make_repo, notes_of, run, sha256_file, write_text
from test_dispatch import _build_project
from test_report import copy_template

from git_panini.remote_work.webhook import signature
from git_panini.util import liveness

TOKEN = "t0ken-for-tests-only"
SECRET = "hmac-secret-for-tests"


class Server:
    """`git panini serve` on a free port of 127.0.0.1, its output collected line by line."""

    def __init__(self, workdir: Path, *args: str, env: dict | None = None):
        self.workdir = workdir
        self.lines: list[str] = []
        # git-panini itself, as a service manager runs it: `git panini` is git's wrapper, which ends by the
        # signal it passed on whatever its child's exit code.
        self.proc = subprocess.Popen(["git-panini", "serve", "--listen", "127.0.0.1:0", "--workdir", str(workdir),
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        self._listening = threading.Event()
        self.url = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._listening.wait(60):
            self.kill()
            raise AssertionError("serve did not start:\n" + "\n".join(self.lines))
        deadline = time.monotonic() + 30
        while requests.get(self.url + "/healthz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = re.match(r"listening on (http://127\.0\.0\.1:\d+) ", line)
            if m:
                self.url = m.group(1)
                self._listening.set()

    def call(self, method: str, path: str, body: bytes | None = None, token: str | None = TOKEN, headers=None):
        h = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, self.url + path, data=body, headers={**h, **(headers or {})}, timeout=30)

    def job(self, job: str) -> dict:
        response = self.call("GET", f"/jobs/{job}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for(self, job: str, states=("completed", "failed"), timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while (record := self.job(job))["state"] not in states:
            assert time.monotonic() < deadline, (record, self.lines)
            time.sleep(0.2)
        return record

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(90)
        time.sleep(0.1)    # the reader thread takes the last lines
        return code

    def kill(self):
        """SIGKILL to the server and every process under it (its workers run in sessions of their own):
        the machine died."""
        tree = [self.proc.pid] + _descendants(self.proc.pid)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(30)
        for pid in tree:     # the workers are not our children: wait until they are gone
            deadline = time.monotonic() + 30
            while os.path.exists(f"/proc/{pid}") and not _zombie(pid) and time.monotonic() < deadline:
                time.sleep(0.05)


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(entry))
    return out


def _descendants(pid: int) -> list[int]:
    children, found, todo = _children(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


@pytest.fixture
def servers(tmp_path, monkeypatch):
    """start(*args, workdir=..., env=...) -> a running Server (token from $PANINI_WEBHOOK_TOKEN); each is
    stopped at the end of the test."""
    monkeypatch.setenv("PANINI_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.delenv("PANINI_WEBHOOK_SECRET", raising=False)
    started: list[Server] = []

    def start(*args, workdir: Path | None = None, env: dict | None = None) -> Server:
        server = Server(workdir or tmp_path / "serve", *args, env=env)
        started.append(server)
        return server
    yield start
    for server in started:
        if server.proc.poll() is None:
            server.kill()


@pytest.fixture
def project(tmp_path, tmp_path_factory):
    """Four pending text files (40-130 KB) pushed to a bare remote that allows partial clones."""
    base = copy_template(tmp_path, tmp_path_factory, "dispatch-project", _build_project)
    git(base / "remote.git", "config", "uploadpack.allowFilter", "true")
    return base / "repo", base / "remote.git"


def _statuses(path) -> list[str]:
    return sorted(n["status"] for n in notes_of(path).values())


def _fresh_clone_matches(tmp_path: Path, url: str, originals: dict[str, str]) -> Path:
    """A fresh clone (filter from ~/.gitconfig) checks every file out bit-identical, every file completed,
    and verify passes."""
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", url, str(fresh)])
    assert {name: sha256_file(fresh / name) for name in originals} == originals
    run(["git", "panini", "fetch"], cwd=fresh)
    files = json.loads(run(["git", "panini", "status", "--json"], cwd=fresh).stdout)["files"]
    assert sorted(f["status"] for f in files) == ["completed"] * len(originals)
    out = run(["git", "panini", "verify", "--all"], cwd=fresh).stdout
    assert f"{len(originals)} of {len(originals)} file(s) verified bit-perfect" in out
    return fresh


# --- the round trip ----------------------------------------------------------------------------------

def test_webhook_dispatch_completes_the_pending_files(project, servers, tmp_path):
    repo, remote = project
    originals = {name: sha256_file(repo / name) for name in ("f0.bin", "f1.bin", "f2.bin", "f3.bin")}
    server = servers("--concurrency", "2", "--effort", "0")
    proc = run(["git", "panini", "dispatch", "--backend", "webhook", "--url", server.url, "--max-jobs", "2",
                "--job-bytes", "250KB", "--wait", "--json"], cwd=repo)
    out = json.loads(proc.stdout)
    ids = [j["id"] for j in out["jobs"]]
    assert len(ids) == 2 and [d["state"] for d in out["done"]] == ["completed", "completed"]
    assert sum(d["result"]["files"] for d in out["done"]) == 4
    assert _statuses(remote) == ["completed"] * 4
    # each job ran once, in the server's partial clone of the remote
    done = {d["job"]: d for d in out["done"]}
    for job in ids:
        record = server.job(job)
        files = done[job]["result"]["files"]
        assert record["runs"] == 1 and record["progress"] == {"phase": "completed", "files": files,
                                                              "completed": files, "failed": 0}
        assert sum(f"job {job}: running" in line for line in server.lines) == 1
        assert any(re.fullmatch(rf"127\.0\.0\.1 POST /jobs 202 job {job} accepted", line) for line in server.lines)
    clones = list((tmp_path / "serve" / "clones").iterdir())    # one per job running at once
    assert 1 <= len(clones) <= 2
    for clone in clones:
        assert git(clone, "config", "remote.origin.partialclonefilter").stdout.strip() == "blob:none"
    assert server.stop() == 0 and server.lines[-1] == "stopped"
    _fresh_clone_matches(tmp_path, file_url(remote), originals)


# --- the HTTP layer ----------------------------------------------------------------------------------

def test_http_refusals(servers, tmp_path):
    server = servers("--max-body", "4KiB", env={"PANINI_WEBHOOK_SECRET": SECRET})
    body = json.dumps({"job": "j-1", "remote": file_url(tmp_path / "nowhere.git")}).encode()
    signed = {"X-Hub-Signature-256": signature(SECRET, body), "Content-Type": "application/json"}

    def post(data: bytes, token=TOKEN, headers=None):
        return server.call("POST", "/jobs", data, token=token, headers=headers)

    assert post(body, token="wrong", headers=signed).status_code == 401
    assert post(body, token=None, headers=signed).status_code == 401
    assert post(body, headers={"Authorization": f"Basic {TOKEN}", **signed}, token=None).status_code == 401
    assert post(body).status_code == 401                                          # signature missing
    assert post(body, headers={"X-Hub-Signature-256": signature("other", body)}).status_code == 401
    assert post(body + b" ", headers=signed).status_code == 401                   # the body changed
    big = b'{"job": "j-2", "pad": "' + b"x" * 5000 + b'"}'
    too_big = post(big, headers={"X-Hub-Signature-256": signature(SECRET, big)})
    assert too_big.status_code == 413
    for bad in (b"{not json", b"[1, 2]", b'{"job": "../../etc", "remote": "file:///x"}',
                b'{"job": "j-3"}', b'{"job": "j-3", "remote": "--upload-pack=touch /tmp/pwned"}',
                b'{"job": "j-3", "remote": "ext::sh -c touch% /tmp/pwned"}',
                b'{"job": "j-3", "remote": "file:///x", "manifests": ["not-an-id"]}', b"[" * 3000,
                b'{"job": "j-3", "remote": "https://x-access-token:ghp_secret@example.invalid/r.git"}'):
        response = post(bad, headers={"X-Hub-Signature-256": signature(SECRET, bad)})
        assert response.status_code == 400, bad
        assert "\n" not in response.json()["error"]
    assert server.call("GET", "/jobs/j-3").status_code == 404                     # nothing was recorded
    assert server.call("GET", "/jobs/no-such-job").status_code == 404
    assert server.call("GET", "/jobs/no-such-job", token="wrong").status_code == 401
    assert server.call("GET", "/jobs").status_code == 405
    assert server.call("DELETE", "/jobs/j-1").status_code == 405
    assert server.call("GET", "/elsewhere").status_code == 404
    assert server.call("GET", "/healthz", token=None).json() == {"ok": True}
    # A well-signed job for a remote that does not exist is accepted, then fails in one line.
    accepted = post(body, headers=signed)
    assert accepted.status_code == 202 and accepted.json()["url"] == "/jobs/j-1"
    record = server.wait_for("j-1")
    assert record["state"] == "failed" and record["result"]["error"].startswith("cannot clone")
    assert "\n" not in record["result"]["error"] and record["runs"] == 0
    assert server.stop() == 0
    assert not any("Traceback" in line for line in server.lines)
    # one line per request (the 413 comes from waitress, before the application sees the request)
    assert sum(" POST /jobs " in line for line in server.lines) == 16
    assert not any("ghp_secret" in line for line in server.lines)


def test_a_job_posted_twice_runs_once(project, servers, tmp_path):
    repo, remote = project
    out = json.loads(run(["git", "panini", "dispatch", "--backend", "github", "--matrix", "--max-jobs", "1",
                          "--json"], cwd=repo).stdout)
    [job] = [j["id"] for j in out["jobs"]]
    server = servers("--effort", "0")
    body = json.dumps({"job": job, "remote": file_url(remote)}).encode()
    answers: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: answers.append(server.call("POST", "/jobs", body))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 202]
    assert {a.json()["url"] for a in answers} == {f"/jobs/{job}"}
    assert server.wait_for(job)["state"] == "completed"
    again = server.call("POST", "/jobs", body)
    assert again.status_code == 200 and again.json()["state"] == "completed"
    other = server.call("POST", "/jobs", json.dumps({"job": job, "remote": "file:///elsewhere.git"}).encode())
    assert other.status_code == 409
    assert server.stop() == 0
    # the record outlives the server: a new one knows the job and does not run it again
    server = servers("--effort", "0")
    assert server.call("POST", "/jobs", body).status_code == 200
    record = server.job(job)
    assert record["state"] == "completed" and record["runs"] == 1 and record["result"]["files"] == 4
    assert (tmp_path / "serve" / "jobs" / f"{job}.log").read_text().count("--- run ") == 1
    assert sum(f"job {job}: running" in line for line in server.lines) == 0
    assert _statuses(remote) == ["completed"] * 4


# --- interruptions -----------------------------------------------------------------------------------

def _slow_project(base: Path) -> tuple[Path, Path, dict[str, str]]:
    """Two 1.5 MB text files: packing them at effort 2 takes a few seconds, long enough to interrupt."""
    remote, url = make_bare(base)
    git(remote, "config", "uploadpack.allowFilter", "true")
    repo = make_repo(base, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    for i in range(2):
        write_text(repo / f"t{i}.bin", 1_500_000, seed=40 + i)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "two text files")
    git(repo, "push", "-q", "origin", "main")
    return repo, remote, {f"t{i}.bin": sha256_file(repo / f"t{i}.bin") for i in range(2)}


def _until_processing(remote: Path, server: Server, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while "processing" not in _statuses(remote):
        assert time.monotonic() < deadline, server.lines
        time.sleep(0.05)


def test_stop_and_kill_mid_job_lose_nothing(servers, tmp_path):
    repo, remote, originals = _slow_project(tmp_path)
    server = servers()
    out = json.loads(run(["git", "panini", "dispatch", "--backend", "webhook", "--url", server.url, "--json"],
                         cwd=repo).stdout)
    [job] = [j["id"] for j in out["jobs"]]

    # SIGTERM while the worker packs: the server stops (exit 0) and the leases go back (queued again).
    _until_processing(remote, server)
    assert server.stop() == 0
    assert _statuses(remote) == ["queued", "queued"]
    assert server.lines[-1] == "stopped" and f"job {job}: interrupted by the stop; queued again (a worker hands its leases back first)" in server.lines

    # The next start resumes the job; SIGKILL of the server alone leaves its worker running (a session of its
    # own): the start after ends that orphan first (it hands its leases back), then runs the job again.
    server = servers()
    assert f"job {job}: resumed from {tmp_path / 'serve'}" in server.lines
    _until_processing(remote, server)
    record = json.loads((tmp_path / "serve" / "jobs" / f"{job}.json").read_text())
    orphan = record["worker_pid"]
    assert record["worker_started"] == pytest.approx(liveness.create_time(orphan), abs=0.01)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(30)
    assert os.path.exists(f"/proc/{orphan}") and not _zombie(orphan)
    server = servers()
    assert f"job {job}: ending the worker a previous server left running (pid {orphan})" in server.lines
    assert not os.path.exists(f"/proc/{orphan}") or _zombie(orphan)

    # SIGKILL of everything mid-job leaves the leases of a dead process.
    _until_processing(remote, server)
    server.kill()
    assert "processing" in _statuses(remote)
    assert "completed" not in _statuses(remote)

    # A later start retakes them (the holder is gone) and completes the job.
    server = servers()
    record = server.wait_for(job, timeout=120)
    assert record["state"] == "completed" and record["runs"] == 4, record
    assert record["result"]["files"] == 2 and _statuses(remote) == ["completed", "completed"]
    assert server.stop() == 0

    # Nothing lost: with every unreachable object pruned from the remote, a fresh clone is bit-identical.
    git(remote, "reflog", "expire", "--expire=now", "--all")
    git(remote, "gc", "-q", "--prune=now")
    _fresh_clone_matches(tmp_path, file_url(remote), originals)


def test_a_recorded_worker_is_ended_only_while_its_pid_is_still_that_process(servers, tmp_path):
    """A job record left `running` names a worker pid (and its create time). A process that got the pid
    since, even one whose command line looks like the worker's, is left alone; the recorded process is
    ended; a record of git-panini before create times (the pid and command line alone) ends it too."""
    jobs = tmp_path / "serve" / "jobs"
    jobs.mkdir(parents=True)

    def left_running(job: str, started_offset: float | None) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "git_panini", job],
                                start_new_session=True)
        _wait_until(lambda: liveness.command_line(proc.pid) is not None and "git_panini" in liveness.command_line(proc.pid))
        record = {"job": job, "remote": "file:///nowhere", "manifests": [], "state": "running",
                  "progress": {"phase": "work"}, "result": None, "created": "2026-01-01T00:00:00.000000Z",
                  "started": None, "finished": None, "runs": 1, "worker_pid": proc.pid}
        if started_offset is not None:
            record["worker_started"] = liveness.create_time(proc.pid) + started_offset
        (jobs / f"{job}.json").write_text(json.dumps(record))
        return proc

    procs = {"reused": left_running("reused", 100.0), "same": left_running("same", 0.0),
             "old": left_running("old", None)}
    try:
        server = servers()
        _wait_until(lambda: all(any(line.startswith(f"job {job}: resumed") for line in server.lines) for job in procs))
        for job, proc in procs.items():
            ended = f"job {job}: ending the worker a previous server left running (pid {proc.pid})" in server.lines
            assert ended == (job != "reused"), server.lines
        assert procs["reused"].poll() is None
        for job in ("same", "old"):
            assert procs[job].wait(10) == -signal.SIGTERM
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def _wait_until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)

# --- what a token holder can make the server do -----------------------------------------------------

class _Silent:
    """A TCP port that accepts connections and never answers: a remote host that hangs. `closed` is set once
    a client that connected goes away."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connected.set()
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn):
        with conn:
            while conn.recv(65536):
                pass
        self.closed.set()

    def close(self):
        self.sock.close()


def _served_no_path(texts: list[str], *paths: Path):
    for text in texts:
        for path in paths:
            assert str(path) not in text and os.path.realpath(path) not in text, text


def test_queue_limit_and_a_remote_that_never_answers(servers, tmp_path):
    """One slot, two may wait: a third waiting job gets 429 with Retry-After. A clone of a remote that accepts
    the connection and never answers is ended at --job-timeout (its git goes away), the job fails in one line,
    and the slot runs the jobs that waited; then the queue takes jobs again."""
    hang = _Silent()
    server = servers("--concurrency", "1", "--max-queued", "2", "--job-timeout", "5")
    served: list[str] = []

    def post(job: str, remote: str) -> requests.Response:
        response = server.call("POST", "/jobs", json.dumps({"job": job, "remote": remote}).encode())
        served.append(response.text)
        return response

    assert post("stuck", f"git://127.0.0.1:{hang.port}/x.git").status_code == 202
    assert hang.connected.wait(60), server.lines       # its clone waits for an answer: the one slot is taken
    assert server.job("stuck")["state"] == "running"
    nowhere = file_url(tmp_path / "nowhere.git")
    assert post("next-1", nowhere).status_code == 202
    assert post("next-2", nowhere).status_code == 202
    full = post("next-3", nowhere)
    assert full.status_code == 429 and full.headers["Retry-After"] == "30"
    assert list(full.json()) == ["error"] and "--max-queued 2" in full.json()["error"] and "\n" not in full.text.strip()
    assert server.call("GET", "/jobs/next-3").status_code == 404                  # nothing was recorded
    assert post("next-1", nowhere).status_code == 200                              # a job it has is no new one

    stuck = server.wait_for("stuck", timeout=120)
    assert stuck["state"] == "failed" and stuck["runs"] == 0, stuck
    assert stuck["result"]["error"] == ("over the time limit (5 s, --job-timeout) while cloning the remote; "
                                        "its processes were ended")
    assert hang.closed.wait(30)                                                    # its git is gone
    for job in ("next-1", "next-2"):                                               # the slot ran them next
        record = server.wait_for(job, timeout=120)
        assert record["state"] == "failed" and record["result"]["error"].startswith(f"cannot clone {nowhere}: ")
        assert record["started"] >= stuck["finished"]
    assert post("next-3", nowhere).status_code == 202                              # room again
    assert server.wait_for("next-3", timeout=120)["state"] == "failed"
    served += [server.call("GET", f"/jobs/{job}").text for job in ("stuck", "next-1", "next-2", "next-3")]
    _served_no_path(served, tmp_path / "serve")
    assert server.stop() == 0
    assert "127.0.0.1 POST /jobs 429 job next-3 refused: queue full" in server.lines
    assert any(line.startswith("job stuck: failed: over the time limit") for line in server.lines)
    hang.close()


def test_a_hung_worker_is_killed_at_its_time_limit_and_its_leases_released(project, servers, tmp_path):
    """A worker that hangs deaf to SIGTERM (stopped where it packs) is SIGKILLed after the grace; the leases
    it held are released for it (`work --release`), so its files are queued again, not held by a dead process."""
    repo, remote = project
    trace = tmp_path / "trace"
    server = servers("--effort", "0", "--job-timeout", "15",
                     env={"PANINI_STOP_AT": "packing", "PANINI_CRASH_TRACE": str(trace)})
    out = json.loads(run(["git", "panini", "dispatch", "--backend", "webhook", "--url", server.url, "--max-jobs", "1",
                          "--json"], cwd=repo).stdout)
    [job] = [j["id"] for j in out["jobs"]]
    record = server.wait_for(job, timeout=180)
    assert "packing" in trace.read_text().split(), server.lines                   # it hung where it was told
    assert record["state"] == "failed" and record["runs"] == 1, record
    error = record["result"]["error"]
    assert re.fullmatch(r"over the time limit \(15 s, --job-timeout\) while working; its processes were ended "
                        r"\(SIGKILL\); [1-4] lease\(s\) it held released", error), error
    worker = json.loads((tmp_path / "serve" / "jobs" / f"{job}.json").read_text())["worker_pid"]
    assert not os.path.exists(f"/proc/{worker}") or _zombie(worker)
    assert _statuses(remote) == ["queued"] * 4                                     # nobody holds them
    assert "(over the time limit: SIGKILL)" in (tmp_path / "serve" / "jobs" / f"{job}.log").read_text()
    assert list((tmp_path / "serve" / "clones").iterdir()) == []                   # no clone a kill may have left locked
    _served_no_path([json.dumps(record)], tmp_path / "serve")
    assert server.stop() == 0


def test_errors_name_no_server_path(servers, tmp_path):
    """A job that fails on the server's own disk, and a request that fails unexpectedly (500), tell the client
    what failed, never where: the paths are in the server's log only."""
    workdir = tmp_path / "serve"
    (workdir / "jobs").mkdir(parents=True)
    (workdir / "clones").write_text("a file where the clones' folder goes")          # every clone fails (OSError)
    (workdir / "jobs" / "broken.json.tmp").mkdir()                                   # job 'broken' cannot be recorded
    server = servers()
    remote = file_url(tmp_path / "r.git")
    body = json.dumps({"job": "j-1", "remote": remote}).encode()
    assert server.call("POST", "/jobs", body).status_code == 202
    record = server.wait_for("j-1")
    assert record["state"] == "failed" and record["result"]["error"] == "FileExistsError: [Errno 17] File exists: '<path>'"
    broken = server.call("POST", "/jobs", json.dumps({"job": "broken", "remote": remote}).encode())
    assert broken.status_code == 500 and broken.json() == {"error": "internal error (the server's log says why)"}
    _served_no_path([server.call("GET", "/jobs/j-1").text, broken.text], tmp_path)
    assert server.stop() == 0
    assert any(line.startswith("job j-1: failed: FileExistsError") and str(workdir / "clones") in line
               for line in server.lines)
    assert any(" POST /jobs 500 IsADirectoryError" in line and str(workdir) in line for line in server.lines)


def test_redactor_keeps_the_clients_own_paths_only():
    from git_panini.remote_work.serve.redact import Redactor
    hide = Redactor("/srv/panini")
    cases = [
        ("fatal: could not create work tree dir '/srv/panini/clones/ab-0.partial': Permission denied", "https://h/r",
         "fatal: could not create work tree dir '<path>': Permission denied"),
        ("cannot clone file:///data/r.git: fatal: '/data/r.git' does not appear to be a git repository",
         "file:///data/r.git", "cannot clone file:///data/r.git: fatal: '/data/r.git' does not appear to be a git repository"),
        ("fatal: unable to access 'https://h.example/srv/panini/r.git/': Could not resolve host",
         "https://h.example/srv/panini/r.git", "fatal: unable to access 'https://h.example/srv/panini/r.git/': Could not resolve host"),
        ("seen file:///srv/panini/clones/x and /etc/passwd.", "", "seen file://<path> and <path>."),
        ("2 of 3 done at 10 KB/s\n(/usr/lib/python3/x.py)", "", "2 of 3 done at 10 KB/s (<path>)"),
    ]
    for text, keep, expected in cases:
        assert hide(text, keep) == expected


# --- deliveries that fail --------------------------------------------------------------------------

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_leaves_the_files_pending(project, monkeypatch):
    repo, remote = project
    monkeypatch.setenv("PANINI_WEBHOOK_TOKEN", TOKEN)
    proc = run(["git", "panini", "dispatch", "--backend", "webhook", "--url", f"http://127.0.0.1:{_free_port()}",
                "--retries", "1", "--max-jobs", "2", "--job-bytes", "250KB"], cwd=repo, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach" in lines[0] and "0 job(s) delivered, 2 back to pending" in lines[0]
    assert "Traceback" not in proc.stderr
    for where in (repo, remote):
        notes = notes_of(where)
        assert [n["status"] for n in notes.values()] == ["pending"] * 4
        assert all(n["job"] is None and n["lease_until"] is None for n in notes.values())


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers POSTs from a script of (status, headers); records when each came."""
    script: list[tuple[int, dict]] = []
    seen: list[tuple[float, dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((time.monotonic(), dict(self.headers), body))
        status, headers = type(self).script.pop(0) if type(self).script else (202, {})
        job = json.loads(body)["job"]
        data = json.dumps({"job": job, "url": f"/jobs/{job}", "state": "queued"} if status in (200, 202)
                          else {"error": f"scripted {status}"}).encode()
        data = headers.pop("X-Scripted-Body", data)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("case", ["503-then-ok", "429-retry-after", "400-final", "401-final", "202-not-an-object"])
def test_retries_and_backoff(project, monkeypatch, case):
    repo, remote = project
    monkeypatch.setenv("PANINI_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("PANINI_WEBHOOK_SECRET", SECRET)
    _Scripted.script = {"503-then-ok": [(503, {}), (502, {})], "429-retry-after": [(429, {"Retry-After": "1"})],
                        "400-final": [(400, {})], "401-final": [(401, {})],
                        "202-not-an-object": [(202, {"X-Scripted-Body": b"[]"})]}[case]
    _Scripted.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        proc = run(["git", "panini", "dispatch", "--backend", "webhook", "--url",
                    f"http://127.0.0.1:{httpd.server_address[1]}", "--max-jobs", "1"], cwd=repo, check=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    times = [t for t, _, _ in _Scripted.seen]
    for _, headers, body in _Scripted.seen:
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["X-Hub-Signature-256"] == signature(SECRET, body)
    if case.endswith("final"):
        assert proc.returncode == 1 and len(times) == 1          # no retry on a 4xx other than 408/429
        assert f"HTTP {case[:3]}: scripted {case[:3]}" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert _statuses(remote) == ["pending"] * 4
        return
    if case == "202-not-an-object":   # not a git panini serve's answer: a failed delivery (review finding)
        assert proc.returncode == 1 and "without a JSON object" in proc.stderr
        assert _statuses(remote) == ["pending"] * 4
        return
    assert proc.returncode == 0, proc.stderr
    if case == "503-then-ok":
        assert len(times) == 3 and times[2] - times[1] > times[1] - times[0] >= 0.3       # backoff grows
    else:
        assert len(times) == 2 and times[1] - times[0] >= 0.95                            # Retry-After: 1
    assert _statuses(remote).count("queued") >= 1


# --- command lines -----------------------------------------------------------------------------------

def test_bad_command_lines_are_one_line_errors(project, tmp_path, monkeypatch):
    repo, remote = project
    monkeypatch.delenv("PANINI_WEBHOOK_TOKEN", raising=False)
    cases = [
        (["serve", "--workdir", str(tmp_path / "w")], 2, "no token: set $PANINI_WEBHOOK_TOKEN"),
        (["serve", "--no-auth", "--listen", "0.0.0.0:0"], 2, "--no-auth is for loopback only"),
        (["serve", "--listen", "nowhere"], 2, "--listen must be HOST:PORT"),
        (["serve", "--no-auth", "--max-body", "lots"], 2, "not a size"),
        (["dispatch", "--backend", "webhook"], 2, "needs --url"),
        (["dispatch", "--backend", "local", "--url", "http://x"], 2, "--url and --wait go with --backend webhook"),
        (["dispatch", "--backend", "webhook", "--url", "http://127.0.0.1:9"], 1, "no webhook token"),
    ]
    for args, code, message in cases:
        proc = run(["git", "panini", *args], cwd=repo, check=False)
        assert proc.returncode == code and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = run(["git", "panini", "dispatch", "--backend", "webhook", "--url", "ftp://x"], cwd=repo, check=False,
               env={"PANINI_WEBHOOK_TOKEN": TOKEN})
    assert proc.returncode == 2 and "--url must be an http:// or https:// URL" in proc.stderr
    assert _statuses(remote) == ["pending"] * 4 and _statuses(repo) == ["pending"] * 4


def test_a_second_server_on_one_workdir_is_refused(servers, tmp_path):
    servers("--no-auth")
    proc = run(["git", "panini", "serve", "--no-auth", "--listen", "127.0.0.1:0", "--workdir", str(tmp_path / "serve")],
               check=False)
    assert proc.returncode == 1 and "another git panini serve uses" in proc.stderr


def test_allow_remote_and_passwords_in_urls(servers, tmp_path):
    """A server that works for one repository refuses jobs naming any other (a token holder could otherwise
    make this machine's credentials fetch from and push to any host); dispatch never sends the password a
    remote URL holds (review findings)."""
    from git_panini.remote_work.webhook import without_password
    allowed = file_url(tmp_path / "mine.git")
    server = servers("--allow-remote", allowed + "/")
    for remote, status in ((file_url(tmp_path / "other.git"), 400), (allowed, 202), (allowed + ".git", 400)):
        body = json.dumps({"job": f"j-{status}-{len(remote)}", "remote": remote}).encode()
        response = server.call("POST", "/jobs", body)
        assert response.status_code == status, (remote, response.text)
    assert server.stop() == 0
    assert without_password("https://x-access-token:ghp_1@github.com/o/r.git") == "https://github.com/o/r.git"
    assert without_password("https://bot@github.com/o/r.git") == "https://bot@github.com/o/r.git"
    assert without_password("git@github.com:o/r.git") == "git@github.com:o/r.git"
