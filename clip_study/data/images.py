"""Image decoding for every stage: any file PIL can fully decode becomes the RGB image CLIP sees.

Users' folders hold CMYK and 16-bit images, palette PNGs with transparency, truncated downloads and
huge scans. fetch checks every image it keeps with ``check_image`` and extract encodes them with
``open_rgb``; both run the same decode, so an image fetch accepted cannot fail later.

Conversion to RGB (``to_rgb``):

- an alpha band (RGBA, LA, PA) or a transparency key (P, L or RGB with ``transparency``) is
  alpha-composited on white, exactly as transformers' ``convert_to_rgb`` (the CLIP image processor's
  ``do_convert_rgb``), so the processor given our RGB image computes what it would from the file;
- 16- and 32-bit integer greyscale (I;16, I;16B, I;16L, I) is scaled to 8 bits (round(v * 255 / 65535),
  mid-grey 32768 -> 128), where PIL's ``convert`` would clip everything above 255 to white;
- float greyscale (F) in [0, 1] is scaled by 255; other float ranges are clipped to 0..255 as PIL does;
- every other mode (CMYK, YCbCr, LAB, L, 1, P without transparency) by PIL's ``convert("RGB")``, as
  transformers does;
- the EXIF orientation is applied first (as transformers' ``load_image`` and every image viewer do).

Large images (policy): up to ``LARGE_PIXELS`` (PIL's default ``MAX_IMAGE_PIXELS``, 89.5 Mpx, e.g.
9459 x 9459) an image is decoded exactly. Above it, it is decoded at reduced size, its shorter side kept
>= ``REDUCED_SIDE`` (2048 px, over 4x any CLIP input) so that memory stays bounded: a JPEG by DCT
scaling while decoding (``Image.draft``, 1/2 to 1/8, which never holds the full image), any other
format by an integer box reduction right after decoding (before the conversion to RGB where the mode
allows); PIL's DecompressionBombWarning is expected there and silenced. Above twice that (179 Mpx) PIL refuses the file as a possible decompression bomb; it is
reported as ``too_large`` with its size, and the fix is to downscale the file.

Truncated files are errors: ``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off, and only a full decode finds
a file cut short (``Image.verify`` reads no pixel data).
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clip_study.errors import UserError

LARGE_PIXELS = 89_478_485  # PIL's default MAX_IMAGE_PIXELS; PIL refuses files over twice this
REDUCED_SIDE = 2048        # shorter side of a large image after reduction
EXIF_ORIENTATION = 0x0112
# modes whose pixel values can be box-averaged before conversion (not palette indices, 1-bit or I;16)
REDUCE_BEFORE_CONVERT = {"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"}

# why an image is unusable -> what the user reads (followed by the detail, if any)
REASONS = {
    "empty": "empty (0 bytes)",
    "not_an_image": "not an image (PIL cannot identify its format)",
    "truncated": "truncated",
    "undecodable": "not decodable",
    "too_large": "too large",
    "unreadable": "unreadable",
}

ImageSource = Union[Path, str, bytes, BinaryIO]
"""Where one image's bytes come from: a file path, the encoded bytes, or an open binary stream (a dataset's
source of many images is ``clip_study.data.sources.Source``)."""


@dataclass(frozen=True)
class ImageProblem:
    """Why an image cannot be used: a key of ``REASONS`` and what PIL or the file system said."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{REASONS[self.reason]}: {self.detail}" if self.detail else REASONS[self.reason]


class BadImageError(UserError):
    """An image that cannot be decoded; ``problem`` says why. Constructible from a message alone, so
    that torch's DataLoader can re-raise it from a worker."""

    def __init__(self, message: str, problem: ImageProblem | None = None) -> None:
        super().__init__(message)
        self.problem = problem or ImageProblem("undecodable", message)


def open_rgb(source: ImageSource) -> Image.Image:
    """The image at ``source`` (a path, encoded bytes or a binary file) as a loaded RGB image.

    Raises BadImageError naming the file and the reason when it cannot be fully decoded."""
    image, problem = _decode_or_problem(source)
    if problem is not None:
        raise BadImageError(f"image {_describe(source)} is {problem}; replace or remove the file", problem)
    return image


def check_image(source: ImageSource) -> ImageProblem | None:
    """None if ``source`` decodes fully (the same decode as ``open_rgb``), else why not."""
    return _decode_or_problem(source)[1]


def _decode_or_problem(source: ImageSource) -> tuple[Image.Image | None, ImageProblem | None]:
    if _is_empty(source):
        return None, ImageProblem("empty", "")
    if isinstance(source, (str, Path)) and Path(source).is_symlink() and not Path(source).exists():
        return None, ImageProblem("unreadable", f"a broken symlink to {os.readlink(source)}")
    try:
        return _decode(source), None
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, EOFError, zlib errors...
        return None, _classify(error)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB as transformers' ``convert_to_rgb`` (transparency on white), 16-bit and float scaled to 8 bits."""
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        image = _to_8bit_grey(image)
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def _decode(source: ImageSource) -> Image.Image:
    """Open, decode (at reduced size when large, see the module docstring), orient and convert."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # large images are reduced below
        with Image.open(_as_file(source)) as image:
            large = image.width * image.height > LARGE_PIXELS
            if large and image.format == "JPEG":
                image.draft(None, _reduced_size(image.size))
            image.load()
            if large and image.mode in REDUCE_BEFORE_CONVERT and "transparency" not in image.info:
                image = _reduce(image)  # far less to convert; the other modes are reduced after
            if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
                image = ImageOps.exif_transpose(image)
            rgb = to_rgb(image)
    return _reduce(rgb) if large else rgb


def _reduce(image: Image.Image) -> Image.Image:
    """``image`` box-reduced by the integer factor that keeps its shorter side >= REDUCED_SIDE."""
    factor = min(image.size) // REDUCED_SIDE
    return image.reduce(factor) if factor >= 2 else image


def _reduced_size(size: tuple[int, int]) -> tuple[int, int]:
    """A size with the shorter side at REDUCED_SIDE and the same aspect ratio."""
    scale = REDUCED_SIDE / min(size)
    return math.ceil(size[0] * scale), math.ceil(size[1] * scale)


@lru_cache(maxsize=1)
def _16bit_to_8bit() -> np.ndarray:
    """Lookup table round(v * 255 / 65535) for every 16-bit value."""
    return ((np.arange(65536, dtype=np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """An L image from 16/32-bit integer (as 16-bit range) or float greyscale."""
    values = np.asarray(image)
    if image.mode == "F":
        values = np.nan_to_num(values.astype(np.float32))
        if values.size and values.min() >= 0 and values.max() <= 1:
            values = values * 255
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    else:
        grey = _16bit_to_8bit()[np.clip(values, 0, 65535).astype(np.uint16)]
    return Image.fromarray(grey, mode="L")


def _classify(error: Exception) -> ImageProblem:
    """The reason behind a decode failure (PIL's exceptions carry it only in their type and message)."""
    message = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
    if isinstance(error, Image.DecompressionBombError):
        sizes = [int(n) for n in re.findall(r"\d+", message)]
        if len(sizes) == 2:  # PIL: "Image size (N pixels) exceeds limit of M pixels, ..."
            message = (f"{sizes[0] / 1e6:.0f} Mpx, over PIL's {sizes[1] / 1e6:.0f} Mpx decompression-bomb limit "
                       "(downscale it)")
        return ImageProblem("too_large", message)
    if isinstance(error, UnidentifiedImageError):
        return ImageProblem("not_an_image", "")
    if isinstance(error, OSError) and error.errno is not None:
        return ImageProblem("unreadable", f"{type(error).__name__}: {error.strerror}")
    if isinstance(error, EOFError) or "truncated" in message.lower():
        return ImageProblem("truncated", message)
    return ImageProblem("undecodable", f"{type(error).__name__}: {message}")


def _as_file(source: ImageSource) -> Path | BinaryIO:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    return Path(source) if isinstance(source, str) else source


def _is_empty(source: ImageSource) -> bool:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source) == 0
    if isinstance(source, (str, Path)):
        try:
            return Path(source).stat().st_size == 0
        except OSError:
            return False  # a missing file is reported by the decode, as unreadable
    return False


def _describe(source: ImageSource) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<file>")
