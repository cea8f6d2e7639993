"""Broken and odd image files, built in memory: what users upload."""

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _save(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _jpeg() -> bytes:
    gradient = np.linspace(0, 255, 64 * 48 * 3).reshape(48, 64, 3).astype(np.uint8)
    return _save(Image.fromarray(gradient), "JPEG", quality=90)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming 10 gigapixels: tiny file, huge image."""
    small = _save(Image.new("1", (1, 1)), "PNG")
    ihdr_at = small.index(b"IHDR")
    fields = struct.pack(">II", width, height) + small[ihdr_at + 12 : ihdr_at + 17]
    chunk = b"IHDR" + fields
    patched = small[:ihdr_at] + chunk + struct.pack(">I", zlib.crc32(chunk)) + small[ihdr_at + 4 + 13 + 4 :]
    return patched


def _exif_rotated_jpeg() -> bytes:
    """40 wide, 20 high, left half red; EXIF orientation 6 (turn 90 degrees clockwise)."""
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6
    return _save(img, "JPEG", exif=exif.tobytes(), quality=95)


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _multipage_tiff() -> bytes:
    pages = [Image.new("RGB", (16, 16), colour) for colour in ((0, 255, 0), (255, 0, 255))]
    return _save(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def _palette_with_transparency() -> bytes:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (0, 0, 4, 8))
    return _save(img, "PNG", transparency=0)


def _sixteen_bit_png() -> bytes:
    values = np.full((4, 4), 32768, dtype=np.uint16)
    values[0, 0] = 65535
    return _save(Image.fromarray(values), "PNG")


# name -> (bytes, what must come out: "ok" or a phrase of the error)
def corpus() -> dict[str, tuple[bytes, str]]:
    jpeg = _jpeg()
    png = _save(Image.new("RGB", (20, 20), (10, 200, 30)), "PNG")
    return {
        "empty.jpg": (b"", "empty"),
        "random.png": (np.random.default_rng(0).bytes(4096), "not an image"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "damaged or incomplete"),
        "header-only.png": (b"\x89PNG\r\n\x1a\n", "not an image"),
        "truncated.png": (png[:60], "damaged or incomplete"),
        "bomb.png": (bomb_png(), "decompression bomb"),  # Pillow's own limit
        "bomb-81-megapixels.png": (bomb_png(9000, 9000), "megapixel limit"),  # ours, lower
        "one-pixel.png": (_save(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), "ok"),
        "long-strip.png": (_save(Image.new("RGB", (10000, 10), (50, 60, 70)), "PNG"), "ok"),
        "grey.png": (_save(Image.new("L", (12, 12), 77), "PNG"), "ok"),
        "grey-alpha.png": (_save(Image.new("LA", (12, 12), (77, 0)), "PNG"), "ok"),
        "rgba-transparent.png": (_save(Image.new("RGBA", (12, 12), (0, 0, 0, 0)), "PNG"), "ok"),
        "palette-transparency.png": (_palette_with_transparency(), "ok"),
        "cmyk.jpg": (_save(Image.new("CMYK", (12, 12), (0, 255, 255, 0)), "JPEG"), "ok"),
        "sixteen-bit.png": (_sixteen_bit_png(), "ok"),
        "float.tiff": (_save(Image.fromarray(np.full((6, 6), 0.5, dtype=np.float32)), "TIFF"), "ok"),
        "animated.gif": (_animated_gif(), "ok"),
        "multipage.tiff": (_multipage_tiff(), "ok"),
        "exif-rotated.jpg": (_exif_rotated_jpeg(), "ok"),
        "drawing.svg.png": (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
            "not an image",
        ),
        "notes.jpg": (b"these are my holiday notes, not a photo\n" * 20, "not an image"),
        "photo.webp": (_save(Image.new("RGB", (30, 20), (200, 100, 0)), "WEBP"), "ok"),
        "photo.bmp": (_save(Image.new("RGB", (30, 20), (0, 100, 200)), "BMP"), "ok"),
        "jpeg-named.gif": (jpeg, "ok"),
        "large.jpg": (_save(Image.new("RGB", (4000, 3000), (120, 130, 140)), "JPEG", quality=80), "ok"),
    }
