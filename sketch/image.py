"""Canvas images (PNG/JPEG, any size, any ink colour) -> the 28x28 bitmap the dataset would hold.

A picture has no strokes, so the dataset's geometry is rebuilt from the ink itself: find the
ink and the pen's width, take the bounding box of the pen's centre line, scale it uniformly so
its longer side spans 0-255, centre it in the 256 box with the renderer's padding, redraw the
line at the dataset's diameter, and average the ink into 28x28 pixels.

Speed: the pixels stay uint8 in Pillow until the picture is small, the pen is never measured by a
distance transform at the picture's own size (``_source_pen``), and the one that redraws the line
runs at 8x the output size, cropped to the drawing.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from scipy import ndimage

from sketch.raster import _TOTAL_PADDING, LINE_DIAMETER, ORIGINAL_SIDE, SIDE
from sketch.strokes import SIMPLIFIED_SIDE, EmptyDrawingError

MAX_IMAGE_PIXELS = 4096 * 4096
# Decoded bytes, not only pixels, bound the work: a 4096x4096 RGB canvas fits, the same size in
# 16-bit RGBA (a 150 KB PNG of 128 MB of pixels) does not.
MAX_IMAGE_BYTES = 4096 * 4096 * 3
_HIRES = 8  # work at 8x the output resolution, then average 8x8 blocks into one pixel
_INK_THRESHOLD = 128  # of 255: half ink
_SHRUNK_PEN = 12.0  # pixels: a pen twice as wide is measured on the picture shrunk to about this width
_MEASURED_PEN = 4.0  # hi-res pixels: a pen at least this wide is measured again after resampling


def _bytes_per_pixel(img: Image.Image) -> int:
    """Bytes the decoder handles per pixel: one per band, two for 16-bit samples (e.g. PNG "RGBA;16B")."""
    rawmode = img.tile[0].args[0] if img.tile and isinstance(img.tile[0].args, tuple) else img.mode
    return len(img.getbands()) * (2 if ";16" in str(rawmode) or "I;16" in img.mode else 1)


def header_pixels(data: bytes) -> int:
    """Width x height as the image's header says (the pixels are not decoded); 0 when unreadable.
    The header is near the start: the first tens of kilobytes of a PNG or JPEG are enough."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return 0
    return w * h


def open_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Bytes of a PNG/JPEG -> a loaded Pillow image, upright (EXIF orientation applied).

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
            decoded = w * h * _bytes_per_pixel(img)
            if decoded > MAX_IMAGE_BYTES:
                raise ValueError(
                    f"image too large: {w}x{h} {img.mode} decodes to {decoded / 2**20:.0f} MB, "
                    f"limit {MAX_IMAGE_BYTES / 2**20:.0f} MB"
                )
            if img.format not in ("PNG", "JPEG"):
                raise ValueError(f"unsupported image format {img.format}: send PNG or JPEG")
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"image too large (decompression bomb): {exc}") from None
    except Image.UnidentifiedImageError:
        raise ValueError("image could not be decoded: it is neither a PNG nor a JPEG") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"image could not be decoded: {exc}") from None
    ImageOps.exif_transpose(img, in_place=True)  # a copy would cost as much as a tenth of the path
    return img


def ink_image(img: Image.Image) -> Image.Image:
    """Ink as a mode-L image (255 = full ink) whatever the colours: transparent background, or dark on
    light, or light on dark."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = (img if img.mode in ("RGBA", "LA") else img.convert("RGBA")).getchannel("A")
        if alpha.getextrema()[0] < _INK_THRESHOLD:
            # Strokes on a transparent canvas (what a browser canvas gives): the alpha is the ink.
            return alpha
    grey = img.convert("L")
    # The background is the commonest tone along the border; ink is whatever differs from it.
    g = np.asarray(grey)
    background = float(np.median(np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]]))) / 255.0
    contrast = max(background, 1.0 - background)
    lut = np.clip(np.abs(np.arange(256) / 255.0 - background) / contrast, 0.0, 1.0)
    return grey.point((lut * 255).astype(np.uint8).tolist())


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Bytes of a PNG/JPEG -> ink intensity in [0, 1] (float32, HxW); 1 = full ink."""
    return np.asarray(ink_image(open_image(data, max_pixels)), dtype=np.float32) / 255.0


def _crofton_width(mask: np.ndarray) -> float:
    """Twice the ink's area over its outline: the width of a line (area w * L, outline about 2 * L).

    The outline is measured by counting ink edges along rows, columns and both diagonals
    (Cauchy-Crofton), fair to lines at any angle. Caps make it read low and crossings high, both
    by little while the pen is thin next to the strokes' length.
    """
    m = mask.view(np.uint8)
    crossings = (
        np.count_nonzero(m[:, 1:] != m[:, :-1])
        + np.count_nonzero(m[1:] != m[:-1])
        + (np.count_nonzero(m[1:, 1:] != m[:-1, :-1]) + np.count_nonzero(m[1:, :-1] != m[:-1, 1:])) / np.sqrt(2)
    )
    return 2.0 * np.count_nonzero(m) / (np.pi / 8 * crossings) if crossings else 1.0


def _distance(mask: np.ndarray) -> np.ndarray:
    """Distance of every ``True`` pixel to the nearest ``False`` one, within 8% of Euclidean.

    The mean of the chessboard and city-block chamfer distances (one reads low, the other high, by
    the line's angle): two cheap raster passes each, for measuring the pen on a line's ridge.
    """
    chess = ndimage.distance_transform_cdt(mask, metric="chessboard")
    block = ndimage.distance_transform_cdt(mask, metric="taxicab")
    return (chess + block) / 2.0


def pen_diameter(mask: np.ndarray, exact: bool = False) -> float:
    """Typical line width of a binary ink mask, in pixels, measured between its outermost pixels' centres.

    Twice the median distance to the background on the lines' ridges: crossings and caps, which
    would bias a global measure such as ``_crofton_width``, are a small share of the ridge.
    """
    padded = np.pad(mask, 1)
    inside = (ndimage.distance_transform_edt(padded) if exact else _distance(padded))[1:-1, 1:-1]
    ridge = mask & (inside >= ndimage.maximum_filter(inside, size=3))
    # Distances count the ridge pixel itself, so a line n pixels wide peaks at about n/2 + 0.5.
    return max(1.0, 2.0 * float(np.median(inside[ridge])) - 1.0) if ridge.any() else 1.0


def _source_pen(mask: np.ndarray) -> tuple[float, bool]:
    """The pen's width at the picture's own size, cheaply, and whether that is the precise measure.

    A thick pen, where caps and crossings bias area over outline, is measured precisely on the mask
    shrunk until its lines are about ``_SHRUNK_PEN`` wide. Otherwise area over outline (which reads
    one pixel more than the centre-to-centre width used here) is enough to place the drawing.
    """
    width = _crofton_width(np.pad(mask, 1))
    k = int(width // _SHRUNK_PEN)
    if k >= 2:
        h, w = (mask.shape[0] // k) * k, (mask.shape[1] // k) * k
        small = mask[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3)) >= 0.5
        if small.any():
            return k * (pen_diameter(small, exact=True) + 1.0) - 1.0, True
    return max(1.0, width - 1.0), False


def image_to_bitmap(ink: np.ndarray | Image.Image) -> np.ndarray:
    """Ink (HxW float in [0, 1], or a mode-L image) -> uint8 28x28, white ink on black, with the dataset's geometry.

    A pen that ``_source_pen`` could only estimate is measured again after the picture is resampled
    to 8x the output size, where its lines are a few pixels wide and measuring them is cheap (a pen
    thinner than ``_MEASURED_PEN`` there is left to the estimate).
    """
    img = ink if isinstance(ink, Image.Image) else Image.fromarray((np.asarray(ink) * 255).astype(np.uint8))
    mask = np.asarray(img) >= _INK_THRESHOLD
    box = _box(mask)
    if box is None:
        raise EmptyDrawingError("empty drawing: no ink found in the image")
    top, bottom, left, right = box[0].start, box[0].stop, box[1].start, box[1].stop
    pen, precise = _source_pen(mask[box])
    # Pixel centres of the ink, pulled in by half a pen: the extent of the centre line.
    lo = np.array([left, top]) + pen / 2 - 0.5
    hi = np.array([right, bottom]) - 1 - pen / 2 + 0.5
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
    if pen < inv:
        # Lines thinner than the resampling step would fall between its samples and vanish:
        # widened evenly first (the centre lines stay), then set to the dataset's width below.
        size = 2 * int(np.ceil(inv / 2)) + 1
        img = img.filter(ImageFilter.MaxFilter(size))
        pen += size - 1
    hires = img.transform((res, res), Image.AFFINE, (inv, 0, ox, 0, inv, oy), resample=Image.BILINEAR)
    line = np.asarray(hires) >= _INK_THRESHOLD
    current = pen * scale * to_hires
    if not precise and current >= _MEASURED_PEN and (drawn := _box(line)) is not None:
        current = pen_diameter(line[drawn])
    line = _set_line_width(line, current, LINE_DIAMETER * to_hires)
    cover = line.reshape(SIDE, _HIRES, SIDE, _HIRES).mean(axis=(1, 3))
    bitmap = np.round(cover * 255).astype(np.uint8)
    if not bitmap.any():
        raise EmptyDrawingError("empty drawing: no ink is left at 28x28")
    return bitmap


def _set_line_width(mask: np.ndarray, current: float, target: float) -> np.ndarray:
    """Thin or thicken lines from ``current`` to ``target`` pixels wide (round, so caps stay round).

    Works on the drawing's bounding box grown by the change: the frame's empty margin costs nothing.
    """
    box = _box(mask, max(target - current, 0.0) / 2 + 1)
    if box is None:
        return mask
    crop = mask[box]
    # No pixel is farther than the crop's diagonal from another: a larger change (a filled shape
    # read as one very thick line) has the same outcome, and would cost passes by the thousand.
    radius = min(abs(current - target) / 2, float(np.hypot(*crop.shape)) + 2.0)
    if current > target:
        # Pixels farther than the change from the background (the frame's edge counts as background).
        thinned = ~_near(~np.pad(crop, 1), radius)[1:-1, 1:-1]
        # Never erase a whole line: keep at least the ridge of the original.
        changed = thinned if thinned.any() else crop
    else:
        changed = _near(crop, radius)
    out = np.zeros_like(mask)
    out[box] = changed
    return out


def _near(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels within ``radius`` of a ``True`` pixel: ``distance_transform_edt(~mask) <= radius``.

    Dilation by the disk of that radius, cut into the rectangles its rows make (a disk's rows only
    narrow away from the middle), each a pair of 1-D maximum filters: a few times faster than the
    distance transform, and the same pixels (the disk uses the transform's own test, below).
    """
    out = np.zeros_like(mask)
    m = mask.view(np.uint8)
    for half_h, half_w in _disk_rows(radius):
        d = ndimage.maximum_filter1d(m, 2 * half_w + 1, axis=1, mode="constant")
        out |= ndimage.maximum_filter1d(d, 2 * half_h + 1, axis=0, mode="constant").view(bool)
    return out


def _disk_rows(radius: float) -> list[tuple[int, int]]:
    """The disk as rectangles (half-height k, half-width of row k): one for each k past which the rows
    get narrower. A pixel (dx, dy) is in it when ``sqrt(dx**2 + dy**2) <= radius`` in float64."""
    rows = []
    for k in range(int(radius) + 1):
        # Start near the row's edge and settle it with the exact test: one step or two, not w of them.
        w = int(np.sqrt(max(radius * radius - k * k, 0.0)))
        while w > 0 and np.sqrt(float(w * w + k * k)) > radius:
            w -= 1
        while np.sqrt(float((w + 1) ** 2 + k * k)) <= radius:
            w += 1
        if np.sqrt(float(w * w + k * k)) <= radius:
            rows.append((k, w))
    return [(k, w) for i, (k, w) in enumerate(rows) if i + 1 == len(rows) or rows[i + 1][1] != w]


def _box(mask: np.ndarray, margin: float = 0.0) -> tuple[slice, slice] | None:
    """The bounding box of the ``True`` pixels grown by ``margin`` (clipped to the frame); None if none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    m = int(np.ceil(margin))
    return (
        slice(max(rows[0] - m, 0), min(rows[-1] + 1 + m, mask.shape[0])),
        slice(max(cols[0] - m, 0), min(cols[-1] + 1 + m, mask.shape[1])),
    )


def image_bytes_to_bitmap(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 28x28 bitmap (the one entry point the API uses)."""
    return image_to_bitmap(ink_image(open_image(data, max_pixels)))
