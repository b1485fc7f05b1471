"""The `git-panini` console script: the filter and the hooks start without loading the CLI (git starts them
on every command, so their start-up time is everyone's)."""

from __future__ import annotations

import sys

from .util.units import shown


def main():
    # The filter and the hooks say nothing of a Ctrl-C: git, which started them, is gone by then without
    # waiting for them (as it waits for `git panini ...`), so the line came after the shell's next prompt.
    if sys.argv[1:2] == ["filter-process"] and len(sys.argv) == 2:
        sys.exit(one_line_errors(_filter_process, say_interrupted=False))
    if sys.argv[1:2] == ["hook"] and len(sys.argv) >= 3:
        sys.exit(one_line_errors(lambda: _hook(sys.argv[2], sys.argv[3:]), say_interrupted=False))
    sys.exit(one_line_errors(_cli))


def _hook(name: str, args: list[str]) -> int:
    from .gitio.hooks import main as hook_main
    return hook_main(name, args)


def _cli() -> int:
    from .cli import main as cli_main  # loading the CLI takes a while: a Ctrl-C then is one line too
    return cli_main()


def _filter_process():
    from .git.pktline import ProtocolError
    from .gitio.filter import main as filter_main
    try:
        filter_main()
    except (EOFError, ProtocolError) as e:
        sys.stderr.write(f"git-panini: filter-process speaks Git's filter protocol on stdin, for git itself "
                         f"(gitattributes(5)); {e}\n")
        return 1


def one_line_errors(run, say_interrupted: bool = True) -> int:
    """Run a command: every error one line on stderr, a Ctrl-C at any moment (loading included) exit 130."""
    try:
        return _one_line_errors(run, say_interrupted)
    except KeyboardInterrupt:
        if say_interrupted:
            sys.stderr.write("git-panini: interrupted\n")
        return 130


# What goes wrong in git, the store or a remote: (module, class). Looked up only when something went wrong,
# and only in modules already loaded (an error of a class exists only if its module was imported), so the
# filter and the hooks do not load the store, the transfer layer and sqlite3 just to name their errors.
EXPECTED_ERRORS = (("git_panini.git.repo", "GitError"), ("git_panini.git.repo", "ObjectTooLarge"),
                   ("git_panini.git.cas_refs", "RefError"), ("git_panini.store.chunk_source", "ReadError"),
                   ("git_panini.store.shared", "StoreError"), ("git_panini.transfer.remote", "SyncError"),
                   ("sqlite3", "DatabaseError"), ("builtins", "RuntimeError"))


def _expected_errors() -> tuple[type, ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in EXPECTED_ERRORS if module in sys.modules)


def _one_line_errors(run, say_interrupted: bool = True) -> int:
    """Run a command; what goes wrong in the store, a remote or git is one line and exit 1, no traceback
    (a bad revision or path is exit 2, but the commands check those before Git sees them).
    The whole story (traceback, command line) goes to .git/panini/logs/ for `git panini logs last`."""
    from .util import logs
    try:
        return run() or 0
    except KeyboardInterrupt:
        if say_interrupted:
            sys.stderr.write("git-panini: interrupted\n")
        return 130
    except Exception as e:  # noqa: BLE001 - one line either way; a bug's traceback goes to the log
        if isinstance(e, _expected_errors()):
            logs.record(str(e), e)
            sys.stderr.write(f"git-panini: {shown(str(e))}\n")
            return 1
        if isinstance(e, OSError):   # a full disk, a permission: the system's words, not a bug's
            logs.record(str(e), e)
            where = f" ({e.filename})" if e.filename else ""
            hint = "; free some space, then run it again" if e.errno == 28 else ""
            sys.stderr.write(shown(f"git-panini: {e.strerror or e}{where}{hint}") + "\n")
            return 1
        where = logs.record(f"{type(e).__name__}: {e}", e)
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        sys.stderr.write(f"git-panini: internal error: {type(e).__name__}: {shown(first)}"
                         + (" (details: git panini logs last)\n" if where else "\n"))
        return 1
