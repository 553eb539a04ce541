#!/usr/bin/env python3
"""Copy an LM golden safetensors file, keeping a slice of the big logits block.

The golden `prefill_logits_last8` is F32 [8, 129280] (4 MB). Tests keep:
  prefill_logits_last_row  F32 [129280]   the row that predicts the first generated token (full vocab)
  prefill_logits_last8_head F32 [8, 8192] all 8 positions, the first 8192 vocab columns
Every other tensor is copied unchanged. Pure Python (no numpy) so it runs anywhere.
usage: make_lm_golden_slice.py IN.safetensors OUT.safetensors
"""
import json, struct, sys

def read(path):
    with open(path, 'rb') as f:
        blob = f.read()
    (n,) = struct.unpack('<Q', blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        a, b = info['data_offsets']
        out[name] = (info['dtype'], info['shape'], data[a:b])
    return out

def write(path, tensors):
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)

def main():
    src, dst = sys.argv[1], sys.argv[2]
    t = read(src)
    dtype, shape, raw = t.pop('prefill_logits_last8')
    rows, vocab = shape
    row_bytes = vocab * 4
    t['prefill_logits_last_row'] = (dtype, [vocab], raw[(rows - 1) * row_bytes:rows * row_bytes])
    head = 8192
    t['prefill_logits_last8_head'] = (dtype, [rows, head],
                                      b''.join(raw[r * row_bytes:r * row_bytes + head * 4] for r in range(rows)))
    write(dst, t)

if __name__ == '__main__':
    main()
