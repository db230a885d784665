"""A line chart as PNG bytes, in plain Python, so that the example pipeline
needs nothing but the kernel. With matplotlib the train notebook would do
plt.plot(losses); plt.show(), and its page would show that figure the same
way: as an image/png output."""

import struct
import zlib


def line_png(values, width=320, height=160, pad=12, rgb=(31, 119, 180)):
    """PNG bytes of values as a line over two axes, scaled to fill the box."""
    px = [bytearray(b"\xff" * 3 * width) for _ in range(height)]

    def dot(x, y, colour):
        if 0 <= x < width and 0 <= y < height:
            px[y][3 * x:3 * x + 3] = bytes(colour)

    for x in range(pad, width - pad):
        dot(x, height - pad, (0, 0, 0))
    for y in range(pad, height - pad):
        dot(pad, y, (0, 0, 0))
    hi, lo = max(values), min(values)
    pts = [(pad + i * (width - 2 * pad) // max(1, len(values) - 1),
            height - pad - round((v - lo) / ((hi - lo) or 1) * (height - 2 * pad)))
           for i, v in enumerate(values)]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(n + 1):
            x, y = round(x0 + s * (x1 - x0) / n), round(y0 + s * (y1 - y0) / n)
            for d in (-1, 0, 1):
                dot(x, y + d, rgb)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + bytes(row) for row in px)
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
