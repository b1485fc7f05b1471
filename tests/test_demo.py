"""The README's first command: `git panini demo` runs end to end on a fresh directory."""

from __future__ import annotations

import json

from conftest import run


def test_the_demo_runs_end_to_end(tmp_path):
    proc = run(["git", "panini", "demo", str(tmp_path / "demo")])
    assert "clone is bit-identical to the original: yes" in proc.stdout
    assert "% saved" in proc.stdout
    numbers = json.loads((tmp_path / "demo" / "dashboard" / "dashboard.json").read_text())
    assert numbers["totals"]["completed_files"] == numbers["totals"]["files"] == 4
    assert numbers["verify"]["ok"] and numbers["verify"]["checked"] == 4
    assert (tmp_path / "demo" / "dashboard" / "index.html").stat().st_size > 10_000
