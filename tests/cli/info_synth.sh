#!/usr/bin/env bash
# dsocr info on the tiny model and on a synthesized (sparse) full-size checkpoint; bad input errors.
set -euo pipefail
BIN=$1 MODEL=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$("$BIN" info "$MODEL")
grep -q "total *18,316,128" <<<"$out" || { echo "tiny total wrong: $out"; exit 1; }
grep -q "181 (180 x BF16, 1 x I64)" <<<"$out"

"$BIN" synth-checkpoint --out "$tmp/full" --tokenizer "$MODEL/tokenizer.json" --sparse -q | grep -q "wrote 2711 tensors"
out=$("$BIN" info "$tmp/full")
grep -q "total *3,336,106,240" <<<"$out" || { echo "full total wrong: $out"; exit 1; }
grep -q "LM total *2,934,734,080" <<<"$out"
grep -q "CLIP-L *303,177,728" <<<"$out"
grep -q "LM active per token" <<<"$out"

# A clear one-line error and a non-zero exit for a directory that is not a model.
set +e
err=$("$BIN" info "$tmp" 2>&1); rc=$?
set -e
[ $rc -ne 0 ] || { echo "expected failure"; exit 1; }
grep -q "config.json: cannot open" <<<"$err"
[ "$(wc -l <<<"$err")" -eq 1 ] || { echo "error is not one line: $err"; exit 1; }
echo "info_synth: ok"
