"""What a file really is (by its bytes, never its name), whether the case file accepts it, and
how its bytes are stored.

The content type comes from libmagic (python-magic over Debian's libmagic1), reading the start
of the file: an executable renamed `证据.pdf` is refused. Accepted: PDF, JPEG, PNG and Office
documents (Word, Excel, PowerPoint, old and OOXML; OpenDocument, as WPS and LibreOffice write
them). The size limit is `ATTACHMENT_MAX_BYTES` (default 20 MB).
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import IO

import magic
from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import storages
from django.utils.translation import gettext as _

from mediation.core.text import has_visible_text

# Sniffed type → (extension of the stored object, label).
ALLOWED: dict[str, tuple[str, str]] = {
    "application/pdf": (".pdf", "PDF"),
    "image/jpeg": (".jpg", "JPEG"),
    "image/png": (".png", "PNG"),
    "application/msword": (".doc", "Word"),
    "application/vnd.ms-excel": (".xls", "Excel"),
    "application/vnd.ms-powerpoint": (".ppt", "PowerPoint"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx", "Word"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx", "Excel"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        ".pptx",
        "PowerPoint",
    ),
    "application/vnd.oasis.opendocument.text": (".odt", "OpenDocument"),
    "application/vnd.oasis.opendocument.spreadsheet": (".ods", "OpenDocument"),
}
SNIFF_BYTES = 64 * 1024
STORAGE_PREFIX = "casefiles"


class Refused(ValueError):
    """The file is not accepted; `str(exc)` is the user message."""


@dataclass(frozen=True)
class Checked:
    content_type: str
    size: int
    sha256: str
    pages: int | None


def max_bytes() -> int:
    return int(settings.ATTACHMENT_MAX_BYTES)


def sniff(head: bytes) -> str:
    """The MIME type libmagic finds in the first bytes of a file."""
    return magic.from_buffer(head, mime=True) or "application/octet-stream"


def check(upload: IO[bytes], *, size: int) -> Checked:
    """Size, real type and digest of an uploaded file; raises `Refused` with the reason."""
    limit = max_bytes()
    if size <= 0:
        raise Refused(_("文件为空。"))
    if size > limit:
        raise Refused(
            _("文件过大：%(size).1f MB，上限为 %(limit).0f MB。")
            % {"size": size / 1_000_000, "limit": limit / 1_000_000}
        )
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    content_type = sniff(head)
    if content_type not in ALLOWED:
        raise Refused(
            _("不接受此类文件（识别为 %(type)s）：只能上传 PDF、JPEG、PNG 图片或 Office 文档。")
            % {"type": content_type}
        )
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in iter(lambda: upload.read(1024 * 1024), b""):
        digest.update(chunk)
    pages = None
    if content_type == "application/pdf":
        pages = pdf_pages(upload)
    elif content_type.startswith("image/"):
        check_image(upload)
    upload.seek(0)
    return Checked(content_type=content_type, size=size, sha256=digest.hexdigest(), pages=pages)


def pdf_pages(upload: IO[bytes]) -> int:
    """The page count of a PDF; refuses one that cannot be read (damaged or encrypted)."""
    import pypdf

    upload.seek(0)
    try:
        reader = pypdf.PdfReader(io.BytesIO(upload.read()))
        if reader.is_encrypted:
            raise Refused(_("PDF 文件已加密，请上传未加密的文件。"))
        return len(reader.pages)
    except Refused:
        raise
    except Exception as exc:  # pypdf raises many kinds for a damaged file
        raise Refused(_("PDF 文件已损坏，无法读取。")) from exc


def check_image(upload: IO[bytes]) -> None:
    """Refuses an image Pillow cannot decode (a truncated or forged file)."""
    from PIL import Image

    upload.seek(0)
    try:
        with Image.open(upload) as image:
            image.verify()
    except Exception as exc:
        raise Refused(_("图片文件已损坏，无法读取。")) from exc


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_name(name: str) -> str:
    """The user's file name as shown: NFC, without control or bidi-override characters
    (U+202E would show `文件‮fdp.exe` as `文件exe.pdf`), without a path, at most 200
    characters. Never used as a storage name."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(
        ch for ch in _CONTROL.sub("", text) if unicodedata.category(ch) not in ("Cf", "Cs", "Co")
    )
    text = text.strip().strip(".")
    if not has_visible_text(text):
        return _("未命名文件")
    if len(text) > 200:
        stem, dot, ext = text.rpartition(".")
        text = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else text[:200]
    return text or _("未命名文件")


def storage():
    return storages["default"]


def store(upload: IO[bytes], *, case_id: int, content_type: str) -> str:
    """Write the bytes under a name the system chooses (`casefiles/<case>/<uuid>.<ext>`)."""
    ext = ALLOWED[content_type][0]
    name = f"{STORAGE_PREFIX}/{case_id}/{uuid.uuid4().hex}{ext}"
    upload.seek(0)
    saved = storage().save(name, File(upload, name=name))
    return saved


def open_stored(name: str) -> IO[bytes]:
    return storage().open(name, "rb")


def read_stored(name: str) -> bytes:
    with open_stored(name) as fh:
        return fh.read()
