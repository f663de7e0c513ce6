"""Baseline for `cargo bench --bench render`: the upstream Python hub's
layout engine re-created from its specification (upstream-hub.md section 8.3):
Pillow canvas, `qrcode` at module size 10 with border 0, nearest-neighbour
scaled to the table's qr_max, DejaVu Sans at the table's pixel sizes, text
width from the font's bounding box.

Usage: python3 render_upstream.py FONT.ttf ITERATIONS
Prints one JSON object: median microseconds per label for each case.
Needs Pillow and qrcode; the Rust benchmark skips this baseline without them.
"""

import json
import statistics
import sys
import time

import qrcode
from PIL import Image, ImageDraw, ImageFont

# mm: printable_px, qr_max_px, qr_padding_px, text_start_x, line_spacing, XL, L, M, S
GEOMETRY = {
    12: (70, 66, 2, 72, 4, 22, 18, 14, 10),
    62: (696, 688, 4, 700, 20, 120, 96, 72, 48),
}

DATA = {
    "qr_payload": "https://inventory.example.org/item/A-1042",
    "primary_id": "A-1042",
    "title": "Cable box, USB-C",
    "secondary": ["Shelf 3 / bin 12"],
}

_fonts = {}


def font(path, size):
    key = (path, size)
    if key not in _fonts:
        _fonts[key] = ImageFont.truetype(path, size)
    return _fonts[key]


def qr_image(payload, size):
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=0)
    qr.add_data(payload)
    qr.make(fit=True)
    img = qr.make_image(fill_color="black", back_color="white").get_image().convert("1")
    return img.resize((size, size), Image.NEAREST)


def render(font_path, mm, three_lines):
    printable, qr_max, pad, text_x, spacing, xl, l, _m, s = GEOMETRY[mm]
    lines = [(DATA["primary_id"], xl), (DATA["title"], l)]
    if three_lines:
        lines.append((DATA["secondary"][0], s))
    widths = [font(font_path, size).getbbox(text)[2] for text, size in lines]
    img = Image.new("1", (text_x + max(widths) + pad, printable), 1)
    img.paste(qr_image(DATA["qr_payload"], qr_max), (pad, pad))
    draw = ImageDraw.Draw(img)
    y = pad
    for text, size in lines:
        draw.text((text_x, y), text, font=font(font_path, size), fill=0)
        y += size + spacing
    return img


def median_us(fn, n):
    for _ in range(max(3, n // 20)):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(samples)


def main():
    font_path, n = sys.argv[1], int(sys.argv[2])
    print(
        json.dumps(
            {
                "qr_two_lines_12": median_us(lambda: render(font_path, 12, False), n),
                "qr_three_lines_62": median_us(lambda: render(font_path, 62, True), max(10, n // 5)),
            }
        )
    )


if __name__ == "__main__":
    main()
