"""`castline publish`: upload a show's published folder to its publish target."""

from __future__ import annotations

from pathlib import Path

import click

# The package itself: `app.console` is looked up when a command runs, so tests can swap it.
from castline import cli as app
from castline.cli import cli, guarded


@cli.command(name="publish")
@click.argument("show", type=click.Path(path_type=Path))
@click.option(
    "--force", is_flag=True, help="Upload every file again (after changing headers by hand)."
)
def publish_command(show: Path, force: bool) -> None:
    """Upload the show's published folder to its S3 target (`publish.target: s3`).

    The episodes the feed lists (or that were accepted) and the files beside the feed go first,
    the feed last, once every file it links is in the bucket. Only what is missing or changed
    is uploaded: run it again after an interrupted or failed upload. Credentials come from the
    AWS environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role).

    \b
    Examples:
      castline publish my-show/show.yaml
      AWS_PROFILE=podcast castline publish my-show/show.yaml
    """
    from castline.config import load_show
    from castline.publish import s3

    bible = guarded(lambda: load_show(show))
    settings = bible.publish
    if settings.target == "local":
        folder = (show.parent / bible.output_dir).resolve()
        app.console.print(
            f"publish.target is local: the published files are in {folder}; set "
            "`publish: {target: s3, bucket: ...}` in the show bible to upload them",
            highlight=False,
            soft_wrap=True,
        )
        return
    report = guarded(lambda: s3.publish_show(bible, show.parent, force=force))
    app.console.print(
        f"{report.location}: {len(report.uploaded)} uploaded, {len(report.unchanged)} already "
        "there"
        + (f", {len(report.aborted)} interrupted upload(s) cleaned up" if report.aborted else ""),
        highlight=False,
        soft_wrap=True,
    )
    if report.feed_key is None:
        return
    if settings.acl == "private":
        link = guarded(lambda: s3.presigned_url(settings, report.feed_key or ""))
        app.console.print(
            f"feed (private; this link works for {settings.presign_expires_s} s, to check "
            f"the upload; listeners use feed.base_url): {link}",
            highlight=False,
            soft_wrap=True,
        )
    elif bible.feed.base_url:
        app.console.print(
            f"feed: {bible.feed.base_url.rstrip('/')}/{bible.feed.file}",
            highlight=False,
            soft_wrap=True,
        )
