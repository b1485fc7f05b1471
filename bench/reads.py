"""The `reads` scenario (issue #9, item 7): packed reads per file type; the memory of smudge and the worker.

1. Per type (JPEG, PNG, a wheel-like ZIP of Python sources, text), seeded inputs of a few MiB (quick: 3 MiB
   per type; full: 16 MiB) are added, packed by `git panini work --effort 2 -j 1`, and the raw chunks
   dropped (`git reflog expire --expire=now --all && git gc --prune=now`; the scenario checks that
   `git panini fsck` counts 0 raw chunks). Then `git panini verify --all` and `rm && git checkout -- .`
   (the smudge filter) read the packs, 3 times each: MB/s per core = input bytes / CPU seconds of the
   whole command tree (the run with the fewest), less the CPU seconds of the same command on a
   repository holding one 1-byte file (start-up: interpreter, imports, git); wall MB/s in the note
   (reads decode ahead on up to 4 cores, so wall can beat CPU). Beside them, the decoders alone:
   `python -m bench.reads decode REPO` runs decode_chain once over every pack in one process (CPU of it
   and its children), the ceiling reads can reach per core. The codec chain the worker chose is
   reported beside each type.
2. Peak RSS (resident set of the largest single process) of the filter's smudge of one big file (quick:
   256 MiB; full: 1 GiB; `--size MiB` sets it), driven through the long-running filter protocol by `python -m bench.reads
   smudge ...`, which spawns `git panini filter-process` as its only child and reads
   getrusage(RUSAGE_CHILDREN).ru_maxrss once it exits: (a) a pointer whose chunks are raw blobs, (b) the
   same pointer after `git panini work --effort 0` and gc (chunks in packs), (c) a non-pointer blob of
   the same size (a file committed before it was tracked). Git itself buffers a smudged file whole
   (convert.c), so the filter is measured on its own, without git.
3. Peak RSS of `git panini work --effort 0 -j 1` on that big file (random bytes; GNU time / rusage of the
   whole tree, largest process).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import sysconfig
import zipfile

MiB = 1 << 20
TYPES = ("jpeg", "png", "zip", "text")
PKT_DATA = 65516
BLOCK = 1 << 20


def params(cfg) -> dict:
    full = cfg.mode == "full"
    big = getattr(cfg, "size", None) or (1024 if full else 256)   # --size MiB overrides the big file's size
    return {"type_mib": 16 if full else 3, "big_mib": big, "effort": 2, "read_runs": 3}


# --- inputs ----------------------------------------------------------------------------------------------

def _photo(rng: random.Random, w: int, h: int):
    """A photographic-ish image: a gradient under blurred noise (compresses like a photo, not like noise)."""
    from PIL import Image, ImageFilter
    noise = Image.frombytes("RGB", (w, h), rng.randbytes(w * h * 3)).filter(ImageFilter.GaussianBlur(2))
    grad = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    return Image.blend(noise, grad, 0.4)


def _images(directory: str, kind: str, budget: int, seed: int) -> int:
    rng = random.Random(seed)
    total, n = 0, 0
    while total < budget:
        buf = io.BytesIO()
        img = _photo(rng, 1024, 768)
        if kind == "jpeg":
            img.save(buf, "JPEG", quality=90)
        else:
            img.save(buf, "PNG")
        path = os.path.join(directory, f"{n:04d}.{'jpg' if kind == 'jpeg' else 'png'}")
        with open(path, "wb") as f:
            f.write(buf.getvalue())
        total += len(buf.getvalue())
        n += 1
    return total


def _zips(directory: str, budget: int, seed: int) -> int:
    """Wheel-like archives: this Python's stdlib sources, deflated as zipfile (and pip) write them."""
    stdlib = sysconfig.get_paths()["stdlib"]
    sources = sorted(os.path.join(base, name) for base, _, names in os.walk(stdlib)
                     for name in names if name.endswith(".py") and "site-packages" not in base)
    random.Random(seed).shuffle(sources)
    total, n, at = 0, 0, 0
    while total < budget and at < len(sources):
        path = os.path.join(directory, f"{n:04d}-py3-none-any.whl")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            while os.path.getsize(path) < 2 * MiB and at < len(sources) and total + z.fp.tell() < budget:
                z.write(sources[at], os.path.relpath(sources[at], stdlib))
                at += 1
        total += os.path.getsize(path)
        n += 1
    return total


def _inputs(h, directory: str, kind: str, budget: int, seed: int) -> int:
    os.makedirs(directory)
    if kind in ("jpeg", "png"):
        return _images(directory, kind, budget, seed)
    if kind == "zip":
        return _zips(directory, budget, seed)
    h.write_text(os.path.join(directory, "0000.txt"), budget, seed)
    return budget


# --- packed reads per type -------------------------------------------------------------------------------

def _pack_and_gc(bench, repo: str, effort: int) -> dict:
    work = bench.timed("panini", ["git", "panini", "work", "--no-remote", "-j", "1", "--effort", str(effort),
                                  "--json"], repo, stdout=True)
    files = json.loads(work.pop("stdout"))["files"]
    bad = [f for f in files if not f["ok"]]
    if bad:
        raise RuntimeError(f"git panini work failed on {bad[0]['manifest']}: {bad[0]['error']}")
    bench.run("panini", ["git", "reflog", "expire", "--expire=now", "--all"], repo)
    bench.run("panini", ["git", "gc", "-q", "--prune=now"], repo)
    counts = json.loads(bench.run("panini", ["git", "panini", "fsck", "--json"], repo))["counts"]
    if counts["raw_chunks"]:
        raise RuntimeError(f"{counts['raw_chunks']} raw chunk(s) left after work and gc: reads would not read packs")
    chains: dict[str, int] = {}
    for f in files:
        for chain, size in (f.get("codecs") or {}).items():
            chains[chain] = chains.get(chain, 0) + size
    return {"work": work, "chains": chains, "stored_bytes": sum(f["stored_bytes"] for f in files)}


def _reads(bench, repo: str, names: list[str]) -> dict:
    verify = bench.timed("panini", ["git", "panini", "verify", "--all"], repo)
    for name in names:
        os.remove(os.path.join(repo, name))
    checkout = bench.timed("panini", ["git", "checkout", "--", "."], repo)
    return {"verify": verify, "checkout": checkout}


def _startup(bench) -> dict:
    """What verify and checkout cost with nothing to read: one 1-byte tracked file, raw."""
    repo = bench.repo("panini", "reads-startup", track=["*"])
    with open(os.path.join(repo, "one"), "wb") as f:
        f.write(b"x")
    bench.run("panini", ["git", "add", "one"], repo)
    bench.run("panini", ["git", "commit", "-q", "-m", "one"], repo)
    runs = [_reads(bench, repo, ["one"]) for _ in range(3)]
    shutil.rmtree(repo)
    return {step: min(r[step]["cpu_seconds"] for r in runs) for step in ("verify", "checkout")}


def _per_type(bench, h, cfg, p) -> dict:
    raw = {"startup_cpu_seconds": _startup(bench)}
    for n, kind in enumerate(TYPES):
        repo = bench.repo("panini", f"reads-{kind}", track=[f"{kind}/**"])
        size = _inputs(h, os.path.join(repo, kind), kind, p["type_mib"] * MiB, cfg.seed + n)
        names = [os.path.join(kind, name) for name in sorted(os.listdir(os.path.join(repo, kind)))]
        digests = {name: _sha256(os.path.join(repo, name)) for name in names}
        bench.run("panini", ["git", "add", "."], repo)
        bench.run("panini", ["git", "commit", "-q", "-m", kind], repo)
        out = raw[kind] = {"bytes": size, "files": len(names), **_pack_and_gc(bench, repo, p["effort"])}
        out["decoders"] = json.loads(_helper(bench, ["decode", repo]))
        runs = [_reads(bench, repo, names) for _ in range(p["read_runs"])]
        out["runs"] = runs
        # The least disturbed run: on a shared machine, other load only ever adds CPU time (cache misses).
        out.update({step: min((r[step] for r in runs), key=lambda m: m["cpu_seconds"])
                    for step in ("verify", "checkout")})
        if any(_sha256(os.path.join(repo, name)) != digest for name, digest in digests.items()):
            raise RuntimeError(f"[{kind}] checkout from packs wrote different bytes")
        shutil.rmtree(repo)
    return raw


# --- peak RSS of smudge and of the worker ----------------------------------------------------------------

def big_blob(seed: int, size: int):
    """size seeded random bytes, made and handed out one MiB at a time (never held whole)."""
    rng = random.Random(seed)
    for done in range(0, size, BLOCK):
        yield rng.randbytes(min(BLOCK, size - done))


def _helper(bench, args: list[str]) -> str:
    """`python -m bench.reads ARGS` in a fresh interpreter: its stdout."""
    # bench/ must be importable; a PYTHONPATH already set (an older git_panini, for a before run) stays first.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = bench.envs["panini"]
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (env.get("PYTHONPATH"), here) if p)}
    done = subprocess.run([sys.executable, "-m", "bench.reads", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"bench.reads {args[0]}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _smudge_rss(bench, repo: str, what: str, size: int, seed: int, pointer: str | None = None) -> dict:
    return json.loads(_helper(bench, ["smudge", repo, what, str(size), str(seed)] + ([pointer] if pointer else [])))


def _memory(bench, h, cfg, p) -> dict:
    size = p["big_mib"] * MiB
    repo = bench.repo("panini", "reads-big")
    source = os.path.join(repo, "big.bin")
    with open(source, "wb") as f:
        for block in big_blob(cfg.seed, size):
            f.write(block)
    bench.run("panini", ["git", "add", "big.bin"], repo)
    bench.run("panini", ["git", "commit", "-q", "-m", "big"], repo)
    pointer = bench.run("panini", ["git", "cat-file", "blob", "HEAD:big.bin"], repo)
    out = {"bytes": size, "pointer_raw": _smudge_rss(bench, repo, "pointer", size, cfg.seed, pointer)}
    out["work"] = bench.timed("panini", ["git", "panini", "work", "--no-remote", "-j", "1", "--effort", "0"], repo)
    bench.run("panini", ["git", "reflog", "expire", "--expire=now", "--all"], repo)
    # Untimed: random bytes never delta, and a delta search over 2 GiB of blobs takes minutes.
    bench.run("panini", ["git", "-c", "pack.window=0", "gc", "-q", "--prune=now"], repo)
    out["pointer_packed"] = _smudge_rss(bench, repo, "pointer", size, cfg.seed, pointer)
    out["blob"] = _smudge_rss(bench, repo, "blob", size, cfg.seed + 1)
    shutil.rmtree(repo)
    return out


def run(bench, cfg, h) -> tuple[dict, list]:
    p = params(cfg)
    raw = {"params": p, "types": _per_type(bench, h, cfg, p), "memory": _memory(bench, h, cfg, p)}
    return raw, _rows(h, p, raw)


def _rows(h, p, raw: dict) -> list:
    rows = []
    startup = raw["types"]["startup_cpu_seconds"]
    for kind in TYPES:
        t = raw["types"][kind]
        chain = max(t["chains"], key=t["chains"].get) if t["chains"] else "-"
        for step, label in (("verify", "git panini verify --all"), ("checkout", "git checkout (smudge)")):
            cpu = max(t[step]["cpu_seconds"] - startup[step], 1e-3)
            note = (f"effort {p['effort']}, least CPU of {len(t.get('runs', [0]))} run(s) less start-up "
                    f"({startup[step]:.2f} s); wall {t['bytes'] / 1e6 / t[step]['seconds']:.1f} MB/s")
            rows.append(h.row(f"packed {label}, {kind} ({t['bytes'] / MiB:.1f} MiB, {chain})", "MB/s per core",
                              {"panini": round(t["bytes"] / 1e6 / cpu, 1)}, better="higher", anchors=(), note=note))
        d = t["decoders"]
        rows.append(h.row(f"the decoders alone, {kind} (every pack once, in process)", "MB/s per core",
                          {"panini": round(d["bytes"] / 1e6 / max(d["cpu_seconds"], 1e-3), 1)}, better="higher",
                          anchors=()))
    m = raw["memory"]
    label = f"{m['bytes'] / MiB:.0f} MiB"
    for key, what in (("pointer_raw", "pointer, raw chunks"), ("pointer_packed", "pointer, packed chunks"),
                      ("blob", "non-pointer blob")):
        rows.append(h.row(f"smudge of a {label} file ({what}): filter peak RSS", "MiB",
                          {"panini": round(m[key]["peak_rss_kib"] / 1024, 1)}, better="lower", anchors=()))
    rows.append(h.row(f"git panini work --effort 0 on a {label} file: peak RSS", "MiB",
                      {"panini": round(m["work"]["peak_rss_kib"] / 1024, 1)}, better="lower", anchors=()))
    for kind in TYPES:
        rows.append(h.row(f"git panini work --effort {p['effort']} on {kind}: peak RSS", "MiB",
                          {"panini": round(raw["types"][kind]["work"]["peak_rss_kib"] / 1024, 1)},
                          better="lower", anchors=()))
    return rows


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


# --- the smudge driver: `python -m bench.reads smudge REPO pointer|blob SIZE SEED [POINTER_TEXT]` ----------

def _pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


class _Filter:
    """Git's side of the long-running filter protocol, enough for one smudge."""

    def __init__(self, repo: str):
        self.proc = subprocess.Popen(["git", "panini", "filter-process"], cwd=repo,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.write_list([b"git-filter-client", b"version=2"])
        self.write_list([b"capability=clean", b"capability=smudge"])
        self.read_list()
        self.read_list()

    def write_list(self, lines: list[bytes]):
        self.proc.stdin.write(b"".join(_pkt(line + b"\n") for line in lines) + b"0000")
        self.proc.stdin.flush()

    def read_packet(self) -> bytes | None:
        length = int(self.proc.stdout.read(4), 16)
        return None if length == 0 else self.proc.stdout.read(length - 4)

    def read_list(self) -> list[bytes]:
        out = []
        while (pkt := self.read_packet()) is not None:
            out.append(pkt.rstrip(b"\n"))
        return out

    def smudge(self, path: str, blocks) -> str:
        """Send the content as git does (all of it, then a flush), stream the answer: its sha256."""
        self.write_list([b"command=smudge", b"pathname=" + path.encode()])
        for block in blocks:
            view = memoryview(block)
            self.proc.stdin.write(b"".join(_pkt(view[i:i + PKT_DATA]) for i in range(0, len(view), PKT_DATA)))
        self.proc.stdin.write(b"0000")
        self.proc.stdin.flush()
        status = self.read_list()
        if status != [b"status=success"]:
            raise RuntimeError(f"smudge answered {status}")
        digest = hashlib.sha256()
        while (pkt := self.read_packet()) is not None:
            digest.update(pkt)
        if self.read_list() not in ([], [b"status=success"]):
            raise RuntimeError("smudge failed after its content")
        return digest.hexdigest()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def _drive(repo: str, what: str, size: int, seed: int, pointer: str | None) -> dict:
    expected = hashlib.sha256()
    for block in big_blob(seed, size):
        expected.update(block)
    filt = _Filter(repo)
    content = [pointer.encode()] if what == "pointer" else big_blob(seed, size)
    got = filt.smudge("big.bin", content)
    filt.close()
    if got != expected.hexdigest():
        raise RuntimeError("smudge wrote different bytes")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"peak_rss_kib": usage.ru_maxrss, "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3)}


def _decode_all(repo_path: str) -> dict:
    """CPU seconds (this process and its children: ppmd decodes in one) of decode_chain over every pack."""
    from git_panini import codecs
    from git_panini.format.recipe import parse_recipe
    from git_panini.git.repo import Repo
    from git_panini.store.shared import Store
    repo = Repo(repo_path)
    tree = Store(repo).tree_of(Store(repo).tip())
    packs = [line.split()[-1].rsplit("/", 1)[-1] for line in
             subprocess.run(["git", "ls-tree", "-r", tree, "packs"], cwd=repo_path, capture_output=True,
                            text=True, check=True).stdout.splitlines()]
    total = cpu = 0.0
    for pack in packs:
        recipe = parse_recipe(repo.read_kind(pack, "blob"), repo.hex_len)
        encoded = repo.read_kind(recipe["data"], "blob")
        deps = {d: repo.read_kind(d, "blob") for d in recipe.get("deps", [])}
        before = _cpu()
        total += len(codecs.decode_chain(encoded, recipe["steps"], deps, recipe["size"]))
        cpu += _cpu() - before
    return {"packs": len(packs), "bytes": int(total), "cpu_seconds": round(cpu, 3)}


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    if sys.argv[1:2] == ["decode"] and len(sys.argv) == 3:
        print(json.dumps(_decode_all(sys.argv[2])))
    elif sys.argv[1:2] == ["smudge"] and len(sys.argv) in (6, 7):
        print(json.dumps(_drive(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                                sys.argv[6] if len(sys.argv) == 7 else None)))
    else:
        sys.exit("usage: python -m bench.reads smudge REPO pointer|blob SIZE SEED [POINTER_TEXT] | decode REPO")
