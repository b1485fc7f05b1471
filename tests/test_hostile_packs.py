"""Hostile packs and recipes, crafted straight into a repository's store, where the pack is the only copy
of a chunk (its raw blob never existed): each gives a clear one-line error at smudge (the file is left as its
pointer text; the checkout goes on) and at `git panini verify` (exit 1, naming the pack or the chunk), in bounded time
and memory. A decompression bomb is refused before anything allocates for it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path


from conftest import bomb, git, make_repo
from git_panini import codecs
from git_panini.format import manifest as manifest_mod
from git_panini.format.chunking import ChunkParams
from git_panini.git.objects import object_id
from git_panini.format.pointer import Pointer
from git_panini.git.repo import Repo
from git_panini.store.shared import Store, config_blob, manifest_path, pack_path

RSS_LIMIT_KIB = 500 << 10
TIMEOUT = 120


def _chunk(seed: int, size: int = 150_000) -> bytes:
    """Compressible, distinct per case (so no two cases share a chunk id)."""
    words = [f"w{seed}x{i}" for i in range(300)]
    out, i = bytearray(), seed
    while len(out) < size:
        i = (i * 1103515245 + 12345) & 0x7FFFFFFF
        out += words[i % len(words)].encode() + (b"\n" if i % 11 == 0 else b" ")
    return bytes(out[:size])


def _plant(path: Path, name: str, recipe, data: bytes, chunks: list[tuple[str, int]], file_sha256: str,
           file_size: int) -> str:
    """Write a pack (data + recipe) and a manifest into the store, and commit a pointer at `name` by hand:
    no clean filter runs, so no raw chunk blob is ever written. Returns the pack id."""
    repo = Repo(str(path))
    try:
        data_oid = repo.write_object("blob", data)
        recipe_bytes = recipe if isinstance(recipe, bytes) else json.dumps(dict(recipe, data=data_oid),
                                                                           sort_keys=True).encode()
        recipe_oid = repo.write_object("blob", recipe_bytes)
        manifest = repo.write_object("blob", manifest_mod.encode(chunks))

        def apply(editor):
            if editor.get("config") is None:
                editor.set("config", repo.write_object("blob", config_blob(ChunkParams())))
            editor.set(pack_path(recipe_oid), recipe_oid)
            editor.set(manifest_path(manifest), manifest)

        Store(repo).edit(apply, f"test: plant {name}")
    finally:
        repo.close()
    pointer = Pointer(manifest, file_sha256, file_size).encode()
    oid = git(path, "hash-object", "-w", "--stdin", input=pointer).stdout.strip()
    git(path, "update-index", "--add", "--cacheinfo", f"100644,{oid},{name}")
    return recipe_oid


def _recipe(raw: bytes, chunk: str, steps: list[dict], data: bytes, **changes) -> dict:
    recipe = {"format": "git-panini-recipe/1", "size": len(raw), "steps": steps, "deps": [],
              "encoded_size": len(data), "chunks": [[chunk, 0, len(raw)]], "tried": []}
    recipe.update(changes)
    return recipe


def _case(path: Path, name: str, seed: int, mutate) -> tuple[str, str]:
    """One file of one chunk, zstd-packed, then mutated: mutate(raw, chunk, encoded, steps) -> (recipe, data).
    Returns (pack id, chunk id)."""
    raw = _chunk(seed)
    chunk = object_id("blob", raw, "sha1")
    encoded, steps = codecs.encode_chain(raw, [("zstd", {"level": 3})], {})
    recipe, data = mutate(raw, chunk, encoded, steps)
    pack = _plant(path, name, recipe, data, [(chunk, len(raw))], hashlib.sha256(raw).hexdigest(), len(raw))
    return pack, chunk


CASES = {
    # name: (mutate, what the error must say besides naming the pack or chunk)
    "unknown-codec.bin": (lambda raw, c, enc, steps: (_recipe(raw, c, [dict(steps[0], id=99, codec="zstd-9000")], enc),
                                                      enc), "unknown codec"),
    "size-bigger.bin": (lambda raw, c, enc, steps: (_recipe(raw, c, [dict(steps[0], size=len(raw) + 1000)], enc,
                                                            size=len(raw) + 1000), enc), "recipe says"),
    "size-smaller.bin": (lambda raw, c, enc, steps: (_recipe(raw, c, [dict(steps[0], size=len(raw) - 1000)], enc,
                                                             size=len(raw) - 1000,
                                                             chunks=[[c, 0, len(raw) - 1000]]), enc), "exceeds"),
    "truncated.bin": (lambda raw, c, enc, steps: (_recipe(raw, c, steps, enc[: len(enc) // 2]), enc[: len(enc) // 2]),
                      "truncated"),
    "missing-dict.bin": (lambda raw, c, enc, steps: (_recipe(raw, c, [dict(steps[0], params={"level": 3, "dict": "d" * 40})],
                                                             enc, deps=["d" * 40]), enc), "d" * 40),
    "malformed-json.bin": (lambda raw, c, enc, steps: (json.dumps(_recipe(raw, c, steps, enc)).encode()[:-20], enc),
                           "not in this repository"),
    "beyond-data.bin": (lambda raw, c, enc, steps: (_recipe(raw, c, steps, enc, chunks=[[c, len(raw) - 500, 1000]]), enc),
                        "not in this repository"),
    "wrong-chunk.bin": (lambda raw, c, enc, steps: (_recipe(raw, c, steps, enc, chunks=[[c, 1, len(raw) - 1]]), enc),
                        "corrupt"),
}


def test_hostile_recipes_fail_clearly_at_smudge_verify_and_fsck(tmp_path):
    path = make_repo(tmp_path, track=("*.bin",))
    git(path, "add", ".gitattributes")
    # A control planted the same way, valid: proves the harness builds packs readers accept.
    control = _chunk(0)
    control_pack, control_chunk = _case(path, "control.bin", 0, lambda raw, c, enc, steps: (_recipe(raw, c, steps, enc), enc))
    planted = {name: _case(path, name, seed, mutate) for seed, (name, (mutate, _)) in enumerate(CASES.items(), 1)}
    git(path, "commit", "-q", "-m", "hostile packs")
    for chunk in [control_chunk] + [c for _, c in planted.values()]:
        assert git(path, "cat-file", "-e", chunk, check=False).returncode != 0, "a raw chunk blob exists"

    # smudge: the control checks out; each hostile file is left as its pointer text, in one line naming it and
    # its pack or chunk, and never fails the checkout (filter.panini.required is set)
    git(path, "checkout", "--", "control.bin")
    assert (path / "control.bin").read_bytes() == control
    for name, (pack, chunk) in planted.items():
        proc = subprocess.run(["git", "checkout", "--", name], cwd=path, capture_output=True, text=True,
                              timeout=TIMEOUT)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        lines = [l for l in proc.stderr.splitlines() if l.startswith("git-panini:") and name in l]
        assert len(lines) == 1 and (pack in lines[0] or chunk in lines[0]), f"{name}: {proc.stderr}"
        pointer = git(path, "cat-file", "blob", f":{name}", binary=True).stdout
        assert (path / name).read_bytes() == pointer, f"{name}: not its pointer text"

    # verify: exit 1, one FAIL line per hostile file naming its pack or chunk, and saying why
    proc = subprocess.run(["git", "panini", "verify"], cwd=path, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    fails = {line.split(":", 1)[0][len("FAIL "):]: line for line in proc.stdout.splitlines() if line.startswith("FAIL ")}
    assert set(fails) == set(planted), proc.stdout
    for name, (pack, chunk) in planted.items():
        line = fails[name]
        assert pack in line or chunk in line, line
        assert CASES[name][1] in line, line
        print(f"hostile {name:20s} verify: {line[len('FAIL ' + name + ': '):][:150]}")
    assert f"1 of {len(planted) + 1} file(s) verified bit-perfect, {len(planted)} FAILED" in proc.stdout

    # fsck: the packs whose recipe cannot even be parsed are named
    proc = subprocess.run(["git", "panini", "fsck"], cwd=path, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    for name in ("malformed-json.bin", "beyond-data.bin"):
        assert f"pack {planted[name][0]}" in proc.stdout, proc.stdout
    assert control_pack not in proc.stdout


# --- decompression bombs ---------------------------------------------------------------------------------

GiB = 1 << 30
ZERO_CHUNK = 16 << 20       # the largest chunk a manifest may list


def _measured(cmd: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run cmd under a fresh Python parent; return the result and the peak RSS (KiB) of the largest
    process in its tree (RUSAGE_CHILDREN of that parent covers every waited-for descendant)."""
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
             "sys.stderr.buffer.write(p.stderr); sys.stdout.buffer.write(p.stdout)\n"
             "sys.stderr.write('\\nRSS %d %d\\n' % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode))\n")
    proc = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT)
    rss_line = [l for l in proc.stderr.splitlines() if l.startswith("RSS ")][-1]
    _, rss, code = rss_line.split()
    proc.returncode = int(code)
    return proc, int(rss)


def test_decompression_bombs_are_refused_in_bounded_memory(tmp_path, report):
    path = make_repo(tmp_path, track=("*.bin",))
    git(path, "add", ".gitattributes")
    zero = bytes(ZERO_CHUNK)
    chunk = object_id("blob", zero, "sha1")
    digest = hashlib.sha256()
    for _ in range(GiB // ZERO_CHUNK):
        digest.update(zero)
    del zero
    zstd_bomb = bomb("zeros-1GiB-level3.zst")   # made by tests/data/bombs/make.py
    bombs = {
        # name: (data, steps, decoded size the recipe claims)
        "zstd.bin": (zstd_bomb, [{"codec": "zstd", "id": 2, "params": {"level": 3}, "size": GiB}], GiB),
        "xz.bin": (bomb("zeros-1GiB-preset0.xz"),
                   [{"codec": "xz", "id": 3, "params": {"preset": 0, "extreme": False}, "size": GiB}], GiB),
        # a small final size, but an intermediate step that claims (and would inflate to) 1 GiB
        "two-step.bin": (zstd_bomb, [{"codec": "deflate-expand", "id": 6, "params": {"streams": 0, "zlib": "x"},
                                      "size": ZERO_CHUNK},
                                     {"codec": "zstd", "id": 2, "params": {"level": 3}, "size": GiB}], ZERO_CHUNK),
    }
    packs = {}
    for name, (data, steps, size) in bombs.items():
        recipe = {"format": "git-panini-recipe/1", "size": size, "steps": steps, "deps": [],
                  "encoded_size": len(data), "chunks": [[chunk, 0, ZERO_CHUNK]], "tried": [name]}
        # The file: 1 GiB of zeros, 64 times the same 16 MiB chunk, which only the bomb pack yields.
        packs[name] = _plant(path, name, recipe, data, [(chunk, ZERO_CHUNK)] * (GiB // ZERO_CHUNK),
                             digest.hexdigest(), GiB)
    git(path, "commit", "-q", "-m", "bombs")

    verify, verify_rss = _measured(["git", "panini", "verify"], path)
    assert "Traceback" not in verify.stderr, verify.stderr
    # A correct result would be acceptable too (these packs do decode to zeros), within the memory bound.
    if verify.returncode != 0:
        assert verify.returncode == 1
        for name in bombs:
            (line,) = [l for l in verify.stdout.splitlines() if l.startswith(f"FAIL {name}: ")]
            assert chunk in line or any(p in line for p in packs.values()), line
    checkout_rss, codes = 0, []
    for name in bombs:   # git stops at the first failing filter: one checkout per file
        checkout, rss = _measured(["git", "checkout", "--", name], path)
        checkout_rss, codes = max(checkout_rss, rss), codes + [checkout.returncode]
        assert "Traceback" not in checkout.stderr
        # Never the checkout's failure: the file is its pointer text (refused, said in a line naming it), or
        # right (these packs do decode to zeros), never anything else.
        assert checkout.returncode == 0, checkout.stderr
        pointer = git(path, "cat-file", "blob", f":{name}", binary=True).stdout
        if (path / name).stat().st_size == len(pointer):
            assert (path / name).read_bytes() == pointer
            assert any(l.startswith("git-panini:") and name in l for l in checkout.stderr.splitlines()), checkout.stderr
        else:
            assert (path / name).stat().st_size == GiB
    fsck = subprocess.run(["git", "panini", "fsck"], cwd=path, capture_output=True, text=True, timeout=TIMEOUT)
    report(f"bombs (zstd, xz, 2-step; 1 GiB claimed from {len(zstd_bomb)}-{len(bombs['xz.bin'][0])} bytes): "
           f"verify exit {verify.returncode}, peak RSS {verify_rss >> 10} MiB; checkout exits {codes}, "
           f"peak RSS {checkout_rss >> 10} MiB; fsck exit {fsck.returncode}")
    for line in verify.stdout.splitlines()[:3] + [l for l in fsck.stdout.splitlines() if "claims" in l][:3]:
        print("   ", line[:200])
    assert verify_rss < RSS_LIMIT_KIB and checkout_rss < RSS_LIMIT_KIB
    assert fsck.returncode == 1
    for pack in packs.values():
        assert f"pack {pack}" in fsck.stdout and "claims" in fsck.stdout
