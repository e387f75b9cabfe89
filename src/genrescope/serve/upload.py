"""Uploads streamed into the server's private folder, never past the size limit.

A multipart body is parsed as it arrives (python-multipart's streaming parser) and the
file part is written straight to ``<private dir>/<random hex><ext>``: the client's file
name is kept for display only and never touches a path; only its extension is kept,
and only when it is a known audio extension, so libsndfile can sniff the format. The
upload stops, and the partial file is removed, as soon as it passes the limit.

A body has deadlines (a longest pause between two chunks, a longest total time), a size
limit that counts every byte (form fields and anything after the final boundary too), at
most :data:`MAX_PARTS` parts, and a share of a byte budget for all uploads in flight
(:class:`PendingBytes`), so slow or endless bodies cannot hold the server.
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

from genrescope.audio.decode import AUDIO_EXTENSIONS
from genrescope.errors import GenrescopeError

try:
    from python_multipart.multipart import MultipartParser, parse_options_header
except ModuleNotFoundError:  # python-multipart < 0.0.13 names its module multipart
    from multipart.multipart import MultipartParser, parse_options_header

#: Bytes gathered in memory before one write to disk (in a worker thread).
_WRITE_BYTES = 1 << 20
#: Largest form field other than the file (model name, top).
_MAX_FIELD_BYTES = 1024
#: Most parts in one form (the file and a few fields; repeated names count).
MAX_PARTS = 8


class UploadError(GenrescopeError):
    """The request body is not a usable upload; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class UploadAborted(UploadError):
    """The client closed the connection before the body was in (logged in one line, not answered)."""


class PendingBytes:
    """Bytes of the uploads being received or waiting, against one budget (uploads are removed
    from worker threads too, hence the lock)."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            if self.used + n > self.limit:
                raise UploadError("the server is receiving too much data at once; try again in a moment", 503)
            self.used += n

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


@dataclass
class Upload:
    """One uploaded file in the private folder."""

    path: Path
    filename: str
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    release: Callable[[], None] | None = None  # gives the body's bytes back to the budget

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        release, self.release = self.release, None
        if release is not None:
            release()


def client_name(raw: str | None) -> str:
    """The client's file name made safe to show: base name only, printable, at most 200 characters."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    name = name.strip()[:200]
    return name or "upload"


def safe_suffix(name: str) -> str:
    """The name's extension if it is a known audio one (lower case), else ``""``."""
    ext = os.path.splitext(name)[1].lower()
    return ext if ext in AUDIO_EXTENSIONS else ""


def new_upload_path(upload_dir: Path, suffix: str) -> Path:
    return upload_dir / f"{secrets.token_hex(16)}{suffix}"


_EXT_VALUE = re.compile(rb"""(?:^|;)\s*filename\*\s*=\s*"?([^;"\s]*)""", re.IGNORECASE)


def rfc5987_filename(disposition: bytes) -> str | None:
    """The ``filename*=charset'lang'percent-encoded`` name of a Content-Disposition (RFC 5987/6266), if any."""
    m = _EXT_VALUE.search(disposition)
    if not m:
        return None
    charset, _, rest = m.group(1).decode("latin-1").partition("'")
    _, _, encoded = rest.partition("'")
    charset = charset.lower() if charset.lower() in ("utf-8", "iso-8859-1") else "utf-8"
    return unquote(encoded, encoding=charset, errors="replace")


class _Parts:
    """python-multipart callbacks: the file part goes to disk, other fields to a dict."""

    def __init__(self, upload_dir: Path, file_field: str, max_bytes: int):
        self.upload_dir, self.file_field, self.max_bytes = upload_dir, file_field, max_bytes
        self.upload: Upload | None = None
        self.fd: int | None = None
        self.pending = bytearray()  # file bytes not yet written
        self.fields: dict[str, str] = {}
        self._hname = self._hvalue = b""
        self._disposition = b""
        self._field: bytearray | None = None
        self._field_name = ""
        self._in_file = False
        self.parts = 0

    def callbacks(self) -> dict:
        return {"on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished}

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadError(f"too many form parts (at most {MAX_PARTS})")
        self._disposition, self._in_file, self._field = b"", False, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def on_header_end(self) -> None:
        if self._hname.strip().lower() == b"content-disposition":
            self._disposition = self._hvalue
        self._hname = self._hvalue = b""

    def on_headers_finished(self) -> None:
        _, opts = parse_options_header(self._disposition)
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        extended = rfc5987_filename(self._disposition)  # python-multipart drops filename*=
        if name == self.file_field and (b"filename" in opts or extended is not None):
            if self.upload is not None:
                raise UploadError("send one file per request")
            filename = client_name(extended if extended is not None else opts[b"filename"].decode("utf-8", "replace"))
            path = new_upload_path(self.upload_dir, safe_suffix(filename))
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.upload = Upload(path, filename)
            self._in_file = True
        else:
            self._field_name, self._field = name, bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.upload.size += end - start
            if self.upload.size > self.max_bytes:
                raise UploadError(f"the file is larger than the limit of {_mib(self.max_bytes)}", 413)
            self.pending += data[start:end]
        elif self._field is not None:
            self._field += data[start:end]
            if len(self._field) > _MAX_FIELD_BYTES:
                raise UploadError(f"form field {self._field_name!r} is too long")

    def on_part_end(self) -> None:
        if self._field is not None and not self._in_file:
            self.fields[self._field_name] = self._field.decode("utf-8", "replace")
        self._in_file, self._field = False, None

    def take_pending(self) -> bytes:
        out = bytes(self.pending)
        self.pending.clear()
        return out

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MiB"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@dataclass
class BodyLimits:
    """How long and how large one request body may be.

    Attributes
    ----------
    max_body : int
        Bytes of the whole body (413 above).
    idle_s, timeout_s : float
        Longest pause between two chunks, and longest whole body, in seconds (408 after).
    pending : PendingBytes
        The budget of every upload in flight (503 when it is spent).
    """

    max_body: int
    idle_s: float
    timeout_s: float
    pending: PendingBytes
    taken: int = 0  # bytes this body holds of ``pending``

    def release(self) -> None:
        self.pending.give(self.taken)
        self.taken = 0


async def _body_chunks(request, limits: BodyLimits):
    """The request body's chunks, within the limits' deadlines and size; raises UploadError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.timeout_s
    received, more = 0, True
    while more:
        wait = min(limits.idle_s, deadline - loop.time())
        try:
            if wait <= 0:
                raise asyncio.TimeoutError
            message = await asyncio.wait_for(request.receive(), wait)
        except asyncio.TimeoutError:
            late = loop.time() >= deadline - 1e-3
            raise UploadError(f"the upload took longer than {limits.timeout_s:g} s" if late else
                              f"the upload paused for more than {limits.idle_s:g} s", 408) from None
        if message["type"] == "http.disconnect":
            raise UploadAborted("the client closed the connection during the upload", 400)
        chunk, more = message.get("body", b""), message.get("more_body", False)
        received += len(chunk)
        if received > limits.max_body:
            raise UploadError(f"the request is larger than the limit of {_mib(limits.max_body)}", 413)
        if chunk:
            limits.pending.take(len(chunk))
            limits.taken += len(chunk)
            yield chunk


async def receive_upload(request, upload_dir: Path, *, max_bytes: int, limits: BodyLimits,
                         file_field: str = "file") -> Upload:
    """Stream a ``multipart/form-data`` request's file into ``upload_dir``.

    Parameters
    ----------
    request : starlette.requests.Request
        The incoming request.
    upload_dir : Path
        The private folder (mode 0700) the file is written to, under a random name.
    max_bytes : int
        Largest file accepted; the upload is cut off, and the file removed, past it.
    limits : BodyLimits
        Deadlines and size of the whole body; the returned upload gives its bytes back to
        ``limits.pending`` when it is removed.
    file_field : str
        Name of the form field that holds the file.

    Returns
    -------
    Upload
        The written file, the client's (display) name and the other form fields.

    Raises
    ------
    UploadError
        Not multipart, no file, a malformed body or too many parts (422), a file or body over
        its limit (413), a body too slow (408), no budget left (503); :class:`UploadAborted`
        when the client leaves.
    """
    from anyio import to_thread

    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in opts:
        raise UploadError(f"send the audio as multipart/form-data with the file in the field {file_field!r}", 415)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limits.max_body:
        raise UploadError(f"the file is larger than the limit of {_mib(max_bytes)}", 413)
    parts = _Parts(upload_dir, file_field, max_bytes)
    parser = MultipartParser(opts[b"boundary"], parts.callbacks())
    try:
        async for chunk in _body_chunks(request, limits):
            try:
                parser.write(chunk)
            except UploadError:
                raise
            except Exception as e:  # python-multipart raises its own error types for bad bodies
                raise UploadError(f"malformed multipart body ({e})") from e
            if len(parts.pending) >= _WRITE_BYTES:
                await to_thread.run_sync(_write_all, parts.fd, parts.take_pending())
        parser.finalize()
        if parts.upload is None:
            raise UploadError(f"no file in the form field {file_field!r}")
        if parts.pending:
            await to_thread.run_sync(_write_all, parts.fd, parts.take_pending())
    except BaseException:
        parts.close()
        if parts.upload is not None:
            parts.upload.remove()
        limits.release()
        raise
    parts.close()
    parts.upload.fields = parts.fields
    parts.upload.release = limits.release
    return parts.upload
