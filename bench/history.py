"""The `history` scenario (issue 18): a lineage of real binary formats edited commit by commit.

One history is generated from the seed (no network, nothing read but this Python's stdlib sources for
text): six tracked files in five real formats, each about 100-550 KB at HEAD in quick mode (200 commits,
about 77 MB of file versions) and 0.6-3.2 MB in `--full` (250 commits, about 510 MB):

- `art/photo.png`: an RGB image (a gradient with noise), edited by drawn rectangles and repainted regions;
- `art/sprites.png`: an RGBA sheet of 32 x 32 tiles, one tile repainted per edit;
- `data/catalog.sqlite`: a SQLite database (python sqlite3): an item table with rows updated and added,
  an event log that grows;
- `dist/bundle.zip`: a DEFLATE ZIP of Python modules and an icon, one module edited per edit;
- `docs/report.docx`: an office-like ZIP (WordprocessingML), paragraphs added and reworded;
- `fonts/glyphs.ttf`: an sfnt-like font (head, cmap, hmtx, loca, glyf, ... with checksums), glyphs
  redrawn (the glyf table shifts, loca changes throughout).

PNGs are zlib-compressed as encoders write them (level 6, 64 KiB IDAT chunks, filter type 0 on every
row, a tIME chunk that changes each save); the ZIPs rewrite every member each save (level 6, fixed
timestamps), as a zip tool does.

Every commit edits one to three of the files. The history is replayed commit by commit into plain git,
git-lfs and git-panini (tools in rotated order each commit), each pushing to its own bare `file://`
remote every few commits. Measured side by side: `git add` and `git commit` latency per commit (median,
p90); bytes on the wire of all the pushes (counting relays, bench/transfer.py's `Wire`; git-lfs's
objects by the remote's lfs/objects growth) and the remote's size; a fresh `git clone` (seconds,
bytes) and `git checkout` of five old commits spread over the history in it (seconds each; git-panini
fetches what an old commit needs then, git-lfs's smudge too: bytes counted). Then `git panini work`
in a clone of the git-panini remote packs the store and pushes the packs; plain git's remote gets
`git gc --aggressive --prune=now`; and clone and checkouts are measured again from new fresh clones.
Stored size: git-panini's remote after work (as left, and after `git gc --prune=now`, which drops the
raw chunks the packs replaced) against plain git's remote after `gc --aggressive`. Every checkout is
compared byte for byte with the generated content of that commit.

Read amplification hook: `git panini fsck --amplification --json` on the after-work clone, when the
build has it; otherwise the rows say "not available in this build" (null, never a guess).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import sqlite3
import statistics
import struct
import subprocess
import time
import zipfile
import zlib

from . import corpus
from . import transfer as transfer_mod

KiB = 1 << 10
MiB = 1 << 20
TOOLS = ("panini", "lfs", "git")
PATTERNS = ["*.png", "*.sqlite", "*.zip", "*.docx", "*.ttf"]
ZIP_TIME = (2026, 1, 1, 12, 0, 0)


# --- formats --------------------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, channels: int, pixels: bytes | bytearray, saved: int) -> bytes:
    """An 8-bit RGB (3) or RGBA (4) PNG; `saved` goes into the tIME chunk, as an editor stamps each save."""
    stride = width * channels
    raw = b"".join(b"\0" + pixels[y * stride:(y + 1) * stride] for y in range(height))
    idat = zlib.compress(raw, 6)
    stamp = struct.pack(">HBBBBB", 2026, 1 + saved // 1440 % 12, 1 + saved // 60 % 28, saved % 24, saved % 60, 0)
    parts = [b"\x89PNG\r\n\x1a\n",
             _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[channels], 0, 0, 0)),
             _png_chunk(b"tIME", stamp), _png_chunk(b"tEXt", b"Software\0bench.history")]
    parts += [_png_chunk(b"IDAT", idat[i:i + 64 * KiB]) for i in range(0, len(idat), 64 * KiB)]
    return b"".join(parts + [_png_chunk(b"IEND", b"")])


def zip_bytes(members: list[tuple[str, bytes, int]]) -> bytes:
    """A ZIP of (name, data, compress_type) in order, fixed timestamps: the same members give the same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, kind in members:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = kind
            z.writestr(info, data)
    return buf.getvalue()


class Photo:
    """An RGB picture: a diagonal gradient with noise; edits draw filled rectangles and repaint regions."""

    def __init__(self, rng: random.Random, width: int, height: int):
        self.rng, self.w, self.h = rng, width, height
        rows = []
        for y in range(height):
            noise = rng.randbytes(width * 3)
            rows.append(bytes((((x // 3) * 200 // width + y * 150 // height + (c * 40)) + (n & 15)) & 255
                              for x, (c, n) in enumerate(zip((0, 1, 2) * width, noise))))
        self.pixels = bytearray(b"".join(rows))

    def edit(self):
        rng = self.rng
        w, h = rng.randint(16, self.w // 4), rng.randint(16, self.h // 4)
        x, y = rng.randrange(self.w - w), rng.randrange(self.h - h)
        if rng.random() < 0.5:
            fill = [bytes(rng.randbytes(3)) * w] * h
        else:   # a repainted region: new noise around one grey level
            grey = rng.randrange(32, 192)
            table = bytes(grey + (b & 31) for b in range(256))
            fill = [rng.randbytes(w * 3).translate(table) for _ in range(h)]
        for row, data in enumerate(fill):
            at = ((y + row) * self.w + x) * 3
            self.pixels[at:at + w * 3] = data

    def save(self, saved: int) -> bytes:
        return png(self.w, self.h, 3, self.pixels, saved)


class Sprites:
    """An RGBA sheet of 32 x 32 tiles (a dithered background, a box, a stripe, transparent margins); edits repaint
    one tile."""

    TILE = 32

    def __init__(self, rng: random.Random, tiles_x: int, tiles_y: int):
        self.rng, self.tx, self.ty = rng, tiles_x, tiles_y
        self.w = tiles_x * self.TILE
        self.pixels = bytearray(self.w * tiles_y * self.TILE * 4)
        for t in range(tiles_x * tiles_y):
            self.paint(t)

    def paint(self, tile: int):
        rng, size = self.rng, self.TILE
        back, box, stripe = (rng.randbytes(3) + b"\xff" for _ in range(3))
        shades = [bytes((c + d) & 255 for c in back[:3]) + b"\xff" for d in (0, 6, 12, 18)]   # a dithered texture
        x0, y0 = rng.randrange(4, 14), rng.randrange(4, 14)
        x1, y1 = rng.randrange(x0 + 4, 28), rng.randrange(y0 + 4, 28)
        band = rng.randrange(2, 30)
        ox, oy = (tile % self.tx) * size, (tile // self.tx) * size
        for row in range(size):
            if row < 2 or row >= size - 2:
                line = b"\0\0\0\0" * size
            else:
                cells = [shades[b & 3] for b in rng.randbytes(size)]
                cells[:2] = cells[-2:] = [b"\0\0\0\0"] * 2
                if y0 <= row < y1:
                    cells[x0:x1] = [box] * (x1 - x0)
                cells[band] = stripe
                line = b"".join(cells)
            at = ((oy + row) * self.w + ox) * 4
            self.pixels[at:at + size * 4] = line

    def edit(self):
        self.paint(self.rng.randrange(self.tx * self.ty))

    def save(self, saved: int) -> bytes:
        return png(self.w, self.ty * self.TILE, 4, self.pixels, saved)


def _words(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice("etaoinshrdlucmfwypvbgk") for _ in range(rng.randint(2, 10))) for _ in range(count)]


class Catalog:
    """A SQLite database: items (indexed by sku) whose rows are updated (half of them among the newest) and added,
    and an event log that grows."""

    def __init__(self, rng: random.Random, path: str, items: int, step_rows: int):
        self.rng, self.path, self.step_rows = rng, path, step_rows
        self.words = _words(rng, 3000)
        self.db = sqlite3.connect(path)
        self.db.executescript("PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;"
                              "CREATE TABLE items(id INTEGER PRIMARY KEY, sku TEXT, name TEXT, price REAL, "
                              "qty INTEGER, updated INTEGER, note TEXT);"
                              "CREATE INDEX items_sku ON items(sku);"
                              "CREATE TABLE events(id INTEGER PRIMARY KEY, item INTEGER, at INTEGER, kind TEXT, "
                              "payload BLOB);")
        self.items = 0
        self._add_items(items, 0)
        self.db.commit()

    def _text(self, lo: int, hi: int) -> str:
        return " ".join(self.rng.choices(self.words, k=self.rng.randint(lo, hi)))

    def _add_items(self, count: int, at: int):
        rng = self.rng
        self.db.executemany("INSERT INTO items(sku, name, price, qty, updated, note) VALUES (?, ?, ?, ?, ?, ?)",
                            [(f"SKU-{rng.randrange(10 ** 8):08d}", self._text(2, 5), round(rng.uniform(1, 500), 2),
                              rng.randrange(1000), at, self._text(5, 40)) for _ in range(count)])
        self.items += count

    def edit(self, at: int):
        rng, n = self.rng, self.step_rows
        # Half the updates hit the newest tenth of the items, as recent stock moves most.
        ids = [rng.randint(1, self.items) if i % 2 else self.items - rng.randrange(self.items // 10) for i in range(n)]
        self.db.executemany("UPDATE items SET price = ?, qty = ?, updated = ? WHERE id = ?",
                            [(round(rng.uniform(1, 500), 2), rng.randrange(1000), at, i) for i in ids])
        self._add_items(n // 4, at)
        self.db.executemany("INSERT INTO events(item, at, kind, payload) VALUES (?, ?, ?, ?)",
                            [(rng.randint(1, self.items), at, rng.choice(("sale", "restock", "audit", "price")),
                              rng.randbytes(rng.randint(8, 64))) for _ in range(n)])
        self.db.commit()

    def save(self, saved: int) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()


class Bundle:
    """A DEFLATE ZIP of Python modules (runs of real stdlib lines) and a stored PNG icon; edits rewrite a few
    lines of one module."""

    def __init__(self, rng: random.Random, source: bytes, modules: int, module_bytes: int):
        self.rng, self.source = rng, source
        self.modules = {f"pkg/mod_{i:02d}.py": self._lines(module_bytes) for i in range(modules)}
        icon = Sprites(rng, 2, 2)
        self.icon = icon.save(0)

    def _lines(self, size: int) -> list[bytes]:
        start = self.source.find(b"\n", self.rng.randrange(len(self.source) - size - 1)) + 1
        return self.source[start:start + size].split(b"\n")

    def edit(self):
        lines = self.modules[self.rng.choice(sorted(self.modules))]
        at = self.rng.randrange(len(lines))
        lines[at:at + self.rng.randint(0, 20)] = self._lines(self.rng.randint(80, 2000))

    def save(self, saved: int) -> bytes:
        members = [(name, b"\n".join(lines), zipfile.ZIP_DEFLATED) for name, lines in sorted(self.modules.items())]
        members.append(("pkg/icon.png", self.icon, zipfile.ZIP_STORED))
        members.append(("MANIFEST.txt", f"build {saved}\n".encode(), zipfile.ZIP_DEFLATED))
        return zip_bytes(members)


DOCX_TYPES = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats'
              b'.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
              b'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension'
              b'="png" ContentType="image/png"/><Override PartName="/word/document.xml" ContentType="application/vnd.'
              b'openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
DOCX_RELS = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.'
             b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
             b'openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
             b'</Relationships>')


class Report:
    """An office-like ZIP (WordprocessingML parts): paragraphs added and reworded, the modified date stamped on
    each save, a figure (PNG) redrawn now and then."""

    def __init__(self, rng: random.Random, paragraphs: int, figure_tiles: int):
        self.rng = rng
        self.words = _words(rng, 4000)
        self.paragraphs = [self._paragraph() for _ in range(paragraphs)]
        self.figure = Sprites(rng, figure_tiles, figure_tiles)
        self.figure_png = self.figure.save(0)

    def _paragraph(self) -> bytes:
        words = " ".join(self.rng.choices(self.words, k=self.rng.randint(20, 120)))
        style = self.rng.choice((b"Normal", b"Normal", b"Normal", b"Heading2", b"ListParagraph"))
        return (b'<w:p><w:pPr><w:pStyle w:val="' + style + b'"/></w:pPr><w:r><w:rPr><w:lang w:val="en-GB"/>'
                b'</w:rPr><w:t xml:space="preserve">' + words.encode() + b"</w:t></w:r></w:p>")

    def edit(self, saved: int):
        rng = self.rng
        for _ in range(rng.randint(1, 4)):
            self.paragraphs.insert(rng.randrange(len(self.paragraphs) + 1), self._paragraph())
        for _ in range(rng.randint(0, 3)):
            self.paragraphs[rng.randrange(len(self.paragraphs))] = self._paragraph()
        if rng.random() < 0.2:
            self.figure.edit()
            self.figure_png = self.figure.save(saved)

    def save(self, saved: int) -> bytes:
        body = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="http://schemas.'
                b'openxmlformats.org/wordprocessingml/2006/main"><w:body>' + b"".join(self.paragraphs)
                + b"</w:body></w:document>")
        core = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties xmlns:cp="http://'
                f'schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dcterms="http://purl.org/dc/'
                f'terms/"><dcterms:modified>2026-01-01T00:00:{saved % 60:02d}Z</dcterms:modified><cp:revision>'
                f'{saved}</cp:revision></cp:coreProperties>').encode()
        return zip_bytes([("[Content_Types].xml", DOCX_TYPES, zipfile.ZIP_DEFLATED),
                          ("_rels/.rels", DOCX_RELS, zipfile.ZIP_DEFLATED),
                          ("docProps/core.xml", core, zipfile.ZIP_DEFLATED),
                          ("word/document.xml", body, zipfile.ZIP_DEFLATED),
                          ("word/media/image1.png", self.figure_png, zipfile.ZIP_STORED)])


GLYPH_FLAGS = (0x01, 0x01, 0x33, 0x37, 0x27, 0x21, 0x31, 0x07, 0x36, 0x23)
SMALL = bytes(b & 0x7f for b in range(256))   # coordinates are mostly small deltas


class Font:
    """An sfnt-like font: table directory with checksums, head (modified date, checksum adjustment), cmap, hmtx,
    loca (long offsets), glyf (TrueType-shaped glyphs), maxp, name. Edits redraw a few glyphs, or add some."""

    def __init__(self, rng: random.Random, glyphs: int):
        self.rng = rng
        self.glyphs = [self._glyph() for _ in range(glyphs)]
        self.advances = [rng.randrange(300, 1200) for _ in range(glyphs)]

    def _glyph(self) -> bytes:
        rng = self.rng
        contours = rng.randint(1, 6)
        points = rng.randint(8, 90)
        ends = sorted(rng.sample(range(1, points - 1), contours - 1)) + [points - 1]
        instructions = rng.randbytes(rng.choice((0, 0, 8, 24, 60)))
        body = struct.pack(">hhhhh", contours, -rng.randrange(100), -rng.randrange(300), rng.randrange(400, 1000),
                           rng.randrange(500, 900))
        body += struct.pack(f">{contours}H", *ends) + struct.pack(">H", len(instructions)) + instructions
        body += bytes(rng.choices(GLYPH_FLAGS, k=points)) + rng.randbytes(points * 2).translate(SMALL)
        return body + b"\0" * (-len(body) % 4)

    def edit(self):
        rng = self.rng
        for _ in range(rng.randint(1, 6)):
            self.glyphs[rng.randrange(len(self.glyphs))] = self._glyph()
        if rng.random() < 0.2:
            extra = rng.randint(1, 20)
            self.glyphs += [self._glyph() for _ in range(extra)]
            self.advances += [rng.randrange(300, 1200) for _ in range(extra)]

    def save(self, saved: int) -> bytes:
        count = len(self.glyphs)
        offsets = [0]
        for g in self.glyphs:
            offsets.append(offsets[-1] + len(g))
        head = struct.pack(">IIIIHHqqhhhhHHhhh", 0x00010000, 0x00010000, 0, 0x5F0F3CF5, 0, 2048,
                           3_700_000_000, 3_800_000_000 + 60 * saved, 0, -300, 1000, 900, 0, 8, 2, 1, 0)
        cmap_ranges = [(0x20 + i * 64, 0x20 + i * 64 + 63, 1 + i * 64) for i in range(count // 64)]
        cmap = struct.pack(">HHHHI", 0, 1, 3, 10, 12) + struct.pack(">HHIII", 12, 0, 16 + 12 * len(cmap_ranges), 0,
                                                                       len(cmap_ranges))
        cmap += b"".join(struct.pack(">III", *r) for r in cmap_ranges)
        name = b"".join(f"Bench Sans {field} {saved}".encode("utf-16-be") for field in ("Regular", "Version", "Id"))
        tables = {b"cmap": cmap, b"glyf": b"".join(self.glyphs), b"head": head,
                  b"hmtx": b"".join(struct.pack(">Hh", a, 0) for a in self.advances),
                  b"loca": struct.pack(f">{count + 1}I", *offsets),
                  b"maxp": struct.pack(">IH", 0x00005000, count), b"name": name}
        power = 1 << (len(tables).bit_length() - 1)
        directory = struct.pack(">IHHHH", 0x00010000, len(tables), 16 * power, power.bit_length() - 1,
                                16 * (len(tables) - power))
        at = 12 + 16 * len(tables)
        body = b""
        for tag, data in sorted(tables.items()):
            directory += tag + struct.pack(">III", _checksum(data), at + len(body), len(data))
            body += data + b"\0" * (-len(data) % 4)
        font = bytearray(directory + body)
        head_at = font.find(b"\x5F\x0F\x3C\xF5", len(directory)) - 8   # checkSumAdjustment precedes the magic
        font[head_at:head_at + 4] = struct.pack(">I", (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF)
        return bytes(font)


def _checksum(data: bytes) -> int:
    data += b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(data) // 4}I", data)) & 0xFFFFFFFF


class Lineage:
    """The generated history: `commit(n)` gives the files commit n writes (all of them for n = 0), path -> bytes;
    `scale` multiplies every file's size."""

    def __init__(self, seed: int, scale: float, workdir: str):
        rng = random.Random(seed)
        sub = lambda: random.Random(rng.randrange(1 << 62))
        s = scale
        self.rng = sub()
        self.files = {
            "art/photo.png": Photo(sub(), int(480 * s ** 0.5), int(360 * s ** 0.5)),
            "art/sprites.png": Sprites(sub(), int(20 * s ** 0.5), int(20 * s ** 0.5)),
            "data/catalog.sqlite": Catalog(sub(), f"{workdir}/catalog.sqlite", int(2500 * s), int(40 * s)),
            "dist/bundle.zip": Bundle(sub(), corpus.source_text(), 16, int(60 * KiB * s)),
            "docs/report.docx": Report(sub(), int(1200 * s), 6),
            "fonts/glyphs.ttf": Font(sub(), int(1600 * s)),
        }
        # How often each file changes: the database and the document most, the font least.
        self.weights = {"art/photo.png": 3, "art/sprites.png": 2, "data/catalog.sqlite": 5, "dist/bundle.zip": 3,
                        "docs/report.docx": 4, "fonts/glyphs.ttf": 2}

    def commit(self, n: int) -> dict[str, bytes]:
        if n == 0:
            return {path: f.save(0) for path, f in self.files.items()}
        names = sorted(self.weights)
        changed = set(self.rng.choices(names, [self.weights[p] for p in names], k=self.rng.choice((1, 1, 2, 2, 3))))
        out = {}
        for path in sorted(changed):
            f = self.files[path]
            if isinstance(f, (Catalog, Report)):
                f.edit(n)
            else:
                f.edit()
            out[path] = f.save(n)
        return out


# --- the scenario ------------------------------------------------------------------------------------

def params(cfg) -> dict:
    full = cfg.mode == "full"
    return {"commits": 250 if full else 200, "scale": 3.0 if full else 0.55, "push_every": 25 if full else 10,
            "checkouts": 5}


def _picks(commits: int, count: int) -> list[int]:
    """Old commits spread over the history, HEAD left out (the clone already has it)."""
    return sorted({round(i * (commits - 2) / (count - 1)) for i in range(count)})


def _write(repo: str, files: dict[str, bytes]):
    for rel, data in files.items():
        path = os.path.join(repo, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _check(tool: str, clone: str, files: dict[str, bytes], what: str):
    """The checkout must hold exactly the generated files of that commit, byte for byte."""
    found = set()
    for base, dirs, names in os.walk(clone):
        if ".git" in dirs:
            dirs.remove(".git")
        found.update(os.path.relpath(os.path.join(base, name), clone) for name in names)
    found.discard(".gitattributes")
    if found != set(files):
        raise RuntimeError(f"[{tool}] history: {what} holds {sorted(found ^ set(files))} unexpectedly")
    for rel, data in files.items():
        with open(os.path.join(clone, rel), "rb") as f:
            if f.read() != data:
                raise RuntimeError(f"[{tool}] history: {what} wrote different bytes for {rel}")


def _p90(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=10)[8], 3)


def _replay(bench, h, p: dict, wire, lineage: Lineage, repos: dict, remotes: dict) -> dict:
    """Commit by commit into every tool (rotated order), pushing every push_every commits; keeps the generated
    files of the picked commits and of HEAD to check checkouts against."""
    picks = _picks(p["commits"], p["checkouts"])
    out = {t: {"add": [], "commit": [], "ids": [], "pushes": []} for t in TOOLS}
    snapshot, kept, history_bytes = {}, {}, 0
    for n in range(p["commits"]):
        changes = lineage.commit(n)
        snapshot.update(changes)
        history_bytes += sum(len(d) for d in changes.values())
        if n in picks:
            kept[n] = dict(snapshot)
        for tool in h.rotation(n, TOOLS):
            repo, r = repos[tool], out[tool]
            _write(repo, changes)
            r["add"].append(bench.timed(tool, ["git", "add", *sorted(changes)], repo)["seconds"])
            message = f"commit {n}: {', '.join(sorted(changes))}"
            r["commit"].append(bench.timed(tool, ["git", "commit", "-q", "-m", message], repo)["seconds"])
            r["ids"].append(bench.run(tool, ["git", "rev-parse", "HEAD"], repo).strip())
            if (n + 1) % p["push_every"] == 0 or n == p["commits"] - 1:
                lfs_before = transfer_mod._lfs_objects(remotes[tool], h)
                push, counted = wire.measure(lambda tool=tool, repo=repo: bench.timed(
                    tool, ["git", "push", "-q", "origin", "main"], repo))
                counted["lfs_objects"] = transfer_mod._lfs_objects(remotes[tool], h) - lfs_before
                r["pushes"].append({"seconds": push["seconds"], "cpu_seconds": push["cpu_seconds"],
                                    "bytes": counted["bytes"], "lfs_objects": counted["lfs_objects"],
                                    "connections": counted["connections"]})
    return {"runs": out, "picks": picks, "kept": kept, "head": dict(snapshot), "history_bytes": history_bytes}


def _reads(bench, h, wire, tool: str, remote: str, ids: list[str], replay: dict, label: str) -> tuple[str, dict]:
    """A fresh clone, then `git checkout` of each picked old commit in it: seconds and bytes moved, every
    checkout checked against the generated files. Returns the clone (left in place) and the measurements."""
    clone = os.path.join(bench.root, f"hist-{tool}-{label}")
    shutil.rmtree(clone, ignore_errors=True)
    timing, counted = wire.measure(lambda: bench.timed(tool, ["git", "clone", "-q", "file://" + remote, clone],
                                                       bench.root))
    clone_git = os.path.join(clone, ".git")
    counted["lfs_objects"] = transfer_mod._lfs_objects(clone_git, h)
    _check(tool, clone, replay["head"], f"the {label} clone")
    out = {"clone": {"seconds": timing["seconds"], "cpu_seconds": timing["cpu_seconds"],
                     "bytes": counted["bytes"] + counted["lfs_objects"], "connections": counted["connections"]},
           "checkouts": []}
    for n in replay["picks"]:
        lfs_before = transfer_mod._lfs_objects(clone_git, h)
        timing, counted = wire.measure(lambda n=n: bench.timed(tool, ["git", "checkout", "-q", ids[n]], clone))
        moved = counted["bytes"] + transfer_mod._lfs_objects(clone_git, h) - lfs_before
        _check(tool, clone, replay["kept"][n], f"the {label} clone's checkout of commit {n}")
        out["checkouts"].append({"commit": n, "seconds": timing["seconds"], "cpu_seconds": timing["cpu_seconds"],
                                 "bytes": moved, "connections": counted["connections"]})
    out["clone_objects"] = h.disk_usage(*h.store_dirs(clone_git))["apparent_bytes"]
    return clone, out


def _amplification(bench, clone: str) -> dict:
    """Hook for read amplification (DESIGN.md §5b: a file version fetches ≤ 1.25x, decodes ≤ 1.5x its bytes):
    `git panini fsck --amplification --json`, if this build has it. Its per-commit figures are every number in a
    list under a key that names 'decode' or 'fetch' with 'ratio' or 'amplification' (e.g. commits[].decode_ratio);
    the bytes beside them ('decoded', 'fetched') are not ratios and are left out. Nothing is guessed."""
    helptext = bench.run("panini", ["git", "panini", "fsck", "--help"], clone)
    if "--amplification" not in helptext:
        return {"available": False, "note": "not available in this build"}
    done = subprocess.run(["git", "panini", "fsck", "--amplification", "--json"], cwd=clone, check=False,
                          env=bench.envs["panini"], capture_output=True, text=True)
    out = {"available": True, "exit": done.returncode}
    try:
        out["report"] = json.loads(done.stdout)
    except ValueError:
        out["note"] = f"no JSON on stdout: {done.stderr.strip()[-300:]}"
        return out
    found = {"decode": [], "fetch": []}

    def walk(node, keys, in_list):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, keys + (str(k).lower(),), in_list)
        elif isinstance(node, list):
            for v in node:
                walk(v, keys, True)
        elif isinstance(node, (int, float)) and not isinstance(node, bool) and in_list:
            path = "/".join(keys)
            for kind, values in found.items():
                if kind in path and ("ratio" in path or "amplification" in path):
                    values.append(float(node))

    walk(out["report"], (), False)
    for kind, values in found.items():
        out[kind] = ({"max": round(max(values), 3), "median": round(statistics.median(values), 3), "n": len(values)}
                     if values else None)
    if not any(found.values()):
        out["note"] = "no per-commit decode / fetch amplification found in the JSON (kept in raw)"
    return out


def run(bench, cfg, h) -> tuple[dict, list]:
    """h: bench.run's module (row, disk_usage, store_dirs, rotation live there)."""
    p = params(cfg)
    wire = transfer_mod.Wire(os.path.join(bench.root, "history-wire"))
    raw: dict = {"params": p, "steps_seconds": {}}
    with transfer_mod.wired(bench, wire, TOOLS):
        clock = time.perf_counter()
        workdir = os.path.join(bench.root, "history-gen")
        os.makedirs(workdir)
        lineage = Lineage(cfg.seed, p["scale"], workdir)
        repos, remotes = {}, {}
        for tool in TOOLS:
            repos[tool] = bench.repo(tool, "hist", track=PATTERNS)
            remotes[tool] = transfer_mod._bare(bench, tool, "hist")
            bench.run(tool, ["git", "remote", "add", "origin", "file://" + remotes[tool]], repos[tool])
        replay = _replay(bench, h, p, wire, lineage, repos, remotes)
        shutil.rmtree(workdir)
        raw["history"] = {"commits": p["commits"], "files": len(replay["head"]),
                          "history_bytes": replay["history_bytes"],
                          "head_bytes": sum(len(d) for d in replay["head"].values()),
                          "head_files": {k: len(v) for k, v in sorted(replay["head"].items())},
                          "checked_out_commits": replay["picks"]}
        raw["replay"] = {t: {k: v for k, v in replay["runs"][t].items() if k != "ids"} for t in TOOLS}
        raw["remote_pushed"] = {t: h.disk_usage(*h.store_dirs(remotes[t])) for t in TOOLS}
        for tool in TOOLS:
            shutil.rmtree(repos[tool])
        raw["steps_seconds"]["replay"] = round(time.perf_counter() - clock, 1)

        clock = time.perf_counter()
        raw["before"] = {}
        for tool in h.rotation(1, TOOLS):
            clone, raw["before"][tool] = _reads(bench, h, wire, tool, remotes[tool], replay["runs"][tool]["ids"],
                                                replay, "before")
            shutil.rmtree(clone)
        raw["steps_seconds"]["reads_before"] = round(time.perf_counter() - clock, 1)

        clock = time.perf_counter()
        # The worker: a clone of the remote that packs the store and pushes the packs back (as a CI job would).
        worker = os.path.join(bench.root, "hist-worker")
        bench.run("panini", ["git", "clone", "-q", "--no-checkout", "file://" + remotes["panini"], worker],
                  bench.root)
        work, counted = wire.measure(lambda: bench.timed("panini", ["git", "panini", "work", "--json"], worker,
                                                         stdout=True))
        files = json.loads(work.pop("stdout"))["files"]
        codecs: dict[str, int] = {}
        for f in files:
            for codec, size in f["codecs"].items():
                codecs[codec] = codecs.get(codec, 0) + size
        raw["work"] = {**work, "wire_bytes": counted["bytes"], "connections": counted["connections"],
                       "files": len(files), "failed": sum(not f["ok"] for f in files),
                       "raw_bytes": sum(f["raw_bytes"] for f in files),
                       "stored_bytes": sum(f["stored_bytes"] for f in files), "codecs_raw_bytes": codecs}
        shutil.rmtree(worker)
        raw["remote_after_work"] = h.disk_usage(*h.store_dirs(remotes["panini"]))
        # The raw chunks the packs replaced stay in the remote's objects until the server's next gc.
        raw["gc_panini"] = bench.timed("panini", ["git", "gc", "-q", "--prune=now"], remotes["panini"])
        raw["gc_aggressive_git"] = bench.timed("git", ["git", "gc", "-q", "--aggressive", "--prune=now"],
                                               remotes["git"])
        raw["remote_stored"] = {t: h.disk_usage(*h.store_dirs(remotes[t])) for t in TOOLS}
        raw["steps_seconds"]["work_gc"] = round(time.perf_counter() - clock, 1)

        clock = time.perf_counter()
        raw["after"] = {}
        for tool in h.rotation(2, TOOLS):
            clone, raw["after"][tool] = _reads(bench, h, wire, tool, remotes[tool], replay["runs"][tool]["ids"],
                                               replay, "after")
            if tool == "panini":
                statuses = json.loads(bench.run("panini", ["git", "panini", "status", "--json"], clone))["files"]
                raw["after_statuses"] = dict(sorted((s, sum(f["status"] == s for f in statuses))
                                                    for s in {f["status"] for f in statuses}))
                raw["amplification"] = _amplification(bench, clone)
            shutil.rmtree(clone)
        raw["steps_seconds"]["reads_after"] = round(time.perf_counter() - clock, 1)
        for tool in TOOLS:
            shutil.rmtree(remotes[tool])
    return raw, _rows(h, raw)


def _rows(h, raw: dict) -> list:
    row = h.row
    mib = lambda b: round(b / MiB, 2)
    hist = raw["history"]
    label = (f"{hist['commits']} commits of {hist['files']} files (PNG, SQLite, ZIP, docx, sfnt; "
             f"{hist['history_bytes'] / MiB:.0f} MiB of file versions)")
    rep = raw["replay"]
    lfs = ("lfs",)
    rows = []
    for step in ("add", "commit"):
        rows.append(row(f"git {step} per commit (median)", "s",
                        {t: round(statistics.median(rep[t][step]), 3) for t in TOOLS}, better="lower", anchors=lfs,
                        n=hist["commits"], note=f"{label}; HEAD's files {hist['head_bytes'] / MiB:.2f} MiB"
                        if step == "add" else None))
        rows.append(row(f"git {step} per commit (p90)", "s", {t: _p90(rep[t][step]) for t in TOOLS}, better="lower",
                        anchors=lfs, n=hist["commits"]))
    pushes = {t: rep[t]["pushes"] for t in TOOLS}
    rows += [
        row(f"{len(pushes['panini'])} pushes: bytes on the wire (all)", "MiB",
            {t: mib(sum(x["bytes"] + x["lfs_objects"] for x in pushes[t])) for t in TOOLS}, better="lower",
            anchors=lfs, note="git connections both ways + git-lfs objects copied"),
        row(f"{len(pushes['panini'])} pushes: wall time (all)", "s",
            {t: round(sum(x["seconds"] for x in pushes[t]), 2) for t in TOOLS}, better="lower", anchors=lfs),
        row("remote's objects + lfs after the pushes", "MiB",
            {t: mib(raw["remote_pushed"][t]["apparent_bytes"]) for t in TOOLS}, better="lower", anchors=lfs,
            note="plain git: pushes under 100 objects are kept loose (transfer.unpackLimit)"),
    ]
    for phase, what in (("before", "before work"), ("after", "after work (plain git: gc --aggressive)")):
        r = raw[phase]
        rows += [
            row(f"fresh clone, {what}: wall time", "s", {t: round(r[t]["clone"]["seconds"], 2) for t in TOOLS},
                better="lower", anchors=lfs),
            row(f"fresh clone, {what}: bytes on the wire", "MiB", {t: mib(r[t]["clone"]["bytes"]) for t in TOOLS},
                better="lower", anchors=lfs, note=f"HEAD's files: {hist['head_bytes'] / MiB:.2f} MiB"),
            row(f"checkout of an old commit in it, {what} (median of {len(r['panini']['checkouts'])})", "s",
                {t: round(statistics.median(c["seconds"] for c in r[t]["checkouts"]), 3) for t in TOOLS},
                better="lower", anchors=lfs,
                note=f"commits {', '.join(str(c['commit']) for c in r['panini']['checkouts'])}"),
            row(f"checkout of an old commit in it, {what} (slowest)", "s",
                {t: round(max(c["seconds"] for c in r[t]["checkouts"]), 3) for t in TOOLS}, better="lower",
                anchors=lfs),
            row(f"the {len(r['panini']['checkouts'])} old checkouts, {what}: bytes fetched", "MiB",
                {t: mib(sum(c["bytes"] for c in r[t]["checkouts"])) for t in TOOLS}, better="lower", anchors=lfs),
        ]
    stored = raw["remote_stored"]
    rows += [
        row("git panini work in a clone of the remote (packs pushed back)", "s",
            {"panini": round(raw["work"]["seconds"], 1)}, anchors=(),
            note=f"CPU {raw['work']['cpu_seconds']} s; {raw['work']['files']} file versions, "
                 f"{raw['work']['failed']} failed; remote's statuses after: {raw.get('after_statuses')}"),
        row("stored: remote after work + gc --prune=now / git gc --aggressive / git-lfs as pushed", "MiB",
            {t: mib(stored[t]["apparent_bytes"]) for t in TOOLS}, better="lower",
            note=f"git-panini remote after work, before its gc: {mib(raw['remote_after_work']['apparent_bytes'])} MiB"),
        row("stored ÷ the file versions' bytes", "%",
            {t: round(100 * stored[t]["apparent_bytes"] / hist["history_bytes"], 1) for t in TOOLS}, better="lower"),
    ]
    amp = raw["amplification"]
    for kind in ("decode", "fetch"):
        figures = amp.get(kind) if amp.get("available") else None
        note = None if figures else amp.get("note", "not available in this build")
        for stat in ("max", "median"):
            rows.append(row(f"read amplification after work, {kind} ({stat} per commit; git panini fsck "
                            f"--amplification)", "x", {"panini": figures[stat] if figures else None}, anchors=(),
                            better="lower", note=note))
    return rows
