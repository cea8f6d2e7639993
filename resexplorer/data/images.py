"""Safe decoding of untrusted image uploads.

Every file either becomes an RGB image or raises UploadError with a message
that names it; `decode_many` keeps going past bad files. What is done, and
why:
- files over MAX_UPLOAD_BYTES are refused before Pillow sees them;
- images over MAX_PIXELS are refused from their header, before decoding
  (Pillow's decompression-bomb warning is turned into that error too);
- EXIF orientation is applied, so a phone photo stands the right way up;
- every mode becomes RGB: alpha composited on white, 16-bit and 32-bit
  integer images rescaled from their range (not clipped), CMYK, palette
  (with transparency) and greyscale converted;
- animated images (GIF, WebP, APNG) keep their first frame and multi-page
  TIFFs their first page, and say so;
- large photos are decoded at a reduced scale where the format allows
  (JPEG's draft mode), since the model sees 32x32 pixels anyway.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ResExplorerError

MAX_UPLOAD_BYTES = 30 * 1024 * 1024
UPLOAD_MB = MAX_UPLOAD_BYTES >> 20  # the same, as the pages' uploaders take it (they refuse more before it is sent)
MAX_PIXELS = 64_000_000  # a 64-megapixel photo; more is refused unread
PREVIEW_SIZE = 512  # longest side kept for display
EXIF_ORIENTATION = 0x0112
ACCEPTED = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")


def too_many_pixels(name: str, width: int, height: int) -> str | None:
    """Why an image of this size is refused unread, or None: one rule for
    uploads and data folders, checked against the header alone."""
    if width * height <= MAX_PIXELS:
        return None
    return (
        f"{name}: {width}x{height} pixels is over the {MAX_PIXELS // 1_000_000}-megapixel limit "
        "(a possible decompression bomb); not decoded"
    )


class UploadError(ResExplorerError, ValueError):
    """An upload that cannot become an image; the message names the file."""


@dataclass
class DecodedImage:
    name: str
    rgb: np.ndarray  # uint8 [H, W, 3], longest side at most PREVIEW_SIZE, for display
    square: np.ndarray  # uint8 [S, S, 3]: the centre square, S <= PREVIEW_SIZE, for the models
    original_size: tuple[int, int]  # (width, height) of the file, after EXIF rotation
    notes: list[str] = field(default_factory=list)  # what was done to it, for the UI

    def model_input(self, size: int = 32) -> np.ndarray:
        """uint8 [3, size, size]: the centre square, bicubic-resized (the
        CIFAR models see 32x32, as their training images were). The square
        was cut from the full decoded image, so thin images keep detail."""
        resized = Image.fromarray(self.square).resize((size, size), Image.Resampling.BICUBIC)
        return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1))

    def drawable_at(self, width: int) -> bool:
        """Whether the preview drawn `width` pixels wide is at least a pixel
        tall: a thin strip squeezed to nothing cannot be drawn."""
        height, wide = self.rgb.shape[:2]
        return height * width >= wide


def enlarged(image: np.ndarray, factor: int = 1) -> np.ndarray:
    """uint8 [3, H, W] (what the models see) -> [H*factor, W*factor, 3] to
    display, each pixel a factor x factor block: 32x32 pixels shown larger
    stay crisp instead of being smoothed by the browser."""
    return np.ascontiguousarray(image.transpose(1, 2, 0).repeat(factor, 0).repeat(factor, 1))


def _to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    mode = img.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        if mode == "F":
            top = max(float(values.max()), 1e-12)
        if mode == "I" and values.max() > 65535:
            top = float(values.max())
        notes.append(f"{mode} image rescaled from 0..{top:g} to 8 bits")
        return Image.fromarray(np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("transparent parts shown on white")
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode != "RGB":
        notes.append(f"{mode} converted to RGB")
    return img.convert("RGB")


def decode_upload(name: str, data: bytes) -> DecodedImage:
    """One untrusted file -> DecodedImage, or UploadError naming it."""
    if not data:
        raise UploadError(f"{name}: the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{name}: {len(data) / 2**20:.0f} MB is over the {MAX_UPLOAD_BYTES // 2**20} MB limit for uploads"
        )
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                refused = too_many_pixels(name, width, height)
                if refused:
                    raise UploadError(refused)
                frames = getattr(img, "n_frames", 1)
                if frames > 1:
                    img.seek(0)
                    what = "pages" if img.format == "TIFF" else "frames"
                    notes.append(f"first of {frames} {what} used")
                if img.format == "JPEG" and max(width, height) > 2 * PREVIEW_SIZE:
                    img.draft("RGB", (PREVIEW_SIZE, PREVIEW_SIZE))  # decode at 1/2..1/8 scale
                img.load()
                orientation = img.getexif().get(EXIF_ORIENTATION, 1)
                if orientation != 1:
                    notes.append("turned upright as its EXIF orientation says")
                original = (
                    (height, width) if orientation in (5, 6, 7, 8) else (width, height)
                )  # these turn by 90 degrees
                rgb = _to_rgb(ImageOps.exif_transpose(img), notes)
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise UploadError(f"{name}: refused as a possible decompression bomb ({err})") from err
    except UnidentifiedImageError as err:
        raise UploadError(f"{name}: not an image this app can read (it takes {', '.join(ACCEPTED)})") from err
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as err:
        reason = str(err).strip() or type(err).__name__
        raise UploadError(f"{name}: the image data is damaged or incomplete ({reason[:160]})") from err
    side = min(rgb.size)
    square = ImageOps.fit(rgb, (min(side, PREVIEW_SIZE),) * 2, Image.Resampling.LANCZOS)  # centre crop
    rgb.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.LANCZOS)
    return DecodedImage(
        name, np.asarray(rgb, dtype=np.uint8).copy(), np.asarray(square, dtype=np.uint8).copy(), original, notes
    )


def decode_many(files: Iterable[tuple[str, bytes]]) -> tuple[list[DecodedImage], list[str]]:
    """Decode every file; bad ones become messages, never stop the rest."""
    images, problems = [], []
    for name, data in files:
        try:
            images.append(decode_upload(name, data))
        except UploadError as err:
            problems.append(str(err))
    return images, problems
