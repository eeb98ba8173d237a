"""Fixtures of the case-file tests: real files of every accepted kind, made here."""

from __future__ import annotations

import io
import zipfile

import pytest


def pdf_bytes(pages: int = 2, text: str = "Evidence page") -> bytes:
    """A real PDF of `pages` pages (WeasyPrint, as the dossier is made)."""
    from weasyprint import HTML

    body = "".join(f'<p style="page-break-after: always">{text} {i + 1}</p>' for i in range(pages))
    return HTML(string=f"<html><body>{body}</body></html>").write_pdf()


def png_bytes(size: tuple[int, int] = (600, 400), colour: str = "#cc3333") -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).rectangle(
        (50, 50, size[0] - 50, size[1] - 50), outline="#ffffff", width=8
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (320, 240), "#3366cc").save(out, "JPEG")
    return out.getvalue()


def docx_bytes() -> bytes:
    """A minimal Word (OOXML) document, laid out as Word writes one."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org'
            '/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="'
            'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            "</Types>",
        )
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        z.writestr("word/document.xml", '<?xml version="1.0"?><w:document/>')
    return out.getvalue()


@pytest.fixture
def files() -> dict[str, bytes]:
    return {
        "pdf": pdf_bytes(),
        "png": png_bytes(),
        "jpeg": jpeg_bytes(),
        "docx": docx_bytes(),
        "exe": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200,
        "html": b"<html><script>alert(1)</script></html>",
    }
