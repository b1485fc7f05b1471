"""Where this git-panini came from, as a requirement another machine (a CI runner) can `pip install`."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from urllib.parse import unquote, urlparse


def install_spec() -> tuple[str | None, str]:
    """(requirement, where from) for the running install: from PEP 610's direct_url.json when pip recorded
    one; None when it came from a place only this machine can reach."""
    # A source checkout's own git_panini.egg-info may come first on sys.path; pip's record is in dist-info.
    found = [(dist, dist.read_text("direct_url.json")) for dist in metadata.distributions(name="git-panini")]
    if not found:
        return None, "no installed git-panini distribution"
    dist, text = next((pair for pair in found if pair[1]), found[0])
    return spec_from(json.loads(text) if text else None, dist.version, _checkout_origin)


def spec_from(direct_url: dict | None, version: str, checkout_origin) -> tuple[str | None, str]:
    if direct_url is None:
        return f"git-panini=={version}", "a package index"
    url = direct_url.get("url", "")
    vcs = direct_url.get("vcs_info")
    if vcs and vcs.get("vcs") == "git" and vcs.get("commit_id"):
        return f"git-panini @ git+{url}@{vcs['commit_id']}", url
    if "archive_info" in direct_url and urlparse(url).scheme in ("http", "https"):
        return f"git-panini @ {url}", url
    if "dir_info" in direct_url and urlparse(url).scheme == "file":
        path = unquote(urlparse(url).path)
        origin = checkout_origin(path)
        if origin:
            remote_url, commit = origin
            return f"git-panini @ git+{remote_url}@{commit}", f"{path} (a checkout of {remote_url})"
        return None, path
    return None, url or "an unknown source"


def _checkout_origin(path: str) -> tuple[str, str] | None:
    """(origin URL, HEAD commit) of a git checkout, when origin is a URL another machine can reach."""
    def git(*args):
        proc = subprocess.run(["git", "-C", path, *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""
    remote, commit = git("remote", "get-url", "origin"), git("rev-parse", "--verify", "HEAD")
    if not commit or urlparse(remote).scheme not in ("https", "http", "ssh", "git"):
        return None
    return remote, commit
