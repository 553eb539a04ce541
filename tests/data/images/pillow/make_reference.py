#!/usr/bin/python3
"""Writes the Pillow reference cases of tests/data/images/pillow (see README.md there).

Every case is a tiny source file, written here byte by byte (or by Pillow itself), and the line
of expected.txt that says what the official drivers get from it:
    Image.open(path) -> ImageOps.exif_transpose -> convert("RGB")
as `NAME PAGE WIDTH HEIGHT SHA256-OF-RGB`, or `NAME PAGE error` where Pillow refuses the file.
Multi-page TIFFs list every page (Image.seek(page) first; no orientation, as dsocr's page API).

Run with Debian 12's python3-pil (Pillow 9.4.0): /usr/bin/python3 make_reference.py
"""
import hashlib
import io
import os
import struct
import sys
import zlib

import PIL
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 13, 7
cases = []  # (name, bytes)


def add(name, data):
    cases.append((name, data))


def pattern(w=W, h=H):
    """An RGB image where neighbouring pixels differ."""
    im = Image.new("RGB", (w, h))
    im.putdata([((x * 37 + y * 11) & 255, (x * 5 + y * 53 + 7) & 255, ((x + 1) * (y + 3)) & 255)
                for y in range(h) for x in range(w)])
    return im


def indices(w=W, h=H, n=16):
    return [(x * 3 + y * 5) % n for y in range(h) for x in range(w)]


# ---- EXIF / PNG chunks --------------------------------------------------------------------------

def exif_tiff(orientation=None, big_endian=False, other_tag=False):
    """A TIFF-structured EXIF block; IFD0 holds Orientation and/or ImageDescription-like tag."""
    e = ">" if big_endian else "<"
    entries = []
    if other_tag:
        entries.append(struct.pack(e + "HHI", 0x0131, 2, 4) + b"dso\0")  # Software "dso"
    if orientation is not None:
        entries.append(struct.pack(e + "HHIH", 0x0112, 3, 1, orientation) + b"\0\0")
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", 8)
    return head + struct.pack(e + "H", len(entries)) + b"".join(entries) + struct.pack(e + "I", 0)


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_parts(im):
    """(signature+IHDR, IDAT chunks, IEND) of a plain RGB PNG written by Pillow."""
    out = io.BytesIO()
    im.save(out, "PNG")
    data = out.getvalue()
    pos, head, idat = 8, data[:8], b""
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        whole = data[pos:pos + 12 + n]
        if kind == b"IDAT":
            idat += whole
        elif kind != b"IEND":
            head += whole
        pos += 12 + n
    return head, idat, chunk(b"IEND", b"")


def png(before=(), after=(), im=None):
    head, idat, end = png_parts(im or pattern())
    return head + b"".join(before) + idat + b"".join(after) + end


def raw_profile_text(exif):
    """The text of a "Raw profile type exif" as ImageMagick writes it: name, length, hex lines."""
    hexed = exif.hex()
    lines = [hexed[i:i + 72] for i in range(0, len(hexed), 72)]
    return "\nexif\n%8d\n%s\n" % (len(exif), "\n".join(lines))


def tEXt(key, text):
    return chunk(b"tEXt", key.encode("latin-1") + b"\0" + (text if isinstance(text, bytes) else text.encode("latin-1")))


def zTXt(key, text, corrupt=False):
    packed = zlib.compress(text.encode("latin-1"))
    if corrupt:
        packed = packed[:2] + bytes(b ^ 0x55 for b in packed[2:])
    return chunk(b"zTXt", key.encode("latin-1") + b"\0\0" + packed)


def iTXt(key, text, compressed=False, raw=None):
    body = raw if raw is not None else text.encode("utf-8")
    if compressed:
        body = zlib.compress(body)
    return chunk(b"iTXt", key.encode("latin-1") + b"\0" + bytes([int(compressed), 0]) + b"en\0\0" + body)


def eXIf(block):
    return chunk(b"eXIf", block)


def xmp(orientation, element=False):
    value = ("<tiff:Orientation>%s</tiff:Orientation>" % orientation if element
             else 'tiff:Orientation="%s"' % orientation)
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" %s></rdf:Description></rdf:RDF></x:xmpmeta>'
            % (value if not element else ">" + value + "<x:dummy/"))


RAW = "Raw profile type exif"
XMP = "XML:com.adobe.xmp"
exif_prefixed = lambda o, **k: b"Exif\0\0" + exif_tiff(o, **k)

add("png_raw_profile_text_6.png", png(before=[tEXt(RAW, raw_profile_text(exif_prefixed(6)))]))
add("png_raw_profile_ztxt_after_idat_3.png", png(after=[zTXt(RAW, raw_profile_text(exif_prefixed(3, big_endian=True)))]))
add("png_raw_profile_itxt_compressed_8.png", png(before=[iTXt(RAW, raw_profile_text(exif_prefixed(8)), compressed=True)]))
add("png_raw_profile_no_prefix_5.png", png(before=[tEXt(RAW, raw_profile_text(exif_tiff(5)))]))
spaced = raw_profile_text(exif_prefixed(7)).split("\n")
spaced[3] = " \t".join(spaced[3][i:i + 2] for i in range(0, len(spaced[3]), 2)) + "\x0b\x0c"
add("png_raw_profile_spaces_crlf_7.png", png(before=[tEXt(RAW, "\r\n".join(spaced))]))
# Pillow refuses bad hex (bytes.fromhex raises); dsocr ignores the profile (README lists this).
add("png_raw_profile_bad_hex.png", png(before=[tEXt(RAW, raw_profile_text(exif_prefixed(6)).replace("4578", "4 578"))]))
add("png_raw_profile_two_last_wins_8.png",
    png(before=[tEXt(RAW, raw_profile_text(exif_prefixed(6)))], after=[tEXt(RAW, raw_profile_text(exif_prefixed(8)))]))
add("png_raw_profile_short_header_none.png", png(before=[tEXt(RAW, "\nexif\n" + exif_prefixed(6).hex())]))
add("png_xmp_attribute_6.png", png(before=[iTXt(XMP, xmp(6))]))
add("png_xmp_element_after_idat_5.png", png(after=[iTXt(XMP, xmp(5, element=True))]))
add("png_xmp_text_chunk_2.png", png(before=[tEXt(XMP, xmp(2))]))
add("png_xmp_ztxt_4.png", png(before=[zTXt(XMP, xmp(4))]))
add("png_xmp_compressed_itxt_8.png", png(after=[iTXt(XMP, xmp(8), compressed=True)]))
add("png_xmp_first_match_wins_3.png",
    png(before=[iTXt(XMP, "tiff:Orientation='6' tiff:Orientation=\"x\" <tiff:Orientation>3</tiff:Orientation> "
                          "tiff:Orientation=\"8\"")]))
add("png_xmp_two_digits_1.png", png(before=[iTXt(XMP, xmp(16))]))
add("png_xmp_itxt_bad_utf8_none.png", png(before=[iTXt(XMP, "", raw=xmp(6).encode() + b"\xff\xfe")]))
add("png_exif_beats_raw_profile_2.png",
    png(before=[eXIf(exif_tiff(2)), tEXt(RAW, raw_profile_text(exif_prefixed(6)))]))
add("png_exif_without_orientation_xmp_6.png", png(before=[eXIf(exif_tiff(None, other_tag=True)), iTXt(XMP, xmp(6))]))
add("png_exif_orientation_1_beats_xmp.png", png(before=[eXIf(exif_tiff(1)), iTXt(XMP, xmp(6))]))
add("png_exif_orientation_9_beats_xmp.png", png(before=[eXIf(exif_tiff(9)), iTXt(XMP, xmp(6))]))
add("png_raw_profile_beats_xmp_3.png", png(before=[iTXt(XMP, xmp(6)), tEXt(RAW, raw_profile_text(exif_prefixed(3)))]))
add("png_raw_profile_without_orientation_xmp_7.png",
    png(before=[tEXt(RAW, raw_profile_text(exif_prefixed(None, other_tag=True))), iTXt(XMP, xmp(7))]))
add("png_late_exif_beats_early_raw_profile_4.png",
    png(before=[tEXt(RAW, raw_profile_text(exif_prefixed(6)))], after=[eXIf(exif_tiff(4))]))
add("png_early_exif_hides_late_xmp.png", png(before=[eXIf(exif_tiff(None, other_tag=True))], after=[iTXt(XMP, xmp(6))]))
add("png_early_exif_hides_late_exif_2.png", png(before=[eXIf(exif_tiff(2))], after=[eXIf(exif_tiff(6))]))
add("png_two_early_exif_last_wins_5.png", png(before=[eXIf(exif_tiff(2)), eXIf(exif_tiff(5, big_endian=True))]))
add("png_text_chunk_named_exif_6.png", png(before=[tEXt("exif", exif_prefixed(6))]))
add("png_corrupt_ztxt_raw_profile_xmp_6.png",
    png(before=[iTXt(XMP, xmp(6)), zTXt(RAW, raw_profile_text(exif_prefixed(3)), corrupt=True)]))
# Pillow raises TypeError (a str where Exif.load wants bytes); dsocr ignores the chunk.
add("png_ztxt_named_exif_ignored.png", png(before=[zTXt("exif", "Exif"), iTXt(XMP, xmp(6))]))
add("png_ztxt_and_raw_exif_after_idat_6.png",
    png(after=[zTXt("Comment", "hello"), tEXt(RAW, raw_profile_text(exif_prefixed(6)))]))

# JPEG and WebP: Pillow 9.4 keeps their XMP under info["xmp"], which getexif does not read.
def jpeg_with_app1(payload):
    out = io.BytesIO()
    pattern().save(out, "JPEG", quality=90)
    data = out.getvalue()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


add("jpeg_xmp_only_ignored.jpg", jpeg_with_app1(b"http://ns.adobe.com/xap/1.0/\0" + xmp(6).encode()))
webp = io.BytesIO()
pattern().save(webp, "WEBP", lossless=True, xmp=xmp(6).encode())
add("webp_xmp_only_ignored.webp", webp.getvalue())

# ---- BMP ----------------------------------------------------------------------------------------

def bmp(bits, pixels, w=W, h=H, palette=(), compression=0, header=40, colors=None, top_down=False, offset=None,
        masks=None, extra=b""):
    """A BMP file; `palette` is [(r, g, b)]; `masks` (r, g, b[, a]) follow a 40-byte header, or sit
    in a longer one."""
    entry = 3 if header == 12 else 4
    pal = b"".join(bytes((b, g, r)) + (b"\0" if entry == 4 else b"") for (r, g, b) in palette)
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        info = struct.pack("<IIIHHIIiiII", header, w, (2**32 - h) if top_down else h, 1, bits, compression,
                           len(pixels), 2835, 2835, len(palette) if colors is None else colors, 0)
        tail = b""
        if masks is not None and header > 40:
            tail = struct.pack("<4I", *(list(masks) + [0] * (4 - len(masks))))
        info += (tail + b"\0" * header)[:header - 40]
        if masks is not None and header == 40:
            extra = struct.pack("<3I", *masks[:3]) + extra
    start = 14 + len(info) + len(extra) + len(pal)
    body = info + extra + pal + pixels
    return b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, start if offset is None else offset) + body


def rows(w, h, bits, value, top_down=False):
    """Uncompressed pixel rows; value(x, y) gives the sample bytes (or an index for bits < 8)."""
    stride = ((w * bits + 31) >> 3) & ~3
    out = b""
    for y in (range(h) if top_down else range(h - 1, -1, -1)):
        if bits < 8:
            acc, n, row = 0, 0, b""
            for x in range(w):
                acc = (acc << bits) | value(x, y)
                n += bits
                if n == 8:
                    row += bytes([acc]); acc, n = 0, 0
            if n:
                row += bytes([acc << (8 - n)])
        else:
            row = b"".join(value(x, y) for x in range(w))
        out += row + b"\0" * (stride - len(row))
    return out


PAL16 = [((i * 53) & 255, (i * 97 + 30) & 255, (255 - i * 15) & 255) for i in range(16)]
PAL256 = [((i * 7) & 255, (i * 13 + 5) & 255, (i * 31 + 9) & 255) for i in range(256)]
px = pattern().load()
bgr = lambda x, y: bytes(px[x, y][::-1])
idx = lambda n: (lambda x, y: (x * 3 + y * 5) % n)


def rle8_rows(w, h, runs_for_row):
    """RLE8 stream; runs_for_row(y) gives the ops of one stored row (bottom first)."""
    out = b""
    for y in range(h):
        out += runs_for_row(y) + b"\0\0"
    return out + b"\0\1"


def rle8_row(y):
    # encoded run of 3, absolute run of 5 (odd: padded), encoded run of 2, absolute run of 3 (odd)
    lit = bytes((y * 7 + k) & 255 for k in range(8))
    return bytes([3, y]) + bytes([0, 5]) + lit[:5] + b"\0" + bytes([2, 200 - y]) + bytes([0, 3]) + lit[5:8] + b"\0"


add("bmp_rle8_bottom_up.bmp", bmp(8, rle8_rows(W, H, rle8_row), palette=PAL256, compression=1))
add("bmp_rle8_top_down.bmp", bmp(8, rle8_rows(W, H, rle8_row), palette=PAL256, compression=1, top_down=True))
add("bmp_rle8_small_palette.bmp", bmp(8, rle8_rows(W, H, rle8_row), palette=PAL16, compression=1))
add("bmp_rle8_row_overflow_clipped.bmp",
    bmp(8, rle8_rows(W, H, lambda y: bytes([10, y + 1, 9, 250])), palette=PAL256, compression=1))
add("bmp_rle8_no_eol_runs_wrap.bmp", bmp(8, bytes([40, 3, 40, 9, 11, 77, 0, 1]), palette=PAL256, compression=1))
# Pillow 9.4's delta escape reads four bytes after "0 2" and takes the last two as right/up.
add("bmp_rle8_delta.bmp", bmp(8, bytes([2, 5, 0, 2, 9, 9, 3, 1, 4, 6]) + bytes([0, 0]) + bytes([13, 8, 0, 0]) * 5 + b"\0\1",
                              palette=PAL256, compression=1))
add("bmp_rle8_end_of_bitmap_early.bmp", bmp(8, bytes([13, 1, 0, 0, 5, 2, 0, 1]), palette=PAL256, compression=1))
add("bmp_rle8_truncated.bmp", bmp(8, rle8_rows(W, H, rle8_row), palette=PAL256, compression=1)[:-40])


def rle4_row(y):
    # encoded run of 5 (two colours alternating), absolute run of 4, absolute run of 3, encoded 1
    return bytes([5, ((y & 15) << 4) | ((y + 3) & 15), 0, 4, 0x12, 0x34, 0, 3, 0x56, 0x70, 1, 0xF0 | y])


add("bmp_rle4_bottom_up.bmp", bmp(4, rle8_rows(W, H, rle4_row), palette=PAL16, compression=2))
add("bmp_rle4_top_down.bmp", bmp(4, rle8_rows(W, H, rle4_row), palette=PAL16, compression=2, top_down=True))
add("bmp_rle4_odd_absolute.bmp",
    bmp(4, rle8_rows(W, H, lambda y: bytes([0, 5, 0x12, 0x34, 0x50, 0, 8, 0xAB])), palette=PAL16, compression=2))
add("bmp_rle8_24bit_refused.bmp", bmp(24, rle8_rows(W, H, rle8_row), compression=1))

add("bmp_1bit_palette.bmp", bmp(1, rows(W, H, 1, idx(2)), palette=[(200, 10, 30), (5, 90, 250)]))
add("bmp_1bit_black_white.bmp", bmp(1, rows(W, H, 1, idx(2)), palette=[(0, 0, 0), (255, 255, 255)]))
add("bmp_4bit_palette.bmp", bmp(4, rows(W, H, 4, idx(16)), palette=PAL16))
add("bmp_4bit_top_down.bmp", bmp(4, rows(W, H, 4, idx(16), top_down=True), palette=PAL16, top_down=True))
add("bmp_4bit_short_palette.bmp", bmp(4, rows(W, H, 4, idx(16)), palette=PAL16[:5]))
add("bmp_8bit_palette.bmp", bmp(8, rows(W, H, 8, lambda x, y: bytes([(x * 19 + y * 41) & 255])), palette=PAL256))
add("bmp_8bit_grey_palette.bmp",
    bmp(8, rows(W, H, 8, lambda x, y: bytes([(x * 19 + y * 41) & 255])), palette=[(i, i, i) for i in range(256)]))
add("bmp_8bit_index_past_palette.bmp",
    bmp(8, rows(W, H, 8, lambda x, y: bytes([(x * 19 + y * 41) & 255])), palette=PAL16[:3]))
# A 2-colour black/white palette makes Pillow read the 8-bit rows as 1-bit ones.
add("bmp_8bit_black_white_palette.bmp",
    bmp(8, rows(W, H, 8, lambda x, y: bytes([(x + y) & 1])), palette=[(0, 0, 0), (255, 255, 255)]))
# 16 grey entries 0..15 make Pillow read 8-bit samples from 4-bit rows; the last row runs past
# the end of the file, where Pillow's memory map reads zeros.
add("bmp_4bit_grey_palette_read_as_8bit.bmp", bmp(4, rows(W, H, 4, idx(16)), palette=[(i, i, i) for i in range(16)]))
add("bmp_8bit_offset_after_header.bmp",
    bmp(8, rows(W, H, 8, lambda x, y: bytes([(x * 19 + y * 41) & 255])), palette=PAL256, offset=54))
add("bmp_8bit_offset_zero.bmp",
    bmp(8, rows(W, H, 8, lambda x, y: bytes([(x * 19 + y * 41) & 255])), palette=PAL256, offset=0))
add("bmp_16bit_555.bmp",
    bmp(16, rows(W, H, 16, lambda x, y: struct.pack("<H", (x * 2731 + y * 9901) & 0x7FFF))))
add("bmp_16bit_bitfields_565.bmp",
    bmp(16, rows(W, H, 16, lambda x, y: struct.pack("<H", (x * 2731 + y * 9901) & 0xFFFF)), compression=3,
        masks=(0xF800, 0x7E0, 0x1F)))
add("bmp_16bit_bitfields_555_v4.bmp",
    bmp(16, rows(W, H, 16, lambda x, y: struct.pack("<H", (x * 2731 + y * 9901) & 0xFFFF)), compression=3,
        header=108, masks=(0x7C00, 0x3E0, 0x1F, 0)))
add("bmp_16bit_bitfields_444_refused.bmp",
    bmp(16, rows(W, H, 16, lambda x, y: struct.pack("<H", x)), compression=3, masks=(0xF00, 0xF0, 0xF)))
add("bmp_24bit_top_down.bmp", bmp(24, rows(W, H, 24, bgr, top_down=True), top_down=True))
add("bmp_24bit_v5_header.bmp", bmp(24, rows(W, H, 24, bgr), header=124))
add("bmp_24bit_bitfields.bmp", bmp(24, rows(W, H, 24, bgr), compression=3, masks=(0xFF0000, 0xFF00, 0xFF)))
add("bmp_24bit_last_row_unpadded.bmp", bmp(24, rows(W, H, 24, bgr)[:-1]))
add("bmp_24bit_truncated.bmp", bmp(24, rows(W, H, 24, bgr)[:-8]))
bgrx = lambda x, y: bytes(px[x, y][::-1]) + bytes([x * 20])
add("bmp_32bit.bmp", bmp(32, rows(W, H, 32, bgrx)))
add("bmp_32bit_bitfields_bgrx.bmp", bmp(32, rows(W, H, 32, bgrx), compression=3, masks=(0xFF0000, 0xFF00, 0xFF)))
add("bmp_32bit_bitfields_xbgr.bmp",
    bmp(32, rows(W, H, 32, lambda x, y: bytes([x * 20]) + bytes(px[x, y][::-1])), compression=3,
        masks=(0xFF000000, 0xFF0000, 0xFF00)))
add("bmp_32bit_bitfields_rgba_v4.bmp",
    bmp(32, rows(W, H, 32, lambda x, y: bytes(px[x, y]) + bytes([x * 20])), compression=3, header=108,
        masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000)))
add("bmp_32bit_bitfields_abgr_v5.bmp",
    bmp(32, rows(W, H, 32, lambda x, y: bytes([x * 20]) + bytes(px[x, y][::-1])), compression=3, header=124,
        masks=(0xFF000000, 0xFF0000, 0xFF00, 0xFF)))
add("bmp_32bit_bitfields_bgra_v5.bmp",
    bmp(32, rows(W, H, 32, bgrx), compression=3, header=124, masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)))
add("bmp_32bit_bitfields_zero_masks_v4.bmp", bmp(32, rows(W, H, 32, bgrx), compression=3, header=108, masks=(0, 0, 0, 0)))
add("bmp_32bit_bitfields_odd_refused.bmp",
    bmp(32, rows(W, H, 32, bgrx), compression=3, header=108, masks=(0xFF00, 0xFF, 0xFF0000, 0)))
add("bmp_os2_v1_24bit.bmp", bmp(24, rows(W, H, 24, bgr), header=12))
add("bmp_os2_v1_8bit.bmp", bmp(8, rows(W, H, 8, lambda x, y: bytes([(x * 19 + y * 41) & 255])), header=12,
                               palette=PAL256))
add("bmp_os2_v1_1bit.bmp", bmp(1, rows(W, H, 1, idx(2)), header=12, palette=[(9, 99, 199), (250, 150, 50)]))
add("bmp_os2_v2_4bit.bmp", bmp(4, rows(W, H, 4, idx(16)), header=64, palette=PAL16))
add("bmp_header_56_refused.bmp", bmp(24, rows(W, H, 24, bgr), header=56))
add("bmp_alphabitfields_refused.bmp", bmp(32, rows(W, H, 32, bgrx), compression=6, header=56))
add("bmp_2bit_refused.bmp", bmp(2, rows(W, H, 2, idx(4)), palette=PAL16[:4]))
add("bmp_png_compression_refused.bmp", bmp(24, rows(W, H, 24, bgr), compression=5))

# ---- GIF ----------------------------------------------------------------------------------------

def lzw(indices, min_code_size):
    """GIF LZW with a real dictionary (so codes grow to 12 bits and the table fills)."""
    clear, end = 1 << min_code_size, (1 << min_code_size) + 1
    codes, width = [clear], min_code_size + 1
    table = {bytes([i]): i for i in range(clear)}
    next_code, cur = end + 1, b""
    widths = [width]
    for i in indices:
        s = cur + bytes([i])
        if s in table:
            cur = s
            continue
        codes.append(table[cur]); widths.append(width)
        if next_code < 4096:
            table[s] = next_code
            next_code += 1
            if next_code > (1 << width) and width < 12:
                width += 1
        else:
            codes.append(clear); widths.append(width)
            table = {bytes([k]): k for k in range(clear)}
            next_code, width = end + 1, min_code_size + 1
        cur = bytes([i])
    if cur:
        codes.append(table[cur]); widths.append(width)
    codes.append(end); widths.append(width)
    acc = nbits = 0
    out = bytearray()
    for c, wdt in zip(codes, widths):
        acc |= c << nbits
        nbits += wdt
        while nbits >= 8:
            out.append(acc & 255); acc >>= 8; nbits -= 8
    if nbits:
        out.append(acc & 255)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + out[i:i + 255] for i in range(0, len(out), 255))
    return bytes([min_code_size]) + blocks + b"\0"


def gif_palette(colours, bits):
    p = b"".join(bytes(c) for c in colours)
    return (p + b"\0" * (3 << bits))[:3 << bits]


def gif_frame(w, h, pix, x=0, y=0, local=None, local_bits=0, interlace=False, transparency=None, code_size=None,
              gce=True):
    out = b""
    if gce:
        flags = 1 if transparency is not None else 0
        out += b"!\xf9\x04" + bytes([flags]) + struct.pack("<H", 5) + bytes([transparency or 0]) + b"\0"
    flags = (0x80 | (local_bits - 1) if local else 0) | (0x40 if interlace else 0)
    out += b"," + struct.pack("<HHHH", x, y, w, h) + bytes([flags])
    if local:
        out += gif_palette(local, local_bits)
    order = list(range(h))
    if interlace:
        order = list(range(0, h, 8)) + list(range(4, h, 8)) + list(range(2, h, 4)) + list(range(1, h, 2))
    stored = [pix[r * w + c] for r in order for c in range(w)]
    return out + lzw(stored, code_size or max(2, local_bits or 2))


def gif(frames, w=W, h=H, global_palette=None, bits=4, background=0, comment=True):
    flags = (0x80 | (bits - 1)) if global_palette else 0
    out = b"GIF89a" + struct.pack("<HH", w, h) + bytes([flags, background, 0])
    if global_palette:
        out += gif_palette(global_palette, bits)
    if comment:
        out += b"!\xfe\x05dsocr\0"
    return out + b"".join(frames) + b";"


IDX = indices()
add("gif_global_palette.gif", gif([gif_frame(W, H, IDX, code_size=4)], global_palette=PAL16))
add("gif_local_palette.gif", gif([gif_frame(W, H, IDX, local=PAL16[::-1], local_bits=4)], global_palette=PAL16))
add("gif_local_palette_no_global.gif", gif([gif_frame(W, H, IDX, local=PAL16, local_bits=4)]))
add("gif_interlaced.gif", gif([gif_frame(W, H, IDX, interlace=True, code_size=4)], global_palette=PAL16))
add("gif_interlaced_tall.gif", gif([gif_frame(3, 20, indices(3, 20), interlace=True, code_size=4)], w=3, h=20,
                                   global_palette=PAL16))
add("gif_transparency_index.gif", gif([gif_frame(W, H, IDX, transparency=3, code_size=4)], global_palette=PAL16))
add("gif_small_frame_transparent_outside.gif",
    gif([gif_frame(5, 3, indices(5, 3), x=4, y=2, transparency=7, code_size=4)], global_palette=PAL16, background=2))
add("gif_small_frame_index0_outside.gif",
    gif([gif_frame(5, 3, indices(5, 3), x=4, y=2, code_size=4)], global_palette=PAL16, background=2))
add("gif_frame_beyond_screen.gif", gif([gif_frame(W, H, IDX, x=3, y=2, code_size=4)], w=10, h=5, global_palette=PAL16))
add("gif_no_palette.gif", gif([gif_frame(W, H, [(i * 17) & 255 for i in IDX], code_size=8)]))
add("gif_identity_palette.gif", gif([gif_frame(W, H, IDX, code_size=4)], global_palette=[(i, i, i) for i in range(16)]))
add("gif_index_past_palette.gif",
    gif([gif_frame(W, H, [(i * 37) & 255 for i in IDX], code_size=8)], global_palette=PAL16[:2], bits=1))
add("gif_animated_first_frame.gif",
    gif([gif_frame(W, H, IDX, code_size=4), gif_frame(W, H, IDX[::-1], transparency=1, code_size=4)],
        global_palette=PAL16))
add("gif_no_gce_8bit.gif", gif([gif_frame(W, H, [(i * 7) & 255 for i in range(W * H)], code_size=8, gce=False)],
                               global_palette=PAL256, bits=8))
big = [((x // 3) * 7 + (y // 2) * 13) % 256 for y in range(64) for x in range(96)]
add("gif_lzw_table_full.gif", gif([gif_frame(96, 64, [((x * x + y * 3) // 5) & 255 for y in range(64) for x in range(96)],
                                             code_size=8)], w=96, h=64, global_palette=PAL256, bits=8))
whole = gif([gif_frame(W, H, IDX, code_size=4)], global_palette=PAL16)
add("gif_truncated.gif", whole[:len(whole) - 20])
add("gif_no_image.gif", gif([], global_palette=PAL16))
add("gif_no_block_terminator.gif", whole[:-2] + b";")
add("gif_cut_after_last_block.gif", whole[:-2])
add("gif_empty_frame.gif", gif([gif_frame(0, 3, [], code_size=4)], global_palette=PAL16))
short_gce = gif([gif_frame(W, H, IDX, code_size=4, transparency=2)], global_palette=PAL16)
add("gif_short_graphic_control.gif", short_gce.replace(b"!\xf9\x04\x01\x05\x00", b"!\xf9\x03\x01\x05\x00", 1))
# Stray bytes between blocks: Pillow skips them, giflib (so dsocr) refuses the file.
add("gif_stray_bytes.gif", whole.replace(b"!\xfe", b"\x07\x07!\xfe", 1))
# LZW codes Pillow calls "broken data stream" (a code past the table); giflib decodes them. This
# one came from a random mutation of a generated GIF.
add("gif_lzw_code_past_table.gif", bytes.fromhex(
    "4749463839610800020000000021fe0564736f63cc0021f90400050000002c380005000900010040080d00793dfa80c1d2484488183304003b"))

# ---- TIFF pages ---------------------------------------------------------------------------------

tif = io.BytesIO()
pattern().save(tif, "TIFF", save_all=True, append_images=[pattern(5, 9).convert("L"), pattern(8, 3).transpose(
    Image.Transpose.ROTATE_180)], compression="tiff_lzw")
add("tiff_three_pages.tif", tif.getvalue())
add("gif_two_frames_one_page.gif", gif([gif_frame(W, H, IDX, code_size=4), gif_frame(W, H, IDX[::-1], code_size=4)],
                                      global_palette=PAL16))

# ---- write --------------------------------------------------------------------------------------

def expected(path):
    lines = []
    try:
        im = Image.open(path)
        pages = getattr(im, "n_frames", 1) if im.format == "TIFF" else 1
        for page in range(pages):
            im = Image.open(path)
            if page:
                im.seek(page)
            if page == 0 and im.format != "TIFF":
                im = ImageOps.exif_transpose(im)
            rgb = im.convert("RGB")
            lines.append("%d %d %d %s" % (page, rgb.width, rgb.height, hashlib.sha256(rgb.tobytes()).hexdigest()))
    except Exception as e:  # Pillow refuses the file
        print("  %s: Pillow refuses (%s: %s)" % (os.path.basename(path), type(e).__name__, e), file=sys.stderr)
        return ["0 error"]
    return lines


if __name__ == "__main__":
    manifest = ["# Made by make_reference.py with Pillow %s: NAME PAGE WIDTH HEIGHT SHA256(RGB) | NAME PAGE error"
                % PIL.__version__]
    for name, data in cases:
        path = os.path.join(HERE, name)
        with open(path, "wb") as f:
            f.write(data)
        manifest += ["%s %s" % (name, line) for line in expected(path)]
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    print("%d files, %d lines" % (len(cases), len(manifest) - 1))
