"""git_panini.remote_work.github: the real PyGithub client against a local fake GitHub (tests/github_fake.py).

Every call git-panini makes, the requests it sends, and every failure GitHub can answer with
(401, 403, 404, 422, the two rate limits, a timeout, a server that is not there) turned into one line.
"""

from __future__ import annotations

import json
import time

import pytest

from github_fake import FakeGitHub
from git_panini.remote_work import github as gh_mod
from git_panini.remote_work.github import Client, GitHubError, Settings

SHA = "0123456789abcdef0123456789abcdef01234567"
MARKER = "<!-- git-panini-report -->"


@pytest.fixture
def fake(monkeypatch):
    with FakeGitHub() as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


@pytest.fixture
def client(fake) -> Client:
    return Client.from_env()


# --- the calls ---------------------------------------------------------------------------------------

def test_dispatch_sends_one_authenticated_post(fake, client):
    client.dispatch_workflow("panini-worker.yml", "main", {"jobs": '["j1"]', "runner": '["ubuntu-latest"]',
                                                           "device": "cpu"})
    [request] = fake.requests           # lazy client: no GET of the repository or the workflow first
    assert request.method == "POST"
    assert request.path == "/repos/octo/panini-demo/actions/workflows/panini-worker.yml/dispatches"
    assert request.auth == f"token {fake.token}"
    assert request.body == {"ref": "main", "inputs": {"jobs": '["j1"]', "runner": '["ubuntu-latest"]',
                                                      "device": "cpu"}}
    assert fake.dispatches == [{"workflow": "panini-worker.yml", "ref": "main", "inputs": request.body["inputs"]}]


def test_commit_status_is_cut_to_one_line_of_140_characters(fake, client):
    client.set_status(SHA, "failure", "panini/verify", "bad\nchunk " + "x" * 300, "https://example.invalid/run/1")
    [request] = fake.requests
    assert request.method == "POST" and request.path == f"/repos/octo/panini-demo/statuses/{SHA}"
    assert request.body["state"] == "failure" and request.body["context"] == "panini/verify"
    assert request.body["target_url"] == "https://example.invalid/run/1"
    assert len(request.body["description"]) <= 140 and "\n" not in request.body["description"]
    assert fake.status_of(SHA, "panini/verify")["state"] == "failure"
    with pytest.raises(ValueError):
        client.set_status(SHA, "green", "panini/verify", "x")


def test_comment_is_created_once_then_updated_in_place(fake, client):
    assert client.upsert_comment(7, "first report", MARKER)[0] == "created"
    action, cid = client.upsert_comment(7, "second report", MARKER)
    assert action == "updated"
    [comment] = fake.comments[7]
    assert comment["id"] == cid and comment["body"] == f"{MARKER}\nsecond report"
    methods = [(r.method, r.path.rsplit("/", 2)[-2:]) for r in fake.requests]
    assert methods == [("GET", ["7", "comments"]), ("POST", ["7", "comments"]),
                       ("GET", ["7", "comments"]), ("PATCH", ["comments", str(cid)])]


def test_comment_found_on_a_later_page_and_others_left_alone(fake, client):
    fake.per_page_max = 10
    human = {"login": "mallory", "id": 7, "type": "User"}
    fake.add_comment(3, f"{MARKER} a human quoting our marker", human)
    for i in range(24):
        fake.add_comment(3, f"chatter {i}", human)
    ours = fake.add_comment(3, f"{MARKER}\nold report")
    fake.add_comment(3, "more chatter", human)
    action, cid = client.upsert_comment(3, "new report", MARKER)
    assert (action, cid) == ("updated", ours["id"])
    assert ours["body"] == f"{MARKER}\nnew report"
    assert fake.comments[3][0]["body"].startswith(MARKER + " a human")      # not ours: untouched
    pages = [r.query.get("page", "1") for r in fake.calls("GET", r"/issues/3/comments$")]
    assert pages == ["1", "2", "3"]       # followed the Link headers to the page holding ours
    # with an explicit author, only that login's comment counts
    assert client.upsert_comment(3, "by author", MARKER, author="someone-else")[0] == "created"


# --- failures: one line, saying what and why ----------------------------------------------------------

def _dispatch(client):
    client.dispatch_workflow("panini-worker.yml", "main", {"jobs": '["j1"]'})


@pytest.mark.parametrize("case", ["401", "403", "404", "422-input", "422-ref", "422-state", "403-rate", "429-rate",
                                  "500"])
def test_errors_become_one_line(fake, client, case):
    expect = {
        "401": "rejected the token",
        "403": "`actions: write`",
        "404": "found nothing",
        "422-input": 'Unexpected inputs provided: ["bogus"]',
        "422-ref": "No ref found for: nope",
        "422-state": "state is not included in the list",
        "403-rate": "rate limit hit",
        "429-rate": "retry after 120 s",
        "500": "try again later",
    }[case]
    call = lambda: _dispatch(client)                                    # noqa: E731
    if case == "401":
        call = lambda: _dispatch(Client.from_env(token="ghs_wrong"))    # noqa: E731
    elif case == "403":
        fake.permissions["actions"] = "read"
    elif case == "404":
        call = lambda: client.dispatch_workflow("nope.yml", "main", {})  # noqa: E731
    elif case == "422-input":
        call = lambda: client.dispatch_workflow("panini-worker.yml", "main", {"jobs": "[]", "bogus": "1"})  # noqa
    elif case == "422-ref":
        call = lambda: client.dispatch_workflow("panini-worker.yml", "nope", {"jobs": "[]"})  # noqa: E731
    elif case == "422-state":
        call = lambda: client._call("posting", lambda: client._repo.get_commit(SHA).create_status("green"))  # noqa
    elif case == "403-rate":
        fake.rate_limit("POST", r"/dispatches$", "primary", wait=3600)
    elif case == "429-rate":
        fake.rate_limit("POST", r"/dispatches$", "secondary", wait=120)
    elif case == "500":
        fake.fail("POST", r"/dispatches$", 500, {"message": "Server Error"})
    with pytest.raises(GitHubError) as info:
        call()
    message = str(info.value)
    assert expect in message
    assert "\n" not in message and len(message) <= 300
    if case == "403-rate":
        assert "resets at" in message and "UTC" in message


def test_timeout_is_reported_quickly(fake, client):
    fake.delay("POST", r"/statuses/", 5)
    started = time.monotonic()
    with pytest.raises(GitHubError, match=r"did not answer within 1 s while setting status panini/ratio"):
        client.set_status(SHA, "success", "panini/ratio", "ok")
    assert time.monotonic() - started < 4


def test_unreachable_server(monkeypatch):
    with FakeGitHub() as server:
        env = server.env()
    for key, value in env.items():          # the server is gone: connection refused
        monkeypatch.setenv(key, value)
    with pytest.raises(GitHubError, match="cannot reach GitHub at http://127.0.0.1"):
        _dispatch(Client.from_env())


def test_retries_ride_out_a_5xx_and_a_short_rate_limit(fake, monkeypatch):
    monkeypatch.setenv("GIT_PANINI_GITHUB_RETRIES", "2")
    client = Client.from_env()
    fake.fail("POST", r"/dispatches$", 502, {"message": "Bad Gateway"})
    _dispatch(client)
    assert len(fake.calls("POST", r"/dispatches$")) == 2 and len(fake.dispatches) == 1
    fake.rate_limit("POST", r"/statuses/", "secondary", wait=1)          # Retry-After: 1, within max wait
    started = time.monotonic()
    client.set_status(SHA, "success", "panini/ratio", "ok")
    assert time.monotonic() - started >= 0.9
    assert len(fake.calls("POST", r"/statuses/")) == 2
    # a wait longer than GIT_PANINI_GITHUB_MAX_WAIT (5 s here) fails at once instead of sleeping
    fake.rate_limit("POST", r"/statuses/", "primary", wait=3600)
    started = time.monotonic()
    with pytest.raises(GitHubError, match="rate limit"):
        client.set_status(SHA, "success", "panini/ratio", "ok")
    assert time.monotonic() - started < 2


# --- settings and the Actions files ---------------------------------------------------------------------

def test_settings_from_the_actions_variables(monkeypatch):
    for key in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(GitHubError, match="no GitHub token"):
        Settings.from_env()
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    with pytest.raises(GitHubError, match="owner/name"):
        Settings.from_env(repository="just-a-name")
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    s = Settings.from_env()
    assert (s.api_url, s.repository, s.token) == ("https://api.github.com", "o/r", "t")
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example/api/v3/")
    assert Settings.from_env().api_url == "https://ghe.example/api/v3"
    assert Settings.from_env(api_url="http://x", token="u", repository="a/b").token == "u"


def test_output_summary_and_event_files(tmp_path, monkeypatch):
    out, summary, event = tmp_path / "out", tmp_path / "summary", tmp_path / "event.json"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    gh_mod.write_output({"jobs": '["a"]', "count": "1"})
    gh_mod.write_output({"text": "two\nlines"})
    lines = out.read_text().splitlines()
    assert lines[:2] == ['jobs=["a"]', "count=1"]
    assert lines[2].startswith("text<<ghadelimiter_") and lines[3:5] == ["two", "lines"] and lines[5] in lines[2]
    gh_mod.append_summary("# one")
    gh_mod.append_summary("two\n")
    assert summary.read_text() == "# one\ntwo\n"
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    event.write_text(json.dumps({"pull_request": {"number": 42}}))
    assert gh_mod.event_pr_number() == 42
    event.write_text(json.dumps({"ref": "refs/heads/main"}))
    assert gh_mod.event_pr_number() is None
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    monkeypatch.setenv("GITHUB_RUN_ID", "99")
    assert gh_mod.run_url() == "https://github.com/o/r/actions/runs/99"
