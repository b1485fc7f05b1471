"""`git panini report`: sizes, dedup and compression of the files a range adds or changes (the PR check),
or of every file of a tree (--all)."""

from __future__ import annotations

import sys

import typer

from .common import JsonOption, commit_or_fail, err_console, fail, open_repo, print_json

STATUS_RATIO = "panini/ratio"
STATUS_VERIFY = "panini/verify"


def report(base: str = typer.Option(None, "--base", help="The range's base (e.g. origin/main); the merge base "
                                    "with --head is used."),
           all_files: bool = typer.Option(False, "--all", help="Every git-panini file of --head's tree instead "
                                          "of a range (what `git panini dashboard` shows)."),
           head: str = typer.Option("HEAD", "--head", help="The range's head."),
           format: str = typer.Option("text", "--format", help="text | markdown | json"),
           json: bool = JsonOption,
           verify: bool = typer.Option(False, "--verify", help="Also verify every pointer in base..head "
                                       "bit-perfect (exit 1 on any failure)."),
           github: bool = typer.Option(False, "--github", help="Write the Markdown to $GITHUB_STEP_SUMMARY and "
                                       f"post the commit statuses {STATUS_RATIO} and {STATUS_VERIFY} on the head "
                                       "(implies --verify)."),
           comment: bool = typer.Option(False, "--comment", help="With --github: keep one PR comment up to date "
                                        "with the report (found again by a hidden marker)."),
           pr: int = typer.Option(None, "--pr", help="Pull request number (default: from $GITHUB_EVENT_PATH)."),
           sha: str = typer.Option(None, "--sha", help="Commit for the statuses (default: --head resolved)."),
           comment_author: str = typer.Option(None, "--comment-author", metavar="LOGIN",
                                              help="Login whose marked comment is ours "
                                                   "(default: any bot, e.g. github-actions[bot])."),
           api_url: str = typer.Option(None, "--api-url", metavar="URL",
                                       help="Default: $GITHUB_API_URL, else api.github.com."),
           token: str = typer.Option(None, "--token", help="Default: $GITHUB_TOKEN (prefer the variable)."),
           repository: str = typer.Option(None, "--repository", help="owner/name; default: $GITHUB_REPOSITORY.")):
    """Per file added or changed in a range: size, new bytes after dedup, stored, pending, codecs, ratio."""
    from ..report import report as report_mod
    if (base is None) == (not all_files):
        fail("give --base REV or --all", code=2)
    if format not in ("text", "markdown", "json"):
        fail("--format must be text, markdown or json", code=2)
    if json:
        format = "json"
    if comment and not github:
        fail("--comment goes with --github", code=2)
    repo = open_repo()
    if base is not None:
        commit_or_fail(repo, base)
    commit_or_fail(repo, head)
    client = None
    if github:
        from ..remote_work.github import Client, GitHubError
        try:
            client = Client.from_env(repository, token, api_url)
        except GitHubError as e:
            fail(str(e))
    try:
        result = report_mod.build(repo, base, head, verify=verify or github)
    except report_mod.ReportError as e:
        fail(str(e))
    if format == "json":
        print_json(result.as_dict())
    else:
        text = report_mod.render_markdown(result) if format == "markdown" else report_mod.render_text(result)
        sys.stdout.write(text)
        sys.stdout.flush()
    if github:
        _post(client, result, sha or result.head, comment, pr, comment_author)
    if not result.verify_ok:
        err_console.print(f"git-panini: {report_mod.verify_line(result)}", style="red", markup=False,
                          highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _post(client, result, sha: str, comment: bool, pr: int | None, comment_author: str | None):
    from ..remote_work.github import GitHubError, append_summary, event_pr_number, run_url
    from ..report import report as report_mod
    markdown = report_mod.render_markdown(result)
    append_summary(markdown)
    url = run_url()
    try:
        state, description = report_mod.ratio_status(result)
        client.set_status(sha, state, STATUS_RATIO, description, url)
        state, description = report_mod.verify_status(result)
        client.set_status(sha, state, STATUS_VERIFY, description, url)
        if comment:
            number = pr or event_pr_number()
            if number is None:
                err_console.print("git-panini: no pull request (give --pr): comment skipped", markup=False)
            else:
                action, _ = client.upsert_comment(number, markdown, report_mod.MARKER, comment_author)
                err_console.print(f"git-panini: {action} the report comment on #{number}", markup=False)
    except GitHubError as e:
        fail(str(e))


def register(app: typer.Typer):
    app.command()(report)
