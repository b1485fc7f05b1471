"""The README's first command: `git panini demo` runs end to end on a fresh directory."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, run, sha256_file


def test_the_demo_runs_end_to_end(tmp_path):
    proc = run(["git", "panini", "demo", str(tmp_path / "demo")])
    assert "clone is bit-identical to the original: yes" in proc.stdout
    assert "\\x0a" not in proc.stdout   # the status tables are printed as tables, not one escaped line
    # Checked here, not taken from the demo's word: the clone (made over file://) holds the very bytes of the
    # files the demo wrote, and they are real files, not pointer text.
    work, clone = tmp_path / "demo" / "work", tmp_path / "demo" / "clone"
    tracked = git(work, "ls-files", "data").stdout.split()
    assert len(tracked) == 4
    for name in tracked:
        assert sha256_file(clone / name) == sha256_file(work / name), name
        assert not (clone / name).read_bytes().startswith(b"version git-panini/"), name
    assert "% saved" in proc.stdout
    numbers = json.loads((tmp_path / "demo" / "dashboard" / "dashboard.json").read_text())
    assert numbers["totals"]["completed_files"] == numbers["totals"]["files"] == 4
    assert numbers["verify"]["ok"] and numbers["verify"]["checked"] == 4
    assert (tmp_path / "demo" / "dashboard" / "index.html").stat().st_size > 10_000
    # docs/demo.txt, the capture the README shows, is what the demo prints now: the same commands, as many lines.
    capture = (Path(__file__).resolve().parents[1] / "docs" / "demo.txt").read_text().splitlines()
    shown = proc.stdout.replace(str(tmp_path / "demo"), "/tmp/panini-demo").splitlines()
    assert [l for l in shown if l.startswith("$ ")] == [l for l in capture if l.startswith("$ ")], \
        "docs/demo.txt is behind: git panini demo /tmp/panini-demo > docs/demo.txt 2>&1"
    assert len(shown) == len(capture)
