"""The GitHub workflows: offline lint, static rules, and a simulated Actions run on this machine.

The simulation reads the caller workflows `git panini init-ci` writes and the reusable workflows in
.github/workflows/ and executes them as a runner would: jobs in `needs` order, `if:` conditions, matrix
entries (in parallel), reusable-workflow calls with their inputs and outputs, and each `run:` script with
bash -eo pipefail, the step's `env:` (expressions evaluated), the runner's GITHUB_* variables and fresh
GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files. actions/checkout becomes a clone of the bare remote (file://)
with the same depth and filter; actions/setup-python and the pip install step are skipped (git-panini
is installed in the test environment). GitHub's API is the local fake (tests/github_fake.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

from conftest import git, make_bare, make_repo, pointer_of, run, write_random, write_text  # noqa: E402
from github_fake import FakeGitHub  # noqa: E402
from test_report import corrupt_chunk  # noqa: E402
from git_panini.cli.init_ci import REUSABLE, VENDOR_PREFIX, render  # noqa: E402
from git_panini.store.notes import Notes  # noqa: E402
from git_panini.git.repo import Repo  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
TEMPLATES = ROOT / "git_panini" / "ci_templates"
PINNED = "git-panini/git-panini@" + "0123456789abcdef0123456789abcdef01234567"
SPEC = "git-panini @ git+https://github.com/git-panini/git-panini@" + "0123456789abcdef0123456789abcdef01234567"


def _on(wf: dict) -> dict:
    return wf.get("on", wf.get(True)) or {}      # YAML 1.1 reads a bare `on` key as True


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# --- lint -------------------------------------------------------------------------------------------------

def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return path


def _rendered_callers(tmp_path) -> Path:
    out = tmp_path / "callers" / ".github" / "workflows"
    out.mkdir(parents=True)
    for mode in ("matrix", "dispatch"):
        for name, text in render(uses=PINNED, mode=mode, spec=SPEC, dashboard=True).items():
            (out / f"{mode}-{name}").write_text(text)
    for name, text in render(uses=PINNED, spec=SPEC, backend="webhook").items():
        (out / f"webhook-{name}").write_text(text)
    return out


def test_zizmor_offline_finds_nothing(tmp_path):
    zizmor = _tool("zizmor")
    # Each finding left is suppressed on its line with a reason: the artipacked ones (checkout keeps the
    # token because the job pushes or fetches refs/panini/* and refs/notes/panini; no artifact is uploaded).
    for target in (WORKFLOWS, _rendered_callers(tmp_path)):
        proc = subprocess.run([zizmor, "--offline", "--no-progress", "--persona=pedantic", str(target)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "No findings to report" in proc.stdout + proc.stderr


def test_workflow_schema(tmp_path):
    checker = _tool("check-jsonschema")
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted(_rendered_callers(tmp_path).glob("*.yml"))
    proc = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", *map(str, files)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _all_workflow_texts(tmp_path) -> dict[str, dict]:
    files = {p.name: p for p in WORKFLOWS.glob("*.yml")}
    files.update({p.name: p for p in _rendered_callers(tmp_path).glob("*.yml")})
    return {name: _load(path) for name, path in files.items()}


def test_static_rules(tmp_path):
    for name, wf in _all_workflow_texts(tmp_path).items():
        assert wf.get("permissions") == {}, f"{name}: top-level permissions must be empty"
        for job_id, job in wf["jobs"].items():
            where = f"{name}:{job_id}"
            assert "permissions" in job, f"{where}: every job says what it needs"
            for step in job.get("steps", []):
                if "run" in step:     # untrusted input reaches scripts only through env
                    assert "${{" not in step["run"], f"{where}: expression inside a run script"
                if str(step.get("uses", "")).startswith("actions/"):
                    assert re.fullmatch(r"actions/[\w-]+@[0-9a-f]{40}", step["uses"]), f"{where}: unpinned action"
            if name in ("dispatch.yml", "dispatch-api.yml", "dispatch-webhook.yml", "worker.yml", "pr-check.yml"):
                assert "concurrency" in job, f"{where}: concurrency group"
                runs = [s.get("run", "") for s in job["steps"]]
                assert any("git panini fetch origin" in r for r in runs), f"{where}: custom refs fetched explicitly"


def test_vendored_copies_are_the_workflows():
    for name in REUSABLE.values():
        assert (TEMPLATES / "reusable" / name).read_text() == (WORKFLOWS / name).read_text(), name


def test_init_ci_writes_callers(tmp_path, monkeypatch):
    from typer.testing import CliRunner
    from git_panini.cli import app

    repo = make_repo(tmp_path, install=False)
    monkeypatch.chdir(repo)

    def init_ci(*args):
        return CliRunner().invoke(app, ["init-ci", *args], catch_exceptions=False)

    args = ["--uses", PINNED, "--runner", "self-hosted, gpu", "--device", "cuda", "--mode", "dispatch", "--spec", SPEC]
    assert init_ci(*args).exit_code == 0
    wf_dir = repo / ".github" / "workflows"
    assert sorted(p.name for p in wf_dir.iterdir()) == ["panini-dispatch.yml", "panini-pr.yml", "panini-worker.yml"]
    dispatch = _load(wf_dir / "panini-dispatch.yml")
    assert dispatch["jobs"]["plan"]["uses"] == PINNED.replace("@", "/.github/workflows/dispatch-api.yml@")
    assert dispatch["jobs"]["plan"]["permissions"] == {"contents": "write", "actions": "write"}
    assert dispatch["jobs"]["plan"]["with"]["runner"] == '["self-hosted","gpu"]'
    assert list(dispatch["jobs"]) == ["plan"]            # the API starts the workers
    worker = _load(wf_dir / "panini-worker.yml")
    assert set(_on(worker)["workflow_dispatch"]["inputs"]) == {"jobs", "runner", "device"}
    # unchanged files are fine; changed ones need --force
    assert init_ci(*args).exit_code == 0
    clash = init_ci("--spec", SPEC)
    assert clash.exit_code == 1 and "use --force" in clash.stderr
    assert init_ci("--force", "--vendor", "--spec", SPEC).exit_code == 0
    vendored = f"./.github/workflows/{VENDOR_PREFIX}pr-check.yml"
    assert _load(wf_dir / "panini-pr.yml")["jobs"]["check"]["uses"] == vendored
    assert (wf_dir / f"{VENDOR_PREFIX}worker.yml").read_text() == (WORKFLOWS / "worker.yml").read_text()
    bad = init_ci("--force", "--uses", "not a repo", "--spec", SPEC)
    assert bad.exit_code == 2 and "--uses must be OWNER/REPO@REF" in bad.stderr


def test_init_ci_webhook_backend(tmp_path, monkeypatch):
    from typer.testing import CliRunner
    from git_panini.cli import app

    repo = make_repo(tmp_path, install=False)
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(app, ["init-ci", "--backend", "webhook", "--uses", PINNED, "--spec", SPEC],
                                catch_exceptions=False)
    assert result.exit_code == 0 and "PANINI_WEBHOOK_URL and PANINI_WEBHOOK_TOKEN" in result.stdout
    wf_dir = repo / ".github" / "workflows"
    assert sorted(p.name for p in wf_dir.iterdir()) == ["panini-dispatch.yml", "panini-pr.yml"]   # no Actions workers
    plan = _load(wf_dir / "panini-dispatch.yml")["jobs"]["plan"]
    assert plan["uses"] == PINNED.replace("@", "/.github/workflows/dispatch-webhook.yml@")
    assert plan["permissions"] == {"contents": "write"}
    assert plan["secrets"] == {"webhook-url": "${{ secrets.PANINI_WEBHOOK_URL }}",
                               "webhook-token": "${{ secrets.PANINI_WEBHOOK_TOKEN }}",
                               "webhook-secret": "${{ secrets.PANINI_WEBHOOK_SECRET }}"}
    called = _load(WORKFLOWS / "dispatch-webhook.yml")
    assert set(_on(called)["workflow_call"]["secrets"]) == set(plan["secrets"])
    [step] = [s for s in called["jobs"]["dispatch"]["steps"] if "dispatch --backend webhook" in s.get("run", "")]
    assert step["env"]["PANINI_WEBHOOK_TOKEN"] == "${{ secrets.webhook-token }}" and '--url "$PANINI_WEBHOOK_URL"' in step["run"]
    bad = CliRunner().invoke(app, ["init-ci", "--backend", "carrier-pigeon", "--spec", SPEC])
    assert bad.exit_code == 2 and "--backend must be github or webhook" in bad.stderr


# --- a tiny evaluator for ${{ }} expressions ----------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,*])"
                    r"|(?P<name>[A-Za-z_][\w-]*))")


class _Expr:
    """GitHub Actions expressions: literals, contexts (a.b, a['b']), ! == != < > && || ( ), and the
    functions the workflows use (fromJSON, toJSON, format, contains, startsWith, always, success, failure)."""

    def __init__(self, text: str, ctx: dict):
        self.tokens, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"cannot parse expression {text!r} at {pos}")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i, self.ctx = 0, ctx

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self, value=None):
        tok = self.peek()
        if value is not None and tok[1] != value:
            raise ValueError(f"expected {value!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self):
        value = self.or_()
        if self.i != len(self.tokens):
            raise ValueError(f"trailing tokens in expression: {self.tokens[self.i:]}")
        return value

    def or_(self):
        value = self.and_()
        while self.peek()[1] == "||":
            self.take()
            other = self.and_()
            value = value if _truthy(value) else other
        return value

    def and_(self):
        value = self.cmp()
        while self.peek()[1] == "&&":
            self.take()
            other = self.cmp()
            value = other if _truthy(value) else value
        return value

    def cmp(self):
        value = self.unary()
        if self.peek()[1] in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            a, b = _coerce(value, self.unary())
            return {"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return value

    def unary(self):
        if self.peek()[1] == "!":
            self.take()
            return not _truthy(self.unary())
        return self.primary()

    def primary(self):
        kind, value = self.take()
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if value == "(":
            inner = self.or_()
            self.take(")")
            return inner
        if kind != "name":
            raise ValueError(f"unexpected {value!r}")
        if value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value]
        if self.peek()[1] == "(":
            self.take("(")
            args = []
            while self.peek()[1] != ")":
                args.append(self.or_())
                if self.peek()[1] == ",":
                    self.take()
            self.take(")")
            return self.call(value, args)
        current = self.ctx.get(value)
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                key = self.take()[1]
            else:
                key = self.or_()
                self.take("]")
            current = current.get(key) if isinstance(current, dict) else None
        return current

    def call(self, name: str, args):
        name = name.lower()
        status = self.ctx.get("__status__", "success")
        if name == "fromjson":
            return json.loads(args[0])
        if name == "tojson":
            return json.dumps(args[0])
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: _text(args[int(m.group(1)) + 1]), args[0])
        if name == "contains":
            return args[1] in args[0] if isinstance(args[0], list) else str(args[1]).lower() in str(args[0]).lower()
        if name == "startswith":
            return str(args[0]).lower().startswith(str(args[1]).lower())
        if name == "always":
            return True
        if name == "success":
            return status == "success"
        if name == "failure":
            return status == "failure"
        if name == "cancelled":
            return False
        raise ValueError(f"function {name} is not simulated")


def _truthy(v) -> bool:
    return v not in (False, 0, "", None) and v == v


def _coerce(a, b):
    if type(a) is type(b) and isinstance(a, str):
        return a.lower(), b.lower()
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return id(a), id(b)

    def num(v):
        if v is None:
            return 0
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, (int, float)):
            return v
        try:
            return float(v) if v.strip() else 0
        except ValueError:
            return float("nan")
    return num(a), num(b)


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def evaluate(value, ctx: dict):
    """A workflow value with ${{ }} inside: the expression's value when it is all one expression,
    else the text with each expression replaced."""
    if not isinstance(value, str) or "${{" not in value:
        return value
    parts = re.split(r"\$\{\{(.*?)\}\}", value)
    if len(parts) == 3 and not parts[0].strip() and not parts[2].strip():
        return _Expr(parts[1], ctx).parse()
    return "".join(_text(_Expr(p, ctx).parse()) if i % 2 else p for i, p in enumerate(parts))


def test_expression_evaluator():
    ctx = {"inputs": {"mode": "matrix", "n": 3}, "needs": {"plan": {"outputs": {"count": "0", "jobs": '["a"]'}}},
           "github": {"event": {"pull_request": {"number": 7}}}}
    assert evaluate("${{ inputs.mode == 'matrix' }}", ctx) is True
    assert evaluate("${{ inputs.mode == 'MATRIX' && inputs.n }}", ctx) == 3
    assert evaluate("${{ needs.plan.outputs.count != '' && needs.plan.outputs.count != '0' }}", ctx) is False
    assert evaluate("${{ fromJSON(needs.plan.outputs.jobs) }}", ctx) == ["a"]
    assert evaluate("pr-${{ github.event.pull_request.number || github.ref }}", ctx) == "pr-7"
    assert evaluate("${{ !contains(fromJSON('[\"x\"]'), 'y') }}", ctx) is True


# --- the runner ---------------------------------------------------------------------------------------------

@dataclass
class StepRun:
    name: str
    outcome: str                  # success | failure | skipped
    stdout: str = ""
    stderr: str = ""
    env: dict = field(default_factory=dict)
    fetched_bytes: int = 0        # bytes of promisor packs (fetched from the remote) this step added
    seconds: float = 0.0


@dataclass
class JobRun:
    name: str
    result: str                   # success | failure | skipped
    outputs: dict = field(default_factory=dict)
    steps: list[StepRun] = field(default_factory=list)
    summary: str = ""
    runs_on: object = None
    permissions: dict = field(default_factory=dict)
    matrix: dict = field(default_factory=dict)
    workspace: Path | None = None

    def step(self, name_part: str) -> StepRun:
        return next(s for s in self.steps if name_part in s.name)


def _promisor_bytes(workspace: Path) -> int:
    pack_dir = workspace / ".git" / "objects" / "pack"
    return sum(p.with_suffix(".pack").stat().st_size for p in pack_dir.glob("*.promisor")) if pack_dir.exists() else 0


@dataclass
class _Run:
    """One workflow run: the github context, the event file, workflow_dispatch inputs."""
    github: dict = field(default_factory=dict)
    event_path: Path | None = None
    dispatch_inputs: dict | None = None


class ActionsSim:
    def __init__(self, root: Path, remote_url: str, fake: FakeGitHub, caller_dir: Path):
        self.root, self.remote_url, self.fake, self.caller_dir = root, remote_url, fake, caller_dir
        self.jobs: list[JobRun] = []
        self._n = 0
        self._lock = threading.Lock()

    # -- resolving `uses:` of jobs --
    def resolve(self, uses: str) -> Path:
        if uses.startswith("./"):
            return self.caller_dir.parent.parent / uses[2:]
        m = re.fullmatch(r"[\w.-]+/[\w.-]+/\.github/workflows/([\w.-]+)@[\w./-]+", uses)
        assert m, f"unexpected reusable workflow reference {uses}"
        return WORKFLOWS / m.group(1)

    def run(self, workflow: Path, event_name: str, event: dict, ref: str, sha: str) -> dict[str, JobRun]:
        """Run a workflow for an event (for workflow_dispatch, event["inputs"] are its inputs)."""
        r = _Run()
        r.github = {"repository": self.fake.repository, "repository_owner": self.fake.repository.split("/")[0],
                       "event_name": event_name, "event": event, "ref": ref,
                       "ref_name": ref.rsplit("/", 1)[-1], "sha": sha, "token": self.fake.token,
                       "server_url": "https://github.com", "api_url": self.fake.url, "run_id": "4242",
                       "actor": "octocat"}
        with self._lock:
            self._n += 1
            r.event_path = self.root / f"event-{self._n}.json"
        r.event_path.write_text(json.dumps(event))
        r.dispatch_inputs = None
        if event_name == "workflow_dispatch":
            declared = _on(_load(workflow))["workflow_dispatch"].get("inputs", {})
            given = event.get("inputs", {})
            assert set(given) <= set(declared), f"{workflow.name} has no inputs {set(given) - set(declared)}"
            r.dispatch_inputs = {k: given.get(k, spec.get("default")) for k, spec in declared.items()}
            for k, spec in declared.items():
                assert r.dispatch_inputs[k] is not None or not spec.get("required"), f"input {k} is required"
                if spec.get("type") == "choice":
                    assert r.dispatch_inputs[k] in spec["options"], f"input {k}: not one of the options"
        return self.run_workflow(r, workflow, inputs=None, caller_permissions=None)

    def run_workflow(self, r, path: Path, inputs: dict | None, caller_permissions: dict | None) -> dict[str, JobRun]:
        wf = _load(path)
        on = _on(wf)
        if inputs is not None:          # workflow_call: defaults and types
            declared = on["workflow_call"].get("inputs", {})
            unknown = set(inputs) - set(declared)
            assert not unknown, f"{path.name} has no inputs {unknown}"
            full = {}
            for name, spec in declared.items():
                value = inputs.get(name, spec.get("default"))
                assert value is not None or not spec.get("required"), f"{path.name}: input {name} is required"
                if spec.get("type") == "number" and value is not None:
                    value = int(value)
                if spec.get("type") == "boolean" and isinstance(value, str):
                    value = value.lower() == "true"
                full[name] = value
            inputs = full
        elif r.dispatch_inputs is not None and "workflow_dispatch" in on:
            inputs = r.dispatch_inputs
        results: dict[str, JobRun] = {}
        pending = dict(wf["jobs"])
        while pending:
            ready = [j for j, spec in pending.items()
                     if all(n in results for n in _needs(spec))]
            assert ready, f"{path.name}: cycle in needs"
            for job_id in ready:
                results[job_id] = self.run_job(r, path, job_id, pending.pop(job_id), inputs or {}, results,
                                               caller_permissions)
        return results

    def run_job(self, r, path, job_id, spec, inputs, results, caller_permissions) -> JobRun:
        needs = {n: {"result": results[n].result, "outputs": results[n].outputs} for n in _needs(spec)}
        ctx = {"github": r.github, "inputs": inputs, "needs": needs, "vars": {}, "secrets": {}}
        failed_need = any(n["result"] != "success" for n in needs.values())
        condition = spec.get("if")
        ctx["__status__"] = "failure" if failed_need else "success"
        go = _truthy(evaluate("${{ " + condition + " }}" if condition and "${{" not in str(condition)
                              else condition, ctx)) if condition is not None else not failed_need
        if condition is not None and failed_need and "always()" not in str(condition):
            go = False
        permissions = spec.get("permissions", {})
        if caller_permissions is not None:          # a called workflow's job never gets more than its caller
            for scope, level in permissions.items():
                assert caller_permissions.get(scope) in (level, "write"), \
                    f"{path.name}:{job_id} needs {scope}: {level}, its caller grants {caller_permissions.get(scope)}"
        name = f"{path.name}:{job_id}"
        if not go:
            job = JobRun(name, "skipped")
            with self._lock:
                self.jobs.append(job)
            return job
        if "uses" in spec:
            called = self.resolve(spec["uses"])
            with_ = {k: evaluate(v, ctx) for k, v in (spec.get("with") or {}).items()}
            inner = self.run_workflow(r, called, with_, permissions)
            outputs_spec = _on(_load(called))["workflow_call"].get("outputs", {})
            jobs_ctx = {j: {"result": x.result, "outputs": x.outputs} for j, x in inner.items()}
            outputs = {k: _text(evaluate(v["value"], {**ctx, "jobs": jobs_ctx})) for k, v in outputs_spec.items()}
            result = "failure" if any(x.result == "failure" for x in inner.values()) else "success"
            job = JobRun(name, result, outputs, permissions=permissions)
            with self._lock:
                self.jobs.append(job)
            return job
        matrix = evaluate((spec.get("strategy") or {}).get("matrix"), ctx) or {}
        matrix = {k: evaluate(v, ctx) for k, v in matrix.items()} if isinstance(matrix, dict) else matrix
        combos = [{}]
        for key, values in matrix.items():
            combos = [dict(c, **{key: v}) for c in combos for v in values]
        if not combos or (matrix and not all(matrix.values())):
            raise AssertionError(f"{name}: empty matrix (GitHub fails such a job)")
        with ThreadPoolExecutor(max_workers=len(combos)) as pool:
            runs = list(pool.map(lambda m: self.run_steps(r, name, spec, dict(ctx, matrix=m), m, permissions),
                                 combos))
        result = "failure" if any(x.result == "failure" for x in runs) else "success"
        outputs = {}
        for x in runs:
            outputs.update(x.outputs)
        job = JobRun(name, result, outputs, permissions=permissions)
        job.steps = [step for x in runs for step in x.steps]
        return job

    def run_steps(self, r, name: str, spec: dict, ctx: dict, matrix: dict, permissions: dict) -> JobRun:
        with self._lock:
            self._n += 1
            n = self._n
        workspace = self.root / f"runner-{n}" / "work"
        temp = self.root / f"runner-{n}" / "temp"
        workspace.mkdir(parents=True)
        temp.mkdir()
        job = JobRun(name + (f" {matrix}" if matrix else ""), "success", runs_on=evaluate(spec.get("runs-on"), ctx),
                     permissions=permissions, matrix=matrix, workspace=workspace)
        evaluate((spec.get("concurrency") or {}).get("group"), ctx)      # must evaluate
        base_env = {**os.environ, "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": self.fake.repository,
                    "GITHUB_REPOSITORY_OWNER": r.github["repository_owner"], "GITHUB_API_URL": self.fake.url,
                    "GITHUB_SERVER_URL": "https://github.com", "GITHUB_SHA": r.github["sha"],
                    "GITHUB_REF": r.github["ref"], "GITHUB_REF_NAME": r.github["ref_name"],
                    "GITHUB_REF_TYPE": "branch", "GITHUB_EVENT_NAME": r.github["event_name"],
                    "GITHUB_EVENT_PATH": str(r.event_path), "GITHUB_WORKSPACE": str(workspace),
                    "GITHUB_RUN_ID": r.github["run_id"], "GITHUB_JOB": name, "RUNNER_TEMP": str(temp),
                    "GITHUB_ACTOR": "octocat",
                    # the fake GitHub: short timeouts, no retries or throttling
                    "GIT_PANINI_GITHUB_TIMEOUT": "2", "GIT_PANINI_GITHUB_RETRIES": "0",
                    "GIT_PANINI_GITHUB_WRITE_INTERVAL": "0"}
        base_env.pop("GITHUB_TOKEN", None)          # a runner has none unless a step's env passes it
        steps_ctx: dict[str, dict] = {}
        status = "success"
        for i, step in enumerate(spec["steps"]):
            ctx = dict(ctx, steps=steps_ctx, __status__=status)
            label = step.get("name") or step.get("uses") or f"step {i}"
            condition = step.get("if")
            if condition is not None:
                go = _truthy(evaluate("${{ " + str(condition) + " }}" if "${{" not in str(condition) else condition,
                                      ctx))
            else:
                go = status == "success"
            if not go:
                job.steps.append(StepRun(label, "skipped"))
                continue
            if "uses" in step:
                outcome = self.action(r, step, ctx, workspace)
                job.steps.append(StepRun(label, outcome))
            elif step.get("id") == "install":
                job.steps.append(StepRun(label, "skipped"))       # git-panini is installed here already
                continue
            else:
                script = step["run"]
                assert "${{" not in script
                env = {**base_env, **{k: _text(evaluate(v, ctx)) for k, v in (spec.get("env") or {}).items()},
                       **{k: _text(evaluate(v, ctx)) for k, v in (step.get("env") or {}).items()}}
                output = temp / f"output-{i}"
                summary = temp / f"summary-{i}"
                output.touch()
                summary.touch()
                env.update(GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
                script_file = temp / f"step-{i}.sh"
                script_file.write_text(script)
                before = _promisor_bytes(workspace)
                started = time.monotonic()
                proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
                                      cwd=workspace, env=env, capture_output=True, text=True)
                outcome = "success" if proc.returncode == 0 else "failure"
                step_env = {k: v for k, v in env.items() if k not in os.environ or k.startswith("GITHUB")}
                job.steps.append(StepRun(label, outcome, proc.stdout, proc.stderr, step_env,
                                         _promisor_bytes(workspace) - before, time.monotonic() - started))
                if "id" in step:
                    steps_ctx[step["id"]] = {"outputs": _read_output(output.read_text()), "outcome": outcome}
                job.summary += summary.read_text()
            if job.steps[-1].outcome == "failure":
                status = "failure"
                job.result = "failure"
        outputs_ctx = dict(ctx, steps=steps_ctx)
        job.outputs = {k: _text(evaluate(v, outputs_ctx)) for k, v in (spec.get("outputs") or {}).items()}
        with self._lock:
            self.jobs.append(job)
        return job

    def action(self, r, step: dict, ctx: dict, workspace: Path) -> str:
        uses = step["uses"]
        with_ = {k: evaluate(v, ctx) for k, v in (step.get("with") or {}).items()}
        if uses.startswith("actions/setup-python@"):
            return "success"
        if uses.startswith("actions/upload-artifact@"):      # kept under artifacts/<name>/ of this run
            source = workspace / with_["path"]
            if not source.exists() and with_.get("if-no-files-found") == "error":
                return "failure"
            shutil.copytree(source, self.root / "artifacts" / with_["name"], dirs_exist_ok=True)
            if step.get("id"):
                url = f"https://github.com/artifacts/{with_['name']}"
                ctx["steps"][step["id"]] = {"outputs": {"artifact-url": url}, "outcome": "success"}
            return "success"
        assert uses.startswith("actions/checkout@"), f"action {uses} is not simulated"
        depth = int(with_.get("fetch-depth", 1))
        args = ["git", "clone", "--quiet", "--no-checkout"]
        if with_.get("filter"):
            args.append(f"--filter={with_['filter']}")
        if depth > 0:
            args += [f"--depth={depth}", "--branch", r.github["ref_name"]]
        run([*args, self.remote_url, str(workspace)])
        event = r.github["event"]
        target = event["pull_request"]["head"]["sha"] if "pull_request" in event else r.github["sha"]
        git(workspace, "checkout", "--quiet", "--detach", target)
        return "success"


def _needs(spec: dict) -> list[str]:
    needs = spec.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def _read_output(text: str) -> dict[str, str]:
    out, lines, i = {}, text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            i += 1
            while lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


# --- the simulated run ----------------------------------------------------------------------------------------

def _remote_notes(remote: Path) -> dict[str, dict]:
    r = Repo(str(remote))
    try:
        return Notes(r).all()
    finally:
        r.close()


def _store_bytes(remote: Path) -> int:
    """On-disk size of everything the refs under refs/panini/ reach in the remote: the whole store
    (metadata, raw batches and pack data)."""
    objects = git(remote, "rev-list", "--objects", "--glob=refs/panini/*").stdout
    oids = "".join(line.split()[0] + "\n" for line in objects.splitlines())
    sizes = git(remote, "cat-file", "--batch-check=%(objectsize:disk)", input=oids).stdout.split()
    return sum(int(s) for s in sizes)


def _workers(sim: ActionsSim, since: int) -> list[JobRun]:
    return [j for j in sim.jobs[since:] if j.name.startswith("worker.yml:work")]


def _check_workers(workers: list[JobRun], ids: list[str]):
    assert sorted(w.matrix["job"] for w in workers) == sorted(ids)
    for w in workers:
        assert w.runs_on == ["ubuntu-latest"] and w.result == "success", w.steps[-2].stderr
        work = w.step("Work")
        assert work.env["JOB"] == w.matrix["job"] and "GITHUB_TOKEN" not in work.env
        assert re.match(r"[1-9]\d* file\(s\) worked, 0 failed", work.stdout), work.stdout + work.stderr
        assert "### git-panini worker, job" in w.summary
        assert git(w.workspace, "config", "remote.origin.promisor").stdout.strip() == "true"


def test_simulated_actions_run(tmp_path, report):
    remote, url = make_bare(tmp_path)
    for key in ("uploadpack.allowFilter", "uploadpack.allowAnySHA1InWant"):   # as GitHub serves partial clones
        git(remote, "config", key, "true")
    dev = make_repo(tmp_path, name="dev", track=("*.bin",))
    git(dev, "remote", "add", "origin", url)
    callers = dev / ".github" / "workflows"                     # what `git panini init-ci` writes (matrix mode)
    api_callers = tmp_path / "api-callers" / ".github" / "workflows"   # --mode dispatch, for the API path
    for directory, mode in ((callers, "matrix"), (api_callers, "dispatch")):
        directory.mkdir(parents=True)
        for name, text in render(uses=PINNED, mode=mode, spec=SPEC, max_jobs=3, job_bytes="100KB",
                                 dashboard=mode == "matrix").items():
            (directory / name).write_text(text)
    write_text(dev / "data" / "text.bin", 120_000, seed=1)
    write_random(dev / "data" / "noise.bin", 60_000, seed=2)
    git(dev, "add", ".")
    git(dev, "commit", "-q", "-m", "data and workflows")
    git(dev, "push", "-q", "origin", "main")
    base = git(dev, "rev-parse", "HEAD").stdout.strip()

    with FakeGitHub(refs=("main", "feature")) as fake:
        (tmp_path / "actions").mkdir()
        sim = ActionsSim(tmp_path / "actions", url, fake, callers)
        repository = {"full_name": fake.repository, "default_branch": "main"}

        # 1. a push to main, matrix mode: dispatch plans the jobs, a matrix of workers runs them in parallel
        store_before = _store_bytes(remote)
        jobs = sim.run(callers / "panini-dispatch.yml", "push",
                       {"ref": "refs/heads/main", "after": base, "repository": repository}, "refs/heads/main", base)
        assert jobs["plan"].result == "success" and jobs["work"].result == "success"
        ids = json.loads(jobs["plan"].outputs["jobs"])
        assert len(ids) == int(jobs["plan"].outputs["count"]) >= 2
        workers = _workers(sim, 0)
        _check_workers(workers, ids)
        plan = next(j for j in sim.jobs if j.name == "dispatch.yml:plan")
        assert plan.permissions == {"contents": "write"} and "GITHUB_TOKEN" not in plan.step("Queue").env
        assert fake.requests == []        # matrix mode: no API call at all
        # init-ci --dashboard: the plan job publishes the dashboard (the queue as it left it), linked from its summary
        artifact = tmp_path / "actions" / "artifacts" / "panini-dashboard"
        numbers = json.loads((artifact / "dashboard.json").read_text())
        assert (artifact / "index.html").read_text().startswith("<!doctype html>")
        assert numbers["totals"]["files"] == 2 and numbers["verify"] is None
        assert numbers["queue"]["now"]["queued"]["files"] == 2
        assert "### git-panini dashboard" in plan.summary
        assert "[panini-dashboard](https://github.com/artifacts/panini-dashboard)" in plan.summary
        notes = _remote_notes(remote)
        assert sorted(n["status"] for n in notes.values()) == ["completed"] * 2
        # what a worker fetched: only its files' raw chunks (and the store's trees and metadata)
        for w in workers:
            job = w.matrix["job"]
            fetched = w.step("Work").fetched_bytes
            own = sum(n["unique_bytes"] for n in notes.values() if n["job"] == job)
            report(f"actions sim: job {job} fetched {fetched} bytes during `git panini work` for its files' "
                   f"{own} new bytes; the whole store was {store_before} bytes")
            assert fetched < store_before

        # 2. a push to feature, API mode: one workflow_dispatch per job, each starts panini-worker.yml
        git(dev, "checkout", "-q", "-b", "feature")
        with open(dev / "data" / "text.bin", "ab") as f:
            f.write(b"one more line of text\n" * 3000)
        write_text(dev / "data" / "new.bin", 90_000, seed=4)
        shutil.copy(dev / "data" / "noise.bin", dev / "data" / "noise-copy.bin")   # deduplicated: nothing to do
        git(dev, "add", ".")
        git(dev, "commit", "-q", "-m", "feature work")
        git(dev, "push", "-q", "origin", "feature")
        head = git(dev, "rev-parse", "HEAD").stdout.strip()
        mark = len(sim.jobs)
        api = ActionsSim(tmp_path / "actions", url, fake, api_callers)
        api._n = 100
        jobs = api.run(api_callers / "panini-dispatch.yml", "push",
                       {"ref": "refs/heads/feature", "after": head, "repository": repository},
                       "refs/heads/feature", head)
        assert list(jobs) == ["plan"] and jobs["plan"].result == "success"
        dispatch_job = next(j for j in api.jobs if j.name == "dispatch-api.yml:dispatch")
        assert dispatch_job.step("Upload the dashboard").outcome == "skipped"     # init-ci without --dashboard
        step = dispatch_job.step("dispatch the worker")
        assert step.env["GITHUB_TOKEN"] == fake.token and step.env["DEFAULT_BRANCH"] == "main"
        assert [r.auth for r in fake.requests] == [f"token {fake.token}"] * len(fake.dispatches)
        ids = [json.loads(d["inputs"]["jobs"])[0] for d in fake.dispatches]
        assert len(ids) >= 2 and all(d["ref"] == "main" and d["workflow"] == "panini-worker.yml"
                                     for d in fake.dispatches)
        with ThreadPoolExecutor(max_workers=len(ids)) as pool:     # GitHub starts one worker run per dispatch
            list(pool.map(lambda d: api.run(api_callers / "panini-worker.yml", "workflow_dispatch",
                                            {"inputs": d["inputs"], "ref": "refs/heads/main",
                                             "repository": repository}, "refs/heads/main", base),
                          fake.dispatches))
        _check_workers(_workers(api, 0), ids)
        sim.jobs += api.jobs[mark:]
        assert sorted(n["status"] for n in _remote_notes(remote).values()) == ["completed"] * 4

        # 3. the schedule finds nothing left: count 0, the worker job is skipped
        jobs = sim.run(callers / "panini-dispatch.yml", "schedule", {"schedule": "17,47 * * * *"}, "refs/heads/main",
                       base)
        assert jobs["plan"].outputs["count"] == "0" and jobs["work"].result == "skipped"

        # 4. the PR check on a good range: both statuses success, one comment
        pr_event = {"number": 12, "pull_request": {
            "number": 12, "base": {"sha": base, "ref": "main"},
            "head": {"sha": head, "ref": "feature", "repo": {"full_name": fake.repository}}},
            "repository": repository}
        jobs = sim.run(callers / "panini-pr.yml", "pull_request", pr_event, "refs/pull/12/merge", head)
        check = [j for j in sim.jobs if j.name == "pr-check.yml:check"][-1]
        assert jobs["check"].result == "success", check.steps[-1].stderr
        assert fake.status_of(head, "panini/ratio")["state"] == "success"
        assert fake.status_of(head, "panini/verify")["state"] == "success"
        assert fake.status_of(head, "panini/verify")["description"] == "3 of 3 file(s) bit-perfect"
        assert fake.status_of(head, "panini/verify")["target_url"].endswith("/actions/runs/4242")
        [comment] = fake.comments[12]
        assert "| `data/new.bin` | added |" in check.summary and comment["body"] in check.summary
        (tmp_path / "pr-check-summary.md").write_text(check.summary)

        # 5. a corrupted chunk in the store: panini/verify fails, the same comment says so. First a worker
        # pass with nothing to claim removes the raw batches the matrix left (each worker packed part of
        # one), so the corrupted pack is the only copy.
        run(["git", "panini", "work", "--effort", "0"], cwd=dev)
        assert not git(remote, "for-each-ref", "refs/panini/raw/").stdout
        corrupt_chunk(remote, pointer_of(dev, "HEAD:data/new.bin").manifest)
        git(remote, "gc", "--quiet", "--prune=now")       # the replaced pack and the raw chunks are gone
        jobs = sim.run(callers / "panini-pr.yml", "pull_request", pr_event, "refs/pull/12/merge", head)
        check = [j for j in sim.jobs if j.name == "pr-check.yml:check"][-1]
        assert jobs["check"].result == "failure"
        verify = fake.status_of(head, "panini/verify")
        assert verify["state"] == "failure" and "data/new.bin" in verify["description"]
        assert fake.status_of(head, "panini/ratio")["state"] == "success"
        [comment] = fake.comments[12]
        assert "❌" in comment["body"] and "data/new.bin" in comment["body"]
        assert "1 of 3 file(s) FAILED verification" in check.steps[-1].stderr


def test_the_default_spec_is_where_this_install_came_from():
    from git_panini.remote_work.distribution import spec_from

    def no_checkout(path):
        return None

    commit = "0123456789abcdef0123456789abcdef01234567"
    assert spec_from(None, "0.1.0", no_checkout) == ("git-panini==0.1.0", "a package index")
    vcs = {"url": "https://github.com/o/git-panini", "vcs_info": {"vcs": "git", "commit_id": commit}}
    assert spec_from(vcs, "0.1.0", no_checkout)[0] == f"git-panini @ git+https://github.com/o/git-panini@{commit}"
    local = {"url": "file:///src/git-panini", "dir_info": {"editable": True}}
    assert spec_from(local, "0.1.0", no_checkout) == (None, "/src/git-panini")
    assert spec_from(local, "0.1.0", lambda path: ("https://example.org/p.git", commit))[0] == \
        f"git-panini @ git+https://example.org/p.git@{commit}"
    archive = {"url": "file:///tmp/git_panini-0.1.0.tar.gz", "archive_info": {}}
    assert spec_from(archive, "0.1.0", no_checkout)[0] is None


def test_init_ci_refuses_to_guess_a_spec_runners_cannot_install(tmp_path, monkeypatch):
    from git_panini.remote_work import distribution
    from git_panini.cli import main

    repo = make_repo(tmp_path, install=False)
    monkeypatch.chdir(repo)
    monkeypatch.setattr(distribution, "_checkout_origin", lambda path: None)
    monkeypatch.setattr("sys.argv", ["git-panini", "init-ci", "--uses", PINNED])
    installed = distribution.install_spec()
    if installed[0] is not None:
        pytest.skip(f"this test run's git-panini came from {installed[1]}, which runners can reach")
    assert main() == 1
    assert not (repo / ".github").exists()
