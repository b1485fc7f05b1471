"""CLI conformance: every `git panini` command, found in the typer app itself (hidden ones too, so a new
command is covered the day it is added), run with bad arguments, bad revisions, bad paths, outside any
repository and against unreachable remotes. Each case asserts the documented exit code (README, Commands):

  0  it did what was asked
  1  the operation or the check failed (a remote out of reach, not a repository, data missing)
  2  the command line is wrong: usage (unknown option, bad value, missing argument), a bad revision, a path
     that is not there or not in the repository

and, for every error: exactly one line on stderr, starting "git-panini: "; nothing on stdout, --json or not
(a JSON document on stdout is a result: a check that ran and failed prints its report, exit 1); no
traceback anywhere. One shared repository serves every case; the cases run a few at a time, as processes
of the installed `git panini`, so what Git or a child process prints counts too."""

from __future__ import annotations

import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pytest
from typer.main import get_command

from conftest import git, isolate, make_bare, make_repo, run, write_random
from git_panini.cli import app

# Every case runs in the module's `outcomes` fixture: one worker runs them all (with `--dist loadgroup`, as
# .ci/run does), instead of each pytest-xdist worker running all of them for its share of the tests.
pytestmark = pytest.mark.xdist_group("cli_conformance")

OK, FAILED, USAGE = 0, 1, 2
REPO, OUTSIDE = "repo", "outside"     # where a case runs: the shared repository, or a directory that is none


@dataclass(frozen=True)
class Case:
    command: str
    args: tuple[str, ...]
    code: int
    where: str = REPO
    stdin: str = ""
    says: str = ""           # the error line names this (the option, revision, path or remote at fault)
    prints: bool = False     # exit 1 after a printed result (e.g. a report, then posting it failed)

    @property
    def id(self) -> str:
        return f"{self.where}:{self.command} {' '.join(self.args)}".strip()


# Placeholders, filled in by World.expand: a file outside the repository, remotes nobody answers at.
OUTSIDE_FILE = "{outside}/f"
NOWHERE_FILE = "{nowhere_file}"    # file:// URL of a path that does not exist
NOWHERE_HTTP = "{nowhere_http}"    # http://127.0.0.1:<a port nothing listens on>/x.git
PUSH_LINE = "refs/heads/main {head} refs/heads/main {zero}\n"   # what git gives the pre-push hook

_GROUP = get_command(app)
COMMANDS = {name: _GROUP.get_command(None, name) for name in _GROUP.list_commands(None)}   # hidden ones included


# --- the table: per command, what it is run with outside a repository, and its own bad input -------------

# The arguments that make each command get as far as opening the repository (run where there is none).
OUTSIDE_ARGS: dict[str, tuple[tuple[str, ...], int]] = {
    "install": ((), FAILED), "uninstall": ((), FAILED), "track": ((), FAILED), "untrack": (("*.x",), FAILED),
    "add": (("x",), FAILED), "status": ((), FAILED), "ls-files": ((), FAILED), "verify": ((), FAILED),
    "fsck": ((), FAILED), "env": ((), FAILED), "push": ((), FAILED), "fetch": ((), FAILED), "pull": ((), FAILED),
    "checkout": ((), FAILED), "prune": ((), FAILED), "lock": (("a.bin",), FAILED), "unlock": (("a.bin",), FAILED),
    "locks": ((), FAILED), "work": ((), FAILED), "migrate": (("info",), FAILED), "dispatch": ((), FAILED),
    "report": (("--base", "HEAD"), FAILED), "dashboard": ((), FAILED), "init-ci": (("--spec", "x"), FAILED), "logs": ((), FAILED),
    "filter-process": ((), FAILED), "hook": (("pre-commit",), FAILED), "textconv": (("x",), FAILED),
    "merge-driver": (("x", "y", "z", "p"), FAILED),
    "help": ((), OK),                                   # needs no repository
    "demo": (("{outside}",), USAGE),                    # needs none either; refuses a directory not empty
    "serve": ((), USAGE),                               # keeps its own clones; without a token it never starts
}

# Where a command talks to a remote: its arguments with the remote in place of {remote}.
REMOTE_ARGS: dict[str, tuple[str, ...]] = {
    "push": ("--", "{remote}"), "fetch": ("--", "{remote}"), "pull": ("--", "{remote}"),
    "lock": ("a.bin", "--remote={remote}"), "unlock": ("a.bin", "--remote={remote}"), "locks": ("--remote={remote}",),
    "work": ("--remote={remote}",), "dispatch": ("--dry-run", "--remote={remote}"),
    "hook": ("pre-push", "{remote}", "{remote}"),
}
UNREACHABLE = ("nosuch", NOWHERE_FILE, NOWHERE_HTTP)   # an unknown remote name, then URLs nobody answers at
OPTION_LIKE = "--upload-pack=touch"                    # would reach Git as an option: refused as usage

GITHUB_NOWHERE = ("--api-url", "http://127.0.0.1:{closed_port}", "--token", "t", "--repository", "o/r")

# Each command's own bad input (and a few good inputs near it, exit 0, that the checks must let through).
# Every command has a key, so a new command fails test_every_command_has_a_row until it gets one.
TABLE: dict[str, list[Case]] = {
    "install": [Case("install", ("--global", "--local"), USAGE, says="--global")],
    "uninstall": [Case("uninstall", ("extra",), USAGE, says="extra")],
    "track": [Case("track", ("--json", "*.x"), USAGE, says="--json")],
    "untrack": [],
    "add": [Case("add", ("nosuch.bin",), USAGE, says="nosuch.bin"),
            Case("add", (OUTSIDE_FILE,), USAGE, says="outside the repository"),
            Case("add", ("../x",), USAGE, says="outside the repository")],
    "status": [Case("status", ("--rev", "nosuch"), USAGE, says="nosuch"),
               Case("status", ("--json=yes",), USAGE, says="--json"),     # a flag takes no value
               Case("status", ("--json", "--rev", "nosuch"), USAGE, says="nosuch"),
               Case("status", ("--rev", "-x"), USAGE, says="-x"),
               Case("status", ("--rev", "HEAD~0"), OK)],
    "ls-files": [Case("ls-files", ("nosuch",), USAGE, says="nosuch"),
                 Case("ls-files", ("--json", "nosuch"), USAGE, says="nosuch"),
                 Case("ls-files", ("--", "-x"), USAGE, says="-x"),
                 Case("ls-files", ("HEAD", "extra"), USAGE, says="extra")],
    "verify": [Case("verify", ("nosuch",), USAGE, says="nosuch"),
               Case("verify", ("nosuch..HEAD",), USAGE, says="nosuch..HEAD"),
               Case("verify", ("HEAD..nosuch",), USAGE, says="HEAD..nosuch"),
               Case("verify", ("--json", "HEAD...nosuch"), USAGE, says="nosuch"),
               Case("verify", ("--", "--all"), USAGE, says="--all"),
               Case("verify", ("--all", "HEAD"), USAGE, says="--all"),
               Case("verify", ("HEAD^!",), OK), Case("verify", ("HEAD~1..HEAD",), OK)],
    "fsck": [Case("fsck", ("extra",), USAGE, says="extra")],
    "serve": [Case("serve", ("--listen", "nope"), USAGE, says="nope"),
              Case("serve", ("--concurrency", "0"), USAGE, says="--concurrency"),
              Case("serve", ("--max-body", "lots"), USAGE, says="lots"),
              Case("serve", ("--max-queued", "0"), USAGE, says="--max-queued"),
              Case("serve", ("--job-timeout", "0"), USAGE, says="--job-timeout"),
              Case("serve", ("--no-auth", "--listen", "0.0.0.0:0"), USAGE, says="loopback")],
    "env": [Case("env", ("extra",), USAGE, says="extra"),
            Case("env", ("--json",), FAILED, where=OUTSIDE, says="not a git repository")],
    "push": [], "pull": [],
    "fetch": [Case("fetch", ("--json", "nosuch"), FAILED, says="nosuch")],
    "checkout": [Case("checkout", ("extra",), USAGE, says="extra")],
    "prune": [Case("prune", ("extra",), USAGE, says="extra")],
    "lock": [Case("lock", ("nosuch.bin",), USAGE, says="nosuch.bin"),
             Case("lock", ("--json", OUTSIDE_FILE), USAGE, says="outside the repository"),
             Case("lock", ("../x",), USAGE, says="outside the repository")],
    "unlock": [Case("unlock", (OUTSIDE_FILE,), USAGE, says="outside the repository")],
    "locks": [Case("locks", ("extra",), USAGE, says="extra"),
              Case("locks", ("--json", "--remote=nosuch"), FAILED, says="nosuch")],
    "work": [Case("work", ("--device", "gpu"), USAGE, says="--device"),
             Case("work", ("--json", "--remote=nosuch"), FAILED, says="nosuch"),
             Case("work", ("a.bin",), USAGE, says="--release"),
             Case("work", ("--force",), USAGE, says="--release"),
             Case("work", ("--release", "nosuch.bin"), USAGE, says="nosuch.bin"),
             Case("work", ("--release", OUTSIDE_FILE), USAGE, says="outside the repository"),
             Case("work", ("--watch", "--interval", "0"), USAGE, says="--interval"),
             Case("work", ("--max-idle", "2"), USAGE, says="--watch")],
    "migrate": [Case("migrate", ("info", "nosuch"), USAGE, says="nosuch"),
                Case("migrate", ("import", "nosuch"), USAGE, says="nosuch"),
                Case("migrate", ("export", "nosuch"), USAGE, says="nosuch"),
                Case("migrate", ("info", "--", "-x"), USAGE, says="-x")],
    "dispatch": [Case("dispatch", ("--backend", "nope"), USAGE, says="--backend"),
                 Case("dispatch", ("--device", "gpu"), USAGE, says="--device"),
                 Case("dispatch", ("--matrix",), USAGE, says="--matrix"),
                 Case("dispatch", ("--job-bytes", "lots"), USAGE, says="lots"),
                 Case("dispatch", ("--backend", "github", "--runner", "[", "--matrix"), USAGE, says="JSON"),
                 Case("dispatch", ("--backend", "github", "--no-remote", *GITHUB_NOWHERE), FAILED,
                      says="cannot reach GitHub")],
    "report": [Case("report", ("--base", "nosuch"), USAGE, says="nosuch"),
               Case("report", ("--json", "--base", "HEAD", "--head", "nosuch"), USAGE, says="nosuch"),
               Case("report", ("--base", "-x"), USAGE, says="-x"),
               Case("report", ("--base", "HEAD", "--format", "xml"), USAGE, says="--format"),
               Case("report", ("--base", "HEAD", "--comment"), USAGE, says="--github"),
               Case("report", ("--all", "--base", "HEAD"), USAGE, says="--all"),
               # the report is printed (CI logs keep it), then posting it fails
               Case("report", ("--base", "HEAD", "--github", *GITHUB_NOWHERE), FAILED, says="cannot reach GitHub",
                    prints=True)],
    "dashboard": [Case("dashboard", ("--rev", "nosuch"), USAGE, says="nosuch"),
                  Case("dashboard", ("--json", "--rev", "nosuch"), USAGE, says="nosuch"),
                  Case("dashboard", ("--rev", "-x"), USAGE, says="-x"),
                  Case("dashboard", ("--json", "--no-verify", "--out", OUTSIDE_FILE), FAILED, says="cannot write")],
    "init-ci": [Case("init-ci", ("--spec", "x", "--mode", "nope"), USAGE, says="--mode"),
                Case("init-ci", ("--spec", "x", "--cron", "soon"), USAGE, says="--cron"),
                Case("init-ci", ("--json", "--spec", "x", "--uses", "not a repo"), USAGE, says="--uses")],
    "logs": [Case("logs", ("nosuch",), USAGE, says="nosuch")],
    "filter-process": [Case("filter-process", (), FAILED, stdin="not the filter protocol\n", says="filter"),
                       Case("filter-process", ("extra",), USAGE, says="extra")],
    "hook": [Case("hook", ("nosuch",), USAGE, says="nosuch")],
    "textconv": [Case("textconv", ("nosuch",), USAGE, says="nosuch"),
                 Case("textconv", (OUTSIDE_FILE,), OK)],    # git hands textconv a temporary file anywhere
    "demo": [Case("demo", (OUTSIDE_FILE + "/sub",), USAGE, says="cannot create")],
    "merge-driver": [Case("merge-driver", ("nosuch-o", "nosuch-a", "nosuch-b", "a.bin"), USAGE, says="nosuch")],
    "help": [Case("help", ("nosuch",), USAGE, says="nosuch"), Case("help", ("status",), OK)],
}

# Commands without --json: they print nothing worth parsing, or output another program reads.
NO_JSON = {"install", "uninstall", "untrack", "add", "pull", "checkout", "filter-process", "hook", "textconv",
           "merge-driver", "demo", "help", "serve"}   # serve: a server, its log one line per event


# --- cases derived from the commands themselves ---------------------------------------------------------


def _annotation(param):
    """The Python type a parameter takes (typer >= 0.20 keeps it on the parameter; older ones, in click's type)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        return descriptor.annotation
    kind = getattr(param.type, "name", "")
    return {"integer": int, "integer range": int, "float": float}.get(kind, Enum if kind == "choice" else str)


def _bounds(param) -> tuple[int | None, int | None]:
    """The least and the greatest number an option takes (None: no bound)."""
    return tuple(getattr(param, end, None) if getattr(param, end, None) is not None
                 else getattr(getattr(param, "type", None), end, None) for end in ("min", "max"))


def _is_option(param) -> bool:
    return param.param_type_name == "option"


def _required_filler(command) -> tuple[str, ...]:
    """Arguments that satisfy a command's required parameters (so the case fails on what it is about)."""
    filler = {"paths": "a.bin", "patterns": "*.x", "mode": "info", "name": "pre-commit", "path": "x",
              "base": "x", "ours": "x", "theirs": "x"}
    out: list[str] = []
    for p in command.params:
        if p.required and _is_option(p):
            out += [p.opts[0], "HEAD"]
        elif p.required:
            out.append(filler[p.name])
    return tuple(out)


def derived_cases() -> list[Case]:
    """Per command: an unknown option, a missing required argument, a word where a number goes, each
    number out of its option's range, a value off the list, the run outside a repository, and each
    unreachable remote where it talks to one. (--json on errors: the TABLE's rows with --json.)"""
    cases = []
    for name, command in sorted(COMMANDS.items()):
        cases.append(Case(name, ("--no-such-option",), USAGE, says="--no-such-option"))
        args, code = OUTSIDE_ARGS[name]
        cases.append(Case(name, args, code, where=OUTSIDE, says="not a git repository" if code == FAILED else ""))
        if any(p.required for p in command.params):
            cases.append(Case(name, (), USAGE, says="Missing"))
        filler = _required_filler(command)
        numbers = [p for p in command.params if _is_option(p) and _annotation(p) in (int, float)]
        if numbers:   # the same parser reads every number: one word where a number goes, per command
            cases.append(Case(name, (numbers[0].opts[0], "many", *filler), USAGE, says=numbers[0].opts[0]))
        for p in command.params:
            kind = _annotation(p)
            if p in numbers:
                low, high = _bounds(p)
                for out_of_range in ([] if low is None else [low - 1]) + ([] if high is None else [high + 1]):
                    cases.append(Case(name, (p.opts[0], str(out_of_range), *filler), USAGE, says=p.opts[0]))
            if isinstance(kind, type) and issubclass(kind, Enum):
                cases.append(Case(name, (p.opts[0], "nosuch-choice") if _is_option(p) else ("nosuch-choice",),
                                  USAGE, says="nosuch-choice"))
        if name in REMOTE_ARGS:
            stdin = PUSH_LINE if name == "hook" else ""
            for remote in UNREACHABLE:
                cases.append(Case(name, tuple(a.replace("{remote}", remote) for a in REMOTE_ARGS[name]), FAILED,
                                  stdin=stdin, says=remote))
            if name != "hook":   # git passes the hook its remote; a person does not type it
                cases.append(Case(name, tuple(a.replace("{remote}", OPTION_LIKE) for a in REMOTE_ARGS[name]),
                                  USAGE, says=OPTION_LIKE))
    return cases


CASES = list(dict.fromkeys([case for rows in TABLE.values() for case in rows] + derived_cases()))


# --- the shared repository ------------------------------------------------------------------------------


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released: nothing else takes it within the test)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class World:
    repo: Path
    outside: Path
    env: dict[str, str]
    values: dict[str, str]

    def expand(self, text: str) -> str:
        for key, value in self.values.items():
            text = text.replace("{" + key + "}", value)
        return text

    def run(self, case: Case):
        cwd = self.repo if case.where == REPO else self.outside
        return run(["git", "panini", case.command, *(self.expand(a) for a in case.args)], cwd=cwd, check=False,
                   input=self.expand(case.stdin), env=self.env)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """One repository (a.bin tracked, two commits, pushed to origin) and a directory that is no repository."""
    base = tmp_path_factory.mktemp("conformance")
    with pytest.MonkeyPatch.context() as m:
        (base / "home").mkdir()
        isolate(m, base / "home")
        # git must not find a repository above the outside directory, wherever the temp dir is
        m.setenv("GIT_CEILING_DIRECTORIES", str(base))
        repo = make_repo(base, track=("*.bin",))
        write_random(repo / "a.bin", 200_000, seed=1)
        git(repo, "add", ".gitattributes", "a.bin")
        git(repo, "commit", "-q", "-m", "a")
        git(repo, "commit", "-q", "--allow-empty", "-m", "b")
        _, url = make_bare(base)
        git(repo, "remote", "add", "origin", url)
        git(repo, "push", "-q", "-u", "origin", "main")
        outside = base / "outside"
        outside.mkdir()
        (outside / "f").write_text("a file outside the repository\n")
        head = git(repo, "rev-parse", "HEAD").stdout.strip()
        values = {"outside": str(outside), "nowhere_file": (base / "nowhere.git").as_uri(),
                  "nowhere_http": f"http://127.0.0.1:{_closed_port()}/x.git", "closed_port": str(_closed_port()),
                  "head": head, "zero": "0" * len(head)}
        yield World(repo, outside, dict(os.environ), values)


@pytest.fixture(scope="module")
def outcomes(world, request) -> dict:
    """Every selected case, run once, a few at a time (each is a process; most of its time is start-up)."""
    wanted = [item.callspec.params["case"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec") and "case" in item.callspec.params]
    with ThreadPoolExecutor(max_workers=6) as pool:   # a few wait on network retries, not on the CPU
        return dict(zip(wanted, pool.map(world.run, wanted)))


# --- the tests ------------------------------------------------------------------------------------------


def test_every_command_has_a_row():
    """A new command is not done until the table says how it fails."""
    assert set(TABLE) == set(COMMANDS), "add the command to TABLE (and OUTSIDE_ARGS) in this file"
    assert set(OUTSIDE_ARGS) == set(COMMANDS)
    assert {"filter-process", "hook", "textconv"} <= set(COMMANDS)    # the hidden ones are enumerated too
    assert set(REMOTE_ARGS) <= set(COMMANDS)
    assert all(case.command == name for name, rows in TABLE.items() for case in rows)


def test_json_is_spelled_the_same_on_every_command():
    for name, command in COMMANDS.items():
        options = [p for p in command.params if p.name == "json"]
        if name in NO_JSON:
            assert not options, f"{name} has --json now: take it out of NO_JSON"
            continue
        assert len(options) == 1, f"{name} has no --json"
        (option,) = options
        assert option.opts == ["--json"] and not option.secondary_opts and option.is_flag, (name, option.opts)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case, outcomes, world):
    proc = outcomes[case]
    shown = f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-2000:]}\n--- stderr ---\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    assert proc.returncode == case.code, shown
    if case.code == OK:
        return
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("git-panini: "), shown
    assert "internal error" not in lines[0], shown
    assert world.expand(case.says) in lines[0], f"the error should name {case.says!r}\n{shown}"
    # a usage error points at the command's help, by the name the user typed
    if "(see '" in lines[0] and case.command != "help":
        assert f"(see 'git panini {case.command} -h')" in lines[0], shown
    if not case.prints:
        assert proc.stdout == "", shown


def test_a_check_that_fails_prints_its_report_and_exits_1(world):
    """The other kind of exit 1: the check ran and found a fault; its report (JSON with --json) is the result."""
    bad = world.repo.parent / "bad"
    run(["git", "clone", "-q", str(world.repo), str(bad)], env={"GIT_PANINI_SKIP_SMUDGE": "1"})
    oid = git(bad, "hash-object", "-w", "--stdin", input=b"version git-panini/1\nsize twelve\n").stdout.strip()
    git(bad, "update-index", "--add", "--cacheinfo", f"100644,{oid},broken.bin")
    git(bad, "commit", "-q", "-m", "a malformed pointer")
    proc = run(["git", "panini", "verify", "--json", "HEAD^!"], cwd=bad, check=False)
    assert proc.returncode == FAILED and "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] is False and [f["path"] for f in result["files"] if not f["ok"]] == ["broken.bin"]
    text = run(["git", "panini", "verify", "HEAD^!"], cwd=bad, check=False)
    assert text.returncode == FAILED and "FAIL broken.bin" in text.stdout and "Traceback" not in text.stderr
