"""The pointer format git-panini/1: one canonical encoding, strict parsing, unknown keys kept."""

import random

import pytest

from git_panini.format.pointer import MAX_POINTER_SIZE, Pointer, PointerError, looks_like_pointer, parse

M1 = "4f44632cf5afe0baa3013a19a32d3b93d8511b70"
M256 = "7e955a28b8bd39267317634c35c89b7d5e6fd65dc86cff413348e513f0bd20f8"
SHA = "17526a1e3b511a4d187e548570cdd5f1a44c31e9d148ffbb706eb12a3e1a1acf"

CANONICAL = (f"version git-panini/1\nmanifest {M1}\noid sha256:{SHA}\nsize 5000000\n").encode()


def test_encode_is_the_documented_canonical_text():
    assert Pointer(M1, SHA, 5000000).encode() == CANONICAL


@pytest.mark.parametrize("manifest", [M1, M256])
@pytest.mark.parametrize("size", [0, 1, 5000000, 2 << 40])
def test_parse_encode_round_trip(manifest, size):
    p = Pointer(manifest, SHA, size)
    data = p.encode()
    assert looks_like_pointer(data)
    assert parse(data) == p
    assert parse(data).encode() == data


def test_unknown_keys_are_kept_and_sorted():
    p = Pointer(M1, SHA, 10, {"zeta": "last one", "alpha": "first", "n.x-1": "v"})
    data = p.encode()
    lines = data.decode().splitlines()
    assert lines[0] == "version git-panini/1"
    keys = [l.split(" ", 1)[0] for l in lines[1:]]
    assert keys == ["alpha", "manifest", "n.x-1", "oid", "size", "zeta"]
    back = parse(data)
    assert back.extra == {"zeta": "last one", "alpha": "first", "n.x-1": "v"}
    assert back.encode() == data
    # a pointer written by a newer version, with a key this one does not know, parses and re-encodes
    newer = CANONICAL.replace(b"size 5000000\n", b"size 5000000\nworker-hint gpu\n")
    assert parse(newer).extra == {"worker-hint": "gpu"}
    assert parse(newer).encode() == newer


def test_same_content_same_blob_whatever_the_extra_order():
    a = Pointer(M1, SHA, 3, {"b": "2", "a": "1"}).encode()
    b = Pointer(M1, SHA, 3, {"a": "1", "b": "2"}).encode()
    assert a == b


def test_size_limit_1024_bytes():
    base = len(Pointer(M1, SHA, 1).encode())
    pad_key = "x-pad"
    # one extra line "x-pad <value>\n" costs len(pad_key) + 2 + len(value) bytes
    fits = Pointer(M1, SHA, 1, {pad_key: "v" * (MAX_POINTER_SIZE - 1 - base - len(pad_key) - 2)}).encode()
    assert len(fits) == MAX_POINTER_SIZE - 1
    assert parse(fits).size == 1
    too_big = Pointer(M1, SHA, 1, {pad_key: "v" * (MAX_POINTER_SIZE - base - len(pad_key) - 2)}).encode()
    assert len(too_big) == MAX_POINTER_SIZE
    assert not looks_like_pointer(too_big)
    with pytest.raises(PointerError, match="limit"):
        parse(too_big)
    with pytest.raises(PointerError):
        parse(too_big + b"y" * 5000)


@pytest.mark.parametrize("bad", [
    CANONICAL.replace(b"\n", b"\r\n"),                                   # CRLF
    CANONICAL.replace(b"size 5000000", b"size 05000000"),                # leading zero
    CANONICAL.replace(b"size 5000000", b"size +5000000"),
    CANONICAL.replace(b"size 5000000", b"size -1"),
    CANONICAL.replace(b"size 5000000", b"size 5e6"),
    CANONICAL.replace(M1.encode(), M1.upper().encode()),                 # uppercase hex
    CANONICAL.replace(SHA.encode(), SHA.upper().encode()),
    CANONICAL.replace(b"oid sha256:", b"oid sha1:"),
    CANONICAL.replace(M1.encode(), M1[:-1].encode()),                    # short manifest id
    CANONICAL.replace(SHA.encode(), SHA[:-1].encode()),                  # short sha256
    CANONICAL.replace(b"manifest ", b"manifest  "),                      # double space
    CANONICAL.replace(b"size 5000000\n", b"size 5000000 \n"),            # trailing space
    CANONICAL + b"\n",                                                   # trailing blank line
    CANONICAL.replace(b"version git-panini/1\n", b""),                   # no version line
    CANONICAL.replace(b"git-panini/1", b"git-panini/2"),                 # unknown version
    b"\n".join([CANONICAL.split(b"\n")[0], *reversed(CANONICAL.split(b"\n")[1:4]), b""]),  # unsorted keys
    CANONICAL.replace(b"size 5000000\n", b"size 5000000\nsize 5000000\n"),  # duplicate key
    CANONICAL.replace(b"size 5000000\n", b""),                           # missing size
    CANONICAL.replace(b"manifest " + M1.encode() + b"\n", b""),          # missing manifest
    CANONICAL.replace(b"size 5000000\n", b"size 5000000\nZeta 1\n"),     # key not lowercase
    CANONICAL.replace(b"size 5000000\n", b"size 5000000\nzeta\n"),       # key without value
    b"\xef\xbb\xbf" + CANONICAL,                                         # BOM
    CANONICAL.replace(b"size 5000000\n", b"size 5000000\nz \xff\n"),     # not UTF-8
], ids=lambda b: repr(b[:12]))
def test_non_canonical_is_rejected(bad):
    with pytest.raises(PointerError):
        parse(bad)


@pytest.mark.parametrize("manifest", [M1, M256])
def test_every_truncation_is_rejected(manifest):
    # (an unknown key that sorts last could be cut off as a whole line, leaving a valid, smaller
    # pointer; "aa" sorts first, so every proper prefix lacks a required key or its newline)
    data = Pointer(manifest, SHA, 123456, {"aa": "extra"}).encode()
    for cut in range(len(data)):
        with pytest.raises(PointerError):
            parse(data[:cut])


def test_looks_like_pointer_only_for_our_header():
    assert looks_like_pointer(CANONICAL)
    assert looks_like_pointer(CANONICAL[:30])          # truncated still looks like one (so smudge warns)
    assert not looks_like_pointer(b"")
    assert not looks_like_pointer(b"version https://git-lfs.github.com/spec/v1\n")
    assert not looks_like_pointer(b"\x89PNG\r\n\x1a\n")


def test_a_crlf_mangled_pointer_still_looks_like_one_but_does_not_parse():
    mangled = CANONICAL.replace(b"\n", b"\r\n")
    assert looks_like_pointer(mangled)
    with pytest.raises(PointerError):
        parse(mangled)


def test_the_plain_pointer_fast_path_agrees_with_the_full_parse():
    """Pointers without extra keys are matched whole; the result is what the full parse gives, and a
    near-miss (not canonical) still goes through the full parse and its reasons."""
    rng = random.Random(3)
    for _ in range(200):
        p = Pointer("".join(rng.choice("0123456789abcdef") for _ in range(rng.choice((40, 64)))),
                    "".join(rng.choice("0123456789abcdef") for _ in range(64)), rng.choice((0, 1, rng.randrange(1 << 40))))
        data = p.encode()
        assert parse(data) == p
    good = Pointer("a" * 40, "b" * 64, 5).encode()
    for bad in (good.replace(b"size 5", b"size 05"), good.replace(b"a" * 40, b"A" * 40), good + b"\n",
                good.replace(b"oid sha256:", b"oid sha1:"), good.replace(b"\nsize", b"\nsize 5\nsize")):
        with pytest.raises(PointerError):
            parse(bad)
