"""`git panini fsck`: check the store by reachability (what `git gc --prune=now` keeps), packs readable;
`--remote [REMOTE]`: every file of the remote's branches and tags readable from the remote's own objects."""

from __future__ import annotations

import typer

from .common import JsonOption, console, fail, open_repo, print_json, remote_or_fail


def fsck(full: bool = typer.Option(False, "--full", help="Also decode every pack here and re-hash its chunks."),
         remote: bool = typer.Option(False, "--remote", help="Check the remote instead (its branches and tags)."),
         name: str = typer.Argument(None, metavar="[REMOTE]", help="With --remote: which (default: the branch's)."),
         decode: bool = typer.Option(False, "--decode", help="With --remote: fetch and decode packs not yet "
                                     "decoded here, so 'claimed' becomes 'verified' or 'missing'."),
         amplification: bool = typer.Option(False, "--amplification", help="Instead, compute what a checkout of "
                                            "each commit of the branches and tags decodes and fetches, against "
                                            "the format's bound (1.5x the bytes written; 1.25x + 1 MiB fetched)."),
         json: bool = JsonOption):
    """Check the store, the local store and the notes; exit 1 on any error."""
    if name and not remote:
        fail(f"unexpected argument {name!r} (a remote is checked with --remote REMOTE)", code=2)
    if amplification:
        _fsck_amplification(json)
    if remote:
        _fsck_remote(name, decode, json)
    from ..ops.fsck import check_store
    report = check_store(open_repo(), full=full)
    if json:
        print_json(report)
    else:
        for problem in report["errors"]:
            console.print(f"error: {problem}", markup=False, highlight=False)
        for problem in report["warnings"]:
            console.print(f"warning: {problem}", markup=False, highlight=False)
        c = report["counts"]
        here = (f", data of {c['head_files'] - c['head_files_not_here']} of {c['head_files']} HEAD file(s) here"
                if c.get("head_files") else "")
        console.print(f"{c['manifests']} published and {c['local_manifests']} local manifests, {c['packs']} packs, "
                      f"{c['notes']} notes{here}: "
                      + ("ok" if not report["errors"] else f"{len(report['errors'])} error(s)"), markup=False)
    raise typer.Exit(1 if report["errors"] else 0)


def _fsck_remote(name: str | None, decode: bool, json: bool):
    from ..ops.remote_fsck import VERDICTS, check_remote
    from ..transfer.remote import SyncError
    repo = open_repo()
    remote = remote_or_fail(repo, name)
    try:
        report = check_remote(repo, remote, decode=decode)
    except SyncError as e:
        fail(str(e))
    if report.errors:   # its store or notes ref is not a commit: no file can be judged through it
        if json:
            print_json({"remote": remote, "errors": report.errors, "warnings": report.warnings})
        else:
            for line in report.errors + report.warnings:
                console.print(f"{'error' if line in report.errors else 'warning'}: {line}", markup=False,
                              highlight=False)
        raise typer.Exit(1)
    counts = {v: report.count(v) for v in VERDICTS}
    if json:
        print_json({"remote": remote, "errors": [], "counts": counts, "warnings": report.warnings,
                    "files": [f.__dict__ for f in report.files]})
    else:
        for f in report.files:
            if f.verdict != "verified":
                console.print(f"{f.verdict}: {f.path}: {f.reason}", markup=False, highlight=False)
        for warning in report.warnings:
            console.print(f"warning: {warning}", markup=False, highlight=False)
        console.print(f"{remote}: {len(report.files)} file version(s): {counts['verified']} verified, "
                      f"{counts['claimed']} claimed, {counts['missing']} missing"
                      + (" (a clone that holds them: git panini push --repair)" if counts["missing"] else ""),
                      markup=False)
    raise typer.Exit(1 if counts["missing"] else 0)


def _fsck_amplification(json: bool):
    from statistics import median

    from ..ops.amplification import check_history
    from ..store.read_cost import FETCH_SLACK, MAX_DECODE, MAX_FETCH
    from ..util.units import human
    results = check_history(open_repo())
    over = [r for r in results if not r.cost.within_bound]
    decode = [r.cost.decode_ratio for r in results if r.cost.written]
    fetch = [r.cost.fetch_ratio for r in results if r.cost.stored]
    summary = {"commits": len(results), "over_bound": len(over), "bound": {"decode": MAX_DECODE, "fetch": MAX_FETCH,
                                                                          "fetch_slack": FETCH_SLACK},
               "decode_ratio": {"max": max(decode, default=0.0), "median": median(decode) if decode else 0.0},
               "fetch_ratio": {"max": max(fetch, default=0.0), "median": median(fetch) if fetch else 0.0}}
    if json:
        print_json({"summary": summary, "commits": [r.as_dict() for r in results]})
    else:
        for r in over:
            c = r.cost
            console.print(f"over: {r.commit[:12]}: decodes {human(c.decoded)} to write {human(c.written)} "
                          f"({c.decode_ratio:.2f}x), fetches {human(c.fetched)} for {human(c.stored)} stored "
                          f"({c.fetch_ratio:.2f}x), {c.packs} pack(s)", markup=False, highlight=False)
        d, f = summary["decode_ratio"], summary["fetch_ratio"]
        console.print(f"{len(results)} commit(s): decode {d['median']:.2f}x median, {d['max']:.2f}x max; fetch "
                      f"{f['median']:.2f}x median, {f['max']:.2f}x max; "
                      + (f"{len(over)} over the bound" if over else "all within the bound"), markup=False)
    raise typer.Exit(1 if over else 0)


def register(app: typer.Typer):
    app.command()(fsck)
