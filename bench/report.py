"""Markdown tables and (optional, with matplotlib) PNG plots from a bench/results/*.json report.

`python -m bench.report bench/results/<date>-quick.json [--plots docs/img]` prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

LABELS = {"panini": "git-panini", "lfs": "git-lfs", "git": "plain git", "new": "git-panini (new)",
          "old": "git-panini (old)"}
BEHIND = 0.05   # worse than an anchor by more than this fraction: flagged "behind"

# DESIGN.md §5, "Figures to beat", beside the rows they speak to (matched on the metric's start).
DESIGN_FIGURES = {
    "add 512 MiB": "git-lfs 150–164 MiB/s; plain git 22–57 MiB/s",
    "checkout 512 MiB": "git-lfs 168–261 MiB/s",
    "10 x 64 MiB, 4 KiB edits: .git/objects": "git-lfs 641 MiB; plain git 641 MiB; CDC 64 KiB ≈ 65 MiB",
    "10 x 64 MiB, 4 KiB edits: same after git gc": "plain git 65 MiB only after gc",
    "stored % of raw: python": "text, 80 MB corpus: xz -9e 6.02 %, zstd -22 --long 6.20 %, zstd -19 7.98 %, PPMd 8.3 %",
    "stored % of raw: docs": "text, 80 MB corpus: xz -9e 6.02 %, zstd -19 7.98 %",
    "stored % of raw: jpeg": "Lepton −25 % (75 %), JPEG XL −19.5 %, zstd ≈ 100 %",
    "stored % of raw: wheel": "zstd -19 98.6 %; deflate expanded + xz 80.5 %",
    "stored % of raw: png": "IDAT expanded + xz 88–91 %",
    **{f"push after adding 1 MiB to a {n} MiB store: bytes on the wire": "git-lfs 1 MB sent; git-panini (v1) 585 MB"
       for n in (128, 512)},
    **{f"push after adding 1 MiB to a {n} MiB store: wall time": "git-lfs 0.14 s" for n in (128, 512)},
    "clone of 6 versions x 8 x": "git-lfs: HEAD's objects only; git-panini target ≤ 1.1× + 1 % (v1: every version)",
}


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def behind(r: dict, anchor: str) -> bool | None:
    ratio = r["ratios"].get(anchor)
    if ratio is None or r.get("better") not in ("higher", "lower"):
        return None
    return ratio < 1 - BEHIND if r["better"] == "higher" else ratio > 1 + BEHIND


def ratio_cell(r: dict) -> str:
    parts = []
    for anchor, ratio in r["ratios"].items():
        text = f"{ratio:g}× {LABELS.get(anchor, anchor)}"
        parts.append(f"**{text} (behind)**" if behind(r, anchor) else text)
    return " · ".join(parts) or ""


def figure_for(metric: str) -> str:
    if "peak RSS" in metric:
        return ""
    for start, figure in DESIGN_FIGURES.items():
        if metric.startswith(start):
            return figure
    return ""


def scenario_table(result: dict) -> list[str]:
    rows = result["summary"]
    columns = list(dict.fromkeys(t for r in rows for t in r["values"]))
    with_figures = any(figure_for(r["metric"]) for r in rows)
    head = ["metric", "unit"] + [LABELS.get(c, c) for c in columns] + ["ratio: subject ÷ anchor"]
    head += ["DESIGN.md §5"] if with_figures else []
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * len(columns) + "---|" * (1 + with_figures)]
    for r in rows:
        arrow = {"higher": " ↑", "lower": " ↓"}.get(r.get("better"), "")
        cells = []
        for c in columns:
            text = _fmt(r["values"].get(c))
            cells.append(f"**{text}**" if c == r.get("subject") and c in r["values"] else text)
        line = [r["metric"] + (f" <sub>({r['note']})</sub>" if r.get("note") else ""), r["unit"] + arrow]
        line += cells + [ratio_cell(r)] + ([figure_for(r["metric"])] if with_figures else [])
        out.append("| " + " | ".join(line) + " |")
    return out


def markdown(report: dict, heading_level: int = 1) -> str:
    m = report["machine"]
    h = "#" * heading_level
    load = lambda a, b: f"{a[0]:.1f} → {b[0]:.1f}"  # noqa: E731
    lines = [f"{h} git-panini benchmarks: {report['mode']}, {report['date']}", "",
             f"{m['nproc']} × {m['cpu']}, {m['git']}, {m['git-lfs'].split(' (')[0]}, git-panini {m['git-panini']}; "
             f"1-minute load average {load(m['loadavg_before'], m['loadavg_after'])}; "
             f"{report.get('seconds', '?')} s in all. Bold subject value; ratios are subject ÷ anchor "
             f"(↑ higher is better, ↓ lower is better); **behind** marks a subject worse than the anchor "
             f"by more than {BEHIND:.0%}.", ""]
    for name, result in report["scenarios"].items():
        lines += [f"{h}# {name} ({result['issue']}): {result['seconds']} s, load "
                  f"{load(result.get('loadavg_before', [0]), result.get('loadavg_after', [0]))}", "",
                  " ".join((result.get("doc") or "").split()), ""]
        lines += scenario_table(result) + [""]
    lagging = behind_rows(report)
    lines += [f"{h}# Behind an anchor (by more than {BEHIND:.0%})", ""]
    lines += [f"- {line}" for line in lagging] or ["- nothing"]
    return "\n".join(lines) + "\n"


def behind_rows(report: dict) -> list[str]:
    """One line per (row, anchor) where the subject is behind."""
    out = []
    for name, result in report["scenarios"].items():
        for r in result["summary"]:
            for anchor in r["ratios"]:
                if behind(r, anchor):
                    out.append(f"{name}: {r['metric']}: {r['ratios'][anchor]:g}× {LABELS.get(anchor, anchor)}")
    return out


def plots(report: dict, directory: str) -> list[str]:
    """PNG plots under directory; [] when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib)", file=sys.stderr)
        return []
    os.makedirs(directory, exist_ok=True)
    made = []
    scenarios = report["scenarios"]
    stamp = f"{report['mode']} {report['date'][:10]}, {report['machine']['nproc']} cores"
    suffix = "" if report["mode"] == "quick" else f"-{report['mode']}"   # a --full run keeps its own plots

    if "add-checkout" in scenarios:
        rows = [r for r in scenarios["add-checkout"]["summary"] if r["unit"] == "MiB/s"]
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.27
        for i, tool in enumerate(("panini", "lfs", "git")):
            xs = [j + (i - 1) * width for j in range(len(rows))]
            ax.bar(xs, [r["values"].get(tool) or 0 for r in rows], width, label=LABELS[tool])
        ax.set_xticks(range(len(rows)), [r["metric"].split(" (")[0].replace(" MiB ", " MiB\n") for r in rows],
                      fontsize=8)
        ax.set_ylabel("MiB/s (median)")
        ax.set_title(f"git add / checkout throughput ({stamp})", fontsize=10)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(directory, f"bench-throughput{suffix}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    if "scaling" in scenarios:
        rows = [r for r in scenarios["scaling"]["summary"] if r["unit"] == "µs"]
        fig, ax = plt.subplots(figsize=(8, 4))
        for r in rows:
            points = [(int(k[2:]), v) for k, v in r["values"].items() if v]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=r["metric"].split(":")[0])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("file size in 64 KiB units (N); µs are per actual chunk")
        ax.set_ylabel("µs per chunk")
        ax.set_title(f"git-panini: time per chunk vs N ({stamp})", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(directory, f"bench-scaling{suffix}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    if "compression" in scenarios:
        rows = [r for r in scenarios["compression"]["summary"] if r["metric"].startswith("stored % of raw")]
        columns = list(dict.fromkeys(c for r in rows for c in r["values"]))
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.8 / len(columns)
        for i, c in enumerate(columns):
            xs = [j + (i - len(columns) / 2 + 0.5) * width for j in range(len(rows))]
            ax.bar(xs, [r["values"].get(c) or 0 for r in rows], width, label=c)
        ax.set_xticks(range(len(rows)), [r["metric"].split(": ")[1].split(" (")[0] for r in rows])
        ax.set_ylabel("stored, % of raw (lower is better)")
        ax.set_title(f"stored bytes per file type ({stamp})", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = os.path.join(directory, f"bench-compression{suffix}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("json")
    p.add_argument("--plots", metavar="DIR", help="also write PNG plots there")
    p.add_argument("--heading-level", type=int, default=1)
    args = p.parse_args(argv)
    with open(args.json) as f:
        report = json.load(f)
    print(markdown(report, args.heading_level))
    if args.plots:
        for path in plots(report, args.plots):
            print(f"plot: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
