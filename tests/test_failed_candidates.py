"""A candidate chain whose round trip fails never means "store raw" while another chain is left (issue 19):
`git panini work` encodes the next-ranked chain, stores raw only when every chain failed, and never chooses a
codec configuration on the registry's deny list; every file then reads back bit-identical from a fresh clone
over file:// after the raw chunks are gone (reflog expired, gc --prune=now)."""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import clone, git, ls_tree, make_bare, make_repo, run, sha256_file
from git_panini import codecs
from git_panini.work import planner

ROOT = Path(__file__).resolve().parents[1]

# `git panini work` with test-only faults: each codec named in the first argument writes a stream with one byte
# flipped in the middle (its length, so the ranking, unchanged; the round trip then fails), and the second
# argument ("name:key=value", or "") is added to the codec registry's deny list.
FAULTY_WORK = """
import sys
from git_panini import codecs
broken, deny = set(sys.argv.pop(1).split(",")) - {""}, sys.argv.pop(1)
for codec in codecs.all_codecs():
    if codec.name in broken:
        def corrupt(data, params, deps, encode=codec._encode):
            encoded, recorded = encode(data, params, deps)
            middle = len(encoded) // 2
            return encoded[:middle] + bytes([encoded[middle] ^ 0xFF]) + encoded[middle + 1:], recorded
        codec._encode = corrupt
if deny:
    name, _, setting = deny.partition(":")
    key, _, value = setting.partition("=")
    codecs.DENIED += ((codecs.get(name).id, {key: int(value)}, "denied by the test"),)
sys.argv[0] = "git-panini"
from git_panini.entry import main
main()
"""
RAW = 3 * 600_000


def _work(tmp_path, broken: str, deny: str = "") -> tuple[Path, list[dict]]:
    """Three source files committed, pushed to a bare remote, packed by the faulty worker (archive profile, effort
    2: zstd with the batch's trained dictionary, PPMd and xz are the candidates), gc'd on both sides; read back
    by a fresh clone. Returns the repository and its recipes."""
    if not codecs.get("ppmd").available():
        pytest.skip("codec ppmd is not available here")
    path = make_repo(tmp_path, track=("*.txt",))
    sources = b"".join(p.read_bytes() for p in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")))
    files = [path / f"source{n}.txt" for n in range(3)]
    for n, f in enumerate(files):   # Python sources, which PPMd compresses best
        f.write_bytes(sources[n * RAW // 3:(n + 1) * RAW // 3])
    digests = {f.name: sha256_file(f) for f in files}
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "notes")
    remote, url = make_bare(tmp_path)
    git(path, "remote", "add", "origin", url)
    git(path, "push", "-q", "origin", "main")
    git(path, "config", "panini.profile", "archive")   # the files are hot: PPMd is a candidate only here
    run([sys.executable, "-c", FAULTY_WORK, broken, deny, "work", "--remote", "origin", "--effort", "2"],
        cwd=path, env={"PYTHONPATH": str(ROOT)})
    for where in (path, remote):
        git(where, "reflog", "expire", "--expire=now", "--all")
        git(where, "gc", "-q", "--prune=now")
    assert json.loads(run(["git", "panini", "fsck", "--json"], cwd=path).stdout)["counts"]["raw_chunks"] == 0

    run(["git", "panini", "install", "--global"], cwd=tmp_path)   # the filter a fresh clone runs
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    assert {name: sha256_file(fresh / name) for name in digests} == digests
    out = run(["git", "panini", "verify"], cwd=fresh).stdout
    assert f"{len(files)} of {len(files)} file(s) verified bit-perfect" in out
    recipes = [json.loads(git(path, "cat-file", "blob", oid).stdout)
               for _, oid, _ in ls_tree(path, "refs/panini/store", "packs").values()]
    assert recipes and sum(r["size"] for r in recipes) == RAW
    return path, recipes


def _chain(recipe: dict) -> str:
    return ">".join(step["codec"] for step in recipe["steps"])


def _tried(recipe: dict, chain: str) -> dict:
    [entry] = [t for t in recipe["tried"] if t["chain"] == chain]
    return entry


def test_chains_that_fail_their_round_trip_make_the_worker_encode_the_next(tmp_path):
    _, recipes = _work(tmp_path, broken="zstd,ppmd")
    for recipe in recipes:
        assert _chain(recipe) == "xz", recipe["tried"]
        zstd, ppmd, xz = (_tried(recipe, name) for name in ("zstd", "ppmd", "xz"))
        # zstd (with the batch's dictionary) ranked first, PPMd second, both failed their round trip; xz, too
        # far behind to be encoded whole beside the leader, was encoded because they failed.
        assert zstd["estimate"] < ppmd["estimate"] < xz["estimate"], recipe["tried"]
        assert all(t["error"].startswith("decode: ") and t["size"] for t in (zstd, ppmd))
        assert xz["estimate"] > zstd["estimate"] * (1 + planner.CLOSE) and xz["error"] is None
    assert sum(r["encoded_size"] for r in recipes) < 0.5 * RAW


def test_a_segment_every_chain_fails_is_stored_as_it_is(tmp_path):
    broken = ",".join(c.name for c in codecs.all_codecs() if c.name != "store")
    _, recipes = _work(tmp_path, broken=broken)
    for recipe in recipes:
        assert _chain(recipe) == "store"
        assert {t["chain"] for t in recipe["tried"]} >= {"ppmd", "xz"}
        assert all(t["error"] for t in recipe["tried"]), recipe["tried"]
    assert sum(r["encoded_size"] for r in recipes) == RAW


def test_a_denied_codec_configuration_is_never_chosen(tmp_path):
    _, recipes = _work(tmp_path, broken="", deny="zstd:level=19")   # what ranks first here (see above)
    for recipe in recipes:
        assert _chain(recipe) == "ppmd" and "zstd" not in {t["chain"] for t in recipe["tried"]}
    assert sum(r["encoded_size"] for r in recipes) < 0.5 * RAW


def test_a_denied_configuration_still_decodes_but_no_longer_encodes(monkeypatch):
    data = b"".join(b"line %d of a text the deny list keeps from PPMd order 8\n" % i for i in range(8000))
    encoded, steps = codecs.encode_chain(data, [("ppmd", {"order": 8, "mem": 16 << 20})], {})
    monkeypatch.setattr(codecs, "DENIED", ((5, {"order": 8}, "wrote an undecodable stream in a test"),))
    assert codecs.decode_chain(encoded, steps, {}, len(data)) == data
    with pytest.raises(codecs.CodecError, match="may not encode: wrote an undecodable stream in a test"):
        codecs.encode_chain(data, [("ppmd", {"order": 8, "mem": 16 << 20})], {})
    assert codecs.encode_chain(data, [("ppmd", {"order": 6})], {})[1][0]["params"]["order"] == 6
    choice = planner.choose(data, None, 2)
    assert choice.codec_names == "xz" and "ppmd" not in {t["chain"] for t in choice.tried}
    # A parameter left to its default is denied too: PPMd's default order is 6.
    monkeypatch.setattr(codecs, "DENIED", ((5, {"order": 6}, "a test"),))
    with pytest.raises(codecs.CodecError, match="may not encode"):
        codecs.encode_chain(data, [("ppmd", {})], {})
