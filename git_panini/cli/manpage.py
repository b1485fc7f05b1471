"""Writes the git-panini(1) man page from the command line itself, so `git panini --help` (which Git turns
into `man git-panini`) shows what `-h` shows. Regenerate with `python -m git_panini.cli.manpage`."""

from __future__ import annotations

import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "man" / "git-panini.1"


def _roff(text: str) -> str:
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        # a line starting with . or ' would be read as a roff request
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def render() -> str:
    from typer.main import get_command

    from . import PROG, app

    group = get_command(app)
    root = group.make_context(PROG, [], resilient_parsing=True, terminal_width=78, max_content_width=78)
    from .. import __version__
    # No date in the page: the same command line always renders the same page.
    out = [f'.TH GIT-PANINI 1 "" "git-panini {__version__}" "Git Manual"', ".SH NAME",
           "git-panini \\- " + _roff(group.help.splitlines()[0]), ".SH SYNOPSIS",
           ".B git panini\n.I command\n.RI [ options ]", ".SH DESCRIPTION",
           _roff("Tracked files become deduplicated chunks stored in Git itself, their status in Git notes; "
                 "workers recompress them with lossless codecs, and every byte is verified on the way out. "
                 "`git panini help COMMAND` and `git panini COMMAND -h` print the same text as this page."),
           ".SH COMMANDS"]
    for name in group.list_commands(root):
        command = group.get_command(root, name)
        if command.hidden:
            continue
        ctx = type(root)(command, info_name=name, parent=root)
        help_text = command.get_help(ctx)
        out += [f".SS {name}", ".nf", _roff(help_text), ".fi"]
    out += [".SH SEE ALSO", "git(1), gitattributes(5)", ""]
    return "\n".join(out)


def main() -> None:
    PAGE.write_text(render())
    sys.stdout.write(f"wrote {PAGE}\n")


if __name__ == "__main__":
    main()
