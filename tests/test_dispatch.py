"""git panini dispatch: planning (bin-packing, priorities, what is claimable), queueing under a lease,
publishing the notes, and the hand-over: local worker processes, GitHub workflow dispatches (through
the fake GitHub) or a matrix in $GITHUB_OUTPUT. A failed hand-over leaves the files pending."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import notes_of, git, make_bare, make_repo, run, write_text
from github_fake import FakeGitHub
from test_report import copy_template
from git_panini.cli import app
from git_panini.remote_work.dispatch import Dispatcher, normalize_runner, parse_size, plan
from git_panini.store.notes import Notes
from git_panini.git.repo import Repo

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _note(size: int, status: str = "pending", minutes_ago: int = 0, attempts: int = 0, lease: int | None = None,
          job: str | None = None, unique: int | None = None) -> dict:
    return {"status": status, "bytes": size, "chunks": 1, "unique_bytes": size if unique is None else unique,
            "attempts": attempts, "job": job, "updated": _iso(NOW - timedelta(minutes=minutes_ago)),
            "lease_until": None if lease is None else _iso(NOW + timedelta(minutes=lease))}


# --- planning ------------------------------------------------------------------------------------------

def test_sizes_and_runner_labels():
    assert parse_size("256MiB") == 256 << 20 and parse_size("64M") == 64_000_000 and parse_size("1000") == 1000
    assert parse_size("1.5 GiB") == 3 << 29 and parse_size("10kb") == 10_000
    for bad in ("", "12 parsecs", "-1", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert normalize_runner("self-hosted, gpu") == '["self-hosted","gpu"]'
    assert normalize_runner('["ubuntu-latest"]') == '["ubuntu-latest"]'
    for bad in ("[", "[]", '[1]', ", ,"):
        with pytest.raises(ValueError):
            normalize_runner(bad)


def test_plan_first_fit_small_first_and_a_job_cap():
    notes = {f"m{size}": _note(size) for size in (60, 50, 40, 30, 20, 10)}
    jobs = plan(notes, NOW, max_jobs=2, job_bytes=100)
    assert [j.manifests for j in jobs] == [["m10", "m20", "m30", "m40"], ["m50"]]   # m60 waits
    assert [j.bytes for j in jobs] == [100, 50]
    assert len({j.id for j in jobs}) == 2
    # a file bigger than a job gets one of its own
    jobs = plan({"big": _note(500), "small": _note(5)}, NOW, max_jobs=4, job_bytes=100)
    assert [j.manifests for j in jobs] == [["small"], ["big"]]


def test_plan_order_recent_before_old_and_retries_last():
    notes = {"old": _note(1000, minutes_ago=60), "new": _note(1000, minutes_ago=1),
             "retry": _note(10, status="failed", attempts=1), "tiny": _note(10, minutes_ago=500)}
    [job] = plan(notes, NOW, max_jobs=1, job_bytes=10 ** 9)
    assert job.manifests == ["tiny", "new", "old", "retry"]
    # dedup: the work is the new bytes, not the size
    [job] = plan({"dedup": _note(10 ** 9, unique=100)}, NOW, job_bytes=1000)
    assert job.bytes == 100


def test_plan_takes_only_claimable_work():
    notes = {
        "pending": _note(1),
        "queued-expired": _note(1, "queued", lease=-1, job="old"),
        "processing-expired": _note(1, "processing", lease=-5),
        "failed-retry": _note(1, "failed", attempts=2),
        "queued-live": _note(1, "queued", lease=30, job="j"),
        "processing-live": _note(1, "processing", lease=10),
        "failed-final": _note(1, "failed", attempts=3),
        "completed": _note(1, "completed"),
    }
    [job] = plan(notes, NOW, max_jobs=3, job_bytes=100)
    assert sorted(job.manifests) == ["failed-retry", "pending", "processing-expired", "queued-expired"]
    assert plan({"done": _note(1, "completed")}, NOW) == []


# --- queueing on a real repository -------------------------------------------------------------------------

def _build_project(base: Path):
    _, url = make_bare(base)
    repo = make_repo(base, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    for i, size in enumerate((40_000, 70_000, 100_000, 130_000)):
        write_text(repo / f"f{i}.bin", size, seed=i)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "four files")
    git(repo, "push", "-q", "origin", "main")


@pytest.fixture
def project(tmp_path, tmp_path_factory):
    """A repository with four pending text files, pushed (with store and notes) to a bare remote."""
    base = copy_template(tmp_path, tmp_path_factory, "dispatch-project", _build_project)
    return base / "repo", base / "remote.git"


@pytest.fixture
def panini(monkeypatch):
    """`git panini ARGS` in this process (the CLI module as installed, without a process start):
    panini(cwd, *args, env={...}) -> result with exit_code, stdout, stderr."""
    from typer.testing import CliRunner

    def invoke(cwd, *args, env=None):
        with monkeypatch.context() as m:
            m.chdir(cwd)
            for key, value in (env or {}).items():
                m.setenv(key, value)
            return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return invoke


def _statuses(path) -> list[str]:
    return sorted(n["status"] for n in notes_of(path).values())


def test_queue_marks_notes_and_publishes_them(project):
    # 250 KB: the four files (40, 70, 100 and 130 KB, all published by one push) fit in two jobs in any order.
    repo, remote = project
    r = Repo(str(repo))
    dispatcher = Dispatcher(r, "origin", lease_seconds=600)
    jobs = dispatcher.queue(max_jobs=2, job_bytes=parse_size("250KB"))
    assert len(jobs) == 2 and sum(len(j.manifests) for j in jobs) == 4
    assert _statuses(remote) == ["pending"] * 4            # queued here, not yet published
    assert dispatcher.publish(jobs) == jobs
    r.close()
    before = datetime.now(timezone.utc)
    for where in (repo, remote):
        notes = notes_of(where)
        for job in jobs:
            for m in job.manifests:
                note = notes[m]
                assert note["status"] == "queued" and note["job"] == job.id
                lease = datetime.strptime(note["lease_until"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
                assert timedelta(seconds=500) < lease - before < timedelta(seconds=700)
    # nothing left to plan: a second dispatch queues nothing
    r = Repo(str(repo))
    assert Dispatcher(r, "origin").queue() == []
    r.close()


def test_dispatch_local_runs_workers_to_completion(project):
    repo, remote = project
    proc = run(["git", "panini", "dispatch", "--backend", "local", "--max-jobs", "2", "--job-bytes", "250KB",
                "--effort", "0", "--json"], cwd=repo)
    out = json.loads(proc.stdout)
    assert len(out["jobs"]) == 2 and [w["exit"] for w in out["workers"]] == [0, 0]
    assert _statuses(remote) == ["completed"] * 4
    assert _statuses(repo) == ["completed"] * 4


def test_dispatch_matrix_writes_github_output(project, tmp_path, panini):
    repo, remote = project
    output = tmp_path / "github_output"
    env = {"GITHUB_OUTPUT": str(output)}
    result = panini(repo, "dispatch", "--backend", "github", "--matrix", "--max-jobs", "3", "--job-bytes", "100KB",
                    env=env)
    assert result.exit_code == 0 and "matrix outputs written to" in result.stdout
    values = dict(line.split("=", 1) for line in output.read_text().splitlines())
    ids = json.loads(values["jobs"])
    assert len(ids) == int(values["count"]) == 3
    assert json.loads(values["matrix"]) == {"job": ids}
    queued = {n["job"] for n in notes_of(remote).values() if n["status"] == "queued"}
    assert queued == set(ids)
    # the remaining file is dispatched next time; then nothing: count=0, an empty matrix
    output.unlink()
    assert panini(repo, "dispatch", "--backend", "github", "--matrix", env=env).exit_code == 0
    assert "count=1" in output.read_text()
    output.unlink()
    assert panini(repo, "dispatch", "--backend", "github", "--matrix", env=env).exit_code == 0
    assert output.read_text().splitlines()[:2] == ["jobs=[]", "count=0"]


def test_dispatch_github_creates_one_workflow_dispatch_per_job(project, panini):
    repo, remote = project
    with FakeGitHub(refs=("main",)) as fake:
        result = panini(repo, "dispatch", "--backend", "github", "--max-jobs", "2", "--job-bytes", "250KB",
                        "--runner", "self-hosted,gpu", "--device", "cuda", "--json", env=fake.env())
        assert result.exit_code == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["workflow"] == "panini-worker.yml" and out["ref"] == "main"
        ids = [j["id"] for j in out["jobs"]]
        assert [d["inputs"] for d in fake.dispatches] == [
            {"jobs": json.dumps([i]), "runner": '["self-hosted","gpu"]', "device": "cuda"} for i in ids]
        assert all(r.auth == f"token {fake.token}" for r in fake.requests)
    notes = notes_of(remote)
    assert {n["job"] for n in notes.values()} == set(ids)
    assert _statuses(remote) == ["queued"] * 4


@pytest.mark.parametrize("failure", ["403", "timeout", "rate-limit", "401"])
def test_failed_dispatch_leaves_the_files_pending(project, failure, panini):
    repo, remote = project
    with FakeGitHub() as fake:
        env = fake.env()
        if failure == "403":
            fake.permissions["actions"] = "read"
        elif failure == "timeout":
            fake.delay("POST", r"/dispatches$", 2, times=None)
        elif failure == "rate-limit":
            fake.rate_limit("POST", r"/dispatches$", "primary", wait=1800, times=None)
        else:
            env["GITHUB_TOKEN"] = "ghs_revoked"
        result = panini(repo, "dispatch", "--backend", "github", "--max-jobs", "2", env=env)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert {"403": "`actions: write`", "timeout": "did not answer within 1 s", "rate-limit": "rate limit hit",
            "401": "rejected the token"}[failure] in lines[0]
    assert "0 job(s) dispatched" in lines[0] and "back to pending" in lines[0]
    for where in (repo, remote):
        notes = notes_of(where)
        assert [n["status"] for n in notes.values()] == ["pending"] * 4
        assert all(n["job"] is None and n["lease_until"] is None for n in notes.values())


def test_partly_failed_dispatch_keeps_what_went_out(project, panini):
    repo, remote = project
    with FakeGitHub() as fake:
        fake.fail("POST", r"/dispatches$", 422, {"message": "Workflow does not have 'workflow_dispatch' trigger"},
                  skip=1)
        result = panini(repo, "dispatch", "--backend", "github", "--max-jobs", "2", "--job-bytes", "250KB",
                        env=fake.env())
        [sent] = fake.dispatches
    assert result.exit_code == 1
    assert "does not have 'workflow_dispatch' trigger" in result.stderr and "1 job(s) dispatched" in result.stderr
    job = json.loads(sent["inputs"]["jobs"])[0]
    notes = notes_of(remote)
    queued = [n for n in notes.values() if n["status"] == "queued"]
    assert queued and all(n["job"] == job for n in queued)
    assert sorted(n["status"] for n in notes.values() if n["status"] != "queued") == ["pending"] * (4 - len(queued))


def test_missing_token_fails_before_anything_is_queued(project, monkeypatch, panini):
    repo, remote = project
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    result = panini(repo, "dispatch", "--backend", "github", "--repository", "o/r")
    assert result.exit_code == 1 and "no GitHub token" in result.stderr
    assert _statuses(remote) == ["pending"] * 4


def test_expired_lease_goes_to_a_new_job(project, tmp_path, panini):
    repo, remote = project
    out = tmp_path / "out"
    panini(repo, "dispatch", "--backend", "github", "--matrix", "--max-jobs", "1", "--no-remote",
           env={"GITHUB_OUTPUT": str(out)})
    [old] = json.loads(out.read_text().splitlines()[0].split("=", 1)[1])
    r = Repo(str(repo))
    notes = Notes(r)
    mine = [m for m, n in notes.all().items() if n.get("job") == old]
    past = _iso(datetime.now(timezone.utc) - timedelta(minutes=1))
    notes.transition(mine, lambda m, n: dict(n, lease_until=past), "test: the job never started")
    [job] = Dispatcher(r, None).queue(max_jobs=1)
    r.close()
    assert job.id != old and sorted(job.manifests) == sorted(mine)
    # the late run of the old job finds nothing to do; the new job does it all
    stale = run(["git", "panini", "work", "--job", old, "--no-remote", "--effort", "0"], cwd=repo)
    assert stale.stdout.startswith("0 file(s) worked")
    fresh = run(["git", "panini", "work", "--job", job.id, "--no-remote", "--effort", "0"], cwd=repo)
    assert fresh.stdout.startswith("4 file(s) worked")
    typo = run(["git", "panini", "work", "--job", job.id[:-1] + "x", "--no-remote"], cwd=repo, check=False)
    assert typo.returncode == 2 and "is not a job id" in typo.stderr and len(typo.stderr.splitlines()) == 1


def test_bad_options_are_one_line_errors(project, panini):
    repo, _ = project
    for args, message in ((["--backend", "cloud"], "--backend must be local, github or webhook"),
                          (["--matrix"], "--matrix goes with --backend github"),
                          (["--job-bytes", "lots"], "not a size"),
                          (["--backend", "github", "--runner", "[", "--matrix"], "not valid JSON")):
        result = panini(repo, "dispatch", *args)
        assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
