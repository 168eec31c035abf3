"""Streamed multipart uploads: the video goes straight to a file in the service's temporary folder.

Starlette's form parser spools files to the system temp folder and reads the whole body before the
handler runs; here the size limit is enforced while streaming (and up front from Content-Length), and
nothing is written outside ``tmp_dir``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from adtag.serve.errors import ApiError

FIELD_LIMIT = 1024  # bytes for a non-file form field
FORM_FIELDS = {"id", "top_k", "language", "thumbnails"}
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,6}$")


@dataclass
class Upload:
    path: Path
    filename: str
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def boundary_of(content_type: str) -> bytes:
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(415, "expected multipart/form-data with a boundary, or application/json")
    return params[b"boundary"]


class _Receiver:
    """python-multipart callbacks: one file part named 'video', a few small text fields."""

    def __init__(self, tmp_dir: Path, limit: int) -> None:
        self.tmp_dir, self.limit = tmp_dir, limit
        self.upload: Upload | None = None
        self.fields: dict[str, str] = {}
        self._fh = None
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._name = ""
        self._buf = bytearray()

    # header callbacks
    def on_part_begin(self) -> None:
        self._headers, self._name, self._buf = {}, "", bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._hname.lower()] = self._hvalue
        self._hname, self._hvalue = b"", b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if self._name == "video":
            if self.upload is not None:
                raise ApiError(422, "video: send one file per request (use /v1/tag/batch for many)")
            filename = Path(params.get(b"filename", b"upload").decode("utf-8", "replace")).name or "upload"
            suffix = m.group(0) if (m := _SUFFIX.search(filename)) else ".bin"
            fd, name = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=self.tmp_dir)
            self._fh = os.fdopen(fd, "wb")
            self.upload = Upload(Path(name), filename)
        elif self._name not in FORM_FIELDS:
            raise ApiError(
                422, f"{self._name or '(unnamed)'}: unknown form field; known: video, {', '.join(sorted(FORM_FIELDS))}"
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._fh is not None and self.upload is not None:
            self._fh.write(data[start:end])
            self.upload.size += end - start
        else:
            self._buf += data[start:end]
            if len(self._buf) > FIELD_LIMIT:
                raise ApiError(422, f"{self._name}: form field longer than {FIELD_LIMIT} bytes")

    def on_part_end(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        elif self._name:
            self.fields[self._name] = self._buf.decode("utf-8", "replace")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


async def receive_upload(
    stream: AsyncIterator[bytes], content_type: str, content_length: int | None, tmp_dir: Path, limit: int
) -> Upload:
    """Stream a multipart body into ``tmp_dir``; 413 as soon as it passes ``limit`` bytes."""
    if content_length is not None and content_length > limit:
        raise ApiError(413, f"upload of {content_length} bytes is over the limit of {limit} bytes")
    receiver = _Receiver(tmp_dir, limit)
    names = ("part_begin", "part_data", "part_end", "header_field", "header_value", "header_end", "headers_finished")
    parser = MultipartParser(boundary_of(content_type), {f"on_{n}": getattr(receiver, f"on_{n}") for n in names})
    total = 0
    try:
        async for chunk in stream:
            total += len(chunk)
            if total > limit:
                raise ApiError(413, f"upload is over the limit of {limit} bytes")
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        receiver.close()
        if receiver.upload is not None:
            receiver.upload.delete()
        raise
    except Exception as exc:  # python-multipart raises its own errors for a malformed body
        receiver.close()
        if receiver.upload is not None:
            receiver.upload.delete()
        raise ApiError(422, f"malformed multipart body ({exc})") from None
    receiver.close()
    if receiver.upload is None:
        raise ApiError(422, "video: a file field named 'video' is required")
    receiver.upload.fields = receiver.fields
    if receiver.upload.size == 0:
        receiver.upload.delete()
        raise ApiError(422, "video: the uploaded file is empty")
    return receiver.upload
