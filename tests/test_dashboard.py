"""git panini dashboard: a real repository (files of several types, some completed by `git panini work`, some
pending) rendered, opened in headless Chromium (no console error, nothing fetched, the numbers on the page
equal `git panini report --all --json` and dashboard.json), hostile paths shown as text, the empty state,
a failed verify, and what the notes give for the queue's history and worker throughput."""

from __future__ import annotations

import io
import json
import os
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import git, make_bare, make_repo, notes_of, pointer_of, run, write_random, write_text
from test_report import copy_template, corrupt_chunk, forget_raw_copies
from git_panini.report.dashboard import STATES, sample
from git_panini.report.dashboard_html import history_chart
from git_panini.util.units import human

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE = "<script>alert(1)</script>.bin"          # a directory '<script>alert(1)<' holding 'script>.bin'
QUOTES = "a \"quoted\" & 'single' <b>.txt"
NOT_UTF8 = b"latin-\xe9.bin"


# --- the repository ------------------------------------------------------------------------------------------

def _png(seed: int) -> bytes:
    import random
    from PIL import Image
    noise = Image.frombytes("RGB", (320, 240), random.Random(seed).randbytes(320 * 240 * 3))
    img = Image.blend(Image.linear_gradient("L").resize((320, 240)).convert("RGB"), noise, 0.3)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _tar_gz(tmp: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for i in range(3):
            path = write_text(tmp / f"member{i}.txt", 40_000, seed=10 + i)
            tar.add(path, arcname=path.name)
    return out.getvalue()


def _build(base: Path):
    repo = make_repo(base, track=("*.bin", "*.txt", "*.png", "*.tar.gz"))
    _, url = make_bare(base)
    git(repo, "remote", "add", "origin", url)
    write_text(repo / "docs" / "manual.txt", 300_000, seed=1)
    (repo / "docs" / "manual-copy.txt").write_bytes((repo / "docs" / "manual.txt").read_bytes())   # dedup
    write_random(repo / "data" / "noise.bin", 200_000, seed=2)
    (repo / "images").mkdir()
    (repo / "images" / "gradient.png").write_bytes(_png(1))
    (repo / "<script>alert(1)<").mkdir()
    write_text(repo / HOSTILE, 20_000, seed=3)
    write_text(repo / QUOTES, 15_000, seed=4)
    (repo / "README.md").write_text("not tracked\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first files")
    git(repo, "push", "-q", "-u", "origin", "main")
    run(["git", "panini", "work", "--effort", "0"], cwd=repo)           # these are completed
    (repo / "archive.tar.gz").write_bytes(_tar_gz(base))
    (repo / "images" / "second.png").write_bytes(_png(7))
    write_text(repo / "docs" / "notes.txt", 80_000, seed=5)
    (repo / os.fsdecode(NOT_UTF8)).write_bytes(b"\0" * 30_000)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "more files")
    git(repo, "push", "-q")                                             # these wait for a worker


@pytest.fixture
def repo(tmp_path, tmp_path_factory) -> Path:
    return copy_template(tmp_path, tmp_path_factory, "dashboard", _build) / "repo"


def dashboard(repo, out: Path, *args, check: bool = True):
    proc = run(["git", "panini", "dashboard", "--out", out, *args], cwd=repo, check=check)
    return proc


def report_all(repo) -> dict:
    return json.loads(run(["git", "panini", "report", "--all", "--json"], cwd=repo).stdout)


def flatten(value, prefix: str = "") -> dict:
    """{'totals.size': 123, 'types.0.files': 2, ...}: the paths data-metric uses."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value}
    out = {}
    for key, item in items:
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


# --- the page in Chromium ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    required = os.environ.get("PANINI_REQUIRE_BROWSER") == "1"
    if not os.path.exists(CHROMIUM):
        if required:
            pytest.fail(f"PANINI_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it when it can)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("PANINI_REQUIRE_BROWSER=1 but playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser, index: Path, screenshot: Path, scheme: str = "light") -> dict:
    """Load the page as a person would (file://), record every request, console message and page error,
    take a full-page screenshot, and read every number off it."""
    url = index.resolve().as_uri()
    page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    problems, routed, requested = [], [], []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requested.append(r.url))

    def route(r):
        routed.append(r.request.url)
        if r.request.url == url:
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    try:
        page.goto(url, wait_until="load")
        page.screenshot(path=str(screenshot), full_page=True)
        metrics = page.eval_on_selector_all(
            "[data-metric]", "els => els.map(e => [e.dataset.metric, e.dataset.value, e.textContent,"
                             " e.getBoundingClientRect().width > 0 || e.closest('details') !== null])")
        return {"problems": problems, "routed": routed, "requested": requested, "metrics": metrics,
                "scripts": page.evaluate("document.scripts.length"),
                "paths": page.eval_on_selector_all("td.path", "els => els.map(e => e.textContent)"),
                "text": page.inner_text("body")}
    finally:
        page.close()


def _check_loaded_cleanly(seen: dict, index: Path, screenshot: Path):
    url = index.resolve().as_uri()
    assert seen["problems"] == []
    assert seen["requested"] == [url] and seen["routed"] == [url]   # nothing but the file itself
    assert seen["scripts"] == 0
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_page_in_chromium_shows_the_report_numbers(repo, tmp_path, browser):
    out = tmp_path / "site"
    proc = dashboard(repo, out)
    assert proc.stderr == "" and "wrote " in proc.stdout and "verify ok" in proc.stdout
    expected = report_all(repo)["totals"]
    data = json.loads((out / "dashboard.json").read_text())
    flat = flatten(data)
    for scheme in ("light", "dark"):
        shot = tmp_path / f"dashboard-{scheme}.png"
        seen = open_page(browser, out / "index.html", shot, scheme)
        _check_loaded_cleanly(seen, out / "index.html", shot)
    shown = {}
    for metric, value, text, visible in seen["metrics"]:
        assert metric in flat, metric                            # every number on the page is in dashboard.json
        assert json.loads(value) == flat[metric], metric          # ... with the same value
        assert shown.setdefault(metric, json.loads(value)) == json.loads(value)
        assert visible, metric
        if metric.endswith(("size", "_bytes")) and isinstance(flat[metric], int):
            assert text == human(flat[metric]), metric            # human units, exact bytes in data-value
    for key, value in expected.items():                          # the report's totals, all on the page
        assert shown[f"totals.{key}"] == value, key
    assert {k: v for k, v in data["totals"].items() if k in expected} == expected
    # what the repository holds: 6 completed (two with one content), 4 pending, in 6 types
    assert expected["files"] == 10 and expected["completed_files"] == 6 and expected["pending_files"] == 4
    assert sorted(t["type"] for t in data["types"]) == [".bin", ".png", ".tar.gz", ".txt"]
    for key in ("files", "size", "stored_bytes", "pending_bytes"):   # the types add up to the totals
        assert sum(t[key] for t in data["types"]) == expected[key], key
    assert shown["queue.now.completed.files"] == 5 and shown["queue.now.pending.files"] == 4
    assert shown["verify.checked"] == 10 and data["verify"]["ok"]
    assert data["codecs"] and sum(c["bytes"] for c in data["codecs"]) > 0
    assert shown["throughput.bytes_per_second"] > 0
    # each total says what it counts, in words: this commit's paths at full size, what the store holds
    # (compressed or not yet, each content once), the codecs' input, and every version the notes hold
    text = " ".join(seen["text"].split())
    t = data["totals"]
    assert f"{human(t['size'])} at full size, every path of this commit" in text
    assert (f"{human(t['stored_bytes'])} compressed + {human(t['pending_bytes'])} not compressed yet, "
            "each content once") in text
    assert (f"compressed size of the {t['completed_files']} completed file(s), {human(t['completed_size'])} "
            "at full size") in text
    assert f"{human(sum(c['bytes'] for c in data['codecs']))} of file data" in text
    assert f"{human(data['throughput']['bytes'])} completed in all, every version the notes hold" in text
    assert " packed" not in text and " raw" not in text.split("Stored vs raw")[0]
    # hostile paths are text on the page, exactly as Git has them
    assert HOSTILE in seen["paths"] and QUOTES in seen["paths"]
    assert "latin-\ufffd.bin" in seen["paths"]


def test_empty_repository_in_chromium(tmp_path, browser):
    repo = make_repo(tmp_path)
    out = tmp_path / "site"
    dashboard(repo, out)                                         # no commit at all
    (repo / "README").write_text("nothing tracked\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "plain")
    dashboard(repo, out)
    shot = tmp_path / "empty.png"
    seen = open_page(browser, out / "index.html", shot)
    _check_loaded_cleanly(seen, out / "index.html", shot)
    assert "No git-panini files here yet" in seen["text"]
    shown = {m: json.loads(v) for m, v, _, _ in seen["metrics"]}
    for key, value in report_all(repo)["totals"].items():
        assert shown[f"totals.{key}"] == value


# --- without a browser ---------------------------------------------------------------------------------------

class _Page(HTMLParser):
    """Tags, attributes and the text of the cells that hold paths."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.titles: list[str] = []
        self.paths: list[str] = []
        self._in_path = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if "title" in attrs:
            self.titles.append(attrs["title"])
        self._in_path = tag == "td" and "path" in (attrs.get("class") or "").split()
        if self._in_path:
            self.paths.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_path = False

    def handle_data(self, data):
        if self._in_path:
            self.paths[-1] += data


def test_paths_are_escaped(repo, tmp_path):
    out = tmp_path / "site"
    dashboard(repo, out, "--no-verify")
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.bin" in text
    page = _Page()
    page.feed(text)
    assert "script" not in page.tags and "b" not in page.tags
    assert HOSTILE in page.paths and QUOTES in page.paths            # the same text, once parsed
    assert HOSTILE in page.titles and QUOTES in page.titles          # and in the tooltips (attributes)
    assert "latin-\ufffd.bin" in page.paths                          # bytes that are not UTF-8: a marker
    data = json.loads((out / "dashboard.json").read_text())
    assert HOSTILE in [f["path"] for f in data["largest"]] and data["verify"] is None


def test_empty_states(tmp_path):
    repo = make_repo(tmp_path)
    out = tmp_path / "site"
    proc = dashboard(repo, out, "--json")
    data = json.loads(proc.stdout)
    assert data["commit"] is None and data["totals"]["files"] == 0 and data["verify"]["ok"]
    html = (out / "index.html").read_text()
    assert "No git-panini files here yet" in html and "no commit yet" in html
    assert "The notes hold no file yet" in html and "No history yet" in html


def test_a_failed_verify_is_listed(repo, tmp_path):
    # Every file packed, and the raw copies packs replace dropped (the second `git add` may have cleaned
    # noise.bin again, racily, into the local store): the corrupted pack is then its only copy.
    run(["git", "panini", "work", "--effort", "0"], cwd=repo)
    chunk = corrupt_chunk(repo, pointer_of(repo, "HEAD:data/noise.bin").manifest)
    forget_raw_copies(repo)
    out = tmp_path / "site"
    proc = dashboard(repo, out, check=False)
    assert proc.returncode == 1 and "verify FAILED" in proc.stdout
    data = json.loads((out / "dashboard.json").read_text())
    assert not data["verify"]["ok"] and data["verify"]["failed_count"] == 1
    [failure] = data["verify"]["failed"]
    assert failure["path"] == "data/noise.bin" and chunk in failure["error"]
    html = (out / "index.html").read_text()
    assert "FAILED" in html and "<code>data/noise.bin</code>" in html


def test_throughput_and_history_come_from_the_notes(repo, tmp_path):
    out = tmp_path / "site"
    dashboard(repo, out, "--no-verify", "--history", "3", "--summary", str(tmp_path / "summary.md"))
    data = json.loads((out / "dashboard.json").read_text())
    t = data["totals"]
    assert (f"{human(t['size'])} at full size; {human(t['stored_now_bytes'])} stored now, each content once "
            f"({human(t['stored_bytes'])} compressed, {human(t['pending_bytes'])} not compressed yet)") in \
        (tmp_path / "summary.md").read_text()
    completed = [n for n in notes_of(repo).values() if n["status"] == "completed"]
    assert completed and all(n["work_seconds"] >= 0 for n in completed)   # `git panini work` records it
    assert sum(n["work_seconds"] for n in completed) > 0
    th = data["throughput"]
    seconds = sum(n["work_seconds"] for n in completed)
    assert th["timed_files"] == th["files"] == len(completed)
    assert th["bytes"] == sum(n["bytes"] for n in completed)
    assert th["bytes_per_second"] == round(th["bytes"] / round(seconds, 3), 1)
    assert [w["files"] for w in th["workers"]] == [len(completed)]
    assert sum(b["files"] for b in th["timeline"]) == len(completed)
    history = data["queue"]["history"]
    assert len(history) <= 4          # the points asked for, and the last state whatever the sampling picked
    tip = git(repo, "rev-parse", "refs/notes/panini").stdout.strip()
    assert history[-1]["commit"] == tip
    assert {s: history[-1][s] for s in data["queue"]["now"]} == data["queue"]["now"]
    assert history[0]["pending"]["files"] > 0 and history[0]["completed"]["files"] == 0


def _queue_at(time: str, **files) -> dict:
    return {"time": time, "commit": "c", **{s: {"files": files.get(s, 0), "bytes": 0} for s in STATES}}


def _polygon_points(svg: str) -> dict[str, list[tuple[float, float]]]:
    found = {}
    for part in svg.split("<polygon ")[1:]:
        state = part.split('class="f-', 1)[1].split(" ", 1)[0]
        coords = part.split('points="', 1)[1].split('"', 1)[0].split()
        found[state] = [tuple(map(float, c.split(","))) for c in coords]
    return found


def _drawn(corners: list[tuple[float, float]]) -> tuple[float, float]:
    """From where to where a stacked band has any height: its upper edge is two corners per sample (where
    the sample starts holding, where it stops), its lower edge the same, backwards."""
    half = len(corners) // 2
    upper, lower = corners[:half], corners[half:][::-1]
    xs = [x for (x, top), (_, bottom) in zip(upper, lower) if bottom > top]
    return min(xs), max(xs)


def test_queue_over_time_is_drawn_as_steps_between_samples():
    """A worker that started at 17:29 and finished at 17:32 is processing from 17:29 to 17:32 on the chart,
    never a ramp from the sample before (17:26): each sample's counts hold until the next one, the last
    until the page was made."""
    points = [_queue_at("2026-01-01T17:26:00Z", pending=3), _queue_at("2026-01-01T17:29:00Z", processing=3),
              _queue_at("2026-01-01T17:32:00Z", completed=3)]
    bands = _polygon_points(history_chart(points, now="2026-01-01T17:32:30Z"))
    assert set(bands) == {"pending", "processing", "completed"}
    for state, corners in bands.items():              # only level and upright edges: steps, no slope
        for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
            assert x0 == x1 or y0 == y1, (state, (x0, y0), (x1, y1))
    # 6 minutes of history and the 30 s since: x runs 46 + 662 * seconds / 390
    x = {t: round(46 + 662 * s / 390, 2) for t, s in (("17:26", 0), ("17:29", 180), ("17:32", 360), ("now", 390))}
    spans = {state: _drawn(corners) for state, corners in bands.items()}
    assert spans == {"pending": (x["17:26"], x["17:29"]), "processing": (x["17:29"], x["17:32"]),
                     "completed": (x["17:32"], x["now"])}
    # A last sample long before the page was made holds a tenth of the history's span more, not weeks.
    far = _polygon_points(history_chart(points, now="2026-02-01T00:00:00Z"))
    assert _drawn(far["completed"]) == (round(46 + 662 * 360 / 396, 2), 46 + 662)


def test_sampling_spreads_over_time():
    commits = [(f"c{i}", t, "tree") for i, t in enumerate([0, 1, 2, 3, 50, 51, 100])]
    picked = sample(commits, 3)
    assert [c[0] for c in picked] == ["c0", "c4", "c6"]                  # 0, 50, 100: evenly in time
    assert sample(commits, 10) == commits
    dense = [(f"c{i}", i, "tree") for i in range(1000)]
    picked = sample(dense, 60)
    assert len(picked) == 60 and picked[0] == dense[0] and picked[-1] == dense[-1]


def test_report_all_and_bad_input(repo, tmp_path):
    data = report_all(repo)
    paths = [f["path"] for f in data["files"]]
    tracked = [p for p in git(repo, "ls-files", "-z").stdout.split("\0")
               if p and p not in (".gitattributes", "README.md")]
    assert len(paths) == len(tracked) == 10 and data["base"] is None
    for args in (["report"], ["report", "--all", "--base", "HEAD"]):
        proc = run(["git", "panini", *args], cwd=repo, check=False)
        assert proc.returncode == 2 and proc.stderr == "git-panini: give --base REV or --all\n"
    proc = dashboard(repo, tmp_path / "x", "--rev", "nosuch", check=False)
    assert proc.returncode == 2 and proc.stderr == "git-panini: bad revision 'nosuch'\n" and proc.stdout == ""
    (tmp_path / "file").write_text("")
    proc = dashboard(repo, tmp_path / "file", "--no-verify", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("git-panini: cannot write the dashboard")
    assert proc.stderr.count("\n") == 1
    proc = dashboard(repo, tmp_path / "x", "--history", "0", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_never_writes_through_a_link(repo, tmp_path):
    """A checkout can hold the output folder, or the files in it, as links to anywhere (review finding)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("keep me\n")
    linked = tmp_path / "linked-out"
    linked.symlink_to(outside)
    proc = run(["git", "panini", "dashboard", "--out", str(linked), "--no-verify"], cwd=repo, check=False)
    assert proc.returncode == 1 and "symbolic link" in proc.stderr and len(proc.stderr.splitlines()) == 1
    out = tmp_path / "site"
    out.mkdir()
    for name in ("index.html", "dashboard.json", "index.html.tmp", "dashboard.json.tmp"):
        (out / name).symlink_to(victim)
    dashboard(repo, out, "--no-verify")
    assert victim.read_text() == "keep me\n" and sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert not (out / "index.html").is_symlink() and "<html" in (out / "index.html").read_text()


def test_notes_no_worker_could_have_written_are_left_out(repo, tmp_path):
    """Anyone who can push refs/notes/panini can write any JSON there: absurd sizes or times are not a
    note (quarantined like a malformed one), so the page still renders (review finding)."""
    before = json.loads(dashboard(repo, tmp_path / "before", "--no-verify", "--json").stdout)["queue"]["now"]
    manifests = git(repo, "notes", "--ref", "panini", "list").stdout.split()[1::2]
    hostile = [{"status": "completed", "bytes": 10 ** 400, "stored_bytes": 1, "codecs": {"z": 10 ** 400}},
               {"status": "completed", "updated": "0001-01-01T00:00:00.000000Z", "bytes": 5},
               {"status": "completed", "updated": "9999-12-31T23:59:59.999999Z", "bytes": 5}]
    for manifest, note in zip(manifests, hostile):
        blob = git(repo, "hash-object", "-w", "--stdin", input=json.dumps(note)).stdout.strip()
        git(repo, "notes", "--ref", "panini", "add", "-f", "-C", blob, manifest)
    after = json.loads(dashboard(repo, tmp_path / "site", "--no-verify", "--json").stdout)["queue"]["now"]
    assert sum(q["files"] for q in after.values()) == sum(q["files"] for q in before.values()) - 3
    assert "<html" in (tmp_path / "site" / "index.html").read_text()
