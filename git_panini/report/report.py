"""The PR report: per file added or changed in a range (or every file of a tree), its sizes before and
after dedup and compression.

Everything comes from the pointers in the head commit and their status notes (`bytes`,
`unique_bytes`, `stored_bytes`, `codecs`, `status`); `verify` adds the bit-perfect check of
git_panini.verify over the same range. Rendered as text, Markdown (a table and a small chart of
unicode bars, for the job summary and the PR comment) or JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..format.pointer import MAX_POINTER_SIZE, PointerError, looks_like_pointer, parse
from ..store.notes import Notes

MARKER = "<!-- git-panini-report -->"
BAR_WIDTH = 20
MAX_ROWS = 200          # a PR comment holds 65536 characters
FULL, SAVED, RAW = "█", "░", "▒"


class ReportError(Exception):
    pass


@dataclass
class Row:
    path: str
    change: str                  # added | modified
    size: int
    status: str                  # the note's status, or local (no note: not pushed) / malformed
    unique_bytes: int | None     # new bytes this file brought, after dedup
    stored_bytes: int | None     # its share of the packs, once completed
    pending_bytes: int           # bytes still stored raw, waiting for a worker
    codecs: dict = field(default_factory=dict)
    manifest: str | None = None
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.stored_bytes is None or not self.size:
            return None
        return self.stored_bytes / self.size


@dataclass
class Report:
    base: str | None             # None: every file of head's tree, not a range
    head: str
    merge_base: str | None
    rows: list[Row]
    verify: dict | None = None   # {"ok", "checked", "failed": [{"path", "error"}]}

    @property
    def totals(self) -> dict:
        """Sizes add up per file; new, stored and pending bytes once per distinct content (manifest),
        since two files with the same content share their chunks and packs."""
        done = [r for r in self.rows if r.stored_bytes is not None]
        size_done = sum(r.size for r in done)
        once = list({r.manifest or r.path: r for r in self.rows}.values())
        stored = sum(r.stored_bytes for r in once if r.stored_bytes is not None)
        return {"files": len(self.rows), "size": sum(r.size for r in self.rows),
                "unique_bytes": sum(r.unique_bytes or 0 for r in once),
                "stored_bytes": stored, "completed_files": len(done), "completed_size": size_done,
                "pending_bytes": sum(r.pending_bytes for r in once),
                "pending_files": sum(1 for r in self.rows if r.status != "completed"),
                "ratio": round(stored / size_done, 4) if size_done else None}

    @property
    def verify_ok(self) -> bool:
        return self.verify is None or self.verify["ok"]

    def as_dict(self) -> dict:
        rows = []
        for r in self.rows:
            d = asdict(r)
            d["ratio"] = round(r.ratio, 4) if r.ratio is not None else None
            rows.append(d)
        return {"base": self.base, "head": self.head, "merge_base": self.merge_base, "files": rows,
                "totals": self.totals, "verify": self.verify}


# --- building -------------------------------------------------------------------------------------

def _rev(repo, rev: str) -> str:
    proc = repo.git("rev-parse", "--verify", "--quiet", rev + "^{commit}", check=False)
    if proc.returncode != 0:
        raise ReportError(f"not a commit: {rev}")
    return proc.stdout.decode().strip()


def _changed_blobs(repo, old_tree: str, head: str) -> list[tuple[str, str, str]]:
    """(path, change, blob) of files added or modified between old_tree and head."""
    out = repo.git("diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old_tree, head).stdout
    fields = out.split(b"\0")
    found = []
    i = 0
    while i + 1 < len(fields):
        meta, path = fields[i], fields[i + 1]
        i += 2
        parts = meta.decode().lstrip(":").split()
        if len(parts) != 5:
            continue
        _, new_mode, _, new_oid, letter = parts
        if letter[0] not in "AMT" or not new_mode.startswith("100"):
            continue
        found.append((path.decode("utf-8", "surrogateescape"), "added" if letter[0] == "A" else "modified", new_oid))
    return found


def _pointer_blobs(repo, blobs: list[tuple[str, str, str]]):
    """Keep the blobs small enough to be pointers and that look like one."""
    if not blobs:
        return []
    query = "".join(f"{oid}\n" for _, _, oid in blobs).encode()
    sizes = repo.git("cat-file", "--batch-check=%(objectsize)", input=query).stdout.decode().splitlines()
    out = []
    for (path, change, oid), size in zip(blobs, sizes):
        if not size.isdigit() or int(size) >= MAX_POINTER_SIZE:
            continue
        data = repo.read_kind(oid, "blob") or b""
        if looks_like_pointer(data):
            out.append((path, change, oid, data))
    return out


def _row(path: str, change: str, data: bytes, notes: dict[str, dict], known_before: set[str]) -> Row:
    try:
        pointer = parse(data)
    except PointerError as e:
        return Row(path, change, 0, "malformed", None, None, 0, error=str(e))
    note = notes.get(pointer.manifest)
    if note is None:
        # Notes exist for published files only: this one was never pushed (or not fetched yet).
        return Row(path, change, pointer.size, "local", None, None, pointer.size, manifest=pointer.manifest,
                   error="not pushed yet (or run: git panini fetch)")
    status = str(note.get("status") or "unknown")
    # A note the post-commit hook made up has no chunk counts: its new bytes are not known.
    known = bool(note.get("chunks")) or pointer.size == 0
    unique = int(note.get("unique_bytes") or 0) if known else None
    stored = note.get("stored_bytes") if status == "completed" else None
    stored = int(stored) if isinstance(stored, (int, float)) else None
    pending = 0 if status == "completed" else (unique if unique is not None else pointer.size)
    if pointer.manifest in known_before:
        unique = 0        # the same content was there at the merge base: this range adds no byte
    codecs = note.get("codecs") if isinstance(note.get("codecs"), dict) else {}
    return Row(path, change, pointer.size, status, unique, stored, pending, dict(codecs), pointer.manifest,
               note.get("error") if status == "failed" else None)


def build(repo, base: str | None, head: str, verify: bool = False, progress=None) -> Report:
    """The report for files added or changed from merge-base(base, head) to head; base None: for every
    file of head's tree (each one 'added')."""
    base_oid, head_oid = _rev(repo, base) if base is not None else None, _rev(repo, head)
    merge_base = None
    if base_oid is not None:
        proc = repo.git("merge-base", base_oid, head_oid, check=False)
        merge_base = proc.stdout.decode().split()[0] if proc.returncode == 0 and proc.stdout.strip() else None
    old_tree = merge_base or repo.write_object("tree", b"")
    notes = Notes(repo).all()
    from ..format import pointer_scan as pointers
    known_before = ({f.pointer.manifest for f in pointers.in_tree(repo, merge_base) if f.pointer}
                    if merge_base else set())
    blobs = _pointer_blobs(repo, _changed_blobs(repo, old_tree, head_oid))
    rows = sorted((_row(path, change, data, notes, known_before) for path, change, _, data in blobs),
                  key=lambda r: r.path)
    report = Report(base_oid, head_oid, merge_base, rows)
    if verify:
        listed = [(path, oid) for path, _, oid, _ in blobs]
        report.verify = verify_range(repo, base_oid, head_oid, listed, progress)
    return report


def verify_range(repo, base: str | None, head: str, also: list[tuple[str, str]] = (), progress=None) -> dict:
    """git_panini.verify over every pointer reachable from head and not from base (base None: every
    pointer of head's tree), and the pointers `also` names as (path, blob) (the report's files: one may
    reuse a pointer the base already had)."""
    from ..format import pointer_scan as pointers
    from ..ops.verify import verify_files
    found = pointers.in_revs(repo, [f"{base}..{head}"]) if base is not None else pointers.in_tree(repo, head)
    seen = {(f.path, f.blob) for f in found}
    for path, oid in also:
        if (path, oid) not in seen:
            f = pointers.FoundPointer(path, oid, None)
            try:
                f.pointer = parse(repo.read_kind(oid, "blob") or b"")
            except PointerError as e:
                f.error = str(e)
            found.append(f)
    results = verify_files(repo, found, None, progress)
    failed = [{"path": r.path, "error": r.error} for r in results if not r.ok]
    return {"ok": not failed, "checked": len(results), "bytes": sum(r.size for r in results), "failed": failed}


# --- rendering ------------------------------------------------------------------------------------

def human(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f} %"


def codec_names(codecs: dict) -> str:
    """'xz, zstd' by bytes encoded, largest first."""
    items = sorted(((str(k), v) for k, v in codecs.items()), key=lambda kv: (-(kv[1] or 0), kv[0]))
    return ", ".join(name for name, _ in items) or "-"


def bar(row: Row, width: int = BAR_WIDTH) -> str:
    """Stored share as █ (completed); for pending work, the bytes the range adds, still raw, as ▒;
    the rest (saved by dedup and compression) as ░."""
    if not row.size:
        return SAVED * width
    if row.stored_bytes is not None:
        fill, mark = row.stored_bytes / row.size, FULL
    else:
        fill, mark = (row.unique_bytes if row.unique_bytes is not None else row.pending_bytes) / row.size, RAW
    n = min(width, max(0, round(fill * width)))
    if fill > 0 and n == 0:
        n = 1
    return mark * n + SAVED * (width - n)


def _clean(path: str) -> str:
    """A path safe inside Markdown code (no control characters, no backticks)."""
    return "".join("?" if ord(c) < 32 or c == "\x7f" else c for c in path).replace("`", "'")


def _short(path: str, width: int = 40) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1):]


def _range(report: Report) -> str:
    return report.head[:12] if report.base is None else f"{report.base[:12]}..{report.head[:12]}"


def summary_line(report: Report) -> str:
    t = report.totals
    if not t["files"]:
        return "no git-panini files" + (" added or changed" if report.base is not None else "")
    parts = [f"{t['files']} file{'s' if t['files'] != 1 else ''}, {human(t['size'])}",
             f"{human(t['unique_bytes'])} new after dedup"]
    if t["completed_files"]:
        parts.append(f"compressed {human(t['completed_size'])} -> {human(t['stored_bytes'])} ({percent(t['ratio'])})")
    if t["pending_files"]:
        parts.append(f"{t['pending_files']} pending ({human(t['pending_bytes'])} raw)")
    return "; ".join(parts)


def verify_line(report: Report, first: bool = True) -> str | None:
    v = report.verify
    if v is None:
        return None
    if v["ok"]:
        return f"{v['checked']} of {v['checked']} file(s) verified bit-perfect"
    line = f"{len(v['failed'])} of {v['checked']} file(s) FAILED verification"
    return line + (f"; first: {v['failed'][0]['path']}: {v['failed'][0]['error']}" if first else ":")


def render_text(report: Report) -> str:
    header = ("file", "change", "size", "new", "stored", "pending", "ratio", "codecs", "status")
    table = [header] + [(r.path, r.change, human(r.size), human(r.unique_bytes), human(r.stored_bytes),
                         human(r.pending_bytes), percent(r.ratio), codec_names(r.codecs),
                         r.status + (f" ({r.error})" if r.error else "")) for r in report.rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {2, 3, 4, 5, 6}
    lines = ["  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                       for i, cell in enumerate(row)).rstrip() for row in table] if report.rows else []
    lines.append(f"{_range(report)}: {summary_line(report)}")
    if report.verify is not None:
        lines.append(verify_line(report))
    return "\n".join(lines) + "\n"


def render_markdown(report: Report, title: str = "git-panini") -> str:
    t = report.totals
    out = [MARKER, f"### {title}: {summary_line(report)}", ""]
    out.append(f"Every file of `{report.head[:12]}`." if report.base is None else
               f"Range `{report.base[:12]}`…`{report.head[:12]}` (files added or changed since the merge base).")
    if report.verify is not None:
        icon = "✅" if report.verify["ok"] else "❌"
        out += ["", f"**Verify** {icon} {verify_line(report, first=False)}"]
        for failure in report.verify["failed"][:10]:
            out.append(f"- `{_clean(failure['path'])}`: {_clean(str(failure['error']))}")
    if not report.rows:
        return "\n".join(out) + "\n"
    out += ["", "| file | change | size | new after dedup | stored | pending | ratio | codecs | status |",
            "|---|---|--:|--:|--:|--:|--:|---|---|"]
    for r in report.rows[:MAX_ROWS]:
        status = r.status + (f": {_clean(r.error)}" if r.error else "")
        cells = [f"`{_clean(r.path)}`", r.change, human(r.size), human(r.unique_bytes), human(r.stored_bytes),
                 human(r.pending_bytes), percent(r.ratio), codec_names(r.codecs), status]
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    if len(report.rows) > MAX_ROWS:
        out.append(f"| … and {len(report.rows) - MAX_ROWS} more | | | | | | | | |")
    out.append(f"| **total** | | **{human(t['size'])}** | **{human(t['unique_bytes'])}** | "
               f"**{human(t['stored_bytes']) if t['completed_files'] else '-'}** | **{human(t['pending_bytes'])}** | "
               f"**{percent(t['ratio'])}** | | |")
    width = max(len(_short(_clean(r.path))) for r in report.rows[:MAX_ROWS])
    out += ["", f"Per file: `{FULL}` stored after compression, `{RAW}` new bytes not compressed yet, "
                f"`{SAVED}` saved by dedup and compression.", "", "```text"]
    for r in report.rows[:MAX_ROWS]:
        label = _short(_clean(r.path)).ljust(width)
        value = percent(r.ratio) if r.ratio is not None else r.status
        out.append(f"{label}  {bar(r)}  {value}")
    out.append("```")
    return "\n".join(out) + "\n"


def ratio_status(report: Report) -> tuple[str, str]:
    """(state, description) of the panini/ratio commit status: informational, always success."""
    t = report.totals
    if not t["files"]:
        return "success", "no git-panini files added or changed"
    text = f"{t['files']} file(s), {human(t['size'])}"
    if t["completed_files"]:
        text += f" -> {human(t['stored_bytes'])} stored ({percent(t['ratio'])} of compressed files)"
    if t["pending_files"]:
        text += f"; {t['pending_files']} pending"
    return "success", text


def verify_status(report: Report) -> tuple[str, str]:
    v = report.verify or {"ok": True, "checked": 0, "failed": []}
    if v["ok"]:
        return "success", f"{v['checked']} of {v['checked']} file(s) bit-perfect"
    first = v["failed"][0]
    return "failure", f"{len(v['failed'])} of {v['checked']} FAILED: {first['path']}: {first['error']}"
