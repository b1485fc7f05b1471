"""Store-invariant conformance: seeded random sequences of real operations over real clones of a real remote.

Actors are clones of one bare remote (reached through file://), each with `git panini install`; the first
creates the repository (`git panini install`, `git panini track "*.bin"`). A seeded random.Random picks one
operation per step: add (fresh random or text-like data, small edits of existing files so chunks dedup,
identical copies), commit (also `commit -a`), reset of a staged path, reset --hard (+ clean), branch/switch,
merge of another branch (conflicts resolved by taking one side), push (plain `git push`: the pre-push hook
publishes the data; sometimes `git panini push`), fetch, pull --no-rebase (sometimes `git panini pull` or
`checkout`), clone (a new actor), `git panini work`, `git panini prune` (+ gc), kill -9 of the process group
of an add/commit/push/work (after 0-300 ms, or aimed: at the end of the command, or just after git wrote
the index), reflog expire + gc --prune=now in an actor (also right after a kill) or in the remote, and a
second process (a worker or a fetch) running in the same clone while another operation runs there. Only
real `git` and `git panini` commands run, as subprocesses; nothing of git_panini is imported.

The harness keeps its own model: for every actor the contents of HEAD, of the index and of the working
tree (sha256 of every .bin path, known from the bytes it wrote), and for every commit any actor created
the sha256 of each of its files (recorded when the commit is made, from the bytes that were staged).
Every commit's tree is checked against the model when it is created (the pointer's `oid sha256:` in
panini mode, the blob itself in plain mode); the working tree is hashed after every checkout, switch,
merge, pull and reset --hard (the smudge must write exactly the modelled bytes); after a killed add,
a prune and a gc, the staged changes must still read back (`git checkout-index` into a scratch dir).

Invariants, at checkpoints and at the end:
  1. every commit reachable from the remote's branches (all successfully pushed commits, and those a
     killed push managed to publish) reads back bit-identical from a FRESH clone (global filter only,
     `git clone`; every pointer of every such commit matches the model, `git panini verify` of every
     branch, `git checkout` of the branch tips and a sample of commits, all of them at the end with
     --slow), after `git gc --prune=now` in the remote;
  2. no content that was staged and then reset away without ever being committed anywhere has reached
     the remote: every object the remote holds (reachable or not, before its gc) is scanned for 256-byte
     windows of such contents' distinctive random bytes, and their manifests must be absent;
  3. `git panini fsck` exits 0 in every actor (and in the fresh clone) at the end.
Unexpected command failures (a push refused for another reason than non-fast-forward, a failing worker,
a missing `git panini` command, ...) are collected and fail the test at the end; losing a race for one of
git's own locks to the concurrent second process is tolerated (git does the same).

A hostile collaborator (operation `hostile`, panini mode only) attacks the remote's panini refs between
honest steps with plumbing only, from a bare clone of its own (`hash-object -w`, a temporary index,
`commit-tree`, `push`, force-push): it publishes the manifest of a file an honest actor adds next (cleaned in
a scratch repository of its own; make_change then writes that very content), swaps a raw batch's list to
name other chunks, adds a lying recipe (claims a listed file's chunks; its data, zeros or random bytes, sits
under a real refs/panini/packs/<c> with a list that proves it, sometimes with a `completed` note), sets
notes to `completed` or garbage, pushes a lock ref with a hostile path (traversal, absolute, .git/,
newline, 3000 bytes, or a malformed record), deletes some or all refs/panini/raw/* or refs/panini/packs/*,
or force-pushes refs/panini/store or refs/notes/panini back to an older commit. After a list swap, a
deletion or a rewind the remote has lost data until a clone that holds it repairs: the next honest step
(half the time) first runs `git panini push --repair` in its actor (exit 1 naming files "not here" is
tolerated: that clone lacks them, another must supply them), plain pushes repair by themselves where
they notice, and before every checkpoint each actor runs `git panini push --repair` once and
`git panini fsck --remote` must then exit 0. Invariants 1-3 are unchanged under attack: fresh clones
read every pushed commit bit-identical, manifests the attacker published are not leaks, and plain
`git panini fsck` exits 0 in every actor, attacked or not (hostile notes, recipes and manifests are at
most warnings there; `fsck --full` may name a lying pack, which is not run). Locks are advisory: the
attacker never locks a path an honest actor uses.

Replay: the seed is printed; a failure prints it with the operation log (the full log is written to
conformance.log in the test's tmp dir). Run one seed again with
    PANINI_CONFORMANCE_SEED=<seed> [PANINI_CONFORMANCE_STEPS=<n>] pytest tests/test_conformance.py -k 'test_conformance[' -s
(kill points depend on timing, so a replay repeats the operation sequence, not every kill instant).
PANINI_CONFORMANCE_WEIGHTS="kill:80,merge:20" changes operation weights (e.g. to hunt crash bugs).
PANINI_CONFORMANCE_PLAIN=1 runs the same harness with no panini at all (files are ordinary git blobs,
panini-only operations are skipped): a self-check of the harness, which must always pass;
test_conformance_harness_plain_git runs it in CI. `--slow` runs more seeds and steps, and one long run
with bigger files and four actors.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shlex
import signal
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import MiB, make_bare

KiB = 1024
WINDOW = 256                     # bytes of a leak-detection window
SAMPLE_STEP = 64                 # the scan looks up one 16-byte key every SAMPLE_STEP bytes of a blob
KEY = 16

SEED_ENV = "PANINI_CONFORMANCE_SEED"
STEPS_ENV = "PANINI_CONFORMANCE_STEPS"
PLAIN_ENV = "PANINI_CONFORMANCE_PLAIN"
WEIGHTS_ENV = "PANINI_CONFORMANCE_WEIGHTS"   # e.g. "kill:30,add:10": focus a run on some operations

CI_SEEDS = (11, 22, 33)
CI_STEPS = 70                     # 3 x 70 = 210 steps in CI
SLOW_SEEDS = tuple(range(1001, 1009))
SLOW_STEPS = 300                  # 8 x 300 = 2400 steps with --slow
BRANCHES = ("main", "topic", "feature")
SHARED_NAMES = tuple(f"shared/s{i}.bin" for i in range(4))   # paths several actors create: add/add conflicts
DIRS = ("", "data/", "data/deep/")
# git's messages when another process holds (or just moved) a ref or the index
LOCK_CONFLICTS = ("cannot lock ref", "Unable to create", "unable to create", ".lock': File exists", "but expected")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


class Failure(Exception):
    """An invariant does not hold (or the harness can no longer model the repositories)."""


@dataclass
class Content:
    size: int
    kind: str
    windows: list[bytes] = field(default_factory=list)   # distinctive 256-byte pieces (leak detection)
    manifests: set[str] = field(default_factory=set)     # manifest ids the clean filter gave it (panini)
    staged_at: list[str] = field(default_factory=list)   # where it was staged: "step 12 b:data/f6.bin"


@dataclass
class Actor:
    name: str
    path: Path
    branch: str = "main"
    head: str = ""
    index: dict[str, str] = field(default_factory=dict)   # path -> sha256 of the staged content
    wt: dict[str, str] = field(default_factory=dict)      # path -> sha256 of the file on disk (tracked or not)


class Harness:
    def __init__(self, tmp: Path, seed: int, steps: int, plain: bool, max_actors: int = 3,
                 max_size: int = 2 * MiB, big_share: float = 0.08, checkpoints: int = 2,
                 final_checkout_all: bool = False):
        self.tmp = tmp
        self.seed = seed
        self.steps = steps
        self.plain = plain
        self.max_actors = max_actors
        self.max_size = max_size
        self.big_share = big_share
        self.final_checkout_all = final_checkout_all
        self.checkpoint_at = {steps * (i + 1) // checkpoints for i in range(checkpoints)}
        self.rng = random.Random(seed)
        self.remote, self.url = make_bare(tmp)
        self.actors: list[Actor] = []
        self.contents: dict[str, Content] = {}
        self.commits: dict[str, dict[str, str]] = {}
        self.staged: set[str] = set()         # contents ever staged (or maybe staged, when an add was killed)
        self.committed: set[str] = set()      # contents in some commit of some actor
        self.pushed: set[str] = set()         # commits a `git push` reported as pushed
        self.anomalies: list[str] = []
        self.violations: list[str] = []       # checkpoint findings (the run goes on: the model is still valid)
        self.missing_commands: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.log_lines: list[str] = []
        self.step_no = -1
        self.file_no = 0
        self.durations: dict[str, float] = {}    # typical seconds of add/commit/push/work here (aims the kills)
        self.weights = dict(self.OPS)
        for item in filter(None, os.environ.get(WEIGHTS_ENV, "").split(",")):
            name, _, weight = item.partition(":")
            if name not in self.weights:
                raise ValueError(f"{WEIGHTS_ENV}: no operation {name!r} (there are {', '.join(self.weights)})")
            self.weights[name] = float(weight)
        self.mtime = 1_500_000_000
        self.fresh_no = 0
        self.cmd_timeout = 300
        words = []
        for _ in range(3000):
            words.append(bytes(self.rng.choices(b"etaoinshrdlucmfwypvbgkjqxz", k=self.rng.randint(2, 10))))
        self.words = words
        self.verifier_env = None
        self.hostile_repo: Path | None = None
        self.hostile_manifests: set[str] = set()   # manifests the hostile actor published (not a leak)
        self.predicted: list[tuple[bytes, list[bytes]]] = []   # contents whose manifest it forged ahead
        self.damaged: list[str] = []               # deleting or rewinding attacks no honest repair followed yet
        self.repair_due = False                    # such an attack since the last checkpoint
        if plain:
            self.weights["hostile"] = 0
        self.background = False        # a second process runs in an actor: no lock is stale then

    # --- logging and commands ------------------------------------------------------------------------

    def log(self, line: str):
        self.log_lines.append(line)

    def count(self, what: str):
        self.counts[what] = self.counts.get(what, 0) + 1

    def anomaly(self, actor: Actor | None, what: str, proc: subprocess.CompletedProcess | None = None):
        detail = ""
        if proc is not None:
            err = (proc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            out = (proc.stdout or b"").decode("utf-8", "replace").strip().splitlines()
            detail = f" (exit {proc.returncode}): " + " | ".join((err or out)[-3:])
        line = f"step {self.step_no} actor {actor.name if actor else '-'}: {what}{detail}"
        self.anomalies.append(line)
        self.log(f"    ANOMALY {line}")

    def run(self, args, cwd, env=None, input: bytes | None = None, timeout: float | None = None,
            quiet: bool = False) -> subprocess.CompletedProcess:
        """Run a command in its own process group; a hang is a failure (the group is killed)."""
        args = [str(a) for a in args]
        started = time.monotonic()
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(input, timeout=timeout or self.cmd_timeout)
        except subprocess.TimeoutExpired:
            _killpg(proc)
            out, err = proc.communicate()
            self.log(f"    $ {shlex.join(args)}  -> HUNG")
            raise Failure(f"{shlex.join(args)} (in {cwd}) ran over {timeout or self.cmd_timeout}s") from None
        if not quiet:
            tail = ""
            if proc.returncode != 0:
                lines = (err or out).decode("utf-8", "replace").strip().splitlines()
                tail = "  | " + " | ".join(lines[-2:]) if lines else ""
            where = Path(cwd).name if cwd else "-"
            self.log(f"    [{where}] $ {shlex.join(args)} -> {proc.returncode} ({time.monotonic() - started:.2f}s){tail}")
        return subprocess.CompletedProcess(args, proc.returncode, out, err)

    def timed(self, kind: str, cmd: list[str], actor: Actor) -> subprocess.CompletedProcess:
        """Run a command a kill may later target, and remember how long it usually takes."""
        started = time.monotonic()
        proc = self.run(cmd, actor.path)
        if proc.returncode == 0 and not self.background:
            took = time.monotonic() - started
            self.durations[kind] = took if kind not in self.durations else 0.7 * self.durations[kind] + 0.3 * took
        return proc

    def git(self, cwd, *args, **kw) -> subprocess.CompletedProcess:
        return self.run(["git", *args], cwd, **kw)

    def must(self, cwd, *args, quiet: bool = True, **kw) -> bytes:
        """A harness-internal git command that has to work (rev-parse, ls-tree, ...)."""
        proc = self.run(["git", *args], cwd, quiet=quiet, **kw)
        if proc.returncode != 0:
            raise Failure(f"git {shlex.join(args)} failed in {cwd} (exit {proc.returncode}): "
                          + proc.stderr.decode("utf-8", "replace").strip()[-800:])
        return proc.stdout

    def expect_ok(self, actor: Actor, proc: subprocess.CompletedProcess, what: str, concurrent: bool = False) -> bool:
        """A command that should succeed; a failure is an anomaly (a missing panini command is noted once)."""
        if proc.returncode == 0:
            return True
        text = (proc.stderr + proc.stdout).decode("utf-8", "replace")
        if (self.background or concurrent) and any(m in text for m in LOCK_CONFLICTS):
            # Two processes in one clone raced for one of git's own locks: git fails one of them too.
            self.count("lock conflicts between concurrent processes")
            self.log("    (lost a race for a git lock to the concurrent process: tolerated)")
            return False
        if "No such command" in text and proc.args[:2] == ["git", "panini"]:
            self.missing_commands.setdefault(proc.args[2], text.strip().splitlines()[-1] if text.strip() else "")
            self.log(f"    (git panini {proc.args[2]} does not exist)")
            return False
        self.anomaly(actor, what, proc)
        return False

    def panini_available(self, command: str) -> bool:
        return not self.plain and command not in self.missing_commands

    # --- content -------------------------------------------------------------------------------------

    def _size(self) -> int:
        r = self.rng.random()
        if r < self.big_share:
            return self.rng.randint(200 * KiB, self.max_size)
        if r < 0.55:
            return self.rng.randint(1 * KiB, 48 * KiB)
        return self.rng.randint(48 * KiB, 200 * KiB)

    def _random_bytes(self, n: int) -> bytes:
        if self.rng.random() < 0.7:
            return self.rng.randbytes(n)
        words = self.rng.choices(self.words, k=n // 5 + 8)   # text-like: compressible, still unique per 256 bytes
        return b" ".join(words)[:n]

    def register(self, data: bytes, kind: str, windows: list[bytes]) -> str:
        sha = hashlib.sha256(data).hexdigest()
        c = self.contents.get(sha)
        if c is None:
            self.contents[sha] = Content(len(data), kind, windows[:8])
        else:
            c.windows.extend(w for w in windows if w not in c.windows)
        return sha

    def fresh_data(self) -> tuple[bytes, list[bytes]]:
        data = self._random_bytes(self._size())
        windows = []
        if len(data) >= WINDOW:
            for _ in range(4):
                o = self.rng.randrange(len(data) - WINDOW + 1)
                windows.append(data[o:o + WINDOW])
        return data, windows

    def edited_data(self, old: bytes, old_sha: str) -> tuple[bytes, list[bytes], str]:
        """A small edit of `old`: most chunks stay the same (dedup); the new bytes are distinctive."""
        kind = self.rng.choice(("replace", "replace", "insert", "append", "truncate"))
        n = self.rng.choice((self.rng.randint(1, 64), self.rng.randint(WINDOW, 8 * KiB)))
        piece = self.rng.randbytes(n)
        off = self.rng.randrange(len(old) + 1)
        if kind == "replace":
            data = old[:off] + piece + old[off + n:]
        elif kind == "insert":
            data = old[:off] + piece + old[off:]
        elif kind == "append":
            data = old + piece
        else:
            data = old[:self.rng.randint(max(1, len(old) // 2), max(1, len(old) - 1))]
            piece = b""
        parent = self.contents.get(old_sha)
        windows = [w for w in (parent.windows if parent else []) if w in data]
        if len(piece) >= WINDOW:
            o = self.rng.randrange(len(piece) - WINDOW + 1)
            windows.append(piece[o:o + WINDOW])
        return data, windows, kind

    def write(self, actor: Actor, rel: str, data: bytes, kind: str, windows: list[bytes]) -> str:
        sha = self.register(data, kind, windows)
        path = actor.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if self.rng.random() < 0.8:
            # A distinct mtime in the past: git still sees every change (the stat data differs), and does not
            # run the clean filter again at commit time for an entry it considers racily clean.
            self.mtime += 1
            os.utime(path, (self.mtime, self.mtime))
        actor.wt[rel] = sha
        return sha

    def new_path(self) -> str:
        if self.rng.random() < 0.12:
            return self.rng.choice(SHARED_NAMES)
        self.file_no += 1
        return f"{self.rng.choice(DIRS)}f{self.file_no}.bin"

    def make_change(self, actor: Actor) -> tuple[str, str]:
        """Write one file in the actor's working tree; returns (path, description)."""
        existing = sorted(actor.wt)
        r = self.rng.random()
        crowded = len(existing) >= 30
        if existing and (r < 0.40 or crowded and r < 0.85):       # edit an existing file (same or new path)
            src = self.rng.choice(existing)
            old = (actor.path / src).read_bytes()
            if hashlib.sha256(old).hexdigest() != actor.wt[src]:
                raise Failure(f"{actor.name}:{src} on disk is not what the model says it is")
            data, windows, kind = self.edited_data(old, actor.wt[src])
            dst = src if crowded or self.rng.random() < 0.7 else self.new_path()
            self.write(actor, dst, data, "edit", windows)
            return dst, f"{dst} ({kind} edit of {src}, {len(data)} B)"
        if existing and r < 0.50:                                   # identical copy
            src = self.rng.choice(existing)
            data = (actor.path / src).read_bytes()
            dst = self.new_path() if not crowded else self.rng.choice(existing)
            self.write(actor, dst, data, "copy", [])
            return dst, f"{dst} (copy of {src}, {len(data)} B)"
        predicted = bool(self.predicted) and self.rng.random() < 0.7
        data, windows = self.predicted.pop(0) if predicted else self.fresh_data()
        dst = self.rng.choice(existing) if existing and (crowded or r < 0.6) else self.new_path()
        self.write(actor, dst, data, "fresh", windows)
        return dst, f"{dst} ({'the hostile actor predicted it' if predicted else 'fresh'}, {len(data)} B)"

    # --- reading what git stored -------------------------------------------------------------------

    def blob_hashes(self, cwd, oids) -> dict[str, tuple[str, str | None]]:
        """{blob oid: (sha256 of the file it stands for, manifest or None)}: the pointer's oid (panini) or the blob."""
        unique = sorted(set(oids))
        if not unique:
            return {}
        out = self.must(cwd, "cat-file", "--batch", input="".join(o + "\n" for o in unique).encode())
        result, pos = {}, 0
        while pos < len(out):
            nl = out.index(b"\n", pos)
            header = out[pos:nl].decode().split()
            if header[-1] == "missing":
                raise Failure(f"blob {header[0]} is missing in {cwd}")
            oid, size = header[0], int(header[2])
            data = out[nl + 1:nl + 1 + size]
            pos = nl + 1 + size + 1
            if self.plain:
                result[oid] = (hashlib.sha256(data).hexdigest(), None)
            elif data.startswith(b"version git-panini/"):
                fields = dict(line.split(b" ", 1) for line in data.splitlines()[1:] if b" " in line)
                sha = fields.get(b"oid", b"").decode()
                if not sha.startswith("sha256:"):
                    raise Failure(f"pointer blob {oid} in {cwd} has no sha256 oid: {data[:300]!r}")
                result[oid] = (sha[7:], fields.get(b"manifest", b"").decode() or None)
            else:
                result[oid] = (hashlib.sha256(data).hexdigest(), None)
                self.anomaly(None, f"blob {oid} in {Path(cwd).name} is a raw file, not a pointer "
                                   f"({size} bytes): the filter did not run")
        return result

    def tree_model(self, cwd, rev: str) -> dict[str, str]:
        out = self.must(cwd, "ls-tree", "-r", "-z", rev)
        entries = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            _, kind, oid = meta.decode().split()
            name = name.decode()
            if kind == "blob" and name.endswith(".bin"):
                entries[name] = oid
        hashes = self.blob_hashes(cwd, entries.values())
        return {name: hashes[oid][0] for name, oid in entries.items()}

    def index_model(self, actor: Actor, with_manifests: bool = False):
        out = self.must(actor.path, "ls-files", "-s", "-z")
        entries = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            _, oid, stage = meta.decode().split()
            name = name.decode()
            if not name.endswith(".bin"):
                continue
            if stage != "0":
                raise Failure(f"{actor.name}: {name} is unmerged (stage {stage}) where no merge is in progress")
            entries[name] = oid
        hashes = self.blob_hashes(actor.path, entries.values())
        model = {name: hashes[oid][0] for name, oid in entries.items()}
        if with_manifests:
            return model, {name: hashes[oid][1] for name, oid in entries.items()}
        return model

    def rev(self, cwd, rev: str) -> str:
        return self.must(cwd, "rev-parse", "--verify", "-q", rev + "^{commit}").decode().strip()

    def known(self, commit: str, where: str) -> dict[str, str]:
        if commit not in self.commits:
            raise Failure(f"{where}: commit {commit} is not one any actor made (the model does not know it)")
        return self.commits[commit]

    def worktree(self, actor: Actor) -> dict[str, str]:
        found = {}
        for root, dirs, files in os.walk(actor.path):
            if root == str(actor.path):
                dirs[:] = [d for d in dirs if d != ".git"]
            for name in files:
                if name.endswith(".bin"):
                    full = os.path.join(root, name)
                    rel = os.path.relpath(full, actor.path).replace(os.sep, "/")
                    with open(full, "rb") as f:
                        found[rel] = hashlib.sha256(f.read()).hexdigest()
        return found

    def check_worktree(self, actor: Actor, expected: dict[str, str] | None = None, what: str = ""):
        expected = actor.wt if expected is None else expected
        found = self.worktree(actor)
        if found == expected:
            return
        problems = []
        for p in sorted(set(found) | set(expected)):
            if p not in found:
                problems.append(f"{p}: missing")
            elif p not in expected:
                problems.append(f"{p}: unexpected file")
            elif found[p] != expected[p]:
                data = (actor.path / p).read_bytes()
                known = "a pointer, not the data" if data.startswith(b"version git-panini/") else (
                    "a different known content" if found[p] in self.contents else "bytes nobody wrote")
                problems.append(f"{p}: sha256 {found[p][:12]} ({known}, {len(data)} B), expected {expected[p][:12]}")
        raise Failure(f"{actor.name}: the working tree {what} differs from the model: " + "; ".join(problems[:10]))

    def validate_commit(self, actor: Actor, commit: str, expected: dict[str, str], what: str):
        got = self.tree_model(actor.path, commit)
        if got != expected:
            diff = [f"{p}: tree {got.get(p, '-')[:12]} model {expected.get(p, '-')[:12]}"
                    for p in sorted(set(got) | set(expected)) if got.get(p) != expected.get(p)]
            raise Failure(f"{actor.name}: {what} {commit[:12]} does not hold what was committed: " + "; ".join(diff[:10]))

    def set_commit(self, commit: str, model: dict[str, str]):
        self.commits[commit] = dict(model)
        self.committed.update(model.values())

    # --- actors --------------------------------------------------------------------------------------

    def dirty(self, actor: Actor) -> bool:
        head = self.commits[actor.head]
        return actor.index != head or actor.wt != head

    def remove_stale_locks(self):
        """What a user does after a crash: remove the lock files git itself left behind (never panini's own)."""
        if self.background:
            return
        for actor in self.actors:
            git_dir = actor.path / ".git"
            for lock in [*git_dir.glob("*.lock"), *(git_dir / "refs").rglob("*.lock")]:
                lock.unlink(missing_ok=True)
                self.log(f"    removed stale {lock.relative_to(self.tmp)}")
        for lock in [*self.remote.glob("*.lock"), *(self.remote / "refs").rglob("*.lock")]:
            lock.unlink(missing_ok=True)
            self.log(f"    removed stale {lock.relative_to(self.tmp)}")

    def setup(self):
        first = Actor("a", self.tmp / "actor-a")
        self.must(self.tmp, "init", "-q", str(first.path))
        if self.plain:
            (first.path / ".gitattributes").write_text("*.bin binary\n")
        else:
            self.must(first.path, "panini", "install", quiet=False)
            self.must(first.path, "panini", "track", "*.bin", quiet=False)
        self.must(first.path, "add", ".gitattributes")
        self.must(first.path, "commit", "-q", "-m", "track *.bin")
        self.must(first.path, "remote", "add", "origin", self.url)
        self.actors.append(first)
        first.head = self.rev(first.path, "HEAD")
        self.set_commit(first.head, {})
        proc = self.git(first.path, "push", "-q", "-u", "origin", "main")
        if proc.returncode != 0:
            raise Failure("the first push failed: " + proc.stderr.decode("utf-8", "replace")[-800:])
        self.pushed.add(first.head)
        self.clone_actor()
        # The fresh clones of the checks: a user with only the global filter.
        home = self.tmp / "verifier-home"
        home.mkdir()
        (home / ".gitconfig").write_bytes((Path(os.environ["HOME"]) / ".gitconfig").read_bytes())
        self.verifier_env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        if not self.plain:
            proc = self.run(["git", "panini", "install", "--global"], home, env=self.verifier_env)
            if proc.returncode != 0:
                raise Failure("git panini install --global failed: " + proc.stderr.decode()[-500:])

    def clone_actor(self) -> Actor:
        name = "abcdefgh"[len(self.actors)]
        actor = Actor(name, self.tmp / f"actor-{name}")
        self.log(f"  clone -> actor {name}")
        # The repository-local install needs a repository: clone without checkout, install, then check out.
        self.must(self.tmp, "clone", "-q", "--no-checkout", self.url, str(actor.path), quiet=False)
        if not self.plain:
            self.must(actor.path, "panini", "install", quiet=False)
        self.actors.append(actor)
        proc = self.git(actor.path, "checkout", "-q", "-f", "main")
        if proc.returncode != 0:
            self.anomaly(actor, "checkout of a new clone failed", proc)
        actor.branch = "main"
        actor.head = self.rev(actor.path, "HEAD")
        model = self.known(actor.head, f"clone {name}")
        actor.index, actor.wt = dict(model), dict(model)
        self.check_worktree(actor, what="after clone")
        return actor

    def recover(self, actor: Actor, why: str):
        """After an unexpected failure: back to a clean checkout of HEAD, whatever it costs."""
        self.log(f"    recover {actor.name} ({why})")
        self.remove_stale_locks()
        if (actor.path / ".git" / "MERGE_HEAD").exists():
            self.git(actor.path, "merge", "--abort")
        proc = self.git(actor.path, "reset", "-q", "--hard")
        if proc.returncode != 0:
            raise Failure(f"{actor.name}: git reset --hard fails after {why}: "
                          + proc.stderr.decode("utf-8", "replace")[-600:])
        self.git(actor.path, "clean", "-fdq")
        branch = self.run(["git", "symbolic-ref", "-q", "--short", "HEAD"], actor.path, quiet=True).stdout.decode().strip()
        actor.branch = branch or actor.branch
        head = self.rev(actor.path, "HEAD")
        if head not in self.commits:
            raise Failure(f"{actor.name}: HEAD {head} after {why} is no commit the model knows")
        actor.head = head
        actor.index, actor.wt = dict(self.commits[head]), dict(self.commits[head])
        self.check_worktree(actor, what=f"after reset --hard (recovering from {why})")

    def resync_index(self, actor: Actor, maybe: dict[str, str], what: str):
        """Read the index after a killed or failed command: each path holds its modelled or its new content."""
        got, manifests = self.index_model(actor, with_manifests=True)
        for p in sorted(set(got) | set(actor.index)):
            allowed = {actor.index.get(p), maybe.get(p)} if p in maybe else {actor.index.get(p)}
            if got.get(p) not in allowed:
                raise Failure(f"{actor.name}: after {what} the index holds {p} = {str(got.get(p))[:12]}, "
                              f"expected one of {[str(a)[:12] for a in allowed]}")
        actor.index = got
        self.note_manifests(got, manifests)

    def mark_staged(self, actor: Actor, paths: dict[str, str]):
        for p, sha in paths.items():
            self.staged.add(sha)
            self.contents[sha].staged_at.append(f"step {self.step_no} {actor.name}:{p}")

    def note_manifests(self, model: dict[str, str], manifests: dict[str, str | None]):
        for p, m in manifests.items():
            if m and model[p] in self.contents:
                self.contents[model[p]].manifests.add(m)

    def make_clean(self, actor: Actor):
        """Before switch/merge/pull: commit the staged work or drop it, and remove untracked files."""
        if not self.dirty(actor):
            return
        head = self.commits[actor.head]
        if actor.index != head and self.rng.random() < 0.5:
            self.do_commit(actor, allow_all=False)
        if self.dirty(actor):
            self.do_reset_hard(actor, clean=True)

    # --- operations ----------------------------------------------------------------------------------

    def op_add(self, actor: Actor):
        changes = [self.make_change(actor) for _ in range(self.rng.choice((1, 1, 1, 2, 3)))]
        paths = sorted({p for p, _ in changes})
        self.log(f"  {actor.name}: add " + ", ".join(d for _, d in changes))
        cmd = ["git", "add", "--", *paths]
        if not self.plain and self.rng.random() < 0.06:
            cmd = ["git", "panini", "add", *paths]
        proc = self.timed("add" if len(paths) == 1 else "add-many", cmd, actor)
        new = {p: actor.wt[p] for p in paths}
        self.mark_staged(actor, new)
        if not self.expect_ok(actor, proc, "add failed"):
            self.resync_index(actor, new, "a failed add")
            return
        actor.index.update(new)
        got, manifests = self.index_model(actor, with_manifests=True)
        if got != actor.index:
            bad = [p for p in sorted(set(got) | set(actor.index)) if got.get(p) != actor.index.get(p)]
            raise Failure(f"{actor.name}: after git add the index disagrees with what was written: {bad[:10]}")
        self.note_manifests(got, manifests)

    def do_commit(self, actor: Actor, allow_all: bool = True):
        head = self.commits[actor.head]
        use_all = allow_all and self.rng.random() < 0.2
        staged = dict(actor.index)
        if use_all:
            for p in staged:
                if p in actor.wt and actor.wt[p] != staged[p]:
                    staged[p] = actor.wt[p]
        if staged == head:
            self.op_add(actor)
            use_all, staged = False, dict(actor.index)
            if staged == head:
                return
        self.log(f"  {actor.name}: commit{' -a' if use_all else ''} on {actor.branch}")
        old = actor.head
        cmd = ["git", "commit", "-q", *(["-a"] if use_all else []), "-m", f"step {self.step_no}"]
        proc = self.timed("commit", cmd, actor)
        if proc.returncode != 0 and not self.plain and self.readd_lost(actor, "commit", proc.stderr.decode("utf-8", "replace")):
            proc = self.timed("commit", cmd, actor)
        if use_all:
            self.mark_staged(actor, {p: s for p, s in staged.items() if actor.index.get(p) != s})
        if not self.expect_ok(actor, proc, "commit failed"):
            self.after_commit_attempt(actor, old, staged, "a failed commit")
            return
        actor.index = staged
        self.after_commit_attempt(actor, old, staged, "commit")

    def after_commit_attempt(self, actor: Actor, old: str, staged: dict[str, str], what: str):
        head = self.rev(actor.path, "HEAD")
        if head != old:
            parents = self.must(actor.path, "rev-list", "--parents", "-n", "1", head).decode().split()[1:]
            if parents != [old]:
                raise Failure(f"{actor.name}: after {what} HEAD {head[:12]} has parents {parents}, expected [{old[:12]}]")
            self.validate_commit(actor, head, staged, what)
            self.set_commit(head, staged)
            actor.head = head
            actor.index = dict(staged)
            self.count("commits")
        else:
            self.resync_index(actor, staged, what)

    def op_commit(self, actor: Actor):
        self.do_commit(actor)

    def op_reset_path(self, actor: Actor):
        head = self.commits[actor.head]
        staged = [p for p in sorted(actor.index) if actor.index[p] != head.get(p)]
        if not staged:
            self.op_add(actor)
            staged = [p for p in sorted(actor.index) if actor.index[p] != head.get(p)]
            if not staged:
                return
        path = self.rng.choice(staged)
        self.log(f"  {actor.name}: unstage {path}")
        proc = self.git(actor.path, "reset", "-q", "--", path)
        if not self.expect_ok(actor, proc, "git reset <path> failed"):
            self.recover(actor, "a failed git reset <path>")
            return
        if path in head:
            actor.index[path] = head[path]
        else:
            del actor.index[path]
        got = self.index_model(actor)
        if got != actor.index:
            raise Failure(f"{actor.name}: after git reset {path} the index disagrees with the model")

    def do_reset_hard(self, actor: Actor, clean: bool | None = None):
        clean = self.rng.random() < 0.6 if clean is None else clean
        self.log(f"  {actor.name}: reset --hard{' + clean' if clean else ''}")
        head = self.commits[actor.head]
        proc = self.git(actor.path, "reset", "-q", "--hard")
        if not self.expect_ok(actor, proc, "git reset --hard failed"):
            self.recover(actor, "a failed reset --hard")
            return
        wt = dict(head)
        if clean:
            proc = self.git(actor.path, "clean", "-fdq")
            if not self.expect_ok(actor, proc, "git clean failed"):
                self.recover(actor, "a failed git clean")
                return
        else:
            for p, sha in actor.wt.items():   # untracked files stay
                if p not in actor.index and p not in head:
                    wt[p] = sha
        actor.index, actor.wt = dict(head), wt
        self.check_worktree(actor, what="after reset --hard")

    def op_reset_hard(self, actor: Actor):
        if not self.dirty(actor):
            self.op_add(actor)
        self.do_reset_hard(actor)

    def local_branches(self, actor: Actor) -> dict[str, str]:
        out = self.must(actor.path, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        return dict(line.split() for line in out.decode().splitlines())

    def remote_branches(self, actor: Actor) -> dict[str, str]:
        out = self.must(actor.path, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/remotes/origin")
        return {n.split("/", 1)[1]: o for n, o in (line.split() for line in out.decode().splitlines())
                if n != "origin/HEAD" and n != "origin"}

    def after_checkout(self, actor: Actor, what: str):
        head = self.rev(actor.path, "HEAD")
        model = self.known(head, f"{actor.name} {what}")
        actor.head = head
        actor.index, actor.wt = dict(model), dict(model)
        self.check_worktree(actor, what=f"after {what}")

    def op_switch(self, actor: Actor):
        self.make_clean(actor)
        local, remote = self.local_branches(actor), self.remote_branches(actor)
        choices = [("create", b) for b in BRANCHES if b not in local and b not in remote]
        choices += [("local", b) for b in local if b != actor.branch]
        choices += [("remote", b) for b in remote if b not in local]
        if not choices:
            return
        how, branch = self.rng.choice(choices)
        self.log(f"  {actor.name}: switch to {branch} ({how})")
        proc = self.git(actor.path, "switch", "-q", *(["-c"] if how == "create" else []), branch)
        if not self.expect_ok(actor, proc, f"git switch {branch} failed"):
            self.recover(actor, "a failed switch")
            return
        actor.branch = branch
        self.after_checkout(actor, f"switch to {branch}")

    def op_merge(self, actor: Actor):
        self.make_clean(actor)
        candidates = [b for b, o in self.local_branches(actor).items() if b != actor.branch and o != actor.head]
        candidates += [f"origin/{b}" for b, o in self.remote_branches(actor).items() if o != actor.head]
        if not candidates:
            return
        other = self.rng.choice(sorted(candidates))
        no_ff = self.rng.random() < 0.3
        self.log(f"  {actor.name}: merge {other} into {actor.branch}{' --no-ff' if no_ff else ''}")
        self.known(self.rev(actor.path, other), f"{actor.name} merge of {other}")
        proc = self.git(actor.path, "merge", "-q", "--no-edit", *(["--no-ff"] if no_ff else []), other)
        self.finish_merge(actor, proc, f"merge {other}")

    def op_pull(self, actor: Actor):
        self.make_clean(actor)
        remote = self.remote_branches(actor)
        command = self.rng.choice(("pull", "checkout"))
        if not self.plain and self.rng.random() < 0.15 and self.panini_available(command):
            # Both materialize pointer files of the working tree; here every file is real already.
            self.log(f"  {actor.name}: git panini {command}")
            proc = self.run(["git", "panini", command], actor.path)
            if self.expect_ok(actor, proc, f"git panini {command} failed"):
                self.check_worktree(actor, what=f"after git panini {command}")
            return
        if actor.branch not in remote:
            self.op_fetch(actor)
            return
        self.log(f"  {actor.name}: pull --no-rebase origin {actor.branch}")
        proc = self.git(actor.path, "pull", "-q", "--no-rebase", "--no-edit", "origin", actor.branch)
        self.finish_merge(actor, proc, f"pull of {actor.branch}")

    def finish_merge(self, actor: Actor, proc: subprocess.CompletedProcess, what: str):
        old = actor.head
        chosen: dict[str, str] = {}
        if proc.returncode != 0:
            if not (actor.path / ".git" / "MERGE_HEAD").exists():
                self.anomaly(actor, f"{what} failed without a conflict", proc)
                self.recover(actor, f"a failed {what}")
                return
            theirs_commit = self.rev(actor.path, "MERGE_HEAD")
            ours, theirs = self.commits[old], self.known(theirs_commit, f"{actor.name} {what}")
            out = self.must(actor.path, "diff", "--name-only", "-z", "--diff-filter=U").decode()
            conflicted = sorted(p for p in out.split("\0") if p)
            if not conflicted:
                self.anomaly(actor, f"{what} stopped with no conflicted path", proc)
                self.recover(actor, f"a failed {what}")
                return
            self.count("conflicts")
            for p in conflicted:
                side = self.rng.choice(("--ours", "--theirs"))
                if p not in (ours if side == "--ours" else theirs):
                    side = "--theirs" if side == "--ours" else "--ours"
                chosen[p] = (ours if side == "--ours" else theirs)[p]
                self.log(f"    conflict {p}: take {side[2:]}")
                c = self.git(actor.path, "checkout", side, "--", p)
                a = self.git(actor.path, "add", "--", p) if c.returncode == 0 else c
                if not self.expect_ok(actor, a, f"resolving {p} with {side}"):
                    self.recover(actor, f"a failed resolution of {p}")
                    return
            c = self.git(actor.path, "commit", "-q", "--no-edit")
            if not self.expect_ok(actor, c, f"commit of {what} failed"):
                self.recover(actor, f"a failed commit of {what}")
                return
        head = self.rev(actor.path, "HEAD")
        if head in self.commits:           # already up to date, or a fast-forward
            self.after_checkout(actor, what)
            return
        parents = self.must(actor.path, "rev-list", "--parents", "-n", "1", head).decode().split()[1:]
        if len(parents) != 2 or parents[0] != old:
            raise Failure(f"{actor.name}: {what} made {head[:12]} with parents {parents}, expected [{old[:12]}, ...]")
        ours, theirs = self.commits[old], self.known(parents[1], f"{actor.name} {what}")
        bases = self.must(actor.path, "merge-base", "--all", old, parents[1]).decode().split()
        base = self.commits.get(bases[0]) if len(bases) == 1 else None
        result = self.tree_model(actor.path, head)
        problems = []
        for p in sorted(set(ours) | set(theirs) | set(result)):
            o, t, r = ours.get(p), theirs.get(p), result.get(p)
            if p in chosen:
                ok = r == chosen[p]
            elif o == t:
                ok = r == o
            elif base is not None and base.get(p) == o:
                ok = r == t
            elif base is not None and base.get(p) == t:
                ok = r == o
            else:
                ok = r in {o, t} - {None}
            if not ok:
                problems.append(f"{p}: merged {str(r)[:12]} ours {str(o)[:12]} theirs {str(t)[:12]}")
        if problems:
            raise Failure(f"{actor.name}: {what} gave {head[:12]}, which is no merge of its parents: " + "; ".join(problems[:10]))
        self.set_commit(head, result)
        self.count("merges")
        self.after_checkout(actor, what)

    def op_push(self, actor: Actor):
        upstream = self.run(["git", "rev-parse", "-q", "--verify", "@{u}"], actor.path, quiet=True).returncode == 0
        if not self.plain and self.rng.random() < 0.1 and self.panini_available("push"):
            self.log(f"  {actor.name}: git panini push")   # the store and notes only: no branch moves
            self.expect_ok(actor, self.run(["git", "panini", "push"], actor.path), "git panini push failed")
            return
        plain_push = upstream and self.rng.random() < 0.5
        cmd = ["git", "push", "-q"] if plain_push else ["git", "push", "-q", "-u", "origin", actor.branch]
        self.log(f"  {actor.name}: push {actor.branch} ({actor.head[:12]})")
        proc = self.timed("push", cmd, actor)
        self.after_push(actor, proc)

    def after_push(self, actor: Actor, proc: subprocess.CompletedProcess, killed: bool = False):
        if proc.returncode == 0:
            self.pushed.add(actor.head)
            self.count("pushes")
            return
        err = proc.stderr.decode("utf-8", "replace")
        if "[rejected]" in err or "non-fast-forward" in err or "fetch first" in err:
            self.count("rejected pushes")
            self.log("    rejected (non-fast-forward): fine")
        elif not killed:
            self.expect_ok(actor, proc, "push failed")

    def op_fetch(self, actor: Actor):
        if not self.plain and self.rng.random() < 0.25 and self.panini_available("fetch"):
            self.log(f"  {actor.name}: git panini fetch")
            self.expect_ok(actor, self.run(["git", "panini", "fetch"], actor.path), "git panini fetch failed")
            return
        self.log(f"  {actor.name}: fetch")
        self.expect_ok(actor, self.git(actor.path, "fetch", "-q", "origin"), "git fetch failed")

    def op_clone(self, actor: Actor):
        if len(self.actors) >= self.max_actors:
            self.op_fetch(actor)
            return
        self.clone_actor()

    def work_cmd(self) -> list[str]:
        return ["git", "panini", "work", "--effort", str(self.rng.choice((0, 0, 1))), "--device", "cpu"]

    def op_work(self, actor: Actor):
        if self.plain:
            return self.op_fetch(actor)
        self.log(f"  {actor.name}: work")
        self.expect_ok(actor, self.timed("work", self.work_cmd(), actor), "git panini work failed")

    def check_index_readable(self, actor: Actor, what: str):
        """Every staged change still reads back (smudged into a scratch dir by checkout-index) as what was staged."""
        head = self.commits[actor.head]
        changed = {p: sha for p, sha in actor.index.items() if head.get(p) != sha}
        if not changed:
            return
        self.fresh_no += 1
        scratch = Actor(f"{actor.name}-index", self.tmp / f"index-{self.fresh_no}")
        proc = self.git(actor.path, "checkout-index", "-f", f"--prefix={scratch.path}/", "--", *sorted(changed))
        if proc.returncode != 0:
            # Allowed only as the product promises: a git add killed before its data was kept (and a gc
            # since) is refused at the next commit, naming the file to add again; adding it restores it.
            if not self.plain and self.readd_lost(actor, f"unreadable staged files after {what}"):
                return self.check_index_readable(actor, f"{what}, then adding the named files again")
            raise Failure(f"{actor.name}: the staged files no longer read back after {what}: "
                          + " | ".join(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]))
        self.check_worktree(scratch, changed, f"(the index of {actor.name}) after {what}")
        subprocess.run(["rm", "-rf", str(scratch.path)])

    def readd_lost(self, actor: Actor, why: str, refusal: str | None = None) -> bool:
        """What a user does when `git commit` refuses: add the named files again. The refusal is the
        commit's own, or the pre-commit hook's when asked. False when nothing was refused."""
        if refusal is None:
            proc = self.git(actor.path, "hook", "run", "--ignore-missing", "pre-commit")
            refusal = proc.stderr.decode("utf-8", "replace") if proc.returncode != 0 else ""
        paths = re.findall(r"add it again: git add --renormalize -- '(.+)'$", refusal, re.M)
        if not paths:
            return False
        self.log(f"  {actor.name}: {why}: commit refused, adding again: {', '.join(paths)}")
        self.count("staged files a killed git add lost, refused at commit and added again")
        for path in paths:
            if path in actor.index and actor.wt.get(path) != actor.index[path]:
                raise Failure(f"{actor.name}: {path} was refused, but the working tree no longer holds what was staged")
        self.expect_ok(actor, self.git(actor.path, "add", "--renormalize", "--", *paths), "adding again failed")
        return True

    def op_prune(self, actor: Actor):
        if not self.panini_available("prune"):
            return self.op_gc(actor)
        if actor.index == self.commits[actor.head] and self.rng.random() < 0.5:
            self.op_add(actor)     # something staged for prune to keep
        self.log(f"  {actor.name}: prune")
        if self.expect_ok(actor, self.run(["git", "panini", "prune"], actor.path), "git panini prune failed"):
            if self.rng.random() < 0.5:
                self.log(f"  {actor.name}: reflog expire + gc --prune=now (after prune)")
                self.git(actor.path, "reflog", "expire", "--expire=now", "--all")
                self.expect_ok(actor, self.git(actor.path, "gc", "-q", "--prune=now"), "gc failed")
            # What HEAD needs stays readable; the index (staged work) too.
            self.expect_ok(actor, self.run(["git", "panini", "verify"], actor.path), "verify after prune failed")
            self.check_index_readable(actor, "prune")

    def op_gc(self, actor: Actor):
        if self.rng.random() < 0.25:
            self.log("  remote: gc --prune=now")
            self.expect_ok(actor, self.git(self.remote, "gc", "-q", "--prune=now"), "gc of the remote failed")
            return
        self.log(f"  {actor.name}: reflog expire + gc --prune=now")
        proc = self.git(actor.path, "reflog", "expire", "--expire=now", "--all")
        if self.expect_ok(actor, proc, "reflog expire failed"):
            if self.expect_ok(actor, self.git(actor.path, "gc", "-q", "--prune=now"), "gc failed"):
                self.check_index_readable(actor, "gc --prune=now")

    def op_kill(self, actor: Actor):
        target = self.rng.choice(("add", "add", "commit", "push", "work") if not self.plain else ("add", "commit", "push"))
        old_head = actor.head
        maybe: dict[str, str] = {}
        if target == "add":
            path, desc = self.make_change(actor)
            maybe = {path: actor.wt[path]}
            self.mark_staged(actor, maybe)
            cmd = ["git", "add", "--", path]
        elif target == "commit":
            if actor.index == self.commits[actor.head]:
                self.op_add(actor)
            if actor.index == self.commits[actor.head]:
                return
            desc = f"commit on {actor.branch}"
            cmd = ["git", "commit", "-q", "-m", f"step {self.step_no} (killed)"]
        elif target == "push":
            desc = f"push {actor.branch}"
            cmd = ["git", "push", "-q", "-u", "origin", actor.branch]
        else:
            desc = "work"
            cmd = self.work_cmd()
        r = self.rng.random()
        after_index = r < 0.35 and target in ("add", "commit")
        if after_index:
            # aimed just after git has written the index (the filter and hooks may still be finishing)
            delay = self.rng.choice((0.0, self.rng.uniform(0, 0.005), self.rng.uniform(0, 0.05)))
            self.log(f"  {actor.name}: kill -9 {delay * 1000:.1f} ms after the index is written: {desc}")
        else:
            if r < 0.55 and target in self.durations:
                # aimed at the end of the command, where it commits its results (refs, local store)
                delay = self.durations[target] * self.rng.uniform(0.7, 1.1)
            else:
                delay = self.rng.uniform(0, 0.3) if r < 0.9 else self.rng.uniform(0.3, 1.5)
            self.log(f"  {actor.name}: kill -9 after {delay * 1000:.0f} ms: {desc}")
        proc = subprocess.Popen(cmd, cwd=actor.path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        if after_index:
            lock, seen, deadline = actor.path / ".git" / "index.lock", False, time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if lock.exists():
                    seen = True
                elif seen:
                    break
                time.sleep(0.001)
        time.sleep(delay)
        finished = proc.poll() is not None
        _killpg(proc)
        out, err = proc.communicate()
        result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        self.log(f"    $ {shlex.join(cmd)} -> {'finished before the kill, ' if finished else 'killed, '}{proc.returncode}")
        self.count("kills" if not finished else "kills (too late)")
        self.remove_stale_locks()
        if target == "add":
            self.resync_index(actor, maybe, "a killed add")
            self.check_index_readable(actor, "kill -9 of git add")
        elif target == "commit":
            self.after_commit_attempt(actor, old_head, dict(actor.index), "a killed commit")
        elif target == "push" and finished:
            self.after_push(actor, result, killed=True)
        elif finished and proc.returncode != 0:
            self.expect_ok(actor, result, f"{desc} failed")
        if self.rng.random() < 0.3:
            # "kill -9 anywhere followed at once by gc --prune=now loses no committed byte" (nor a staged one)
            self.log(f"  {actor.name}: reflog expire + gc --prune=now right after the kill")
            self.git(actor.path, "reflog", "expire", "--expire=now", "--all")
            if self.expect_ok(actor, self.git(actor.path, "gc", "-q", "--prune=now"), "gc after a kill failed"):
                if not self.plain:
                    self.expect_ok(actor, self.run(["git", "panini", "verify"], actor.path),
                                   "verify of HEAD after kill -9 and gc failed")
                self.check_index_readable(actor, "kill -9 and gc --prune=now")

    def op_concurrent(self, actor: Actor):
        """A second process in the same clone (a worker, or a fetch) while another operation runs there."""
        if self.plain:
            bg_cmd = ["git", "fetch", "-q", "origin"]
        elif self.rng.random() < 0.7:
            bg_cmd = self.work_cmd()
        else:
            bg_cmd = ["git", "panini", "fetch"]
        self.log(f"  {actor.name}: in the background: {shlex.join(bg_cmd)}")
        bg = subprocess.Popen(bg_cmd, cwd=actor.path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
        self.background = True
        try:
            self.rng.choice((self.op_add, self.op_commit, self.op_push, self.op_fetch))(actor)
        finally:
            self.background = False
            try:
                out, err = bg.communicate(timeout=self.cmd_timeout)
            except subprocess.TimeoutExpired:
                _killpg(bg)
                out, err = bg.communicate()
                raise Failure(f"background {shlex.join(bg_cmd)} hung") from None
        self.log(f"    background {shlex.join(bg_cmd)} -> {bg.returncode}")
        self.expect_ok(actor, subprocess.CompletedProcess(bg_cmd, bg.returncode, out, err),
                       f"background {' '.join(bg_cmd[:3])} failed", concurrent=True)

    # --- the hostile collaborator --------------------------------------------------------------------

    HOSTILE_ATTACKS = (("forge_manifest", 3), ("swap_list", 2), ("lying_recipe", 2), ("notes", 2), ("lock", 1),
                       ("delete_raw", 2), ("delete_packs", 2), ("rewind_store", 2), ("rewind_notes", 1))
    # After these the remote no longer proves it holds some data (a swapped list proves nothing): a repair is due.
    DESTRUCTIVE = ("swap_list", "delete_raw", "delete_packs", "rewind_store", "rewind_notes")

    def hostile_git(self, *args, input: bytes | None = None, env: dict | None = None, check: bool = True) -> bytes:
        """A command in the hostile collaborator's own bare clone (plumbing only, no panini, no hooks)."""
        proc = self.run(["git", *args], self.hostile_repo, input=input, env=env, quiet=not check)
        if check and proc.returncode != 0:
            raise Failure(f"the hostile actor's git {shlex.join(args[:4])} failed: "
                          + proc.stderr.decode("utf-8", "replace").strip()[-400:])
        return proc.stdout

    def hostile_state(self) -> dict[str, str]:
        """A plain clone of the remote, with its store and notes as they are now; {ref: oid} of its panini refs."""
        if self.hostile_repo is None:
            self.hostile_repo = self.tmp / "hostile.git"
            self.must(self.tmp, "clone", "-q", "--bare", self.url, str(self.hostile_repo))
        out = self.hostile_git("ls-remote", "origin", "refs/panini/*", "refs/notes/*").decode()
        refs = {ref: oid for oid, ref in (line.split("\t") for line in out.splitlines())}
        wanted = [f"+{r}:refs/h/{r.split('/', 1)[1]}" for r in ("refs/panini/store", "refs/notes/panini") if r in refs]
        if wanted:
            self.hostile_git("fetch", "-q", "--no-tags", "origin", *wanted)
        return refs

    def hostile_blob(self, data: bytes) -> str:
        return self.hostile_git("hash-object", "-w", "--stdin", input=data).decode().strip()

    def hostile_tree(self, rev: str, prefix: str = "") -> dict[str, str]:
        """{path: blob id} of the tree of `rev` (under prefix)."""
        out = self.hostile_git("ls-tree", "-r", "-z", rev, *([prefix] if prefix else []))
        entries = {}
        for record in out.split(b"\0"):
            if record:
                meta, _, name = record.partition(b"\t")
                entries[name.decode()] = meta.decode().split()[2]
        return entries

    def hostile_edit(self, ref: str, tip: str | None, entries: dict[str, str], message: str = "hostile"):
        """A fast-forward of `ref` on the remote: its tip's tree with `entries` set (a temporary index)."""
        index = self.tmp / "hostile.index"
        index.unlink(missing_ok=True)
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        if tip:
            self.hostile_git("read-tree", tip, env=env)
        info = "".join(f"100644 {oid}\t{path}\n" for path, oid in entries.items())
        self.hostile_git("update-index", "--add", "--index-info", input=info.encode(), env=env)
        tree = self.hostile_git("write-tree", env=env).decode().strip()
        commit = self.hostile_git("commit-tree", tree, *(["-p", tip] if tip else []), "-m", message).decode().strip()
        self.hostile_git("push", "-q", "origin", f"{commit}:{ref}")

    def bulk_commit(self, blobs: list[str], message: str) -> str:
        """The content-addressed commit git-panini makes over a fan tree of these blobs (store/bulk.py)."""
        fans: dict[str, list[str]] = {}
        for b in sorted(set(blobs)):
            fans.setdefault(b[:2], []).append(b)
        top = []
        for fan_name, oids in sorted(fans.items()):
            sub = self.hostile_git("mktree", input="".join(f"100644 blob {o}\t{o}\n" for o in oids).encode()).decode().strip()
            top.append(f"040000 tree {sub}\t{fan_name}\n")
        tree = self.hostile_git("mktree", input="".join(top).encode()).decode().strip()
        sig = {"GIT_AUTHOR_NAME": "git-panini", "GIT_AUTHOR_EMAIL": "panini@localhost", "GIT_AUTHOR_DATE": "@0 +0000",
               "GIT_COMMITTER_NAME": "git-panini", "GIT_COMMITTER_EMAIL": "panini@localhost",
               "GIT_COMMITTER_DATE": "@0 +0000"}
        return self.hostile_git("commit-tree", tree, "-m", message, env={**os.environ, **sig}).decode().strip()

    def manifest_chunks(self, manifest: str) -> list[tuple[str, int]]:
        data = self.hostile_git("cat-file", "blob", manifest)
        return [(c, int(s)) for c, s in (line.split() for line in data.decode().splitlines())]

    def predict_manifest(self, data: bytes) -> str:
        """The manifest git-panini makes of `data`, cleaned in a scratch repository of the attacker's own
        that never talks to the remote."""
        self.fresh_no += 1
        scratch = self.tmp / f"hostile-scratch-{self.fresh_no}"
        self.must(self.tmp, "init", "-q", str(scratch))
        self.must(scratch, "panini", "install")
        self.must(scratch, "panini", "track", "*.bin")
        (scratch / "guess.bin").write_bytes(data)
        self.must(scratch, "add", "guess.bin")
        pointer = self.must(scratch, "cat-file", "blob", ":guess.bin").decode()
        manifest = re.search(r"^manifest (\w+)$", pointer, re.M).group(1)
        blob = self.must(scratch, "cat-file", "blob", manifest)
        subprocess.run(["rm", "-rf", str(scratch)])
        if self.hostile_blob(blob) != manifest:
            raise Failure("the attacker's predicted manifest does not hash to its name")
        return manifest

    def op_hostile(self, actor: Actor):
        """A collaborator with push access attacks the remote's panini refs with plumbing only."""
        if self.plain:
            return self.op_fetch(actor)
        names, weights = zip(*self.HOSTILE_ATTACKS)
        attack = self.rng.choices(names, weights)[0]
        refs = self.hostile_state()
        store = refs.get("refs/panini/store")
        notes = refs.get("refs/notes/panini")
        tree = self.hostile_tree("refs/h/panini/store") if store else {}
        manifests = sorted(p.rsplit("/", 1)[1] for p in tree if p.startswith("manifests/"))
        done = getattr(self, f"hostile_{attack}")(refs, store, notes, tree, manifests)
        self.log(f"  hostile: {attack}: {done or 'nothing to attack'}")
        self.count(f"hostile {attack}" + ("" if done else " (nothing to attack)"))
        if done and attack in self.DESTRUCTIVE:
            self.damaged.append(f"step {self.step_no} {attack}")
            self.repair_due = True

    def hostile_forge_manifest(self, refs, store, notes, tree, manifests) -> str | None:
        # A file an honest actor will add next (make_change writes it), its manifest published ahead of it.
        data, windows = self.fresh_data()
        manifest = self.predict_manifest(data)
        self.hostile_edit("refs/panini/store", store, {f"manifests/{manifest[:2]}/{manifest}": manifest})
        self.hostile_manifests.add(manifest)
        self.predicted.append((data, windows))
        return f"manifest {manifest[:12]} of a {len(data)} B file an honest actor adds next"

    def hostile_swap_list(self, refs, store, notes, tree, manifests) -> str | None:
        lists = sorted(p for p in tree if p.startswith("raw/"))
        if not lists:
            return None
        target = self.rng.choice(lists)
        chunks = [c for m in self.rng.sample(manifests, min(2, len(manifests))) for c, _ in self.manifest_chunks(m)]
        if self.rng.random() < 0.5 or not chunks:
            listed = self.hostile_git("cat-file", "blob", tree[target]).decode().split()
            chunks = listed[:max(1, len(listed) // 2)]        # a part of its own list: "the rest is elsewhere"
        swapped = self.hostile_blob("".join(f"{c}\n" for c in sorted(set(chunks))).encode())
        self.hostile_edit("refs/panini/store", store, {target: swapped})
        return f"{target} now lists {len(set(chunks))} other chunk(s)"

    def hostile_lying_recipe(self, refs, store, notes, tree, manifests) -> str | None:
        if not manifests:
            return None
        victim = self.rng.choice(manifests)
        chunks = self.manifest_chunks(victim)
        size = sum(s for _, s in chunks)
        data = self.hostile_blob(bytes(size) if self.rng.random() < 0.5 else self.rng.randbytes(min(size, 4096)))
        offsets, at = [], 0
        for c, s in chunks:
            offsets.append([c, at, s])
            at += s
        recipe = {"format": "git-panini-recipe/1", "size": size, "steps": [], "deps": [], "data": data,
                  "encoded_size": size, "chunks": offsets, "tried": []}
        recipe_oid = self.hostile_blob(json.dumps(recipe).encode())
        bulk = self.bulk_commit([data], "panini: pack data")
        self.hostile_git("update-ref", f"refs/h/bulk/{bulk}", bulk)
        self.hostile_git("push", "-q", "origin", f"{bulk}:refs/panini/packs/{bulk}")
        listing = self.hostile_blob(f"{data}\n".encode())       # the data ref's list: it proves, the recipe lies
        self.hostile_edit("refs/panini/store", store, {f"packs/{recipe_oid[:2]}/{recipe_oid}": recipe_oid,
                                                       f"bulk/{bulk[:2]}/{bulk}": listing})
        if self.rng.random() < 0.5:
            self.hostile_notes_for([victim], refs, "completed")
        return f"recipe {recipe_oid[:12]} claims the {len(chunks)} chunk(s) of {victim[:12]}, data under packs/{bulk[:12]}"

    def hostile_notes_for(self, victims: list[str], refs, kind: str):
        self.hostile_state()
        notes = refs.get("refs/notes/panini") and self.rev(self.hostile_repo, "refs/h/notes/panini")
        entries = {}
        for m in victims:
            if kind == "completed":
                note = {"status": "completed", "bytes": 1, "chunks": 1, "unique_bytes": 1, "unique_chunks": 1,
                        "stored_bytes": 1, "codecs": {"xz": 1}, "job": None, "worker": "hostile:1",
                        "lease_until": None, "attempts": 0, "error": None, "work_seconds": 0.1,
                        "updated": "2099-01-01T00:00:00.000000Z"}
                blob = json.dumps(note, sort_keys=True).encode() + b"\n"
            else:
                blob = self.rng.choice((self.rng.randbytes(200), b"{" * 5000, b'{"status": "exploded"}\n',
                                        b"[]\n", b'{"status": "completed", "bytes": "lots"}\n'))
            entries[f"{m[:2]}/{m[2:]}"] = self.hostile_blob(blob)
        self.hostile_edit("refs/notes/panini", notes, entries)

    def hostile_notes(self, refs, store, notes, tree, manifests) -> str | None:
        targets = list(manifests) + sorted(self.hostile_manifests)
        if not targets:
            return None
        victims = self.rng.sample(targets, min(len(targets), self.rng.randint(1, 4)))
        kind = self.rng.choice(("completed", "garbage"))
        self.hostile_notes_for(victims, refs, kind)
        return f"{kind} notes for {len(victims)} manifest(s)"

    def hostile_lock(self, refs, store, notes, tree, manifests) -> str | None:
        path = self.rng.choice(("../../outside.bin", "/etc/passwd", ".git/config", "data/\nevil.bin", "x" * 3000,
                                "data/deep/../../../escape.bin"))
        record = {"host": "hostile", "id": self.rng.randbytes(8).hex(), "owner": "Mallory <m@example.com>",
                  "path": path, "time": "2000-01-01T00:00:00Z"}
        if self.rng.random() < 0.3:
            record = self.rng.choice(({"path": 5}, "not a dict", {**record, "path": "data/f1.bin"}))   # malformed
        name = hashlib.sha256(path.encode()).hexdigest()
        blob = self.hostile_blob(json.dumps(record).encode())
        tree_oid = self.hostile_git("mktree", input=f"100644 blob {blob}\tlock.json\n".encode()).decode().strip()
        commit = self.hostile_git("commit-tree", tree_oid, "-m", f"git-panini lock: {path}").decode().strip()
        self.hostile_git("push", "-q", "-f", "origin", f"{commit}:refs/panini/locks/{name}")
        return f"lock ref {name[:12]} for {path[:40]!r}"

    def hostile_delete(self, refs, prefix: str) -> str | None:
        found = sorted(r for r in refs if r.startswith(prefix))
        if not found:
            return None
        gone = found if self.rng.random() < 0.5 else self.rng.sample(found, self.rng.randint(1, len(found)))
        self.hostile_git("push", "-q", "origin", *(f":{r}" for r in gone))
        return f"deleted {len(gone)} of {len(found)} {prefix}* ref(s)"

    def hostile_delete_raw(self, refs, store, notes, tree, manifests) -> str | None:
        return self.hostile_delete(refs, "refs/panini/raw/")

    def hostile_delete_packs(self, refs, store, notes, tree, manifests) -> str | None:
        return self.hostile_delete(refs, "refs/panini/packs/")

    def hostile_rewind(self, ref: str, local: str) -> str | None:
        chain = self.hostile_git("rev-list", local).decode().split()
        if len(chain) < 2:
            return None
        back = self.rng.choice((chain[-1], self.rng.choice(chain[1:])))
        self.hostile_git("push", "-q", "-f", "origin", f"{back}:{ref}")
        return f"{ref} rewound {chain.index(back)} of {len(chain) - 1} commit(s) back"

    def hostile_rewind_store(self, refs, store, notes, tree, manifests) -> str | None:
        return self.hostile_rewind("refs/panini/store", "refs/h/panini/store") if store else None

    def hostile_rewind_notes(self, refs, store, notes, tree, manifests) -> str | None:
        return self.hostile_rewind("refs/notes/panini", "refs/h/notes/panini") if notes else None

    def repair(self, actor: Actor, why: str) -> bool:
        """`git panini push --repair`: what a user does once `fsck --remote` (or a push) says the remote lost data."""
        self.log(f"  {actor.name}: git panini push --repair ({why})")
        self.count("repairs")
        proc = self.run(["git", "panini", "push", "--repair"], actor.path)
        text = (proc.stderr + proc.stdout).decode("utf-8", "replace")
        if proc.returncode == 1 and "not here: " in text and "Traceback" not in text:
            # This clone lacks some lost file (a lazy clone, a gc since): it pushed the rest; another may hold it.
            self.count("repairs that could not supply every file")
            self.log("    (this clone does not hold every lost file: another actor's repair must)")
            return False
        return self.expect_ok(actor, proc, "push --repair failed")

    def repair_all(self):
        """Before the invariants are checked: every actor pushes back what the attacks made the remote lose."""
        if not self.repair_due:
            return
        why = ", ".join(self.damaged) or "attacks a repair already answered"
        for a in self.actors:
            self.repair(a, f"before the checkpoint, after {why}")
        self.damaged, self.repair_due = [], False
        p = self.run(["git", "panini", "fsck", "--remote", "origin"], self.actors[0].path)
        if p.returncode != 0:
            self.anomaly(self.actors[0], "fsck --remote still finds lost data after every actor's push --repair", p)

    OPS = (("add", 20), ("commit", 13), ("reset_path", 5), ("reset_hard", 3), ("switch", 5), ("merge", 7),
           ("push", 12), ("fetch", 4), ("pull", 8), ("clone", 2), ("work", 5), ("prune", 2), ("kill", 6),
           ("gc", 4), ("concurrent", 3), ("hostile", 3))

    def step(self, i: int):
        self.step_no = i
        actor = self.rng.choice(self.actors)
        op = self.rng.choices(list(self.weights), list(self.weights.values()))[0]
        self.log(f"[step {i}] {op} @ {actor.name} ({actor.branch} {actor.head[:10]})")
        self.count(f"op {op}")
        if self.damaged and op != "hostile" and self.rng.random() < 0.5:
            # An honest step after a deleting, rewinding or list-swapping attack: this actor repairs first (the
            # damage stays noted: it may not hold everything lost, and repair_all runs before the checks).
            if self.repair(actor, "after " + ", ".join(self.damaged)):
                self.damaged = []
        getattr(self, f"op_{op}")(actor)

    # --- invariants ----------------------------------------------------------------------------------

    def forbidden(self) -> tuple[dict[bytes, list[tuple[bytes, int]]], set[str], int]:
        """Windows and manifests of contents that were staged and never committed anywhere."""
        never = [self.contents[s] for s in self.staged - self.committed if s in self.contents]
        allowed = {w for s in self.committed if s in self.contents for w in self.contents[s].windows}
        committed_manifests = {m for s in self.committed if s in self.contents for m in self.contents[s].manifests}
        windows = {w for c in never for w in c.windows} - allowed
        keys: dict[bytes, list[tuple[bytes, int]]] = {}
        for w in windows:
            for o in range(WINDOW - KEY + 1):
                keys.setdefault(w[o:o + KEY], []).append((w, o))
        manifests = {m for c in never for m in c.manifests} - committed_manifests - self.hostile_manifests
        return keys, manifests, len(windows)

    def scan_remote(self) -> list[str]:
        keys, manifests, n_windows = self.forbidden()
        problems = []
        if manifests:
            out = self.must(self.remote, "cat-file", "--batch-check", input="".join(m + "\n" for m in sorted(manifests)).encode())
            present = [line.split()[0] for line in out.decode().splitlines() if not line.endswith(" missing")]
            owners = {m: [f"{s[:12]} ({', '.join(c.staged_at[:2])})" for s, c in self.contents.items() if m in c.manifests]
                      for m in present}
            problems += [f"the remote holds manifest {m} of content {owners[m]}, staged and never committed"
                         for m in present]
        if not keys:
            self.log(f"    leak scan: nothing to look for ({len(self.staged - self.committed)} never-committed contents)")
            return problems
        proc = subprocess.Popen(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=self.remote,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        hits, blobs, scanned = {}, 0, 0
        stream = proc.stdout
        while True:
            header = stream.readline()
            if not header:
                break
            oid, kind, size = header.decode().split()
            data = stream.read(int(size))
            stream.read(1)
            if kind != "blob" or len(data) < WINDOW:
                continue
            blobs += 1
            scanned += len(data)
            for q in range(0, len(data) - KEY + 1, SAMPLE_STEP):
                found = keys.get(data[q:q + KEY])
                if found:
                    for w, o in found:
                        if q - o >= 0 and data[q - o:q - o + WINDOW] == w:
                            hits.setdefault(oid, w)
        proc.wait()
        self.log(f"    leak scan: {n_windows} windows of {len(self.staged - self.committed)} never-committed "
                 f"contents over {blobs} blobs ({scanned} B): {len(hits)} hit(s)")
        for oid, w in sorted(hits.items())[:10]:
            owners = [f"{s[:12]} ({', '.join(self.contents[s].staged_at[:2])})"
                      for s in self.staged - self.committed if w in self.contents[s].windows]
            problems.append(f"remote blob {oid} holds bytes of content {owners}, staged and never committed")
        return problems

    def checkpoint(self, final: bool):
        self.log(f"== checkpoint after step {self.step_no}{' (final)' if final else ''}")
        problems: list[str] = []
        self.repair_all()
        # (2) before any gc of the remote: what was ever sent counts, reachable or not.
        problems += self.scan_remote()
        # (1) every commit the remote's branches reach, from a fresh clone after gc of the remote.
        proc = self.git(self.remote, "gc", "-q", "--prune=now")
        if proc.returncode != 0:
            problems.append("gc --prune=now of the remote failed: " + proc.stderr.decode("utf-8", "replace")[-300:])
        on_remote = set(self.must(self.remote, "rev-list", "--branches").decode().split())
        problems += [f"commit {c} was pushed successfully but the remote's branches do not reach it"
                     for c in sorted(self.pushed - on_remote)]
        unknown = sorted(c for c in on_remote if c not in self.commits)
        problems += [f"the remote holds commit {c}, which no actor made" for c in unknown]
        self.fresh_no += 1
        fresh = self.tmp / f"fresh-{self.fresh_no}"
        proc = self.run(["git", "clone", "-q", self.url, str(fresh)], self.tmp, env=self.verifier_env)
        if proc.returncode != 0:
            problems.append("a fresh clone fails: " + proc.stderr.decode("utf-8", "replace").strip()[-600:])
            self.violations += [f"step {self.step_no}: {p}" for p in problems]
            return
        checker = Actor("fresh", fresh)
        tips = {}
        for b, o in self.remote_branches(checker).items():
            tips[b] = o
        main_model = self.commits.get(tips.get("main", ""), None)
        try:
            if main_model is not None:
                self.check_worktree(checker, main_model, "of a fresh clone")
        except Failure as e:
            problems.append(str(e))
        for c in sorted(on_remote - set(unknown)):
            try:
                self.validate_commit(checker, c, self.commits[c], "pushed commit")
            except Failure as e:
                problems.append(str(e))
        if not self.plain:
            for b in sorted(tips):
                p = self.run(["git", "panini", "verify", f"origin/{b}"], fresh, env=self.verifier_env)
                if p.returncode != 0:
                    problems.append(f"git panini verify origin/{b} in a fresh clone fails (exit {p.returncode}): "
                                    + " | ".join((p.stderr + p.stdout).decode("utf-8", "replace").strip().splitlines()[-3:]))
        sample = sorted(set(tips.values()) & set(self.commits))
        rest = sorted(on_remote - set(sample) - set(unknown))
        if final and self.final_checkout_all:
            sample += rest
        else:
            sample += self.rng.sample(rest, min(len(rest), 8 if final else 3))
        for c in sample:
            p = self.run(["git", "checkout", "-q", "-f", "--detach", c], fresh, env=self.verifier_env)
            if p.returncode != 0:
                problems.append(f"git checkout {c} in a fresh clone fails: "
                                + " | ".join(p.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]))
                continue
            try:
                self.check_worktree(checker, self.commits[c], f"of a fresh clone at {c[:12]}")
            except Failure as e:
                problems.append(str(e))
        self.log(f"    fresh clone: {len(on_remote)} commits on the remote, {len(sample)} checked out")
        # (3) at the end: fsck everywhere.
        if final and not self.plain:
            for a in [*self.actors, checker]:
                p = self.run(["git", "panini", "fsck"], a.path, env=self.verifier_env if a is checker else None)
                if p.returncode != 0:
                    problems.append(f"git panini fsck in {a.name} fails (exit {p.returncode}): "
                                    + " | ".join((p.stdout + p.stderr).decode("utf-8", "replace").strip().splitlines()[-4:]))
        self.log(f"    checkpoint: {len(problems)} problem(s)")
        self.violations += [f"step {self.step_no}: {p}" for p in problems]

    # --- the run -------------------------------------------------------------------------------------

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return (f"{len(self.actors)} actors, {len(self.commits)} commits ({len(self.pushed)} pushed), "
                f"{len(self.contents)} contents, {len(self.staged - self.committed)} staged-never-committed; {counts}")

    def execute(self):
        self.setup()
        for i in range(self.steps):
            self.step(i)
            if i + 1 in self.checkpoint_at:
                self.checkpoint(final=i + 1 == self.steps)


def _killpg(proc: subprocess.Popen):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_conformance(tmp_path: Path, seed: int, steps: int, plain: bool, **options) -> Harness:
    steps = int(os.environ.get(STEPS_ENV, steps))
    replay = f"{SEED_ENV}={seed} {STEPS_ENV}={steps}" + (f" {PLAIN_ENV}=1" if plain else "")
    print(f"conformance: seed {seed}, {steps} steps, {'plain git' if plain else 'panini'} (replay: {replay})")
    h = Harness(tmp_path, seed, steps, plain, **options)
    log_file = tmp_path / "conformance.log"
    started = time.monotonic()
    error = None
    try:
        h.execute()
    except Failure as e:
        error = f"invariant violated: {e}"
    except Exception:   # a harness bug or an unforeseen state: the log is what matters
        error = "the harness failed:\n" + traceback.format_exc(limit=-6)
    log_file.write_text("\n".join(h.log_lines) + "\n")
    elapsed = time.monotonic() - started
    print(f"conformance: seed {seed} ran {h.step_no + 1} steps in {elapsed:.1f}s: {h.summary()}")
    if error is None and not h.violations and not h.anomalies and not h.missing_commands:
        return h
    parts = [f"conformance seed {seed} failed at step {h.step_no} (replay: {replay} "
             f"pytest tests/test_conformance.py); full log: {log_file}"]
    if error:
        parts.append(error)
    if h.violations:
        parts.append(f"{len(h.violations)} invariant violation(s) at checkpoints:\n  " + "\n  ".join(h.violations[:40]))
    if h.missing_commands:
        parts.append("missing commands: " + ", ".join(f"git panini {c}" for c in sorted(h.missing_commands)))
    if h.anomalies:
        parts.append(f"{len(h.anomalies)} unexpected command failure(s):\n  " + "\n  ".join(h.anomalies[:25]))
    parts.append("summary: " + h.summary())
    parts.append("last operations:\n" + "\n".join(h.log_lines[-120:]))
    message = "\n".join(parts)
    print(message)
    raise AssertionError(message)


def _seeds(slow: bool) -> list[int]:
    if os.environ.get(SEED_ENV):
        return [int(os.environ[SEED_ENV])]
    return list(SLOW_SEEDS if slow else CI_SEEDS)


def pytest_generate_tests(metafunc):
    if "conformance_seed" in metafunc.fixturenames:
        metafunc.parametrize("conformance_seed", _seeds(metafunc.config.getoption("--slow", False)))


def test_conformance(tmp_path, conformance_seed, slow):
    """Random operation sequences keep the store's invariants (fresh-clone readback, no leak, fsck)."""
    run_conformance(tmp_path, conformance_seed, SLOW_STEPS if slow else CI_STEPS, plain=_env_flag(PLAIN_ENV),
                    max_actors=4 if slow else 3, checkpoints=4 if slow else 2, final_checkout_all=slow)


def test_conformance_harness_plain_git(tmp_path):
    """The harness itself, with ordinary git blobs and no panini: its model and checks must agree with git."""
    seed = int(os.environ.get(SEED_ENV, 7))
    run_conformance(tmp_path, seed, 60, plain=True, checkpoints=2, final_checkout_all=True)


def test_conformance_harness_detects_a_leak(tmp_path):
    """The leak scan of invariant 2 finds staged-never-committed bytes that reach the remote (plain git: a tag)."""
    h = Harness(tmp_path, 5, 1, plain=True)
    h.setup()
    actor = h.actors[0]
    h.step_no = 0
    while not [p for p in actor.index if h.contents[actor.index[p]].windows and p not in h.commits[actor.head]]:
        h.op_add(actor)
    path = next(p for p in actor.index if h.contents[actor.index[p]].windows and p not in h.commits[actor.head])
    assert not h.scan_remote()
    blob = h.must(actor.path, "rev-parse", f":{path}").decode().strip()
    h.must(actor.path, "tag", "leak", blob)
    h.must(actor.path, "push", "-q", "origin", "refs/tags/leak")
    problems = h.scan_remote()
    assert problems and all("staged and never committed" in p for p in problems), problems


@pytest.mark.slow
def test_conformance_long_run(tmp_path):
    """One long history with bigger files and four actors (--slow only)."""
    seed = int(os.environ.get(SEED_ENV, 4242))
    run_conformance(tmp_path, seed, 1000, plain=_env_flag(PLAIN_ENV), max_actors=4, big_share=0.2,
                    checkpoints=5, final_checkout_all=True)
