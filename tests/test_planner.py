"""The planner: same input + same effort => same packs, whatever the machine's load or thread count;
candidates ranked on samples still pick a chain that decodes exactly; mostly_printable as the byte rule says."""

from __future__ import annotations

import io
import random
import zipfile
from concurrent.futures import ThreadPoolExecutor

from conftest import MiB, git, ls_tree, make_repo, run, write_random, write_text
from git_panini import codecs
from git_panini.work.planner import CLOSE, SAMPLE_BYTES, SAMPLES, candidates, choose, mostly_printable


def _is_text_by_loop(data: bytes) -> bool:
    """The rule, one byte at a time (what mostly_printable computed before it was vectorized)."""
    sample = data[:65536]
    if not sample or b"\0" in sample:
        return False
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13) or b >= 128)
    return printable / len(sample) > 0.95


def test_is_text_agrees_with_the_byte_rule():
    rng = random.Random(5)
    text = b"def f(x):\n\treturn x + 1  # \xc3\xa9\r\n" * 3000
    cases = [b"", b"\0", text, text[:100] + b"\0", bytes(range(1, 256)) * 300, rng.randbytes(70000)]
    for share in (0.0, 0.02, 0.04, 0.05, 0.06, 0.2):   # around the 95 % threshold
        noisy = bytearray(text[:65536])
        for i in rng.sample(range(len(noisy)), int(share * len(noisy))):
            noisy[i] = rng.choice([1, 2, 7, 27, 31, 127])
        cases.append(bytes(noisy))
    for data in cases:
        assert mostly_printable(data) == _is_text_by_loop(data)
    assert mostly_printable(text) and not mostly_printable(cases[-1])


def _text(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 9)).hex() for _ in range(3000)]
    out = io.StringIO()
    while out.tell() < size:
        out.write(" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) + "\n")
    return out.getvalue().encode()[:size]


def _zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def test_choice_is_the_same_serial_and_threaded_and_decodes_exactly():
    big_text = _text(SAMPLES * SAMPLE_BYTES * 3, seed=1)      # ranked on samples
    archive = _zip_of({f"m{i}.txt": _text(40000, seed=10 + i) for i in range(6)})
    inputs = [(big_text, None), (archive, "zip"), (random.Random(3).randbytes(300000), None)]
    with ThreadPoolExecutor(4) as pool:
        for effort in (1, 2):
            for data, fmt in inputs:
                serial = choose(data, fmt, effort)
                threaded = choose(data, fmt, effort, pool=pool)
                assert (serial.encoded, serial.steps, serial.tried) == (threaded.encoded, threaded.steps, threaded.tried)
                assert codecs.decode_chain(serial.encoded, serial.steps, {}, len(data)) == data
                assert all("seconds" not in t for t in serial.tried)   # nothing timed ends up in a recipe
    # Samples ranked the text chains, and the winner beats what effort 1 stores.
    text2 = choose(big_text, None, 2)
    assert any(t["estimate"] for t in text2.tried)
    assert len(text2.encoded) <= len(choose(big_text, None, 1).encoded)
    assert choose(archive, "zip", 2).codec_names.startswith("deflate-expand>")


def test_the_runner_up_alone_is_encoded_beside_the_leader_and_the_smaller_kept():
    # Samples of a random block repeated four times cannot see the repeats: four chains estimate within 0.1 %
    # of each other (about the raw size), and whole they store a quarter of it.
    data = random.Random(4).randbytes(120_000) * 4
    extra = [[("zstd", {"level": 19})], [("zstd", {"level": 18})], [("zstd", {"level": 17})]]
    choice = choose(data, None, 2, extra=extra)
    estimates = [t["estimate"] for t in choice.tried if t["estimate"]]
    assert len(estimates) == 4 and max(estimates) <= min(estimates) * (1 + CLOSE)
    encoded = [t["size"] for t in choice.tried if t["size"] is not None]
    assert len(encoded) == 2
    assert len(choice.encoded) == min(encoded) < len(data) / 3


def test_chains_that_never_win_run_only_at_effort_3():
    for fmt, text in ((None, True), (None, False), ("zip", False), ("png", False), ("elf", False), ("jpeg", False)):
        cheap = {">".join(c for c, _ in chain) for effort in (1, 2) for chain in candidates(fmt, text, effort)}
        assert "brotli" not in cheap and "deflate-expand>deflate-expand>xz" not in cheap
        assert not any(p.get("level", 0) >= 19 for effort in (1, 2) for chain in candidates(fmt, text, effort)
                       for c, p in chain if c == "zstd")
        every = {">".join(c for c, _ in chain) for chain in candidates(fmt, text, 3)}
        assert "brotli" in every and "zstd" in every


def _store_packs(path) -> set[str]:
    """The pack ids (recipe blob ids) the store lists; a recipe names its data blob by id, so equal ids
    mean equal recipes and equal encoded bytes."""
    return {name.split("/")[-1] for name in ls_tree(path, "refs/panini/store", "packs")}


def test_same_input_and_effort_pack_to_the_same_bytes_whatever_the_threads(tmp_path):
    paths = []
    for n, threads in enumerate(("1", "4")):
        path = make_repo(tmp_path, name=f"r{n}", track=("*.bin", "*.zip"))
        write_text(path / "text.bin", MiB, seed=7)
        write_random(path / "random.bin", 300 << 10, seed=8)
        (path / "small.bin").write_bytes(_text(30000, seed=9))
        (path / "docs.zip").write_bytes(_zip_of({f"d{i}.txt": _text(50000, seed=20 + i) for i in range(4)}))
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "input")
        # One run in one thread, the other in four (segments and candidates finish in another order).
        run(["git", "panini", "work", "--no-remote", "--effort", "2", "--threads", threads], cwd=path)
        paths.append(path)
    first, second = (_store_packs(p) for p in paths)
    assert first and first == second
    for path in paths:
        run(["git", "panini", "verify"], cwd=path)
