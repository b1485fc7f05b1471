"""notebooks/colab_worker.ipynb, executed headless (nbclient, a kernel on this venv's python) in polling mode
against a real bare remote (file://) holding pending files: afterwards the remote's notes say completed,
a fresh clone checks out every file bit-identical, and the token never shows (outputs, .git/config).
The Colab-only cells are guarded (`"google.colab" in sys.modules`); the serve cell is skipped in poll mode.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbclient   # the test extra: nbclient, nbformat, ipykernel
import nbformat

from conftest import git, make_bare, make_repo, notes_of, pointer_of, sha256_file, write_text
from test_watch import fresh_clone_verifies

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "colab_worker.ipynb"
TOKEN = "panini-test-token-5f0c2e"   # must never show in what the notebook prints or writes


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


def test_the_notebook_polls_a_local_remote_until_its_pending_files_are_completed(tmp_path, monkeypatch):
    path = make_repo(tmp_path, track=("*.bin",))
    digests = {f"data/{n}.bin": sha256_file(write_text(path / "data" / f"{n}.bin", (40 + 30 * n) << 10, seed=n))
               for n in range(3)}
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "three files")
    bare, url = make_bare(tmp_path)
    git(path, "remote", "add", "origin", url)
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
    assert "throughput reached: " in printed and "throughput reached: 0 B/s" not in printed, printed
    assert "worker exited with 0" in printed and "serve mode not chosen: skipped" in printed
    assert TOKEN not in printed

    clone_config = (work / "repo" / ".git" / "config").read_text()
    assert TOKEN not in clone_config and git(work / "repo", "remote", "get-url", "origin").stdout.strip() == url
    notes = notes_of(bare)
    assert {m: notes[m]["status"] for m in manifests} == {m: "completed" for m in manifests}
    assert all(notes[m]["stored_bytes"] < notes[m]["bytes"] and notes[m]["lease_until"] is None for m in manifests)
    fresh_clone_verifies(tmp_path, url, digests)
