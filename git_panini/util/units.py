"""Sizes and text for people: 1.5 MiB, not 1572864; a path from a repository shown, never obeyed, by a terminal."""

from __future__ import annotations


def human(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def shown(text: str) -> str:
    """Text from a repository or a remote (a path, a lock's owner, an error naming them) safe to print: control
    characters (an escape sequence could retitle or rewrite the terminal; a newline would make two lines of
    one message) and undecodable bytes become visible \\xNN escapes."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 32 or 127 <= code < 160:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:     # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


def progress_columns() -> tuple:
    """A bar's columns: the bar, done/total and speed, all in MiB as git and git-lfs show them (rich writes
    its speed in decimal MB/s beside binary totals)."""
    from rich.progress import BarColumn, DownloadColumn, ProgressColumn
    from rich.text import Text

    class Speed(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text("?" if speed is None else f"{human(speed)}/s", style="progress.data.speed")
    return BarColumn(), DownloadColumn(binary_units=True), Speed()
