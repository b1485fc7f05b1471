"""The dashboard's numbers: one tree's files (report.py's rows and totals), the queue in the notes and
its history, worker throughput, codec chains, the largest files and verify status, as one JSON-ready dict.

Everything about files comes from `report.build(repo, None, rev)` (the same rows and totals as
`git panini report --all --json`); the queue, its history and throughput come from refs/notes/panini,
whose every commit is a state of all notes. dashboard_html.py draws the dict; dashboard.json is the dict.
"""

from __future__ import annotations

import math
import os
import posixpath
from datetime import datetime, timezone

from ..store.notes import NOTES_REF, Notes, is_fanout, is_note
from .report import Report, ReportError, codec_names
from .report import build as build_report

FORMAT = 1
STATES = ("pending", "queued", "processing", "completed", "failed")   # the queue, in its order
HISTORY_POINTS = 60          # samples of the notes' history drawn
TOP_TYPES = 10               # file types drawn one by one; the rest together as "other"
TOP_CODECS = 8
TOP_FILES = 15
TOP_WORKERS = 10
TIMELINE_BARS = 24           # buckets of completed work over time


class DashboardError(Exception):
    pass


def build(repo, rev: str = "HEAD", verify: bool = True, history_points: int = HISTORY_POINTS) -> dict:
    """The dashboard of rev's tree and of the notes, as a dict of plain JSON values."""
    if unborn(repo, rev):
        report = Report(None, None, None, [])   # a repository with no commit yet: nothing tracked
        if verify:
            report.verify = {"ok": True, "checked": 0, "bytes": 0, "failed": []}
    else:
        try:
            report = build_report(repo, None, rev, verify=verify)
        except ReportError as e:
            raise DashboardError(str(e)) from None
    notes = Notes(repo)
    tip_notes = notes.all()
    totals = report.totals
    return {
        "format": FORMAT,
        "generated": _iso(datetime.now(timezone.utc)),
        "repository": os.path.basename((repo.work_tree or repo.git_dir).rstrip("/\\")),
        "rev": rev,
        "commit": report.head,
        "totals": dict(totals, dedup_saved_bytes=_dedup_saved(report),
                       stored_now_bytes=totals["stored_bytes"] + totals["pending_bytes"]),
        "types": _by_type(report),
        "codecs": _codecs(report),
        "queue": {"now": _queue(tip_notes.values()), "history": history(repo, history_points)},
        "throughput": throughput(tip_notes.values()),
        "largest": _largest(report),
        "verify": dict(report.verify, failed_count=len(report.verify["failed"])) if report.verify else None,
    }


def unborn(repo, rev: str) -> bool:
    """rev is HEAD, on a branch with no commit yet."""
    return (rev == "HEAD" and repo.git("rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0
            and repo.git("symbolic-ref", "-q", "HEAD", check=False).returncode == 0)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- files of the tree ---------------------------------------------------------------------------------

def _distinct(report: Report):
    """Each content once (the first path holding it): dedup makes two copies cost one."""
    seen: set[str] = set()
    for row in report.rows:
        key = row.manifest or row.path
        if key not in seen:
            seen.add(key)
            yield row


def _dedup_saved(report: Report) -> int:
    """Bytes dedup kept out of the store: the files' sizes less the new bytes each content brought,
    over the files whose new bytes are known (a file not pushed yet has no note to say)."""
    known = [r for r in report.rows if r.unique_bytes is not None]
    distinct = {r.manifest or r.path: r.unique_bytes for r in known}
    return sum(r.size for r in known) - sum(distinct.values())


def file_type(path: str) -> str:
    """'.psd', '.tar.gz' (a compressed tar counts as its own type), or 'no extension'."""
    name = posixpath.basename(path).lower()
    stem, ext = posixpath.splitext(name)
    if not ext or not stem:
        return "no extension"
    inner = posixpath.splitext(stem)[1]
    return inner + ext if inner == ".tar" else ext


def _by_type(report: Report) -> list[dict]:
    """Per file type, largest first: files, raw size, and what the store holds now (compressed bytes of
    completed contents, raw bytes still pending), each content counted once, under its first path's type.
    Past TOP_TYPES the rest add up to one 'other' row, so the rows sum to the totals."""
    types: dict[str, dict] = {}
    first = {id(r) for r in _distinct(report)}
    for row in report.rows:
        t = types.setdefault(file_type(row.path), {"type": file_type(row.path), "files": 0, "size": 0,
                                                    "stored_bytes": 0, "pending_bytes": 0})
        t["files"] += 1
        t["size"] += row.size
        if id(row) in first:
            t["stored_bytes"] += row.stored_bytes or 0
            t["pending_bytes"] += row.pending_bytes
    rows = sorted(types.values(), key=lambda t: (-t["size"], t["type"]))
    if len(rows) > TOP_TYPES:
        rest = rows[TOP_TYPES - 1:]
        other = {"type": f"other ({len(rest)} types)"}
        for key in ("files", "size", "stored_bytes", "pending_bytes"):
            other[key] = sum(t[key] for t in rest)
        rows = rows[:TOP_TYPES - 1] + [other]
    for t in rows:
        t["stored_now_bytes"] = t["stored_bytes"] + t["pending_bytes"]
        t["stored_now_ratio"] = round(t["stored_now_bytes"] / t["size"], 4) if t["size"] else None
    return rows


def _codecs(report: Report) -> list[dict]:
    """Codec chains by the bytes they packed (the notes' `codecs`), each completed content once."""
    chains: dict[str, dict] = {}
    for row in _distinct(report):
        if row.status != "completed":
            continue
        for chain, size in row.codecs.items():
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                continue
            c = chains.setdefault(str(chain), {"chain": str(chain), "files": 0, "bytes": 0})
            c["files"] += 1
            c["bytes"] += size
    rows = sorted(chains.values(), key=lambda c: (-c["bytes"], c["chain"]))
    if len(rows) > TOP_CODECS:
        rest = rows[TOP_CODECS - 1:]
        rows = rows[:TOP_CODECS - 1] + [{"chain": f"other ({len(rest)} chains)",
                                         "files": sum(c["files"] for c in rest),
                                         "bytes": sum(c["bytes"] for c in rest)}]
    total = sum(c["bytes"] for c in rows)
    for c in rows:
        c["share"] = round(c["bytes"] / total, 4)
    return rows


def _largest(report: Report) -> list[dict]:
    rows = sorted(report.rows, key=lambda r: (-r.size, r.path))[:TOP_FILES]
    return [{"path": r.path, "size": r.size, "status": r.status, "stored_bytes": r.stored_bytes,
             "pending_bytes": r.pending_bytes, "ratio": round(r.ratio, 4) if r.ratio is not None else None,
             "codecs": codec_names(r.codecs)}
            for r in rows]


# --- the queue and its history -------------------------------------------------------------------------

def _note_bytes(note: dict) -> int:
    size = note.get("bytes")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else 0


def _queue(notes) -> dict:
    """{state: {files, bytes}} over every note (every version ever published, not one tree)."""
    out = {s: {"files": 0, "bytes": 0} for s in STATES}
    for note in notes:
        state = out.get(note["status"])
        if state is None:
            continue
        state["files"] += 1
        state["bytes"] += _note_bytes(note)
    return out


def _notes_commits(repo) -> list[tuple[str, int, str]]:
    """(commit, committer time, tree) of the notes ref's own history (first parents), oldest first."""
    proc = repo.git("log", "--first-parent", "--format=%H %ct %T", NOTES_REF, "--", check=False)
    if proc.returncode != 0:
        return []
    out = []
    for line in proc.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            out.append((parts[0], int(parts[1]), parts[2]))
    return out[::-1]


def sample(commits: list[tuple[str, int, str]], points: int) -> list[tuple[str, int, str]]:
    """Up to `points` commits spread evenly over time: for each of `points` moments from the first commit
    to the last, the last commit made by then (the first and the last always among them)."""
    if len(commits) <= points:
        return commits
    first, last = commits[0][1], commits[-1][1]
    # The first commit itself, even when others share its second (committer times have 1 s resolution).
    picked, i = [commits[0]], 0
    for k in range(1, points):
        moment = first + (last - first) * k / (points - 1)
        while i + 1 < len(commits) and commits[i + 1][1] <= moment:
            i += 1
        if not picked or picked[-1] is not commits[i]:
            picked.append(commits[i])
    if picked[-1] is not commits[-1]:
        picked.append(commits[-1])
    return picked


class _TreeCounter:
    """Queue counts of a notes tree, a fanout subtree and a note blob remembered by id: successive
    states of the notes share most of them, so each sample reads only what changed."""

    def __init__(self, repo):
        self.repo = repo
        self.notes = Notes(repo)
        self.trees: dict[str, dict] = {}
        self.blobs: dict[str, tuple[str, int] | None] = {}

    def count(self, tree: str) -> dict:
        return self._tree(tree, top=True)

    def _tree(self, tree: str, top: bool) -> dict:
        """The notes Notes.all() would read here: fanout folders at the top, note names of full length."""
        key = (tree, top)
        if key not in self.trees:
            total = {s: {"files": 0, "bytes": 0} for s in STATES}
            prefix = 0 if top else 2
            for e in self.repo.read_tree(tree):
                if e.is_tree:
                    part = self._tree(e.oid, False) if is_fanout(e, top) else None
                elif is_note(e, prefix, self.repo.hex_len):
                    part = self._blob(e.oid)
                else:
                    part = None
                if part:
                    for s in STATES:
                        total[s]["files"] += part[s]["files"]
                        total[s]["bytes"] += part[s]["bytes"]
            self.trees[key] = total
        return self.trees[key]

    def _blob(self, blob: str) -> dict | None:
        if blob not in self.blobs:
            note = self.notes.load(blob)
            self.blobs[blob] = (note["status"], _note_bytes(note)) if note else None
        found = self.blobs[blob]
        if found is None or found[0] not in STATES:
            return None
        state, size = found
        return {s: {"files": int(s == state), "bytes": size if s == state else 0} for s in STATES}


def history(repo, points: int = HISTORY_POINTS) -> list[dict]:
    """The queue at up to `points` moments of the notes' history: [{time, commit, state: {files, bytes}}]."""
    counter = _TreeCounter(repo)
    out = []
    for commit, when, tree in sample(_notes_commits(repo), points):
        out.append({"time": _iso(datetime.fromtimestamp(when, timezone.utc)), "commit": commit,
                    **counter.count(tree)})
    return out


# --- throughput ------------------------------------------------------------------------------------------

def _seconds(note: dict) -> float | None:
    value = note.get("work_seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _when(note: dict) -> datetime | None:
    try:
        return datetime.strptime(str(note.get("updated")), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _rate(size: int, seconds: float) -> float | None:
    return round(size / seconds, 1) if seconds > 0 else None


def throughput(notes) -> dict:
    """What the completed notes say of the workers: bytes packed, packing seconds (notes that record
    them: `work_seconds`), bytes per second, per worker, and completed bytes over time (by `updated`)."""
    done = [n for n in notes if n["status"] == "completed"]
    timed = [(n, s) for n in done if (s := _seconds(n)) is not None]
    timed_bytes = sum(_note_bytes(n) for n, _ in timed)
    seconds = round(sum(s for _, s in timed), 3)
    workers: dict[str, dict] = {}
    for n in done:
        w = workers.setdefault(str(n.get("worker") or "unknown"),
                               {"worker": str(n.get("worker") or "unknown"), "files": 0, "bytes": 0,
                                "timed_bytes": 0, "seconds": 0.0})
        w["files"] += 1
        w["bytes"] += _note_bytes(n)
        if (s := _seconds(n)) is not None:
            w["timed_bytes"] += _note_bytes(n)
            w["seconds"] += s
    rows = sorted(workers.values(), key=lambda w: (-w["bytes"], w["worker"]))[:TOP_WORKERS]
    for w in rows:
        w["seconds"] = round(w["seconds"], 3)
        w["bytes_per_second"] = _rate(w["timed_bytes"], w["seconds"])
    return {"files": len(done), "bytes": sum(_note_bytes(n) for n in done), "timed_files": len(timed),
            "timed_bytes": timed_bytes, "seconds": seconds, "bytes_per_second": _rate(timed_bytes, seconds),
            "workers": rows, "workers_total": len(workers), "timeline": _timeline(done)}


def _timeline(done: list[dict]) -> list[dict]:
    """Completed files and bytes in up to TIMELINE_BARS equal spans of time, by when each was completed."""
    stamped = sorted(((w, n) for n in done if (w := _when(n)) is not None), key=lambda wn: wn[0])
    if not stamped:
        return []
    first, last = stamped[0][0], stamped[-1][0]
    span = max((last - first).total_seconds(), 1.0)
    step = _round_step(span / TIMELINE_BARS)
    start = math.floor(first.timestamp() / step) * step
    count = int((last.timestamp() - start) // step) + 1
    bars = [{"start": _iso(datetime.fromtimestamp(start + i * step, timezone.utc)), "seconds": step,
             "files": 0, "bytes": 0} for i in range(count)]
    for when, note in stamped:
        bar = bars[min(count - 1, int((when.timestamp() - start) // step))]
        bar["files"] += 1
        bar["bytes"] += _note_bytes(note)
    return bars


def _round_step(seconds: float) -> int:
    """A bucket width people read easily: 1 s … 1 week."""
    for step in (1, 5, 15, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400):
        if seconds <= step:
            return step
    return int(math.ceil(seconds / (7 * 86400))) * 7 * 86400



# --- the job summary -------------------------------------------------------------------------------------

def summary_markdown(data: dict) -> str:
    """A few lines for a CI job summary: the totals, the queue, verify."""
    from ..util.units import human
    t, now, v = data["totals"], data["queue"]["now"], data["verify"]
    ratio = f"{t['ratio'] * 100:.1f} %" if t["ratio"] is not None else "-"
    lines = ["### git-panini dashboard", "",
             f"`{data['rev']}` at `{(data['commit'] or 'no commit')[:12]}`: {t['files']} file(s), "
             f"{human(t['size'])} at full size; "
             f"{human(t['stored_now_bytes'])} stored now, each content once ({human(t['stored_bytes'])} "
             f"compressed, {human(t['pending_bytes'])} not compressed yet); ratio of completed files {ratio}; "
             f"dedup saved {human(t['dedup_saved_bytes'])}.", "",
             "| " + " | ".join(STATES) + " |", "|" + "--:|" * len(STATES),
             "| " + " | ".join(f"{now[s]['files']} ({human(now[s]['bytes'])})" for s in STATES) + " |", ""]
    if v is None:
        lines.append("Verify: not run.")
    elif v["ok"]:
        lines.append(f"Verify: {v['checked']} of {v['checked']} file(s) bit-perfect.")
    else:
        lines.append(f"Verify: {v['failed_count']} of {v['checked']} file(s) FAILED.")
    return "\n".join(lines) + "\n"
