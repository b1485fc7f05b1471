"""notebooks/colab_worker.ipynb, executed headless (nbclient, a kernel on this venv's python) in polling mode
against a real bare remote holding pending files: afterwards the remote's notes say completed, a fresh
clone checks out every file bit-identical, and the token never shows (outputs, .git/config). The remote is
reached through file://, and through smart HTTP that answers only requests carrying the token (as
GitHub takes one: basic auth, any user name), so the token really goes through the GIT_ASKPASS helper.
The Colab-only cells are guarded (`"google.colab" in sys.modules`); the serve cell is skipped in poll mode.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import nbclient   # the test extra: nbclient, nbformat, ipykernel
import nbformat

import pytest

from conftest import file_url, git, make_bare, make_repo, notes_of, pointer_of, sha256_file, write_text
from smart_http import _Handler, serve_http_remote
from test_watch import fresh_clone_verifies

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "colab_worker.ipynb"
TOKEN = "panini-test-token-5f0c2e"   # must never show in what the notebook prints or writes


class _TokenHandler(_Handler):
    """Smart HTTP for requests whose basic auth carries the token; 401 (and a count) for the others."""

    def _cgi(self):
        expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") == expected:
            return super()._cgi()
        self.server.refused = getattr(self.server, "refused", 0) + 1
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="panini"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.close_connection = True


@pytest.fixture(params=["file", "http-token"])
def remote(request, tmp_path):
    """(bare path, the URL the notebook gets, the http server or None)."""
    if request.param == "file":
        bare, url = make_bare(tmp_path)
        yield bare, url, None
        return
    with serve_http_remote(tmp_path) as served:
        served.server.RequestHandlerClass = _TokenHandler
        yield served.bare, served.url, served.server


def _kernel(tmp_path, monkeypatch) -> str:
    """A kernelspec running this interpreter (the venv's, where git-panini is installed), found first
    through JUPYTER_PATH whatever kernels the machine has."""
    spec = tmp_path / "jupyter" / "kernels" / "panini-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "panini test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    return "panini-test"


def _outputs(nb) -> str:
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text") or "")
            text += [str(v) for v in (out.get("data") or {}).values()]
            text += out.get("traceback") or []
    return "".join(text)


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_the_notebook_polls_a_local_remote_until_its_pending_files_are_completed(tmp_path, monkeypatch, remote):
    bare, url, server = remote
    path = make_repo(tmp_path, track=("*.bin",))
    digests = {f"data/{n}.bin": sha256_file(write_text(path / "data" / f"{n}.bin", (40 + 30 * n) << 10, seed=n))
               for n in range(3)}
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "three files")
    git(path, "remote", "add", "origin", file_url(bare))
    git(path, "push", "-q", "-u", "origin", "main")
    manifests = {pointer_of(path, f"HEAD:{name}").manifest for name in digests}
    assert {m: notes_of(bare)[m]["status"] for m in manifests} == {m: "pending" for m in manifests}

    work = tmp_path / "notebook-work"
    for name, value in {"PANINI_NOTEBOOK_SKIP_INSTALL": "1", "PANINI_REPO_URL": url, "PANINI_BRANCH": "main",
                        "PANINI_MODE": "poll", "PANINI_INTERVAL": "0.2", "PANINI_MAX_IDLE": "1",
                        "PANINI_WORKDIR": str(work), "PANINI_REPO_TOKEN": TOKEN}.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=_kernel(tmp_path, monkeypatch), timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    printed = _outputs(nb)
    assert "install skipped (PANINI_NOTEBOOK_SKIP_INSTALL=1)" in printed
    assert "no GPU: CPU worker" in printed or "GPU: " in printed
    assert "git-panini installed: filter in .git/config" in printed
    assert "round 1: 3 file(s), 0 failed" in printed, printed
    assert "2 round(s), 3 file(s) worked (0 failed)" in printed, printed   # --max-idle 1: one empty round, then stop
    assert "throughput reached: " in printed and "throughput reached: 0 B/s" not in printed, printed
    assert "worker exited with 0" in printed and "serve mode not chosen: skipped" in printed
    assert TOKEN not in printed

    assert git(work / "repo", "remote", "get-url", "origin").stdout.strip() == url
    written = [f for f in work.rglob("*") if f.is_file() and TOKEN.encode() in f.read_bytes()]
    assert not written, written   # .git/config, logs, the askpass helper: nowhere
    notes = notes_of(bare)
    assert {m: notes[m]["status"] for m in manifests} == {m: "completed" for m in manifests}
    assert all(notes[m]["stored_bytes"] < notes[m]["bytes"] and notes[m]["lease_until"] is None for m in manifests)
    if server is not None:   # the clone, the worker's fetches and its push all went through the token
        assert server.refused > 0
        assert any(r.service == "git-receive-pack" and r.method == "POST" and r.status == 200
                   for r in server.requests)
    fresh_clone_verifies(tmp_path, file_url(bare), digests)
