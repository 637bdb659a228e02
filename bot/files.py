"""A child's file as staff may see it: under a neutral name, and a picture without its metadata.

A file's own name often says who sent it ("Zlata_Kovalenko_7B_IMG_…_GPS.jpg"), and a picture sent
as a file keeps its EXIF: the camera, the time, the place it was taken. So before a file reaches a
staff chat its name is replaced ("photo-1.jpg", "file-2.pdf") and a picture is drawn again from its
pixels alone, turned upright first, with nothing else carried over (rule 1).
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# What a file is, by its first bytes: (magic, extension). Only these extensions are ever shown.
KINDS = (
    (b"\xff\xd8\xff", "jpg"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"%PDF", "pdf"), (b"PK\x03\x04", "zip"),
    (b"RIFF", "webp"), (b"\x1aE\xdf\xa3", "webm"), (b"OggS", "ogg"), (b"ID3", "mp3"), (b"\xd0\xcf\x11\xe0", "doc"),
)
PICTURES = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "png", "TIFF": "png", "MPO": "jpg"}
MAX_PIXELS = 60_000_000  # a decompression bomb is not drawn again (it is not shown either)


@dataclass(frozen=True, slots=True)
class CleanFile:
    data: bytes
    name: str  # neutral: "photo-1.jpg", "file-2.pdf"
    picture: bool


def clean(data: bytes, stem: str) -> CleanFile:
    """The file under the neutral name `stem` (e.g. "file-2") plus its extension; a picture drawn
    again without metadata and named "photo-N" instead."""
    picture = _redrawn(data)
    if picture is not None:
        redrawn, extension = picture
        return CleanFile(redrawn, f"{stem.replace('file', 'photo', 1)}.{extension}", True)
    extension = next((ext for magic, ext in KINDS if data.startswith(magic)), "bin")
    return CleanFile(data, f"{stem}.{extension}", False)


def _redrawn(data: bytes) -> tuple[bytes, str] | None:
    """A picture's pixels saved again (EXIF, GPS, XMP, ICC and comments left behind), or None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in PICTURES or image.width * image.height > MAX_PIXELS:
                return None
            extension = PICTURES[image.format]
            upright = ImageOps.exif_transpose(image)  # turned as the camera meant, before EXIF goes
            mode = "RGB" if extension == "jpg" or "A" not in upright.getbands() and upright.mode != "P" else "RGBA"
            pixels = upright.convert(mode)
            # A new image with the same pixels and nothing else: no EXIF, GPS, XMP, ICC, text or comment.
            fresh = Image.new(mode, pixels.size)
            fresh.paste(pixels)
            out = io.BytesIO()
            fresh.save(out, format={"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "PNG"}[extension],
                       **({"quality": 92} if extension in ("jpg", "webp") else {}))
            return out.getvalue(), "png" if extension == "gif" else extension
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
