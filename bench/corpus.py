"""A mixed corpus of real files found on this machine, by type, for the compression benchmark and tests."""

from __future__ import annotations

import glob
import io
import os
import random
import shutil
import sysconfig

JXL_TESTDATA = "/usr/share/libjxl-testdata"   # Debian's libjxl-testdata: real JPEGs and PNGs


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _sources(scale: float) -> dict[str, tuple[list[str], int]]:
    """type -> (candidate paths in a stable order, byte budget)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    mib = lambda n: int(n * scale * (1 << 20))  # noqa: E731
    return {
        "python": (sorted(glob.glob(os.path.join(stdlib, "*.py")) + glob.glob(os.path.join(stdlib, "*/*.py"))),
                   mib(6)),
        "docs": (sorted(glob.glob(os.path.join(stdlib, "..", "..", "share", "doc", "**", "*.txt"), recursive=True)
                        + glob.glob("/usr/share/doc/*/*.txt") + glob.glob("/usr/share/doc/*/README*")), mib(2)),
        "man": (sorted(glob.glob("/usr/share/man/man1/*.gz")), mib(2)),
        "wheel": (sorted(glob.glob(os.path.join(stdlib, "ensurepip", "_bundled", "*.whl"))
                         + glob.glob(os.path.expanduser("~/.cache/pip/wheels/**/*.whl"), recursive=True)), mib(6)),
        "jpeg": (sorted(glob.glob(os.path.join(JXL_TESTDATA, "**", "*.jpg"), recursive=True)), mib(6)),
        "png": (sorted(p for p in glob.glob(os.path.join(JXL_TESTDATA, "**", "*.png"), recursive=True)
                       if os.path.getsize(p) < (4 << 20)), mib(6)),
        "elf": (sorted(p for p in glob.glob("/usr/bin/*") if os.path.isfile(p) and not os.path.islink(p)
                       and _is_elf(p)), mib(8)),
    }


def _pillow_images(kind: str, count: int, rng: random.Random) -> list[bytes]:
    """Photographic-ish stand-ins (smooth gradients plus noise) when no real images are installed."""
    from PIL import Image, ImageFilter
    out = []
    for _ in range(count):
        w, h = 640, 480
        noise = Image.frombytes("RGB", (w, h), rng.randbytes(w * h * 3)).filter(ImageFilter.GaussianBlur(3))
        grad = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        img = Image.blend(noise, grad, 0.5)
        buf = io.BytesIO()
        img.save(buf, "JPEG" if kind == "jpeg" else "PNG", quality=88)
        out.append(buf.getvalue())
    return out


def build(directory: str, scale: float = 1.0, seed: int = 7) -> dict[str, list[str]]:
    """Copy files into directory/<type>/; return type -> relative paths. Deterministic for a machine."""
    rng = random.Random(seed)
    made: dict[str, list[str]] = {}
    for kind, (paths, budget) in _sources(scale).items():
        os.makedirs(os.path.join(directory, kind), exist_ok=True)
        used, names = 0, []
        for path in paths:
            size = os.path.getsize(path)
            if size == 0 or used + size > budget:
                continue
            name = f"{kind}/{len(names):04d}-{os.path.basename(path)}"
            shutil.copyfile(path, os.path.join(directory, name))
            names.append(name)
            used += size
        if not names and kind in ("jpeg", "png"):
            for i, data in enumerate(_pillow_images(kind, 6, rng)):
                name = f"{kind}/{i:04d}-generated.{'jpg' if kind == 'jpeg' else 'png'}"
                with open(os.path.join(directory, name), "wb") as f:
                    f.write(data)
                names.append(name)
        made[kind] = names
    return made


def build_covering(directory: str, scale: float = 1.0, seed: int = 7) -> dict[str, list[str]]:
    """Like build(), but every type gets at least one file: where a small scale's budget admits
    none (a wheel is 1-2 MiB), the type's smallest candidate is taken instead."""
    made = build(directory, scale, seed)
    for kind, (paths, _) in _sources(scale).items():
        if made.get(kind):
            continue
        sized = sorted((os.path.getsize(p), p) for p in paths if os.path.getsize(p) > 0)
        if not sized:
            continue
        path = sized[0][1]
        name = f"{kind}/0000-{os.path.basename(path)}"
        shutil.copyfile(path, os.path.join(directory, name))
        made[kind] = [name]
    return made


def source_text() -> bytes:
    """Real text to draw synthetic text files from: this Python's standard library sources, concatenated
    in a stable order (tens of MiB)."""
    paths, _ = _sources(1.0)["python"]
    parts = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                parts.append(f.read())
        except OSError:
            continue
    return b"".join(parts)


def small_files(path: str, count: int, lo: int, hi: int, rng: random.Random, dirs: int = 100) -> int:
    """count random files of lo..hi bytes spread over `dirs` folders under path; returns their bytes."""
    total = 0
    for i in range(count):
        directory = os.path.join(path, f"d{i % dirs:02d}")
        os.makedirs(directory, exist_ok=True)
        size = rng.randint(lo, hi)
        with open(os.path.join(directory, f"f{i:06d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))
        total += size
    return total
