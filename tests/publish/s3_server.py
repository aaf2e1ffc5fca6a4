"""A real S3-compatible server on loopback for the publish tests: moto's standalone server
(`moto[server]`) in a subprocess on a free 127.0.0.1 port, spoken to over HTTP by unmodified
boto3, with IAM authentication on, so that a wrong secret or a key without permission is refused
as S3 refuses it.

Two IAM users are made while the server still takes unauthenticated calls: `publisher` may do
anything in S3, `reader` may only list and read. Every request the server answers is a line of
its log, in order: the tests read upload order there. Without moto (or boto3) these tests are
skipped, except on CI (`CI=true`), where they fail.

`killing_command` runs the `castline` CLI in a process that SIGKILLs itself once the S3 operation
it names has completed N times: a crash at a chosen point of an upload, in the real code.
`make_published` and `write_show` lay out a show's published folder and a show bible that
uploads it to the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote, urlsplit

import pytest

from tests.conftest import EXAMPLE

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

REGION = "us-east-1"
ALL_S3 = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
READ_ONLY = {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": "*"}
IAM_SETUP_CALLS = 6  # CreateUser, PutUserPolicy, CreateAccessKey for each of the two users
_REQUEST = re.compile(
    r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) (\S+) HTTP/[0-9.]+(?:\x1b\[[0-9;]*m)*" (\d{3})'
)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI is set: the S3 publish tests must run)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class Request:
    """One request the server answered, as its log line says."""

    method: str
    bucket: str
    key: str
    query: str
    status: int


@dataclass
class S3Server:
    url: str
    log: Path
    publisher: Credentials
    reader: Credentials

    def client(self, credentials: Credentials | None = None) -> S3Client:
        import boto3

        who = credentials or self.publisher
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=who.access_key,
            aws_secret_access_key=who.secret_key,
        )

    def new_bucket(self) -> str:
        """A fresh bucket, so that each test sees only its own objects and requests."""
        name = f"pods-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def mark(self) -> int:
        """Where the log is now: `requests(since=mark)` reads what came after."""
        return self.log.stat().st_size

    def requests(self, bucket: str, since: int = 0) -> list[Request]:
        with self.log.open("rb") as handle:
            handle.seek(since)
            text = handle.read().decode("utf-8", "replace")
        found = []
        for method, target, status in _REQUEST.findall(text):
            parts = urlsplit(target)
            name, _, key = unquote(parts.path).lstrip("/").partition("/")
            if name == bucket:
                found.append(Request(method, name, key, parts.query, int(status)))
        return found

    def keys(self, bucket: str) -> dict[str, dict[str, Any]]:
        """Every object in the bucket: its key, with its HEAD."""
        s3 = self.client()
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: dict(s3.head_object(Bucket=bucket, Key=o["Key"])) for o in listed}

    def env(self, credentials: Credentials | None, home: Path) -> dict[str, str]:
        """The AWS environment of a process that publishes with `credentials` (none: no
        credentials anywhere), isolated from this machine's AWS files and metadata service."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environ |= {
            "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if credentials is not None:
            environ["AWS_ACCESS_KEY_ID"] = credentials.access_key
            environ["AWS_SECRET_ACCESS_KEY"] = credentials.secret_key
        return environ

    def tracebacks(self) -> str:
        text = self.log.read_text("utf-8", "replace")
        return text[text.find("Traceback") :] if "Traceback" in text else ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(directory: Path) -> Iterator[S3Server]:
    """Start the server, make its users, and stop it after; its log is `directory/s3.log`."""
    try:
        import boto3
        import moto.server  # noqa: F401 - the server's own dependencies (flask) come with it
    except ImportError as exc:
        _unavailable(f"moto[server] and boto3 are needed for the S3 tests ({exc})")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "s3.log"
    environ = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(IAM_SETUP_CALLS)}
    environ = {k: v for k, v in environ.items() if not k.startswith("AWS_")}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environ,
        )
    try:
        _wait_for(port, process)
        iam = boto3.session.Session().client(
            "iam",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        users = {}
        for name, statement in (("publisher", ALL_S3), ("reader", READ_ONLY)):
            iam.create_user(UserName=name)
            iam.put_user_policy(
                UserName=name,
                PolicyName="s3",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            )
            key = iam.create_access_key(UserName=name)["AccessKey"]
            users[name] = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        yield S3Server(url, log, users["publisher"], users["reader"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the S3 server did not start listening within 30 s")


# Run the CLI, SIGKILLed by itself when an S3 operation has completed N times: the operation's
# response has been read, so the server holds exactly what those calls made.
_KILLER = """
import os, signal, sys, threading
import boto3.session

operation, after = os.environ["S3_KILL_ON"], int(os.environ["S3_KILL_AFTER"])
lock, done = threading.Lock(), [0]
make = boto3.session.Session.client


def client(self, *args, **kwargs):
    made = make(self, *args, **kwargs)

    def completed(**_):
        with lock:
            done[0] += 1
            if done[0] >= after:
                os.kill(os.getpid(), signal.SIGKILL)

    made.meta.events.register(f"after-call.s3.{operation}", completed)
    return made


boto3.session.Session.client = client
from castline.cli import main

sys.argv = ["castline", *sys.argv[1:]]
main()
"""


def killing_command(
    operation: str, after: int, *arguments: str
) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment of a `castline ARGUMENTS` that dies by SIGKILL
    once `operation` (PutObject, UploadPart, ...) has completed `after` times."""
    command = [sys.executable, "-c", _KILLER, *arguments]
    return command, {"S3_KILL_ON": operation, "S3_KILL_AFTER": str(after)}


# A show's published folder, as castline lays it out, and a show bible that uploads it

PREFIX = "shows/heat"
BASE_URL = "https://cdn.example.org/heat"
EPISODE = "ep-1"
PUBLIC = {  # what a listener's app may fetch: uploaded, with these content types
    "artwork.png": "image/png",
    f"{EPISODE}/episode.mp3": "audio/mpeg",
    f"{EPISODE}/episode.vtt": "text/vtt; charset=utf-8",
    f"{EPISODE}/episode.srt": "application/x-subrip",
    f"{EPISODE}/transcript.json": "application/json",
    f"{EPISODE}/chapters.json": "application/json",
    f"{EPISODE}/show-notes.html": "text/html; charset=utf-8",
    f"{EPISODE}/show-notes.md": "text/markdown; charset=utf-8",
    f"{EPISODE}/transcript.txt": "text/plain; charset=utf-8",
    f"{EPISODE}/script.md": "text/markdown; charset=utf-8",
}
PRIVATE = [  # the run's own records, a temporary file, a rejected draft: never uploaded
    f"{EPISODE}/episode.json",
    f"{EPISODE}/cost-report.json",
    f"{EPISODE}/quality-report.json",
    f"{EPISODE}/report.md",
    f"{EPISODE}/timeline.json",
    f"{EPISODE}/.episode.mp3.x1y2",
    "draft-2/episode.json",
    "draft-2/script.md",
]
FEED = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:podcast="https://podcastindex.org/namespace/1.0"
     xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
  <title>Heat Check</title><link>{{base}}/</link>
  <atom:link href="{{base}}/feed.xml" rel="self" type="application/rss+xml"/>
  <image><url>{{base}}/artwork.png</url><title>Heat Check</title><link>{{base}}/</link></image>
  <itunes:image href="{{base}}/artwork.png"/>
  <item>
    <title>One</title><guid isPermaLink="false">ep1</guid>
    <enclosure url="{{base}}/{EPISODE}/episode.mp3" length="1" type="audio/mpeg"/>
    <podcast:transcript url="{{base}}/{EPISODE}/episode.vtt" type="text/vtt"/>
    <podcast:transcript url="{{base}}/{EPISODE}/episode.srt" type="application/x-subrip"/>
    <podcast:chapters url="{{base}}/{EPISODE}/chapters.json" type="application/json+chapters"/>
  </item>
</channel>
</rss>
"""


EXPECTED = {f"{PREFIX}/{name}" for name in [*PUBLIC, "feed.xml"]}


def write_show(
    directory: Path, server: S3Server, bucket: str, *, publish: str = "", base_url: str = BASE_URL
) -> Path:
    """The example show bible with an S3 target on the test server."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "show.yaml"
    feed = f"feed:\n  base_url: {base_url}\n" if base_url else ""
    path.write_text(
        (EXAMPLE / "show.yaml").read_text()
        + f"\n{feed}publish:\n  target: s3\n  bucket: {bucket}\n  prefix: /{PREFIX}/\n"
        f"  endpoint_url: {server.url}\n  region: {REGION}\n{publish}"
    )
    return path


def make_published(root: Path, *, mp3_bytes: int = 150_000, base: str = BASE_URL) -> None:
    """A show's published folder laid out as castline writes it: one accepted episode in the
    feed, one rejected draft, the artwork and the feed beside them."""
    body = {name: f"{name}\n".encode() * 40 for name in [*PUBLIC, *PRIVATE]}
    body[f"{EPISODE}/episode.mp3"] = os.urandom(mp3_bytes)
    body[f"{EPISODE}/episode.json"] = b'{"accepted": true}'
    body["draft-2/episode.json"] = b'{"accepted": false}'
    for name, content in body.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (root / "feed.xml").write_text(FEED.replace("{base}", base))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
