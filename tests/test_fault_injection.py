"""kill -9 at a random moment of `git add`, `git commit`, `git checkout`, `git push` and `git panini work`, then at once
`git reflog expire --expire=now --all && git gc --prune=now`, then the user's next ordinary command: a fresh clone
of the remote checks out every committed file bit-identical (sha256), and whatever was not committed is either
intact or named by a message that says what to do.

The whole process tree is killed (its process group: git, its filter, its hooks and their git children), after a
delay drawn from a seeded generator (PANINI_FAULT_SEED) between 0 and a bit more than the command takes uncut here,
so kills land anywhere from the start to just after the end. Default run: 2 trials per command; --slow: 20.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path


from conftest import MiB, clone, git, make_bare, make_repo, run, sha256_file, write_random, write_text
from test_worker_crash import _group_alive

SEED = int(os.environ.get("PANINI_FAULT_SEED", "20261121"))
RENORMALIZE = re.compile(r"git add --renormalize -- '([^']+)'")


def _trials(slow: bool) -> int:
    return 20 if slow else 2


class Scene:
    """A working clone with a file:// bare remote, and what each commit holds ({commit: {path: sha256}})."""

    def __init__(self, tmp_path: Path, rng: random.Random):
        self.tmp, self.rng = tmp_path, rng
        self.bare, self.url = make_bare(tmp_path)
        self.repo = make_repo(tmp_path, name="work", track=("*.bin",))
        git(self.repo, "remote", "add", "origin", self.url)
        run(["git", "panini", "install", "--global"], cwd=tmp_path)   # fresh clones smudge
        self.committed: dict[str, dict[str, str]] = {}
        self.serial = 0
        self.outcomes: list[str] = []

    def write_files(self, count: int = 3) -> None:
        """New files (random and text, 1-3 MiB) and, once there are some, an edit of a tracked one."""
        for _ in range(count):
            self.serial += 1
            size = self.rng.randrange(MiB, 3 * MiB)
            writer = write_text if self.serial % 3 == 0 else write_random
            writer(self.repo / f"f{self.serial}.bin", size, seed=self.serial)
        tracked = sorted((self.repo).glob("f*.bin"))
        if len(tracked) > count:
            with open(self.rng.choice(tracked[:-count]), "ab") as f:
                f.write(self.rng.randbytes(70_000))

    def tree_digests(self, commit: str) -> dict[str, str]:
        """{path: sha256} of the working tree's files that `commit` tracks."""
        names = git(self.repo, "ls-tree", "-r", "--name-only", commit).stdout.split()
        return {n: sha256_file(self.repo / n) for n in names if n.endswith(".bin")}

    def commit_all(self, message: str) -> str:
        """The user's next ordinary command: `git add -A && git commit`; a refusal that names files to add
        again is followed to the letter. Returns HEAD."""
        _clear_stale_locks(self.repo)
        git(self.repo, "add", "-A")
        for _ in range(3):
            proc = git(self.repo, "commit", "-q", "-m", message, check=False)
            if proc.returncode == 0 or "nothing to commit" in proc.stdout + proc.stderr:
                break
            assert "Traceback" not in proc.stderr, proc.stderr
            named = RENORMALIZE.findall(proc.stderr)
            assert named, f"commit refused without saying what to do:\n{proc.stdout}\n{proc.stderr}"
            self.outcomes.append(f"re-added {named}")
            git(self.repo, "add", "--renormalize", "--", *named)
        else:
            raise AssertionError(f"commit still refused after following its advice:\n{proc.stderr}")
        head = git(self.repo, "rev-parse", "HEAD").stdout.strip()
        self.record(head)
        return head

    def record(self, commit: str):
        if commit not in self.committed:
            self.committed[commit] = self.tree_digests(commit)

    def push(self, branch: str = "main"):
        _clear_stale_locks(self.repo)
        proc = git(self.repo, "push", "-q", "origin", branch, check=False)
        assert proc.returncode == 0, f"the push after the kill failed:\n{proc.stderr}"

    def verify_fresh_clone(self, commits: list[str]):
        """A new clone of the remote checks out each of these commits with every file bit-identical."""
        self.serial += 1
        dest = self.tmp / f"clone{self.serial}"
        clone(self.url, dest)
        for commit in commits:
            git(dest, "checkout", "-q", "--detach", commit)
            for path, digest in self.committed[commit].items():
                assert (dest / path).exists(), f"{path} of {commit[:10]} is missing from a fresh clone"
                assert sha256_file(dest / path) == digest, f"{path} of {commit[:10]} differs in a fresh clone"
        run(["rm", "-rf", str(dest)])


def _clear_stale_locks(repo: Path):
    """What Git's own message tells the user after a crash ("Another git process seems to be running ...
    remove the file manually"): only lock files, never data."""
    for lock in [repo / ".git" / "index.lock", *(repo / ".git" / "refs").rglob("*.lock"),
                 repo / ".git" / "packed-refs.lock", repo / ".git" / "HEAD.lock"]:
        if lock.exists():
            lock.unlink()


def _kill_at_random(scene: Scene, args: list[str], budget: float, cwd: Path | None = None) -> str:
    """Start the command in its own process group; SIGKILL the whole group after a seeded random delay in
    [0, budget]; wait until nothing of it runs. Returns how it ended and when."""
    delay = scene.rng.uniform(0.0, budget)
    proc = subprocess.Popen(args, cwd=cwd or scene.repo, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=delay)
        ended = f"exited {proc.returncode} before {delay:.2f}s"
    except subprocess.TimeoutExpired:
        ended = f"killed at {delay:.2f}s"
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    assert "Traceback" not in stderr, stderr
    if proc.returncode not in (0, -signal.SIGKILL):
        ended += f" ({stderr.strip().splitlines()[-1] if stderr.strip() else 'no message'})"
    deadline = time.monotonic() + 60
    while _group_alive(proc.pid):
        assert time.monotonic() < deadline, "part of the killed process group is still running after 60 s"
        time.sleep(0.02)
    return ended


def _gc(path: Path):
    git(path, "reflog", "expire", "--expire=now", "--all")
    git(path, "gc", "-q", "--prune=now")


def _timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def _scene(tmp_path) -> Scene:
    scene = Scene(tmp_path, random.Random(SEED))
    scene.write_files()
    scene.commit_all("base")
    scene.push()
    return scene


def _finish(scene: Scene, report, command: str):
    """Every commit of every trial, from one more fresh clone."""
    scene.verify_fresh_clone(list(scene.committed))
    report(f"kill -9 of {command}: {len(scene.outcomes)} trials (seed {SEED}), 0 bytes lost in "
           f"{len(scene.committed)} commits; " + "; ".join(scene.outcomes))


def test_kill_git_add(tmp_path, slow, report):
    scene = _scene(tmp_path)
    scene.write_files()
    budget = 1.3 * _timed(lambda: git(scene.repo, "add", "-A"))
    scene.commit_all("calibration")
    scene.push()
    for trial in range(_trials(slow)):
        scene.write_files()
        ended = _kill_at_random(scene, ["git", "add", "-A"], budget)
        _gc(scene.repo)
        head = scene.commit_all(f"add trial {trial}")
        scene.push()
        scene.verify_fresh_clone([head])
        scene.outcomes.append(f"add {trial}: {ended}")
    _finish(scene, report, "git add")


def test_kill_git_commit(tmp_path, slow, report):
    scene = _scene(tmp_path)
    scene.write_files()
    git(scene.repo, "add", "-A")
    budget = 1.3 * _timed(lambda: git(scene.repo, "commit", "-q", "-m", "calibration"))
    scene.record(git(scene.repo, "rev-parse", "HEAD").stdout.strip())
    scene.push()
    for trial in range(_trials(slow)):
        before = git(scene.repo, "rev-parse", "HEAD").stdout.strip()
        scene.write_files()
        git(scene.repo, "add", *[p.name for p in scene.repo.glob("f*.bin")][-2:])   # some staged, the rest -a
        ended = _kill_at_random(scene, ["git", "commit", "-q", "-a", "-m", f"commit trial {trial}"], budget)
        _gc(scene.repo)
        after = git(scene.repo, "rev-parse", "HEAD").stdout.strip()
        if after != before:   # the commit landed before the kill: what it holds is committed
            scene.record(after)
        head = scene.commit_all(f"after commit trial {trial}")
        scene.push()
        scene.verify_fresh_clone(sorted({after, head}))
        scene.outcomes.append(f"commit {trial}: {ended}, {'landed' if after != before else 'did not land'}")
    _finish(scene, report, "git commit")


def test_kill_git_checkout(tmp_path, slow, report):
    scene = _scene(tmp_path)
    git(scene.repo, "checkout", "-q", "-b", "other")
    for path in scene.repo.glob("f*.bin"):
        path.unlink()
    scene.write_files(4)
    other = scene.commit_all("other")
    scene.push("other")
    main = git(scene.repo, "rev-parse", "main").stdout.strip()
    budget = 1.3 * _timed(lambda: git(scene.repo, "checkout", "-q", "main"))
    branches = {"main": main, "other": other}
    for trial in range(_trials(slow)):
        target = "other" if trial % 2 == 0 else "main"
        ended = _kill_at_random(scene, ["git", "checkout", "-q", target], budget)
        _gc(scene.repo)
        _clear_stale_locks(scene.repo)
        git(scene.repo, "checkout", "-q", "-f", target)   # the user runs it again
        for path, digest in scene.committed[branches[target]].items():
            assert sha256_file(scene.repo / path) == digest, f"{path} after checking out {target} again"
        assert git(scene.repo, "status", "--porcelain").stdout == ""
        scene.verify_fresh_clone([branches[target]])
        scene.outcomes.append(f"checkout {trial}: {ended}")
    _finish(scene, report, "git checkout")


def test_kill_git_push(tmp_path, slow, report):
    scene = _scene(tmp_path)
    scene.write_files()
    scene.commit_all("calibration")
    budget = 1.3 * _timed(scene.push)
    for trial in range(_trials(slow)):
        scene.write_files()
        head = scene.commit_all(f"push trial {trial}")
        ended = _kill_at_random(scene, ["git", "push", "-q", "origin", "main"], budget)
        _gc(scene.repo)
        _gc(scene.bare)
        scene.push()   # the user pushes again
        scene.verify_fresh_clone([head])
        scene.outcomes.append(f"push {trial}: {ended}")
    _finish(scene, report, "git push")


def test_kill_git_panini_work(tmp_path, slow, report):
    scene = _scene(tmp_path)
    work = ["git", "panini", "work", "--remote", "origin", "--effort", "1", "--lease", "1"]
    budget = 1.3 * _timed(lambda: run(work, cwd=scene.repo))
    for trial in range(_trials(slow)):
        scene.write_files()
        head = scene.commit_all(f"work trial {trial}")
        scene.push()
        ended = _kill_at_random(scene, work, budget)
        _gc(scene.repo)
        time.sleep(1.1)   # the killed worker's 1 s lease runs out
        proc = run(work, cwd=scene.repo, check=False)   # the user runs it again
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        scene.verify_fresh_clone([head])
        scene.outcomes.append(f"work {trial}: {ended}")
    notes = run(["git", "panini", "status", "--json"], cwd=scene.repo, check=False).stdout
    _finish(scene, report, "git panini work")
    assert "failed" not in notes


def _write_small_files(scene: Scene, count: int) -> None:
    """New random files of 1-40 KB in a few directories (the clean filter's write-ahead-log path), and edits
    of a few tracked ones."""
    tracked = sorted(scene.repo.glob("small/*/s*.bin"))
    for _ in range(count):
        scene.serial += 1
        path = scene.repo / "small" / f"d{scene.serial % 7}" / f"s{scene.serial}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(scene.rng.randbytes(scene.rng.randrange(1000, 40_000)))
    for path in scene.rng.sample(tracked, min(5, len(tracked))):
        with open(path, "ab") as f:
            f.write(scene.rng.randbytes(3000))


def _wal_left(repo: Path) -> bool:
    return any((repo / ".git" / "panini").glob("wal-*"))


def _kill_after_the_index_write(repo: Path):
    """`git add -A` killed -9 (git and its filter) right after Git wrote the index: every pointer is staged,
    the filter's session never committed, its data is only in its WAL."""
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    proc = subprocess.Popen(["git", "add", "-A"], cwd=repo, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while index.stat().st_mtime_ns == before and proc.poll() is None:
        time.sleep(0.001)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    while _group_alive(proc.pid):
        time.sleep(0.02)


def test_kill_git_add_of_many_small_files(tmp_path, slow, report):
    """kill -9 of `git add -A` of 150 small files at random moments (and once right after Git wrote the index),
    gc --prune=now at once, then `git add -A && git commit`: no file is ever reported lost (each pointer left the
    filter only once its data was in the WAL), and fresh clones read back every commit bit-identical,
    including the commit made before the first kill."""
    scene = Scene(tmp_path, random.Random(SEED + 1))
    _write_small_files(scene, 150)
    before_kills = scene.commit_all("small files before any kill")
    scene.push()
    _write_small_files(scene, 150)
    budget = 1.3 * _timed(lambda: git(scene.repo, "add", "-A"))
    scene.commit_all("calibration")
    scene.push()
    wal_left = 0
    for trial in range(_trials(slow) + 1):
        _write_small_files(scene, 150)
        if trial == 0:
            _kill_after_the_index_write(scene.repo)
            ended = "killed right after the index write"
        else:
            ended = _kill_at_random(scene, ["git", "add", "-A"], budget)
        left = _wal_left(scene.repo)
        wal_left += left
        _gc(scene.repo)
        head = scene.commit_all(f"small trial {trial}")
        assert not any(o.startswith("re-added") for o in scene.outcomes), scene.outcomes
        assert not _wal_left(scene.repo) and not list((scene.repo / ".git" / "objects" / "pack").glob("*.keep"))
        scene.push()
        scene.verify_fresh_clone([before_kills, head])
        scene.outcomes.append(f"small {trial}: {ended}{', WAL left' if left else ''}")
    assert wal_left, "no kill left a WAL behind: the test never hit the write-ahead-log path"
    _finish(scene, report, "git add of many small files")
