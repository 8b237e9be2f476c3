"""Canvas images -> the 28x28 dataset bitmap by the same geometry."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sketch.image import decode_image, image_bytes_to_bitmap
from sketch.strokes import EmptyDrawingError, parse_strokes
from tests.utils.fixtures import pearson


def draw_png(
    strokes, size=400, width=12, margin=40, ink=(0, 0, 0, 255), paper=(255, 255, 255, 255), fmt="PNG", mode="RGBA"
):
    """Render strokes big, the way a browser canvas would (round pen)."""
    pts = np.concatenate(strokes)
    lo, ext = pts.min(0), (pts.max(0) - pts.min(0)).max()
    scale = (size - 2 * margin) / ext
    img = Image.new(mode, (size, size), paper)
    d = ImageDraw.Draw(img)
    for s in strokes:
        p = [tuple((q - lo) * scale + margin) for q in s]
        if len(p) > 1:
            d.line(p, fill=ink, width=width, joint="curve")
        for x, y in p:
            d.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=ink)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("width", [4, 12, 28])
def test_big_thick_black_on_white_matches_official_bitmap(pairs, width):
    bitmaps, simplified, _ = pairs["cat"]
    rs = [
        pearson(image_bytes_to_bitmap(draw_png(parse_strokes(line["drawing"]), width=width)), bitmaps[i])
        for i, line in enumerate(simplified[:10])
    ]
    assert np.mean(rs) >= 0.97, rs


@pytest.mark.parametrize(
    ("ink", "paper", "mode", "fmt"),
    [
        ((255, 255, 255, 255), (0, 0, 0, 255), "RGBA", "PNG"),  # light on dark
        ((30, 30, 200, 255), (0, 0, 0, 0), "RGBA", "PNG"),  # coloured strokes on a transparent canvas
        (0, 255, "L", "PNG"),  # greyscale
        ((0, 0, 0), (255, 255, 255), "RGB", "JPEG"),  # lossy
    ],
)
def test_ink_colour_and_format_are_detected(pairs, ink, paper, mode, fmt):
    bitmaps, simplified, _ = pairs["airplane"]
    png = draw_png(parse_strokes(simplified[0]["drawing"]), size=300, ink=ink, paper=paper, mode=mode, fmt=fmt)
    assert pearson(image_bytes_to_bitmap(png), bitmaps[0]) >= 0.95


def test_blank_canvas_is_an_empty_drawing():
    buf = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(buf, "PNG")
    with pytest.raises(EmptyDrawingError):
        image_bytes_to_bitmap(buf.getvalue())


def test_garbage_truncated_and_oversized_images_are_refused():
    # The message names the problem, not the decoder's internals (no "<_io.BytesIO object at 0x…>").
    with pytest.raises(ValueError, match=r"could not be decoded: it is neither a PNG nor a JPEG$"):
        decode_image(b"not an image at all")
    png = draw_png(parse_strokes([[[0, 10], [0, 10]]]), size=100)
    with pytest.raises(ValueError, match="could not be decoded"):
        decode_image(png[: len(png) // 2])
    with pytest.raises(ValueError, match="too large"):
        decode_image(png, max_pixels=50 * 50)


def test_decompression_bomb_is_refused_before_decoding():
    # 20000x20000 of one colour compresses to a few hundred KB but would need 400 MB decoded.
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")
    with pytest.raises(ValueError, match="too large"):
        decode_image(buf.getvalue())


@pytest.mark.parametrize("radius", [0.0, 0.5, 1.0, 2**0.5, 1.5, 2.0, 5**0.5, 2.89, 3.0, 10**0.5, 7.07, 13.0])
def test_line_thickening_takes_exactly_the_distance_transforms_pixels(radius):
    """``_near`` (dilation by the disk's rows) against the Euclidean distance transform it replaced,
    for thickening and, on the complement, thinning; the radii include exact ties (sqrt 2, 5, 10)."""
    from scipy import ndimage

    from sketch.image import _near

    rng = np.random.default_rng(int(radius * 100))
    for density in (0.005, 0.05, 0.5, 0.97):
        mask = rng.random((60, 70)) < density
        np.testing.assert_array_equal(_near(mask, radius), ndimage.distance_transform_edt(~mask) <= radius)
        padded = np.pad(mask, 1)
        thinned = ndimage.distance_transform_edt(padded)[1:-1, 1:-1] > radius
        np.testing.assert_array_equal(~_near(~padded, radius)[1:-1, 1:-1], thinned)
