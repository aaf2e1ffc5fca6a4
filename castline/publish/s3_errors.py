"""How an S3 publish failure is told: what went wrong, where, and how to fix it. The SDK's
errors become a `PublishError` naming the bucket and key; no message carries a credential, and an
endpoint is shown without any user or password in its URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from castline.config import Publish
from castline.errors import PublishError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


def _where(settings: Publish) -> str:
    if not settings.endpoint_url:
        return f"AWS S3 ({settings.region or 'the configured region'})"
    parts = urlsplit(settings.endpoint_url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host  # never user:password@
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_PERMISSIONS = (
    "s3:ListBucket, s3:GetObject, s3:PutObject (s3:PutObjectAcl for acl public-read, "
    "s3:ListBucketMultipartUploads and s3:AbortMultipartUpload to clean up after a crash)"
)
_HINTS = {
    "NoSuchBucket": "bucket {bucket} does not exist at {where}: create it, or correct "
    "publish.bucket (and publish.endpoint_url)",
    "InvalidAccessKeyId": "{where} does not know the access key castline was given: check "
    "AWS_ACCESS_KEY_ID or AWS_PROFILE (keys belong to one server: check publish.endpoint_url)",
    "SignatureDoesNotMatch": "{where} rejected the request signature, so the secret key does not "
    "match the access key: check AWS_SECRET_ACCESS_KEY or the profile's secret",
    "AccessDenied": "access to s3://{bucket}/{key} was denied: the credentials need "
    + _PERMISSIONS,
    "AccessControlListNotSupported": "bucket {bucket} has ACLs disabled (object ownership "
    "'bucket owner enforced'): set publish.acl: private and serve the objects through a bucket "
    "policy or a CDN at feed.base_url",
    "PermanentRedirect": "bucket {bucket} is in another region: set publish.region to its region",
    "AuthorizationHeaderMalformed": "bucket {bucket} is in another region: set publish.region "
    "to its region",
    "ExpiredToken": "the session token has expired: renew the credentials (e.g. aws sso login)",
    "InvalidToken": "the session token is invalid: renew the credentials (e.g. aws sso login)",
    "RequestTimeTooSkewed": "this machine's clock is off by more than 15 minutes: sync it",
}
_STATUS = {"403": "AccessDenied", "301": "PermanentRedirect", "400": "AuthorizationHeaderMalformed"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def client_error(settings: Publish, key: str, exc: ClientError) -> PublishError:
    code = error_code(exc)
    where = _where(settings)
    template = _HINTS.get(_STATUS.get(code, code))
    if template is None:
        message = str(exc.response.get("Error", {}).get("Message", ""))[:200]
        text = f"{where} answered {code or 'an error'}" + (f": {message}" if message else "")
    else:
        text = template.format(bucket=settings.bucket, key=key, where=where)
    return PublishError(
        f"publishing s3://{settings.bucket}/{key}: {text} ({code})", bucket=settings.bucket, key=key
    )


@contextmanager
def translated(settings: Publish, key: str) -> Iterator[None]:
    """Turn the SDK's errors into a PublishError that says how to fix them."""
    from boto3.exceptions import S3UploadFailedError
    from botocore import exceptions as sdk

    bucket = settings.bucket
    try:
        yield
    except sdk.ClientError as exc:
        raise client_error(settings, key, exc) from None
    except S3UploadFailedError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, sdk.ClientError):
            raise client_error(settings, key, cause) from None
        raise PublishError(
            f"uploading s3://{bucket}/{key} failed: {exc}", bucket=bucket, key=key
        ) from None
    except (sdk.NoCredentialsError, sdk.PartialCredentialsError):
        raise PublishError(
            f"no complete AWS credentials for s3://{bucket}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or run where a role is attached). castline "
            "reads them only from the AWS environment and config files, never the show bible",
            bucket=bucket,
            key=key,
        ) from None
    except (sdk.EndpointConnectionError, sdk.ConnectTimeoutError, sdk.ConnectionClosedError):
        raise PublishError(
            f"cannot reach {_where(settings)} for s3://{bucket}/{key}: check publish.endpoint_url "
            "(scheme, host and port) and that the server is running",
            bucket=bucket,
            key=key,
        ) from None
    except sdk.NoRegionError:
        raise PublishError(
            f"no region for s3://{bucket}: set publish.region (or AWS_REGION)", bucket=bucket
        ) from None
    except sdk.BotoCoreError as exc:
        raise PublishError(
            f"publishing s3://{bucket}/{key} at {_where(settings)} failed: {exc}",
            bucket=bucket,
            key=key,
        ) from None
