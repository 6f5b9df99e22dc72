"""Image decoding: every mode becomes clean RGB; every failure becomes a reason."""

from __future__ import annotations

import http.server
import io
import socket
import threading

import numpy as np
import pytest
from PIL import Image

from cirscope.gallery._decode import ImageProblem, content_hash, decode, make_thumbnail


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    out = decode(_encode(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (20, 40)


@pytest.mark.parametrize(
    ("img", "fmt", "expected"),
    [
        (Image.new("L", (4, 4), 100), "PNG", (100, 100, 100)),
        (Image.new("1", (4, 4), 1), "PNG", (255, 255, 255)),
        (Image.new("RGBA", (4, 4), (255, 0, 0, 0)), "PNG", (255, 255, 255)),  # transparent -> white
        (Image.new("RGBA", (4, 4), (255, 0, 0, 255)), "PNG", (255, 0, 0)),
        (Image.new("LA", (4, 4), (0, 0)), "PNG", (255, 255, 255)),
        (Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "JPEG", None),  # red in CMYK
    ],
)
def test_modes_become_rgb(img, fmt, expected):
    out = decode(_encode(img, fmt))
    assert out.mode == "RGB"
    px = out.getpixel((1, 1))
    if expected is None:
        assert px[0] > 200 and px[1] < 60 and px[2] < 60
    else:
        assert all(abs(a - b) <= 2 for a, b in zip(px, expected, strict=False))


def test_palette_with_transparency_composited_on_white():
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 255] + [0, 0, 0] * 255)
    img.info["transparency"] = 0
    assert decode(_encode(img, "PNG", transparency=0)).getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.full((4, 4), 32768, dtype=np.uint16)
    out = decode(_encode(Image.fromarray(arr), "PNG"))
    assert out.mode == "RGB" and abs(out.getpixel((0, 0))[0] - 128) <= 1


def test_arrays_and_pil_are_accepted():
    assert decode(np.zeros((5, 6, 3), np.uint8)).size == (6, 5)
    assert decode(np.ones((3, 5, 6), np.float32)).getpixel((0, 0)) == (255, 255, 255)  # channels-first, 0..1
    with pytest.raises(ImageProblem, match="NaN"):
        decode(np.full((4, 4, 3), np.nan))
    with pytest.raises(ImageProblem, match="not an image"):
        decode(np.zeros((4,)))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p / "missing.jpg", "file not found"),
        (lambda p: _write(p / "empty.jpg", b""), "empty file"),
        (lambda p: _write(p / "text.jpg", b"hello, I am not an image"), "not an image"),
        (lambda p: _write(p / "cut.jpg", _encode(Image.new("RGB", (64, 64), "blue"), "JPEG")[:300]), "truncated"),
        (lambda p: _write(p / "cut.png", _encode(Image.new("RGB", (64, 64), "blue"), "PNG")[:60]), "truncated|corrupt"),
    ],
)
def test_bad_files_give_reasons(tmp_path, make, reason):
    with pytest.raises(ImageProblem, match=reason):
        decode(make(tmp_path))


def _write(path, data):
    path.write_bytes(data)
    return path


def test_decompression_bomb_is_refused():
    big = _encode(Image.new("L", (12000, 12000)), "PNG")  # 144 Mpx of zeros compresses to ~100 KB
    with pytest.raises(ImageProblem, match="too large"):
        decode(big)


def test_content_hash_depends_on_content_only(tmp_path):
    data = _encode(Image.new("RGB", (8, 8), "red"), "PNG")
    a, b = _write(tmp_path / "a.png", data), _write(tmp_path / "b.png", data)
    assert content_hash(a) == content_hash(b) == content_hash(data)
    assert content_hash(Image.new("RGB", (8, 8), "red")) != content_hash(Image.new("RGB", (8, 8), "blue"))


def test_thumbnail_is_small_jpeg():
    thumb = make_thumbnail(Image.new("RGB", (400, 200), "green"), 128)
    img = Image.open(io.BytesIO(thumb))
    assert img.format == "JPEG" and img.size == (128, 64)


def test_urls_fetch_and_unreachable_urls_are_reported():
    data = _encode(Image.new("RGB", (8, 8), "red"), "PNG")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/ok.png":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert decode(f"{base}/ok.png").size == (8, 8)
        with pytest.raises(ImageProblem, match="HTTP 404"):
            decode(f"{base}/missing.png")
    finally:
        server.shutdown()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ImageProblem, match="URL unreachable"):
        decode(f"http://127.0.0.1:{port}/x.png")
