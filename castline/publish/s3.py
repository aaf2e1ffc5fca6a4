"""Publishing to S3-compatible object storage: the show's published folder mirrored under a bucket
and prefix, every file first and the feed last.

- An object appears under its key only when its upload completes (one PUT, or the completion of a
  multipart upload), so a crash never leaves part of a file visible; the parts an interrupted
  multipart upload left behind are aborted by the next publish.
- Each object carries the sha256 of its content in its metadata: an object that already has the
  file's hash and headers is not uploaded again, so publishing twice uploads nothing, and
  publishing after a crash uploads exactly what is missing.
- The feed goes last, once every file it links is in the bucket and every file uploaded is
  verified there (HEAD): a listener's app never finds an episode whose audio is not there yet.

Credentials come from the AWS chain (environment, config files, a role), never from the show
bible, and no message names them. boto3 is imported when an upload is made (`castline[s3]`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import mimetypes
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel

from castline.config import Publish, Show
from castline.errors import PublishError
from castline.publish.s3_errors import error_code, translated

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

SHA256_METADATA = "sha256"  # x-amz-meta-sha256: the content's hash, how a re-upload is skipped
ACL_METADATA = "acl"  # the ACL it was uploaded with: a changed `publish.acl` uploads again
THREADS = 4
PART_BYTES = 8 * 1024 * 1024  # files above this go up in parts (multipart upload)
FEED_TYPE = "application/rss+xml; charset=utf-8"
CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".srt": "application/x-subrip",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
_ITUNES_IMAGE = "{http://www.itunes.com/dtds/podcast-1.0.dtd}image"
_ATOM_LINK = "{http://www.w3.org/2005/Atom}link"


@dataclass(frozen=True)
class Item:
    """One file to be mirrored: where it is, its key, and the headers it is served with."""

    key: str
    path: Path
    sha256: str
    size: int
    content_type: str
    cache_control: str


class PublishReport(BaseModel):
    """What a publish did: keys uploaded now, keys already there with the same content."""

    bucket: str
    prefix: str
    uploaded: list[str] = []
    unchanged: list[str] = []
    aborted: list[str] = []  # keys whose interrupted multipart uploads were cleaned up
    feed_key: str | None = None

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def content_type(path: Path, *, feed: bool = False) -> str:
    if feed:
        return FEED_TYPE
    known = CONTENT_TYPES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def key_for(settings: Publish, relative: str) -> str:
    return f"{settings.prefix}/{relative}" if settings.prefix else relative


def excluded(settings: Publish, relative: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(relative, p) for p in settings.exclude)


def publish(
    settings: Publish,
    root: Path,
    files: Iterable[Path],
    feed: Path | None,
    *,
    base_url: str | None,
    force: bool = False,
    client: S3Client | None = None,
) -> PublishReport:
    """Mirror `files` (under `root`, the show's output_dir, less `publish.exclude`) and every file
    the feed links, then the feed. `force` uploads even what is already there."""
    bucket = _bucket(settings)
    root = root.resolve()
    linked = linked_files(feed, base_url) if feed is not None else []
    chosen = [p.resolve() for p in files if not excluded(settings, _relative(root, p, bucket))]
    chosen += [root / rel for rel in linked if (root / rel).is_file()]
    if feed is not None:
        chosen = [p for p in chosen if p != feed.resolve()]
    items = [_item(settings, root, path) for path in dict.fromkeys(chosen)]
    s3 = client or make_client(settings)
    existing = _listing(s3, settings)
    absent = [
        key_for(settings, rel)
        for rel in linked
        if not (root / rel).is_file() and key_for(settings, rel) not in existing
    ]
    if absent:
        raise PublishError(
            f"the feed links {len(absent)} file(s) that are neither in s3://{bucket} nor in "
            f"{root}, e.g. {absent[0]}; nothing was uploaded. Restore the episode's folder or "
            "rebuild the feed with `castline feed SHOW`, then publish again",
            bucket=bucket,
            key=absent[0],
        )
    feed_item = _item(settings, root, feed, feed=True) if feed is not None else None
    wanted = {i.key for i in items} | ({feed_item.key} if feed_item else set())
    report = PublishReport(bucket=bucket, prefix=settings.prefix)
    report.aborted = _abort_interrupted(s3, settings, wanted)
    # the ones already there were just verified by their HEAD; the others once uploaded
    current = _parallel(lambda i: not force and _is_current(s3, settings, i, existing), items)
    todo = [i for i, same in zip(items, current, strict=True) if not same]
    report.unchanged = [i.key for i, same in zip(items, current, strict=True) if same]
    _parallel(lambda i: _upload(s3, settings, i), todo)
    _parallel(lambda i: _verify(s3, settings, i), todo)
    report.uploaded = [i.key for i in todo]
    if feed_item is not None:  # last: every file it links is in the bucket, verified
        report.feed_key = feed_item.key
        if force or not _is_current(s3, settings, feed_item, existing):
            _upload(s3, settings, feed_item)
            report.uploaded.append(feed_item.key)
        else:
            report.unchanged.append(feed_item.key)
        _verify(s3, settings, feed_item)
    return report


def publish_show(
    show: Show, show_dir: Path, *, force: bool = False, client: S3Client | None = None
) -> PublishReport:
    """Upload a show's published folder (`castline publish`): what a crashed or failed upload
    left out, or everything again after the bucket was emptied or `force`."""
    root = (show_dir / show.output_dir).resolve()
    if not root.is_dir():
        raise PublishError(
            f"{root} does not exist: the show has published nothing yet; `castline produce` "
            "makes an episode",
            bucket=show.publish.bucket,
        )
    feed = feed_file(show, show_dir)
    base_url = show.feed.base_url
    files = show_files(root, feed, base_url)
    return publish(show.publish, root, files, feed, base_url=base_url, force=force, client=client)


def feed_file(show: Show, show_dir: Path) -> Path | None:
    """The show's feed, once written: `castline.publish.episode.feed_path`, without importing
    the feed writer (and all it needs) into `castline publish`."""
    path = (show_dir / show.output_dir / show.feed.file).resolve()
    return path if path.is_file() else None


def episode_files(root: Path, directory: Path) -> list[Path]:
    """A run's upload: its episode's folder, and the files beside the feed (the artwork)."""
    return _files_in(directory) + _files_in(root)


def show_files(root: Path, feed: Path | None, base_url: str | None) -> list[Path]:
    """`castline publish`'s upload: the files beside the feed, and the folders of the episodes
    that the feed lists or that were accepted; rejected drafts stay on this machine."""
    listed = (
        {(root / rel).parent.resolve() for rel in linked_files(feed, base_url)} if feed else set()
    )
    folders = [
        folder
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        if folder.resolve() in listed or _accepted(folder / "episode.json")
    ]
    return _files_in(root) + [path for folder in folders for path in _files_in(folder)]


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _accepted(record: Path) -> bool:
    try:
        return json.loads(record.read_text(encoding="utf-8")).get("accepted") is True
    except (OSError, ValueError, AttributeError):
        return False


def linked_files(feed: Path, base_url: str | None) -> list[str]:
    """The files under `base_url` the feed links (enclosures, transcripts, chapters, artwork),
    as paths relative to the published folder. A feed that links files on this machine
    (no `feed.base_url`) cannot be published."""
    try:
        channel = ET.parse(feed).getroot()
    except (ET.ParseError, OSError) as exc:
        raise PublishError(
            f"the feed {feed} cannot be read ({exc}); `castline feed SHOW` rebuilds it"
        ) from None
    links = [e.attrib["url"] for e in channel.iter() if "url" in e.attrib]
    links += [e.attrib["href"] for e in channel.iter(_ITUNES_IMAGE) if "href" in e.attrib]
    links += [(u.text or "").strip() for image in channel.iter("image") for u in image.iter("url")]
    local = [link for link in links if urlsplit(link).scheme == "file"]
    if local or base_url is None:
        raise PublishError(
            f"the feed {feed} links files on this machine"
            + (f" ({local[0]})" if local else "")
            + ": set feed.base_url in the show bible to the public address of the bucket's "
            "prefix (its website endpoint, or the CDN in front of it), rebuild the feed with "
            "`castline feed SHOW`, then publish again"
        )
    base = base_url.rstrip("/") + "/"
    selves = [e.attrib.get("href") for e in channel.iter(_ATOM_LINK) if e.get("rel") == "self"]
    if selves and selves[0] != base + feed.name:
        raise PublishError(
            f"the feed {feed} was written for {selves[0]}, not {base + feed.name} (feed.base_url "
            "changed since): rebuild it with `castline feed SHOW`, then publish again"
        )
    relative = [
        unquote(urlsplit(link[len(base) :]).path) for link in links if link.startswith(base)
    ]
    return list(dict.fromkeys(rel for rel in relative if rel and ".." not in rel.split("/")))


def make_client(settings: Publish) -> S3Client:
    """An S3 client for the target: the endpoint and region of the show bible, the credentials of
    the AWS chain; path-style addressing for S3-compatible servers."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise PublishError(
            "publish.target s3 needs the AWS SDK: pip install 'castline[s3]'",
            bucket=settings.bucket,
        ) from None
    options: dict[str, Any] = {
        "retries": {"mode": "standard", "max_attempts": 4},
        "connect_timeout": 10,
        "read_timeout": 120,
        "signature_version": "s3v4",  # what every region and S3-compatible server accepts
    }
    if settings.endpoint_url:
        options["s3"] = {"addressing_style": "path"}
    with translated(settings, ""):
        return boto3.session.Session().client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            config=Config(**options),
        )


def presigned_url(settings: Publish, key: str, client: S3Client | None = None) -> str:
    """A link to a private object that works for `publish.presign_expires_s`: for checking an
    upload, never for a feed (its links would stop working)."""
    s3 = client or make_client(settings)
    with translated(settings, key):
        return s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": _bucket(settings), "Key": key},
            ExpiresIn=settings.presign_expires_s,
        )


# Steps of a publish


def _bucket(settings: Publish) -> str:
    if settings.target != "s3" or settings.bucket is None:
        raise PublishError("the show's publish.target is not s3 with a bucket: nothing to upload")
    return settings.bucket


def _relative(root: Path, path: Path, bucket: str) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        raise PublishError(
            f"{path} is not inside the published folder {root}", bucket=bucket
        ) from None


def _item(settings: Publish, root: Path, path: Path, *, feed: bool = False) -> Item:
    relative = _relative(root, path, _bucket(settings))
    try:
        digest, size = _digest(path)
    except OSError as exc:
        raise PublishError(
            f"{path} cannot be read ({exc.strerror or exc}); publish again once it is back",
            bucket=settings.bucket,
            key=key_for(settings, relative),
        ) from None
    cache = settings.cache_control.feed if feed else settings.cache_control.media
    return Item(
        key_for(settings, relative), path, digest, size, content_type(path, feed=feed), cache
    )


def _digest(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return digest.hexdigest(), handle.tell()


def _listing(s3: S3Client, settings: Publish) -> set[str]:
    """The keys under the prefix; the first request, so it is where access problems show."""
    prefix = f"{settings.prefix}/" if settings.prefix else ""
    keys: set[str] = set()
    with translated(settings, prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=_bucket(settings), Prefix=prefix
        ):
            keys.update(entry["Key"] for entry in page.get("Contents", []) if "Key" in entry)
    return keys


def _abort_interrupted(s3: S3Client, settings: Publish, keys: set[str]) -> list[str]:
    """Abort the unfinished multipart uploads of the keys about to be published (a crash left
    them; S3 keeps, and bills, their parts until they are aborted). A server that does not let
    these be listed is left alone: the parts are never visible as objects."""
    from botocore.exceptions import ClientError

    bucket = _bucket(settings)
    aborted: list[str] = []
    with translated(settings, settings.prefix):  # what is not a refusal: connection errors
        try:
            pages = s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=bucket, Prefix=f"{settings.prefix}/" if settings.prefix else ""
            )
            uploads = [u for page in pages for u in page.get("Uploads", [])]
        except ClientError:
            return aborted
        for upload in uploads:
            key, upload_id = upload.get("Key"), upload.get("UploadId")
            if key in keys and upload_id:
                try:
                    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                except ClientError:  # not allowed, or already gone: its parts stay invisible
                    continue
                aborted.append(key)
    return aborted


def _remote(s3: S3Client, settings: Publish, key: str) -> dict[str, Any]:
    with translated(settings, key):
        return dict(s3.head_object(Bucket=_bucket(settings), Key=key))


def _is_current(s3: S3Client, settings: Publish, item: Item, existing: set[str]) -> bool:
    """Whether the bucket already serves this content, with these headers and this ACL."""
    if item.key not in existing:
        return False
    head = _remote(s3, settings, item.key)
    metadata = head.get("Metadata", {})
    return (
        metadata.get(SHA256_METADATA) == item.sha256
        and metadata.get(ACL_METADATA) == settings.acl
        and head.get("ContentLength") == item.size
        and head.get("ContentType") == item.content_type
        and head.get("CacheControl") == item.cache_control
    )


def _upload(s3: S3Client, settings: Publish, item: Item) -> None:
    from boto3.s3.transfer import TransferConfig

    extra: dict[str, Any] = {
        "ContentType": item.content_type,
        "CacheControl": item.cache_control,
        "Metadata": {SHA256_METADATA: item.sha256, ACL_METADATA: settings.acl},
    }
    if settings.acl == "public-read":
        extra["ACL"] = "public-read"
    transfer = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES)
    with translated(settings, item.key), item.path.open("rb") as handle:
        # hashed again from the handle that is sent: a file replaced since it was planned
        # would otherwise go up under the old file's hash
        if hashlib.file_digest(handle, "sha256").hexdigest() != item.sha256:
            raise PublishError(
                f"{item.path} changed while it was being published; publish again",
                bucket=settings.bucket,
                key=item.key,
            )
        handle.seek(0)
        s3.upload_fileobj(handle, _bucket(settings), item.key, ExtraArgs=extra, Config=transfer)


def _verify(s3: S3Client, settings: Publish, item: Item) -> None:
    from botocore.exceptions import ClientError

    head: dict[str, Any] | None
    with translated(settings, item.key):
        try:
            head = dict(s3.head_object(Bucket=_bucket(settings), Key=item.key))
        except ClientError as exc:
            if error_code(exc) not in {"404", "NoSuchKey", "NotFound"}:
                raise
            head = None
    found = head.get("Metadata", {}).get(SHA256_METADATA) if head else None
    if head is None or found != item.sha256 or head.get("ContentLength") != item.size:
        raise PublishError(
            f"s3://{settings.bucket}/{item.key} does not hold {item.path.name} after its upload "
            f"(sha256 {found or 'missing'}, expected {item.sha256}); another publisher may be "
            "writing the same prefix. The feed was not uploaded; publish again",
            bucket=settings.bucket,
            key=item.key,
        )


T = TypeVar("T")
R = TypeVar("R")


def _parallel(action: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`action` on each item, a few at a time, results in order. The first error stops the
    rest: those not started are not (a wrong key would otherwise be tried for every file)."""
    if len(items) <= 1:
        return [action(item) for item in items]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(action, item) for item in items]
        for future in as_completed(futures):
            error = future.exception()
            if error is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                raise error
    return [future.result() for future in futures]
