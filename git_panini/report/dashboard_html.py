"""The dashboard as one self-contained HTML page: inline CSS, SVG charts drawn here, no script, nothing fetched.

Every number on the page sits in an element with `data-metric` (its path in dashboard.json, e.g.
`totals.size` or `types.0.stored_bytes`) and `data-value` (the exact JSON value); people read the
human units, and the exact bytes in the tooltip. Every text that comes from the repository (paths,
worker ids, codec names, errors) is escaped.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone

from ..util.units import human

STATE_LABELS = {"pending": "pending", "queued": "queued", "processing": "processing",
                "completed": "completed", "failed": "failed"}
# Stacked from the bottom: finished work below, the backlog on top.
STACK_ORDER = ("completed", "failed", "processing", "queued", "pending")
CODEC_COLORS = 8


# --- text -------------------------------------------------------------------------------------------------

def clean(text) -> str:
    """Printable text: bytes that were not UTF-8 (kept as surrogates) and control characters become U+FFFD."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join("\ufffd" if ord(c) < 32 or 0x7f <= ord(c) < 0xa0 else c for c in text)


def esc(text) -> str:
    return html.escape(clean(text), quote=True)


def _bytes_title(n: int | None) -> str:
    return "" if n is None else f"{n:,} bytes"


def percent(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio * 100:.1f} %"


def rate(per_second: float | None) -> str:
    return "–" if per_second is None else f"{human(per_second)}/s"


def num(metric: str, value, text: str, title: str = "", cls: str = "num") -> str:
    """A number on the page: what people read, and the exact value for tools and tests."""
    title_attr = f' title="{esc(title)}"' if title else ""
    return (f'<span class="{cls}" data-metric="{esc(metric)}" data-value="{esc(json.dumps(value))}"'
            f'{title_attr}>{esc(text)}</span>')


def size(metric: str, value: int | None, cls: str = "num") -> str:
    return num(metric, value, human(value) if value is not None else "–", _bytes_title(value), cls)


def count(metric: str, value: int | None, cls: str = "num") -> str:
    return num(metric, value, f"{value:,}" if value is not None else "–", cls=cls)


def ratio(metric: str, value: float | None, cls: str = "num") -> str:
    return num(metric, value, percent(value), "" if value is None else f"{value:.4f}", cls)


def when(stamp: str | None) -> str:
    if not stamp:
        return "–"
    try:
        at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return clean(stamp)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def axis_label(stamp: str, span: float) -> str:
    """A time on a chart's axis, as precise as the chart's span of time needs."""
    try:
        at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return clean(stamp)
    if span < 600:
        return at.strftime("%H:%M:%S")
    return at.strftime("%H:%M" if span < 86400 else "%Y-%m-%d")


# --- charts -----------------------------------------------------------------------------------------------

def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}" '
            f'xmlns="http://www.w3.org/2000/svg">{body}</svg>')


def _f(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def types_chart(types: list[dict]) -> str:
    """Per type: the raw size (a pale track) and what the store holds now (compressed, then still raw)."""
    width, row_h, label_w, value_w = 720, 34, 150, 190
    track = width - label_w - value_w
    biggest = max((t["size"] for t in types), default=0) or 1
    parts = []
    for i, t in enumerate(types):
        y = i * row_h + 6
        raw_w = track * t["size"] / biggest
        stored_w = track * t["stored_bytes"] / biggest
        pending_w = track * t["pending_bytes"] / biggest
        tip = (f"{clean(t['type'])}: {t['files']:,} file(s), raw {t['size']:,} bytes; stored now "
               f"{t['stored_now_bytes']:,} bytes ({t['stored_bytes']:,} compressed, {t['pending_bytes']:,} still raw)")
        parts.append(
            f'<g><title>{esc(tip)}</title>'
            f'<text class="lbl" x="{label_w - 10}" y="{y + 16}" text-anchor="end">{esc(_short(t["type"], 20))}</text>'
            f'<rect class="f-raw" x="{label_w}" y="{y + 2}" width="{_f(max(raw_w, 1))}" height="20" rx="4"/>'
            f'<rect class="f-stored" x="{label_w}" y="{y + 6}" width="{_f(stored_w)}" height="12" rx="3"/>'
            f'<rect class="f-pending" x="{_f(label_w + stored_w)}" y="{y + 6}" width="{_f(pending_w)}" height="12" '
            f'rx="3"/>'
            f'<text class="val" x="{width - value_w + 10}" y="{y + 16}">{esc(human(t["size"]))} → '
            f'{esc(human(t["stored_now_bytes"]))}</text></g>')
    return _svg(width, len(types) * row_h + 8, "".join(parts), "stored versus raw bytes per file type")


def donut(codecs: list[dict]) -> str:
    """Codec chains by the file data (at full size) each compressed, as a ring."""
    size, r, stroke = 200, 70, 34
    circumference = 2 * 3.141592653589793 * r
    total = sum(c["bytes"] for c in codecs) or 1
    parts, offset = [], 0.0
    for i, c in enumerate(codecs):
        length = circumference * c["bytes"] / total
        parts.append(f'<circle class="s-codec{i % CODEC_COLORS}" cx="100" cy="100" r="{r}" fill="none" '
                     f'stroke-width="{stroke}" stroke-dasharray="{_f(length)} {_f(circumference - length)}" '
                     f'stroke-dashoffset="{_f(-offset)}" transform="rotate(-90 100 100)">'
                     f'<title>{esc(c["chain"])}: {c["bytes"]:,} bytes ({percent(c["share"])})</title></circle>')
        offset += length
    parts.append(f'<text class="big" x="100" y="98" text-anchor="middle">{esc(human(total))}</text>'
                 '<text class="lbl" x="100" y="118" text-anchor="middle">of file data</text>')
    return _svg(size, size, "".join(parts), "codec chains by the file data each compressed")


def queue_bar(now: dict) -> str:
    """The queue now as one bar split by state (files)."""
    width, height = 720, 26
    total = sum(s["files"] for s in now.values()) or 1
    parts, x = [], 0.0
    for state in STACK_ORDER:
        w = width * now[state]["files"] / total
        if w > 0:
            parts.append(f'<rect class="f-{state}" x="{_f(x)}" y="0" width="{_f(w)}" height="{height}">'
                         f'<title>{state}: {now[state]["files"]:,} file(s), {now[state]["bytes"]:,} bytes</title>'
                         '</rect>')
        x += w
    return _svg(width, height, "".join(parts), "the queue by state")


def _ticks(top: float, n: int = 4) -> list[float]:
    """Round gridline values from 0 to at least top."""
    if top <= 0:
        return [0, 1]
    raw = top / n
    magnitude = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(n + 1) if step * (i - 1) < top]


def history_chart(points: list[dict], now: str | None = None) -> str:
    """Files per state over the notes' history, stacked, as steps: each sample's counts hold until the next
    sample (the notes change only at their commits: a line between two samples would draw states that never
    were), the last one until `now` (at most a tenth of the span further, so the history keeps the width)."""
    width, height, left, right, top, bottom = 720, 240, 46, 12, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [_seconds_of(p["time"]) for p in points]
    t0, t1 = times[0], times[-1]
    end = max(t1, min(_seconds_of(now), t1 + max((t1 - t0) / 10, 1))) if now else t1
    if end > t0:
        xs = [left + plot_w * (t - t0) / (end - t0) for t in times]
    else:   # every sample in one second: side by side, in order
        xs = [left + plot_w * i / len(points) for i in range(len(points))]
    ends = xs[1:] + [left + plot_w]          # where each sample's state stops holding
    totals = [sum(p[s]["files"] for s in STACK_ORDER) for p in points]
    ticks = _ticks(max(totals))
    scale = plot_h / (ticks[-1] or 1)
    y = lambda v: top + plot_h - v * scale   # noqa: E731
    parts = []
    for v in ticks:
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_f(y(v))}" y2="{_f(y(v))}"/>'
                     f'<text class="lbl" x="{left - 6}" y="{_f(y(v) + 4)}" text-anchor="end">{v:g}</text>')
    below = [0.0] * len(points)
    for state in STACK_ORDER:
        above = [b + p[state]["files"] for b, p in zip(below, points)]
        if any(a != b for a, b in zip(above, below)):
            upper = " ".join(f"{_f(x0)},{_f(y(a))} {_f(x1)},{_f(y(a))}" for x0, x1, a in zip(xs, ends, above))
            lower = " ".join(f"{_f(x1)},{_f(y(b))} {_f(x0)},{_f(y(b))}"
                             for x0, x1, b in reversed(list(zip(xs, ends, below))))
            parts.append(f'<polygon class="f-{state} area" points="{upper} {lower}"><title>{state}</title></polygon>')
        below = above
    for i in sorted({0, len(points) // 2, len(points) - 1}):
        anchor = "start" if i == 0 else "end" if xs[i] > left + plot_w * 0.9 else "middle"
        parts.append(f'<text class="lbl" x="{_f(xs[i])}" y="{height - 8}" text-anchor="{anchor}">'
                     f'{esc(axis_label(points[i]["time"], t1 - t0))}</text>')
    # One hover band per sample, over the span its counts hold: its counts as a tooltip.
    for i, p in enumerate(points):
        tip = when(p["time"]) + "\n" + "\n".join(f"{s}: {p[s]['files']:,} file(s), {human(p[s]['bytes'])}"
                                                  for s in reversed(STACK_ORDER))
        parts.append(f'<rect class="hover" x="{_f(xs[i])}" y="{top}" width="{_f(max(ends[i] - xs[i], 0.5))}" '
                     f'height="{plot_h}"><title>{esc(tip)}</title></rect>')
    return _svg(width, height, "".join(parts), "the queue over time")


def _seconds_of(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def timeline_chart(bars: list[dict]) -> str:
    """Bytes completed per span of time."""
    width, height, left, bottom = 440, 130, 52, 22
    plot_h = height - bottom - 8
    ticks = _ticks(max(b["bytes"] for b in bars) / (1 << 20))
    top_mib = ticks[-1] or 1
    slot = (width - left) / len(bars)
    parts = []
    for v in ticks:
        yv = 8 + plot_h - plot_h * v / top_mib
        parts.append(f'<line class="grid" x1="{left}" x2="{width}" y1="{_f(yv)}" y2="{_f(yv)}"/>'
                     f'<text class="lbl" x="{left - 6}" y="{_f(yv + 4)}" text-anchor="end">{v:g} MiB</text>')
    for i, b in enumerate(bars):
        h = plot_h * b["bytes"] / (1 << 20) / top_mib
        parts.append(f'<rect class="f-completed" x="{_f(left + i * slot + slot * 0.12)}" y="{_f(8 + plot_h - h)}" '
                     f'width="{_f(slot * 0.76)}" height="{_f(h)}" rx="2"><title>{esc(when(b["start"]))}: '
                     f'{b["files"]:,} file(s), {b["bytes"]:,} bytes</title></rect>')
    span = bars[0]["seconds"] * len(bars)
    for i in sorted({0, len(bars) - 1}):
        anchor = "start" if i == 0 else "end"
        x = left + i * slot if i == 0 else width
        parts.append(f'<text class="lbl" x="{_f(x)}" y="{height - 6}" text-anchor="{anchor}">'
                     f'{esc(axis_label(bars[i]["start"], span))}</text>')
    return _svg(width, height, "".join(parts), "bytes completed over time")


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


# --- the page ---------------------------------------------------------------------------------------------

CSS = """
:root{--bg:#f4f6fa;--card:#fff;--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--raw:#dbe3ee;
--stored:#2563eb;--pending:#f59e0b;--queued:#8b5cf6;--processing:#06b6d4;--completed:#16a34a;--failed:#dc2626;
--ok-bg:#dcfce7;--ok-ink:#166534;--bad-bg:#fee2e2;--bad-ink:#991b1b;--warn-bg:#fef3c7;--warn-ink:#92400e;
--c0:#2563eb;--c1:#16a34a;--c2:#f59e0b;--c3:#8b5cf6;--c4:#06b6d4;--c5:#db2777;--c6:#65a30d;--c7:#94a3b8}
@media (prefers-color-scheme:dark){:root{--bg:#0b1120;--card:#111a2e;--ink:#e2e8f0;--muted:#94a3b8;
--line:#1e293b;--raw:#24324a;--stored:#60a5fa;--pending:#fbbf24;--queued:#a78bfa;--processing:#22d3ee;
--completed:#4ade80;--failed:#f87171;--ok-bg:#14532d;--ok-ink:#bbf7d0;--bad-bg:#7f1d1d;--bad-ink:#fecaca;
--warn-bg:#78350f;--warn-ink:#fde68a;--c0:#60a5fa;--c1:#4ade80;--c2:#fbbf24;--c3:#a78bfa;--c4:#22d3ee;
--c5:#f472b6;--c6:#a3e635;--c7:#64748b}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 24px 40px}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 16px;margin-bottom:20px}
h1{font-size:22px;margin:0;letter-spacing:-.01em}
h1 .brand{color:var(--stored)}
.sub{color:var(--muted)}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin-bottom:16px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px}
.kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.kpi .value{font-size:24px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.kpi .note{color:var(--muted);font-size:12px;margin-top:2px}
.grid{display:grid;grid-template-columns:repeat(12,1fr);gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 18px;min-width:0}
.card h2{font-size:15px;margin:0 0 2px}
.card .hint{color:var(--muted);font-size:12.5px;margin:0 0 12px}
.w12{grid-column:span 12}.w8{grid-column:span 8}.w7{grid-column:span 7}.w6{grid-column:span 6}
.w5{grid-column:span 5}.w4{grid-column:span 4}
@media (max-width:900px){.w8,.w7,.w6,.w5,.w4{grid-column:span 12}}
svg.chart{width:100%;height:auto;display:block}
svg .lbl{fill:var(--muted);font-size:13px}
svg .val{fill:var(--ink);font-size:13px}
svg .big{fill:var(--ink);font-size:20px;font-weight:650}
svg .grid{stroke:var(--line);stroke-width:1}
svg .hover{fill:transparent}
svg .hover:hover{fill:var(--ink);fill-opacity:.06}
svg .area{fill-opacity:.85}
.f-raw{fill:var(--raw)}.f-stored{fill:var(--stored)}.f-pending{fill:var(--pending)}.f-queued{fill:var(--queued)}
.f-processing{fill:var(--processing)}.f-completed{fill:var(--completed)}.f-failed{fill:var(--failed)}
.s-codec0{stroke:var(--c0)}.s-codec1{stroke:var(--c1)}.s-codec2{stroke:var(--c2)}.s-codec3{stroke:var(--c3)}
.s-codec4{stroke:var(--c4)}.s-codec5{stroke:var(--c5)}.s-codec6{stroke:var(--c6)}.s-codec7{stroke:var(--c7)}
.b-codec0{background:var(--c0)}.b-codec1{background:var(--c1)}.b-codec2{background:var(--c2)}
.b-codec3{background:var(--c3)}.b-codec4{background:var(--c4)}.b-codec5{background:var(--c5)}
.b-codec6{background:var(--c6)}.b-codec7{background:var(--c7)}
.b-raw{background:var(--raw)}.b-stored{background:var(--stored)}.b-pending{background:var(--pending)}
.b-queued{background:var(--queued)}.b-processing{background:var(--processing)}.b-completed{background:var(--completed)}
.b-failed{background:var(--failed)}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;color:var(--muted);font-size:12.5px;margin-top:8px}
.sw{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:6px;vertical-align:-1px}
.donut{display:flex;gap:18px;align-items:center;flex-wrap:wrap}
.donut svg{width:180px;flex:none}
.donut ul{list-style:none;margin:0;padding:0;flex:1;min-width:180px}
.donut li{display:flex;gap:8px;align-items:baseline;padding:3px 0;border-bottom:1px dashed var(--line)}
.donut li:last-child{border-bottom:0}
.donut li .name{flex:1;overflow-wrap:anywhere}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th{text-align:left;color:var(--muted);font-weight:500;font-size:12px;text-transform:uppercase;letter-spacing:.04em;
border-bottom:1px solid var(--line);padding:6px 8px}
td{border-bottom:1px solid var(--line);padding:7px 8px;vertical-align:middle}
tr:last-child td{border-bottom:0}
td.r,th.r{text-align:right;white-space:nowrap}
td.path{max-width:420px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.meter{display:inline-block;width:70px;height:7px;border-radius:4px;background:var(--raw);vertical-align:middle;
margin-left:8px;overflow:hidden}
.meter i{display:block;height:100%;background:var(--stored)}
.pill{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600}
.p-completed,.p-ok{background:var(--ok-bg);color:var(--ok-ink)}
.p-failed,.p-bad,.p-malformed{background:var(--bad-bg);color:var(--bad-ink)}
.p-pending,.p-queued,.p-processing,.p-local,.p-unknown,.p-skip{background:var(--warn-bg);color:var(--warn-ink)}
.states{display:grid;grid-template-columns:repeat(5,1fr);gap:8px;margin-top:12px}
.state{border:1px solid var(--line);border-radius:10px;padding:8px 10px}
.state .label{font-size:12px;color:var(--muted)}
.state .value{font-size:18px;font-weight:650}
.empty{color:var(--muted);padding:18px 0;text-align:center}
.emptystate{text-align:center;padding:36px 20px}
.emptystate h2{font-size:18px}
.failures{margin:10px 0 0;padding-left:18px}
.failures li{margin:3px 0;overflow-wrap:anywhere}
.bigrate{font-size:28px;font-weight:650}
footer{color:var(--muted);font-size:12px;margin-top:22px;text-align:center}
"""


def _card(width: str, title: str, hint: str, body: str) -> str:
    hint_html = f'<p class="hint">{hint}</p>' if hint else ""
    return f'<section class="card {width}"><h2>{esc(title)}</h2>{hint_html}{body}</section>'


def _kpi(label: str, value: str, note: str = "") -> str:
    return (f'<div class="kpi"><div class="label">{esc(label)}</div><div class="value">{value}</div>'
            f'<div class="note">{note}</div></div>')


def _kpis(data: dict) -> str:
    t = data["totals"]
    v = data["verify"]
    if v is None:
        verify = '<span class="pill p-skip">not run</span>'
        verify_note = "--no-verify"
    elif v["ok"]:
        verify = f'<span class="pill p-ok">{"bit-perfect" if v["checked"] else "nothing to check"}</span>'
        verify_note = f'{count("verify.checked", v["checked"], "")} file(s) checked'
    else:
        verify = '<span class="pill p-bad">FAILED</span>'
        verify_note = (f'{count("verify.failed_count", v["failed_count"], "")} of '
                       f'{count("verify.checked", v["checked"], "")}')
    return '<section class="kpis">' + "".join([
        _kpi("Files", count("totals.files", t["files"]),
             f'{size("totals.size", t["size"], "")} at full size, every path of this commit'),
        _kpi("Stored now", size("totals.stored_now_bytes", t["stored_now_bytes"]),
             f'{size("totals.stored_bytes", t["stored_bytes"], "")} compressed + '
             f'{size("totals.pending_bytes", t["pending_bytes"], "")} not compressed yet, each content once'),
        _kpi("Ratio (completed)", ratio("totals.ratio", t["ratio"]),
             f'compressed size of the {count("totals.completed_files", t["completed_files"], "")} completed '
             f'file(s), {size("totals.completed_size", t["completed_size"], "")} at full size'),
        _kpi("Dedup saved", size("totals.dedup_saved_bytes", t["dedup_saved_bytes"]),
             f'{size("totals.unique_bytes", t["unique_bytes"], "")} new after dedup'),
        _kpi("Waiting", count("totals.pending_files", t["pending_files"]), "file(s) not completed yet"),
        _kpi("Verify", verify, verify_note),
    ]) + "</section>"


def _types_card(data: dict) -> str:
    types = data["types"]
    if not types:
        return _card("w7", "Stored vs raw, by file type", "", '<p class="empty">No files.</p>')
    rows = "".join(
        f'<tr><td class="mono">{esc(t["type"])}</td><td class="r">{count(f"types.{i}.files", t["files"])}</td>'
        f'<td class="r">{size(f"types.{i}.size", t["size"])}</td>'
        f'<td class="r">{size(f"types.{i}.stored_bytes", t["stored_bytes"])}</td>'
        f'<td class="r">{size(f"types.{i}.pending_bytes", t["pending_bytes"])}</td>'
        f'<td class="r">{size(f"types.{i}.stored_now_bytes", t["stored_now_bytes"])}</td>'
        f'<td class="r">{ratio(f"types.{i}.stored_now_ratio", t["stored_now_ratio"])}</td></tr>'
        for i, t in enumerate(types))
    legend = ('<div class="legend"><span><i class="sw b-raw"></i>raw size</span>'
              '<span><i class="sw b-stored"></i>stored, compressed</span>'
              '<span><i class="sw b-pending"></i>stored raw, waiting for a worker</span></div>')
    table = ('<details><summary class="sub">table</summary><table><tr><th>type</th><th class="r">files</th>'
             '<th class="r">raw</th><th class="r">packed</th><th class="r">raw, waiting</th>'
             '<th class="r">stored now</th>'
             f'<th class="r">of raw</th></tr>{rows}</table></details>')
    return _card("w7", "Stored vs raw, by file type",
                 "Each content counted once (dedup), under the type of its first path.",
                 types_chart(types) + legend + table)


def _codecs_card(data: dict) -> str:
    codecs = data["codecs"]
    if not codecs:
        return _card("w5", "Codec chains", "", '<p class="empty">No completed file yet: run <code>git panini work'
                                               '</code>.</p>')
    items = "".join(
        f'<li><i class="sw b-codec{i % CODEC_COLORS}"></i><span class="name mono" title="{esc(c["chain"])}">'
        f'{esc(c["chain"])}</span>{size(f"codecs.{i}.bytes", c["bytes"])}'
        f'<span class="sub">{ratio(f"codecs.{i}.share", c["share"], "")}</span></li>'
        for i, c in enumerate(codecs))
    return _card("w5", "Codec chains", "File data (at full size) each chain compressed: this commit's completed "
                 "files, each content once.",
                 f'<div class="donut">{donut(codecs)}<ul>{items}</ul></div>')


def _queue_card(data: dict) -> str:
    now = data["queue"]["now"]
    states = "".join(
        f'<div class="state"><div class="label"><i class="sw b-{s}"></i>{STATE_LABELS[s]}</div>'
        f'<div class="value">{count(f"queue.now.{s}.files", now[s]["files"])}</div>'
        f'<div class="sub">{size(f"queue.now.{s}.bytes", now[s]["bytes"], "")}</div></div>'
        for s in ("pending", "queued", "processing", "completed", "failed"))
    total = sum(s["files"] for s in now.values())
    bar = queue_bar(now) if total else '<p class="empty">The notes hold no file yet (nothing pushed).</p>'
    return _card("w8", "Queue now", "Every published file version in <code>refs/notes/panini</code>, "
                 "by state (files, raw bytes).", bar + f'<div class="states">{states}</div>')


def _history_card(data: dict) -> str:
    points = data["queue"]["history"]
    if not points:
        body = '<p class="empty">No history yet.</p>'
    else:
        body = history_chart(points, data["generated"]) + '<div class="legend">' + "".join(
            f'<span><i class="sw b-{s}"></i>{s}</span>' for s in reversed(STACK_ORDER)) + "</div>"
    hint = (f"Files per state at {len(points)} moments of the notes' history, each held until the next."
            if points else "")
    return _card("w7", "Queue over time", hint, body)


def _seconds(metric: str, value: float) -> str:
    return num(metric, value, f"{value:,.1f} s")


def _rate(metric: str, value: float | None) -> str:
    return num(metric, value, rate(value), "" if value is None else f"{value:,} bytes/s")


def _throughput_card(data: dict) -> str:
    th = data["throughput"]
    head = (f'<div class="bigrate">{_rate("throughput.bytes_per_second", th["bytes_per_second"])}</div>'
            f'<p class="sub">{size("throughput.timed_bytes", th["timed_bytes"], "")} of file data (at full size) '
            f'compressed in {_seconds("throughput.seconds", th["seconds"])} of worker time, by the '
            f'{count("throughput.timed_files", th["timed_files"], "")} of '
            f'{count("throughput.files", th["files"], "")} completed file version(s) that record it; '
            f'{size("throughput.bytes", th["bytes"], "")} completed in all, every version the notes hold, '
            "not only this commit's</p>")
    timeline = timeline_chart(th["timeline"]) if th["timeline"] else '<p class="empty">Nothing completed yet.</p>'
    rows = "".join(
        f'<tr><td class="mono path" title="{esc(w["worker"])}">{esc(w["worker"])}</td>'
        f'<td class="r">{count(f"throughput.workers.{i}.files", w["files"])}</td>'
        f'<td class="r">{size(f"throughput.workers.{i}.bytes", w["bytes"])}</td>'
        f'<td class="r">{_seconds(f"throughput.workers.{i}.seconds", w["seconds"])}</td>'
        f'<td class="r">{_rate(f"throughput.workers.{i}.bytes_per_second", w["bytes_per_second"])}</td></tr>'
        for i, w in enumerate(th["workers"]))
    more = (f'<p class="sub">and {th["workers_total"] - len(th["workers"])} more worker(s)</p>'
            if th["workers_total"] > len(th["workers"]) else "")
    table = ('<table><tr><th>worker</th><th class="r">files</th><th class="r">bytes</th><th class="r">time</th>'
             f'<th class="r">rate</th></tr>{rows}</table>{more}') if rows else ""
    return _card("w5", "Worker throughput", "File data (at full size) compressed per second of worker time, from "
                 "the completed notes.",
                 head + timeline + table)


def _largest_card(data: dict) -> str:
    rows = []
    for i, f in enumerate(data["largest"]):
        share = f["ratio"]
        meter = (f'<span class="meter"><i style="width:{_f(min(share, 1) * 100)}%"></i></span>'
                 if share is not None else "")
        status = clean(f["status"])
        rows.append(
            f'<tr><td class="mono path" title="{esc(f["path"])}">{esc(f["path"])}</td>'
            f'<td class="r">{size(f"largest.{i}.size", f["size"])}</td>'
            f'<td class="r">{size(f"largest.{i}.stored_bytes", f["stored_bytes"])}</td>'
            f'<td class="r">{ratio(f"largest.{i}.ratio", share)}{meter}</td>'
            f'<td><span class="pill p-{esc(status if status.isalpha() else "unknown")}">{esc(status)}</span></td>'
            f'<td class="mono">{esc(f["codecs"])}</td></tr>')
    if not rows:
        return _card("w12", "Largest files", "", '<p class="empty">No files.</p>')
    return _card("w12", "Largest files", "", '<table><tr><th>path</th><th class="r">size</th><th class="r">stored</th>'
                 '<th class="r">ratio</th><th>state</th><th>codecs</th></tr>' + "".join(rows) + "</table>")


def _verify_card(data: dict) -> str:
    v = data["verify"]
    if v is None:
        body = ('<p><span class="pill p-skip">not run</span></p><p class="sub">The dashboard was made with '
                '<code>--no-verify</code>; <code>git panini verify</code> checks every file bit-perfect.</p>')
    elif v["ok"]:
        body = (f'<p><span class="pill p-ok">{"bit-perfect" if v["checked"] else "nothing to check"}</span></p>'
                '<p class="sub">'
                f'{count("verify.checked", v["checked"], "")} file(s), {size("verify.bytes", v["bytes"], "")}: '
                'every chunk re-hashed, every file\'s sha256 and size checked.</p>')
    else:
        failures = "".join(f'<li><code>{esc(f["path"])}</code>: {esc(f["error"])}</li>' for f in v["failed"][:50])
        more = f'<li>… and {v["failed_count"] - 50} more</li>' if v["failed_count"] > 50 else ""
        body = (f'<p><span class="pill p-bad">FAILED</span> {count("verify.failed_count", v["failed_count"], "")} of '
                f'{count("verify.checked", v["checked"], "")} file(s) do not rebuild bit-perfect:</p>'
                f'<ul class="failures">{failures}{more}</ul>')
    return _card("w4", "Verify", "", body)


def _empty_state(data: dict) -> str:
    return _card("w12", "No git-panini files here yet", "",
                 f'<div class="emptystate"><p>{esc(data["rev"])} has no file stored by git-panini. Track some and '
                 'commit them:</p><p><code>git panini track "*.psd"</code> · <code>git add</code> · '
                 '<code>git commit</code> · <code>git push</code></p></div>')


def render(data: dict) -> str:
    commit = data["commit"][:12] if data["commit"] else "no commit yet"
    header = (f'<header><h1><span class="brand">git-panini</span> · {esc(data["repository"])}</h1>'
              f'<span class="sub">{esc(data["rev"])} at <code>{esc(commit)}</code> · generated '
              f'{esc(when(data["generated"]))}</span></header>')
    cards = []
    if not data["totals"]["files"]:
        cards.append(_empty_state(data))
    else:
        cards += [_types_card(data), _codecs_card(data)]
    cards += [_queue_card(data), _verify_card(data), _history_card(data), _throughput_card(data)]
    if data["totals"]["files"]:
        cards.append(_largest_card(data))
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            # Nothing loads from anywhere and no script runs, whatever a path in the page says.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<meta name=\"color-scheme\" content=\"light dark\">"
            f"<title>git-panini · {esc(data['repository'])}</title><style>{CSS}</style></head>"
            f"<body><main>{header}{_kpis(data)}<div class=\"grid\">{''.join(cards)}</div>"
            "<footer>Made by <code>git panini dashboard</code>; the same numbers are in dashboard.json.</footer>"
            "</main></body></html>\n")
