#!/usr/bin/env python3
"""Makes the small PDFs in tests/data/pdf and their reference renders (references.json).

The references are what the official DeepSeek-OCR PDF driver sees: PyMuPDF's
page.get_pixmap(matrix=fitz.Matrix(2, 2), alpha=False) (144 dpi), recorded as the page's pixel size and
the SHA-256 of its RGB bytes. Made with Debian 12's python3-fitz (PyMuPDF 1.21.1 on MuPDF 1.21.1, the
MuPDF of libmupdf-dev) and python3-fonttools (to subset the embedded font) and python3-numpy:

    python3 tools/make_pdf_references.py tests/data/pdf

Run again only to add cases: the PDFs themselves are data, tests read them as they are.
"""
import hashlib
import json
import os
import sys

import fitz
import numpy as np

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # fonts-dejavu-core
TEXT = [
    "DeepSeek-OCR reads pages as the",
    "official pipeline renders them:",
    "PyMuPDF at 144 dpi, 2x2 matrix.",
    "0123456789 (+-*/=) [a-z] {A-Z}",
]


def text_page(page, x=12, y=24, size=11):
    page.insert_font(fontname="dv", fontfile=FONT)
    for i, line in enumerate(TEXT):
        page.insert_text((x, y + i * size * 1.4), line, fontname="dv", fontsize=size, color=(0.1, 0.1, 0.1))
    page.insert_text((x, y + 5 * size * 1.4), "small print 6 pt", fontname="dv", fontsize=6)


def make_text(path):
    doc = fitz.open()
    text_page(doc.new_page(width=200, height=120))
    doc.subset_fonts()
    doc.save(path, garbage=4, deflate=True)


def make_vector(path):
    doc = fitz.open()
    page = doc.new_page(width=160, height=120)
    s = page.new_shape()
    s.draw_bezier((10, 100), (40, 10), (90, 130), (150, 20))
    s.finish(color=(0.8, 0.1, 0.1), width=1.7)
    s.draw_circle((50, 60), 25.3)
    s.finish(color=(0, 0, 0), fill=(0.2, 0.5, 0.9), width=0.6, fill_opacity=0.6)
    s.draw_rect(fitz.Rect(70.25, 35.5, 140.75, 95.125))
    s.finish(color=(0, 0.5, 0), fill=None, width=2.2, dashes="[4 2] 0")
    for i in range(12):  # hairlines at sub-pixel positions
        s.draw_line((5 + i * 0.37, 5 + i * 9.1), (155, 7 + i * 9.3))
    s.finish(color=(0.3, 0.3, 0.3), width=0.25)
    s.commit()
    page.add_rect_annot(fitz.Rect(100, 5, 150, 30)).update()  # annotations are rendered too
    doc.save(path, garbage=4, deflate=True)
    # A DeviceCMYK fill, written into the content stream by hand (colour conversion).
    doc = fitz.open(path)
    xref = doc[0].get_contents()[0]
    doc.update_stream(xref, doc.xref_stream(xref) + b"\nq 0.1 0.7 0.2 0.05 k 120 100 30 15 re f Q\n")
    doc.save(path + ".tmp", garbage=4, deflate=True)
    os.replace(path + ".tmp", path)


def gradient(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 127 + 120 * np.sin(x / 9.0) * np.cos(y / 13.0)
    g = 255 * x / w
    b = 255 * (1 - y / h)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_image(path):
    # The page is one picture, scaled up on rendering (90x60 px shown at 180x120 pt: 360x240 px).
    doc = fitz.open()
    page = doc.new_page(width=180, height=120)
    px = gradient(90, 60, 1)
    pix = fitz.Pixmap(fitz.csRGB, 90, 60, px.tobytes(), False)
    page.insert_image(page.rect, pixmap=pix)
    doc.save(path, garbage=4, deflate=True)


def make_scanned(path):
    # A grey "scan" at 300 dpi (625x500 px on 150x120 pt), scaled down on rendering: paper noise,
    # dark strokes like lines of text, a slight tilt.
    rng = np.random.default_rng(2)
    w, h = 625, 500
    img = 235 + rng.normal(0, 4, (h, w))
    for line in range(9):
        y0 = 40 + line * 48
        for word in range(7):
            x0 = 30 + word * 82 + int(rng.integers(0, 10))
            ww = int(rng.integers(30, 70))
            yy = y0 + (x0 // 60)  # the tilt
            img[yy:yy + 18, x0:x0 + ww] = 40 + rng.normal(0, 10, (18, ww))
    img = np.clip(img, 0, 255).astype(np.uint8)
    doc = fitz.open()
    page = doc.new_page(width=150, height=120)
    pix = fitz.Pixmap(fitz.csGRAY, w, h, img.tobytes(), False)
    page.insert_image(page.rect, pixmap=pix)
    doc.save(path, garbage=4, deflate=True)


def make_rotated(path):
    doc = fitz.open()
    for rotation in (90, 270):
        page = doc.new_page(width=200, height=120)
        text_page(page)
        s = page.new_shape()
        s.draw_rect(fitz.Rect(150, 80, 190, 110))
        s.finish(color=(0, 0, 1), fill=(1, 0.9, 0.2), width=1)
        s.commit()
        page.set_rotation(rotation)
    doc.subset_fonts()
    doc.save(path, garbage=4, deflate=True)


def make_cropbox(path):
    # The crop box is smaller than the media box, at fractional coordinates: 160.15 x 109.5 pt shows
    # as 321 x 219 pixels (outward rounding of 320.3 x 219.0).
    doc = fitz.open()
    page = doc.new_page(width=300, height=200)
    text_page(page, x=40, y=60)
    s = page.new_shape()
    s.draw_rect(fitz.Rect(0, 0, 300, 200))
    s.finish(color=(1, 0, 0), width=4)  # the media box's border: outside the crop box
    s.commit()
    doc.subset_fonts()
    doc.save(path, garbage=4, deflate=True)
    doc = fitz.open(path)
    doc.xref_set_key(doc[0].xref, "CropBox", "[30.3 20.25 190.45 129.75]")
    doc.save(path + ".tmp", garbage=4, deflate=True)
    os.replace(path + ".tmp", path)


CASES = {
    "text.pdf": (make_text, "embedded (subset) TrueType text"),
    "vector.pdf": (make_vector, "curves, dashes, hairlines, transparency, a CMYK fill, an annotation"),
    "image.pdf": (make_image, "a page that is one RGB picture, scaled up"),
    "scanned.pdf": (make_scanned, "a grey 300 dpi scan, scaled down"),
    "rotated.pdf": (make_rotated, "/Rotate 90 and 270 with text and a drawing"),
    "cropbox.pdf": (make_cropbox, "a fractional crop box inside a larger media box"),
}


def main(out):
    os.makedirs(out, exist_ok=True)
    refs = {
        "generator": f"PyMuPDF {fitz.VersionBind} on MuPDF {fitz.VersionFitz} (Debian 12 python3-fitz)",
        "call": "page.get_pixmap(matrix=fitz.Matrix(2, 2), alpha=False)",
        "dpi": 144,
        "pages": [],
    }
    for name, (make, what) in CASES.items():
        path = os.path.join(out, name)
        make(path)
        doc = fitz.open(path)
        for i, page in enumerate(doc):
            pix = page.get_pixmap(matrix=fitz.Matrix(2, 2), alpha=False)
            assert pix.n == 3 and pix.stride == pix.width * 3
            refs["pages"].append({
                "file": name, "page": i + 1, "what": what, "width": pix.width, "height": pix.height,
                "rgb_sha256": hashlib.sha256(pix.samples).hexdigest(),
            })
    with open(os.path.join(out, "references.json"), "w") as f:
        json.dump(refs, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/pdf")
