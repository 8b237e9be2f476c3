"""Canvas images (PNG/JPEG, any size, any ink colour) -> the 28x28 bitmap the dataset would hold.

A picture has no strokes, so the dataset's geometry is rebuilt from the ink itself: find the
ink and the pen's width, take the bounding box of the pen's centre line, scale it uniformly so
its longer side spans 0-255, centre it in the 256 box with the renderer's padding, redraw the
line at the dataset's diameter, and average the ink into 28x28 pixels.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

from sketch.raster import _TOTAL_PADDING, LINE_DIAMETER, ORIGINAL_SIDE, SIDE
from sketch.strokes import SIMPLIFIED_SIDE, EmptyDrawingError

MAX_IMAGE_PIXELS = 4096 * 4096
_HIRES = 8  # work at 8x the output resolution, then average 8x8 blocks into one pixel
_INK_THRESHOLD = 0.5


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Bytes of a PNG/JPEG -> ink intensity in [0, 1] (float32, HxW); 1 = full ink.

    Raises ``ValueError`` for undecodable or truncated data and for images over ``max_pixels``
    (checked from the header, before the pixels are decompressed).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ValueError(f"image too large: {w}x{h} pixels, limit {max_pixels}")
            if img.format not in ("PNG", "JPEG"):
                raise ValueError(f"unsupported image format {img.format}: send PNG or JPEG")
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"image too large (decompression bomb): {exc}") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"image could not be decoded: {exc}") from None
    return ink_intensity(img)


def ink_intensity(img: Image.Image) -> np.ndarray:
    """Ink in [0, 1] whatever the colours: transparent background, or dark on light, or light on dark."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        if alpha.min() < 0.5:
            # Strokes on a transparent canvas (what a browser canvas gives): the alpha is the ink.
            return alpha
    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    # The background is the commonest tone along the border; ink is whatever differs from it.
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    contrast = max(background, 1.0 - background)
    return np.clip(np.abs(grey - background) / contrast, 0.0, 1.0)


def pen_diameter(mask: np.ndarray) -> float:
    """Typical line width of a binary ink mask, in pixels (twice the distance on the lines' ridges)."""
    inside = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    ridge = mask & (inside >= ndimage.maximum_filter(inside, size=3))
    # EDT counts the ridge pixel itself, so a line n pixels wide peaks at about n/2 + 0.5.
    return max(1.0, 2.0 * float(np.median(inside[ridge])) - 1.0)


def image_to_bitmap(ink: np.ndarray) -> np.ndarray:
    """Ink intensity (HxW, [0, 1]) -> uint8 28x28, white ink on black, with the dataset's geometry."""
    mask = ink >= _INK_THRESHOLD
    if not mask.any():
        raise EmptyDrawingError("empty drawing: no ink found in the image")
    pen = pen_diameter(mask)
    ys, xs = np.nonzero(mask)
    # Pixel centres of the ink, pulled in by half a pen: the extent of the centre line.
    lo = np.array([xs.min(), ys.min()]) + pen / 2 - 0.5
    hi = np.array([xs.max(), ys.max()]) - pen / 2 + 0.5
    hi = np.maximum(hi, lo)
    extent = float((hi - lo).max())
    scale = SIMPLIFIED_SIDE / extent if extent > 1.0 else 1.0
    # Simplified space (0-255, top-left aligned) -> the renderer's box (centred, padded) -> hi-res pixels.
    res = SIDE * _HIRES
    to_hires = res / (ORIGINAL_SIDE + _TOTAL_PADDING)
    offset = (ORIGINAL_SIDE - (hi - lo) * scale) / 2 + _TOTAL_PADDING / 2
    # Pillow wants the inverse map, in continuous coordinates (pixel i spans [i, i+1]).
    inv = 1.0 / (scale * to_hires)
    ox, oy = lo + 0.5 - offset / scale
    img = Image.fromarray((ink * 255).astype(np.uint8))
    hires = img.transform((res, res), Image.AFFINE, (inv, 0, ox, 0, inv, oy), resample=Image.BILINEAR)
    line = np.asarray(hires, dtype=np.float32) >= _INK_THRESHOLD * 255
    line = _set_line_width(line, pen * scale * to_hires, LINE_DIAMETER * to_hires)
    cover = line.reshape(SIDE, _HIRES, SIDE, _HIRES).mean(axis=(1, 3))
    return np.round(cover * 255).astype(np.uint8)


def _set_line_width(mask: np.ndarray, current: float, target: float) -> np.ndarray:
    """Thin or thicken lines from ``current`` to ``target`` pixels wide (disc-shaped, so caps stay round)."""
    if not mask.any():
        return mask
    if current > target:
        inside = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        thinned = inside > (current - target) / 2
        # Never erase a whole line: keep at least the ridge of the original.
        return thinned if thinned.any() else mask
    outside = ndimage.distance_transform_edt(~mask)
    return outside <= (target - current) / 2


def image_bytes_to_bitmap(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 28x28 bitmap (the one entry point the API uses)."""
    return image_to_bitmap(decode_image(data, max_pixels))
