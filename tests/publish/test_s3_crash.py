"""SIGKILL an upload to a real S3 server on loopback, at chosen points, then publish again: the
bucket ends with exactly the final objects, the second attempt uploads exactly what was
missing, no partial object is ever visible, and the feed goes up last. Both for `castline
publish` and for an episode run whose upload is a durable step that `castline resume` finishes."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from castline.config import load_show
from castline.publish import s3
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.publish.s3_server import (
    EPISODE,
    EXPECTED,
    PREFIX,
    S3Server,
    killing_command,
    make_published,
    running,
    sha256,
    write_show,
)

pytestmark = pytest.mark.slow
FEED_KEY = f"{PREFIX}/feed.xml"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running(tmp_path_factory.mktemp("s3")) as started:
        yield started


@pytest.fixture(autouse=True)
def no_server_tracebacks(server: S3Server) -> Iterator[None]:
    yield
    assert server.tracebacks() == ""


def _run(
    command: list[str], env: dict[str, str], *, killed: bool
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if killed:
        assert done.returncode == -9, done.stdout[-2000:] + done.stderr[-2000:]
    else:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done


def _castline(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "castline", *arguments]


def _puts(server: S3Server, bucket: str, since: int) -> list[str]:
    """The keys of the objects written since `since`, in order: single PUTs and completed
    multipart uploads (each once, however many parts it had)."""
    return [
        r.key
        for r in server.requests(bucket, since)
        if r.status == 200
        and r.key
        and (
            (r.method == "PUT" and "partNumber" not in r.query)
            or (r.method == "POST" and r.query.startswith("uploadId"))
        )
    ]


def _check_final(server: S3Server, bucket: str, root: Path, expected: set[str]) -> None:
    """Exactly the expected objects, each the local file's content, and no upload pending."""
    client = server.client()
    objects = server.keys(bucket)
    assert set(objects) == expected
    for key, head in objects.items():
        local = root / key.removeprefix(f"{PREFIX}/")
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == local.read_bytes(), key
        assert head["Metadata"]["sha256"] == sha256(local), key
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("after", [1, 4, 9])
def test_a_publish_killed_after_some_objects_is_finished_by_publishing_again(
    after: int, tmp_path: Path, server: S3Server
) -> None:
    bucket = server.new_bucket()
    show = write_show(tmp_path / "show", server, bucket)
    root = show.parent / "episodes"
    make_published(root)
    env = server.env(server.publisher, tmp_path) | {"CASTLINE_HOME": str(tmp_path / "home")}
    command, kill = killing_command("PutObject", after, "publish", str(show))

    _run(command, env | kill, killed=True)

    at_kill = set(server.keys(bucket))
    assert len(at_kill) >= after and FEED_KEY not in at_kill  # the feed never goes up early
    for key, head in server.keys(bucket).items():  # what is visible is whole
        assert head["Metadata"]["sha256"] == sha256(root / key.removeprefix(f"{PREFIX}/"))
    mark = server.mark()

    done = _run(_castline("publish", str(show)), env, killed=False)

    again = _puts(server, bucket, mark)
    assert sorted(again) == sorted(EXPECTED - at_kill)  # exactly what was missing, once each
    assert again[-1] == FEED_KEY
    assert f"{len(EXPECTED - at_kill)} uploaded, {len(at_kill)} already there" in done.stdout
    _check_final(server, bucket, root, EXPECTED)


def test_a_publish_killed_inside_a_multipart_upload_leaves_no_partial_object(
    tmp_path: Path, server: S3Server
) -> None:
    bucket = server.new_bucket()
    show = write_show(tmp_path / "show", server, bucket)
    root = show.parent / "episodes"
    make_published(root, mp3_bytes=s3.PART_BYTES * 2 + 4321)  # three parts
    mp3 = f"{PREFIX}/{EPISODE}/episode.mp3"
    env = server.env(server.publisher, tmp_path) | {"CASTLINE_HOME": str(tmp_path / "home")}
    command, kill = killing_command("UploadPart", 1, "publish", str(show))

    _run(command, env | kill, killed=True)

    visible = server.keys(bucket)
    assert mp3 not in visible and FEED_KEY not in visible
    pending = server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in pending] == [mp3]  # its parts exist, but no object
    mark = server.mark()

    done = _run(_castline("publish", str(show)), env, killed=False)

    assert "1 interrupted upload(s) cleaned up" in done.stdout
    aborted = [r for r in server.requests(bucket, mark) if r.method == "DELETE"]
    assert [(r.key, r.status) for r in aborted] == [(mp3, 204)]
    again = _puts(server, bucket, mark)
    assert sorted(again) == sorted(EXPECTED - set(visible)) and again[-1] == FEED_KEY
    _check_final(server, bucket, root, EXPECTED)


def _produce_show(directory: Path, server: S3Server, bucket: str) -> Path:
    directory.mkdir(parents=True)
    path = write_show(directory, server, bucket)
    path.write_text(path.read_text().replace("target_minutes: 20", "target_minutes: 6"))
    return path


def test_an_episode_run_killed_while_uploading_is_finished_by_resume(
    tmp_path: Path, server: S3Server
) -> None:
    """The upload is a durable step after the local files are written: a run killed inside it
    resumes there, uploads only what is missing, and the feed it publishes links only objects
    that are in the bucket."""
    bucket = server.new_bucket()
    show = _produce_show(tmp_path / "show", server, bucket)
    home = tmp_path / "home"
    env = server.env(server.publisher, tmp_path) | {"CASTLINE_HOME": str(home)}
    produce = ["produce", str(show), "--topic", EXAMPLE_TOPIC]
    for source in EXAMPLE_SOURCES[:2]:
        produce += ["--source", str(source)]
    command, kill = killing_command("PutObject", 3, *produce)

    _run(command, env | kill, killed=True)

    at_kill = set(server.keys(bucket))
    assert len(at_kill) >= 3 and FEED_KEY not in at_kill
    with sqlite3.connect(home / "castline.db") as connection:
        [(run_id, status)] = connection.execute("SELECT id, status FROM runs").fetchall()
    assert status == "running"
    mark = server.mark()

    _run(_castline("resume", run_id), env, killed=False)

    root = show.parent / "episodes"
    [episode] = [p for p in root.iterdir() if p.is_dir()]
    settings = load_show(show).publish
    expected = {
        s3.key_for(settings, p.resolve().relative_to(root.resolve()).as_posix())
        for p in s3.episode_files(root, episode)
        if not s3.excluded(settings, p.name)
    }
    assert {f"{PREFIX}/{episode.name}/{n}" for n in ("episode.mp3", "episode.vtt")} <= expected
    assert FEED_KEY in expected and f"{PREFIX}/{episode.name}/episode.json" not in expected
    again = _puts(server, bucket, mark)
    assert sorted(again) == sorted(expected - at_kill) and again[-1] == FEED_KEY
    _check_final(server, bucket, root, expected)
    feed = server.client().get_object(Bucket=bucket, Key=FEED_KEY)["Body"].read()
    links = [e.attrib["url"] for e in ET.fromstring(feed).iter() if "url" in e.attrib]
    assert links and all(link.startswith("https://cdn.example.org/heat/") for link in links)
    assert {f"{PREFIX}/{link.split('/heat/', 1)[1]}" for link in links} <= set(server.keys(bucket))
    with sqlite3.connect(home / "castline.db") as connection:
        [(status,)] = connection.execute("SELECT status FROM runs").fetchall()
        uploaded = connection.execute(
            "SELECT message FROM events WHERE kind = 'uploaded'"
        ).fetchall()
    assert status == "completed"
    assert [m for (m,) in uploaded] == [
        f"{len(expected - at_kill)} files uploaded to s3://{bucket}/{PREFIX}, "
        f"{len(at_kill)} already there"
    ]
    assert re.search(r"\bAKIA|aws_secret", feed.decode() + str(uploaded)) is None


def test_an_episode_run_whose_upload_fails_says_why_and_resume_uploads_it(
    tmp_path: Path, server: S3Server
) -> None:
    """A bucket that does not exist yet: the run fails in its upload step with the typed error's
    message, its local files complete; once the bucket exists, `castline resume` finishes the
    upload without producing the episode again."""
    bucket = f"later-{tmp_path.name[-20:].lower().replace('_', '-')}".rstrip("-")
    show = _produce_show(tmp_path / "show", server, bucket)
    home = tmp_path / "home"
    env = server.env(server.publisher, tmp_path) | {"CASTLINE_HOME": str(home)}
    produce = ["produce", str(show), "--topic", EXAMPLE_TOPIC]
    for source in EXAMPLE_SOURCES[:2]:
        produce += ["--source", str(source)]

    failed = subprocess.run(
        _castline(*produce), env=env, capture_output=True, text=True, timeout=300
    )

    assert failed.returncode == 1, failed.stdout[-2000:] + failed.stderr[-2000:]
    output = " ".join((failed.stdout + failed.stderr).split())
    assert f"bucket {bucket} does not exist" in output and "Traceback" not in output
    with sqlite3.connect(home / "castline.db") as connection:
        [(run_id, status, error)] = connection.execute(
            "SELECT id, status, error FROM runs"
        ).fetchall()
        [(published,)] = connection.execute(
            "SELECT count(*) FROM events WHERE kind = 'published'"
        ).fetchall()
    assert status == "failed" and "PublishError" in error and "resuming uploads" in error
    assert f"castline resume {run_id}" in output
    root = show.parent / "episodes"
    [episode] = [p for p in root.iterdir() if p.is_dir()]
    assert (episode / "episode.mp3").is_file() and (root / "feed.xml").is_file()
    server.client().create_bucket(Bucket=bucket)

    _run(_castline("resume", run_id), env, killed=False)

    with sqlite3.connect(home / "castline.db") as connection:
        [(status,)] = connection.execute("SELECT status FROM runs").fetchall()
        [(published_after,)] = connection.execute(
            "SELECT count(*) FROM events WHERE kind = 'published'"
        ).fetchall()
    assert status == "completed" and published_after == published == 1
    objects = server.keys(bucket)
    assert FEED_KEY in objects and f"{PREFIX}/{episode.name}/episode.mp3" in objects
    assert _puts(server, bucket, 0)[-1] == FEED_KEY
