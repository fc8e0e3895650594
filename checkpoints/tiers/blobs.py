"""Blob storage for large channel values: a local folder (default) or S3.

Objects are content-addressed (`{prefix}/sha256/{digest}`), written before the database
row that points at them, and checked against the digest the row keeps before their
bytes are deserialised: storage outside the database is untrusted. A value already
stored is not uploaded again; its modification time is refreshed instead, so orphan
collection, which only removes objects older than a grace period that no row
references, cannot race with a put that is about to reference one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger("checkpoints.blobs")


class BlobStoreError(RuntimeError):
    """Blob storage failed or returned bytes that do not match their digest."""


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Content-addressed object storage."""

    url: str

    def key_for(self, digest: str) -> str:
        return f"sha256/{digest}"

    def put(self, data: bytes) -> str:
        """Store `data`, returning its key. Raises `BlobStoreError` on failure."""
        key = self.key_for(digest_of(data))
        try:
            if not self._touch(key):
                self._write(key, data)
        except BlobStoreError:
            raise
        except Exception as exc:
            raise BlobStoreError(f"Could not write blob {key} to {self.url}: {exc}") from exc
        return key

    def get(self, key: str) -> bytes:
        """Read the object `key` and check it against the digest in its key."""
        try:
            data = self._read(key)
        except BlobStoreError:
            raise
        except Exception as exc:
            raise BlobStoreError(f"Could not read blob {key} from {self.url}: {exc}") from exc
        expected = key.rsplit("/", 1)[-1]
        if digest_of(data) != expected:
            raise BlobStoreError(
                f"Blob {key} in {self.url} does not match its digest; refusing to deserialise it"
            )
        return data

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        if len(keys) <= 1:
            return {k: self.get(k) for k in keys}
        with ThreadPoolExecutor(max_workers=min(8, len(keys))) as pool:
            return dict(zip(keys, pool.map(self.get, keys)))

    def delete_unreferenced(self, keys: Iterable[str], referenced: set[str], *, grace: float) -> int:
        """Delete the objects among `keys` not in `referenced` and older than `grace` s."""
        deleted = 0
        cutoff = time.time() - grace
        for key in set(keys) - referenced:
            mtime = self._mtime(key)
            if mtime is not None and mtime <= cutoff:
                self._delete(key)
                deleted += 1
        return deleted

    # Backend operations.
    def _write(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def _touch(self, key: str) -> bool:
        """Refresh an existing object's modification time; False if it does not exist."""
        raise NotImplementedError

    def _read(self, key: str) -> bytes:
        raise NotImplementedError

    def _delete(self, key: str) -> None:
        raise NotImplementedError

    def _mtime(self, key: str) -> float | None:
        raise NotImplementedError

    def iter_keys(self) -> Iterator[tuple[str, float]]:
        """Every `(key, modification time)` in the store."""
        raise NotImplementedError


class FileBlobStore(BlobStore):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / key

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half an object.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def _touch(self, key: str) -> bool:
        try:
            os.utime(self._path(key))
            return True
        except FileNotFoundError:
            return False

    def _read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobStoreError(f"Blob {key} is missing from {self.url}") from None

    def _delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _mtime(self, key: str) -> float | None:
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            return None

    def iter_keys(self) -> Iterator[tuple[str, float]]:
        base = self.root / "sha256"
        if not base.exists():
            return
        for path in base.iterdir():
            if not path.name.startswith(".tmp-"):
                yield f"sha256/{path.name}", path.stat().st_mtime


class S3BlobStore(BlobStore):
    """S3 or any S3-compatible endpoint; endpoint, region and credentials come from the
    usual AWS variables (`AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`, ...)."""

    def __init__(self, bucket: str, prefix: str = "", *, client=None, timeout: float = 5.0) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}"
        self.client = client or boto3.client(
            "s3",
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        )

    def _object(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data)

    def _touch(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        # A server-side copy onto itself refreshes LastModified without moving the bytes.
        self.client.copy_object(
            Bucket=self.bucket,
            Key=self._object(key),
            CopySource={"Bucket": self.bucket, "Key": self._object(key)},
            MetadataDirective="REPLACE",
        )
        return True

    def _read(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobStoreError(f"Blob {key} is missing from {self.url}") from None
            raise

    def _delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))

    def _mtime(self, key: str) -> float | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        except ClientError:
            return None
        return head["LastModified"].timestamp()

    def iter_keys(self) -> Iterator[tuple[str, float]]:
        paginator = self.client.get_paginator("list_objects_v2")
        start = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(self.prefix) + 1 :] if self.prefix else obj["Key"]
                yield key, obj["LastModified"].timestamp()


def blob_store_from_url(url: str) -> BlobStore:
    """`file:///abs/path`, `file://relative/path` or `s3://bucket/prefix`."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileBlobStore((parsed.netloc + parsed.path) if parsed.netloc else parsed.path)
    if parsed.scheme == "s3":
        return S3BlobStore(parsed.netloc, parsed.path)
    raise ValueError(f"Unsupported blob store URL {url!r}: use file://... or s3://bucket/prefix")
