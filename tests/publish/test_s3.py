"""Publishing to S3-compatible storage, against a real S3 server on loopback (moto's, over HTTP):
the objects' content, types, headers and ACL; nothing uploaded twice; the feed last, after every
file it links is in the bucket; errors that say what to fix and never show a secret."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from castline.config import Show, load_show
from castline.errors import PublishError
from castline.publish import s3
from tests.conftest import EXAMPLE
from tests.publish.s3_server import (
    BASE_URL,
    EPISODE,
    EXPECTED,
    PREFIX,
    PUBLIC,
    Credentials,
    S3Server,
    make_published,
    running,
    sha256,
    write_show,
)

pytestmark = pytest.mark.slow  # the server is a subprocess, and so are the CLI's runs


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running(tmp_path_factory.mktemp("s3")) as started:
        yield started


@pytest.fixture(autouse=True)
def no_server_tracebacks(server: S3Server) -> Iterator[None]:
    yield
    assert server.tracebacks() == ""


@pytest.fixture
def bucket(server: S3Server) -> str:
    return server.new_bucket()


@pytest.fixture
def aws(server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process publishes as the publisher, and sees no other AWS settings."""
    for variable in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(variable)
    for variable, value in server.env(server.publisher, tmp_path).items():
        if variable.startswith("AWS_"):
            monkeypatch.setenv(variable, value)


@pytest.fixture
def show(tmp_path: Path, server: S3Server, bucket: str, aws: None) -> Path:
    path = write_show(tmp_path / "show", server, bucket)
    make_published(path.parent / "episodes")
    return path


def publish(show_path: Path, **options: bool) -> s3.PublishReport:
    return s3.publish_show(load_show(show_path), show_path.parent, **options)


def test_publishing_mirrors_the_public_files_with_their_types_headers_acl_and_hash(
    show: Path, server: S3Server, bucket: str
) -> None:
    report = publish(show)

    objects = server.keys(bucket)
    assert set(objects) == EXPECTED
    assert sorted(report.uploaded) == sorted(EXPECTED) and report.unchanged == []
    root = show.parent / "episodes"
    client = server.client()
    for name, kind in {**PUBLIC, "feed.xml": "application/rss+xml; charset=utf-8"}.items():
        head = objects[f"{PREFIX}/{name}"]
        assert head["ContentType"] == kind, name
        assert head["Metadata"]["sha256"] == sha256(root / name), name
        cache = "public, max-age=300" if name == "feed.xml" else "public, max-age=604800"
        assert head["CacheControl"] == cache, name
        stored = client.get_object(Bucket=bucket, Key=f"{PREFIX}/{name}")["Body"].read()
        assert stored == (root / name).read_bytes(), name
        grants = client.get_object_acl(Bucket=bucket, Key=f"{PREFIX}/{name}")["Grants"]
        assert {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"} in [
            g["Grantee"] for g in grants if g["Permission"] == "READ"
        ], name


def test_a_private_target_grants_nobody_else_and_takes_its_own_cache_headers(
    tmp_path: Path, server: S3Server, bucket: str, aws: None
) -> None:
    settings = (
        "  acl: private\n  cache_control:\n    media: 'public, max-age=31536000, immutable'\n"
        "    feed: no-cache\n"
    )
    path = write_show(tmp_path / "show", server, bucket, publish=settings)
    make_published(path.parent / "episodes")

    publish(path)

    client = server.client()
    for key, head in server.keys(bucket).items():
        grants = client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
        assert [g["Grantee"].get("Type") for g in grants] == ["CanonicalUser"], key
        feed = key.endswith("feed.xml")
        assert head["CacheControl"] == (
            "no-cache" if feed else "public, max-age=31536000, immutable"
        )
    link = s3.presigned_url(load_show(path).publish, f"{PREFIX}/feed.xml")
    assert "X-Amz-Expires=3600" in link and server.publisher.secret_key not in link


def test_a_second_publish_uploads_nothing(show: Path, server: S3Server, bucket: str) -> None:
    publish(show)
    before = server.keys(bucket)
    mark = server.mark()

    again = publish(show)

    assert again.uploaded == [] and sorted(again.unchanged) == sorted(EXPECTED)
    writes = [r for r in server.requests(bucket, mark) if r.method in {"PUT", "POST", "DELETE"}]
    assert writes == []
    assert {k: h["LastModified"] for k, h in server.keys(bucket).items()} == {
        k: h["LastModified"] for k, h in before.items()
    }


def test_a_changed_file_or_header_is_uploaded_again_and_nothing_else(
    show: Path, server: S3Server, bucket: str, tmp_path: Path
) -> None:
    publish(show)
    notes = show.parent / "episodes" / EPISODE / "show-notes.html"
    notes.write_text("<p>corrected</p>")

    changed = publish(show)

    assert changed.uploaded == [f"{PREFIX}/{EPISODE}/show-notes.html"]
    head = server.keys(bucket)[f"{PREFIX}/{EPISODE}/show-notes.html"]
    assert head["Metadata"]["sha256"] == sha256(notes)
    # a new cache header for the feed: only the feed goes up again
    path = write_show(show.parent, server, bucket, publish="  cache_control: {feed: no-cache}\n")
    assert publish(path).uploaded == [f"{PREFIX}/feed.xml"]
    assert sorted(publish(path, force=True).uploaded) == sorted(EXPECTED)


def test_the_feed_goes_up_last_after_every_file_it_links_is_verified(
    show: Path, server: S3Server, bucket: str
) -> None:
    mark = server.mark()

    publish(show)

    requests = server.requests(bucket, mark)
    feed_key = f"{PREFIX}/feed.xml"
    writes = [r for r in requests if r.method == "PUT" and r.key]
    assert writes[-1].key == feed_key and [r.key for r in writes].count(feed_key) == 1
    feed_at = requests.index(writes[-1])
    verified = {r.key for r in requests[:feed_at] if r.method == "HEAD" and r.status == 200}
    last_media = max(i for i, r in enumerate(requests) if r.method == "PUT" and r.key != feed_key)
    verified_after = {r.key for r in requests[last_media:feed_at] if r.method == "HEAD"}
    assert EXPECTED - {feed_key} <= verified
    assert EXPECTED - {feed_key} <= verified_after | {requests[last_media].key}


def test_a_large_file_goes_up_in_parts(
    tmp_path: Path, server: S3Server, bucket: str, aws: None
) -> None:
    path = write_show(tmp_path / "show", server, bucket)
    make_published(path.parent / "episodes", mp3_bytes=s3.PART_BYTES * 2 + 1234)
    mark = server.mark()

    publish(path)

    mp3 = f"{PREFIX}/{EPISODE}/episode.mp3"
    parts = [r for r in server.requests(bucket, mark) if r.key == mp3 and "partNumber" in r.query]
    assert len(parts) == 3
    local = path.parent / "episodes" / EPISODE / "episode.mp3"
    assert server.keys(bucket)[mp3]["Metadata"]["sha256"] == sha256(local)
    body = server.client().get_object(Bucket=bucket, Key=mp3)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha256(local)


def test_a_feed_that_links_files_on_this_machine_is_refused_before_any_upload(
    tmp_path: Path, server: S3Server, bucket: str, aws: None
) -> None:
    path = write_show(tmp_path / "show", server, bucket, base_url="")
    root = path.parent / "episodes"
    make_published(root, base=root.resolve().as_uri())
    mark = server.mark()

    with pytest.raises(PublishError, match=r"feed\.base_url") as caught:
        publish(path)

    assert "file://" in str(caught.value) and "castline feed" in str(caught.value)
    assert server.requests(bucket, mark) == [] and server.keys(bucket) == {}


def test_a_feed_written_for_another_base_url_is_refused(
    show: Path, server: S3Server, bucket: str
) -> None:
    path = write_show(show.parent, server, bucket, base_url="https://new.example.org/heat")

    with pytest.raises(PublishError, match=r"changed since") as caught:
        publish(path)

    assert f"written for {BASE_URL}/feed.xml" in str(caught.value)
    assert "castline feed" in str(caught.value) and server.keys(bucket) == {}


def test_a_feed_linking_a_file_that_is_nowhere_is_not_uploaded(
    show: Path, server: S3Server, bucket: str
) -> None:
    (show.parent / "episodes" / EPISODE / "chapters.json").unlink()

    with pytest.raises(PublishError, match=r"chapters\.json") as caught:
        publish(show)

    assert caught.value.key == f"{PREFIX}/{EPISODE}/chapters.json"
    assert "nothing was uploaded" in str(caught.value) and server.keys(bucket) == {}


def test_a_show_whose_target_is_local_uploads_nothing(tmp_path: Path) -> None:
    target = tmp_path / "show" / "show.yaml"
    target.parent.mkdir()
    target.write_text((EXAMPLE / "show.yaml").read_text())

    done = _cli(["publish", str(target)], os.environ.copy())

    assert done.returncode == 0, done.stderr
    assert "publish.target is local" in done.stdout


def _cli(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "castline", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_uploads_and_says_where(
    show: Path, server: S3Server, bucket: str, tmp_path: Path
) -> None:
    env = server.env(server.publisher, tmp_path) | {"CASTLINE_HOME": str(tmp_path / "home")}

    first = _cli(["publish", str(show)], env)
    again = _cli(["publish", str(show)], env)

    assert first.returncode == 0, first.stderr
    assert f"s3://{bucket}/{PREFIX}: {len(EXPECTED)} uploaded, 0 already there" in first.stdout
    assert f"feed: {BASE_URL}/feed.xml" in first.stdout
    assert f"0 uploaded, {len(EXPECTED)} already there" in again.stdout
    assert "Traceback" not in first.stderr + again.stderr


# Errors: typed, saying what to fix, never showing a secret


def _error(show_path: Path) -> PublishError:
    with pytest.raises(PublishError) as caught:
        publish(show_path)
    return caught.value


def _no_secret(message: str, server: S3Server) -> None:
    for secret in (server.publisher.secret_key, server.reader.secret_key, "wrong-secret"):
        assert secret not in message
    assert server.publisher.access_key not in message


def test_a_wrong_endpoint_says_it_cannot_reach_it(
    tmp_path: Path, server: S3Server, bucket: str, aws: None
) -> None:
    path = write_show(tmp_path / "show", server, bucket)
    make_published(path.parent / "episodes")
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path.write_text(path.read_text().replace(server.url, f"http://127.0.0.1:{port}"))

    error = _error(path)

    assert f"cannot reach http://127.0.0.1:{port}" in str(error)
    assert "publish.endpoint_url" in str(error) and error.bucket == bucket
    _no_secret(str(error), server)


def test_a_missing_bucket_is_named(tmp_path: Path, server: S3Server, aws: None) -> None:
    path = write_show(tmp_path / "show", server, "no-such-pods")
    make_published(path.parent / "episodes")

    error = _error(path)

    assert "bucket no-such-pods does not exist" in str(error) and "(NoSuchBucket)" in str(error)
    assert "publish.bucket" in str(error)


@pytest.mark.parametrize(
    ("who", "expected", "fix"),
    [
        ("wrong secret", "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"),
        ("unknown key", "InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"),
        ("reader", "AccessDenied", "s3:PutObject"),
        ("nobody", "no complete AWS credentials", "AWS_ACCESS_KEY_ID"),
    ],
)
def test_credentials_that_do_not_work_are_explained_without_the_secret(
    who: str,
    expected: str,
    fix: str,
    tmp_path: Path,
    server: S3Server,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials = {
        "wrong secret": Credentials(server.publisher.access_key, "wrong-secret"),
        "unknown key": Credentials("AKIAUNKNOWN000000000", "wrong-secret"),
        "reader": server.reader,
        "nobody": None,
    }[who]
    for variable in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(variable)
    for variable, value in server.env(credentials, tmp_path).items():
        if variable.startswith("AWS_"):
            monkeypatch.setenv(variable, value)
    path = write_show(tmp_path / "show", server, bucket)
    make_published(path.parent / "episodes")

    error = _error(path)

    assert expected in str(error) and fix in str(error)
    assert error.bucket == bucket
    _no_secret(str(error), server)
    assert f"{PREFIX}/feed.xml" not in server.keys(bucket)


def test_the_cli_renders_a_publish_error_as_a_message(
    show: Path, server: S3Server, tmp_path: Path
) -> None:
    env = server.env(Credentials(server.publisher.access_key, "wrong-secret"), tmp_path)

    done = _cli(["publish", str(show)], env | {"CASTLINE_HOME": str(tmp_path / "home")})

    assert done.returncode == 1
    assert "error:" in done.stderr and "SignatureDoesNotMatch" in done.stderr
    assert "Traceback" not in done.stderr and "wrong-secret" not in done.stdout + done.stderr


def test_the_show_bible_keeps_credentials_out(tmp_path: Path) -> None:
    from castline.errors import ShowFileError

    path = tmp_path / "show.yaml"
    path.write_text(
        (EXAMPLE / "show.yaml").read_text()
        + "\npublish:\n  target: s3\n  bucket: pods\n  aws_secret_access_key: s3cr3t-value\n"
    )

    with pytest.raises(ShowFileError, match="unknown key 'aws_secret_access_key'") as caught:
        load_show(path)

    assert "s3cr3t-value" not in str(caught.value)


def test_an_s3_target_needs_a_bucket_and_a_clean_prefix() -> None:
    from pydantic import ValidationError

    from castline.config import Publish

    with pytest.raises(ValidationError, match=r"needs publish\.bucket"):
        Publish(target="s3")
    with pytest.raises(ValidationError, match="not a bucket name"):
        Publish(target="s3", bucket="Pods_Bucket")
    with pytest.raises(ValidationError, match=r"'\.\.' part"):
        Publish(target="s3", bucket="pods", prefix="a/../b")
    assert Publish(target="s3", bucket="pods", prefix="/a/b/").prefix == "a/b"
    assert Show.model_fields["publish"].default_factory is not None
