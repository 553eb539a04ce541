#!/usr/bin/env bash
# dsocr ocr end to end on the tiny golden model: the golden greedy tokens, streaming, errors.
set -euo pipefail
BIN=$1 MODEL=$2 DATA=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
DOC=$DATA/images/doc.png

# Issue: `--emit-ids --no-ngram --max-tokens 24` reproduces the golden greedy tokens (golden README §F).
base=$("$BIN" ocr --model "$MODEL" --mode base --emit-ids --no-ngram --max-tokens 24 -q "$DOC")
[ "$base" = "[103973,389,51416,45482,77041,51343,82389,35269,51054,77041,51343,27984,49913,51416,99066,77041,51343,27984,49913,51416,99066,77041,51343,82389]" ] \
  || { echo "base tokens differ: $base"; exit 1; }
gundam=$("$BIN" ocr --model "$MODEL" --emit-ids --no-ngram --max-tokens 24 -q "$DOC")   # gundam is the default mode
[ "$gundam" = "[103973,389,51416,45482,77041,51054,77041,51054,77041,51054,77041,51054,77041,51054,77041,51054,77041,51054,77041,51054,77041,51054,77041,51054]" ] \
  || { echo "gundam tokens differ: $gundam"; exit 1; }

# The float32 cache (the goldens' own precision) gives the same tokens as the default bf16 cache.
f32=$("$BIN" ocr --model "$MODEL" --kv-f32 --emit-ids --no-ngram --max-tokens 24 -q "$DOC")
[ "$f32" = "$gundam" ] || { echo "float32 cache tokens differ: $f32"; exit 1; }

# DSOCR_MODEL is honoured when --model is absent.
DSOCR_MODEL=$MODEL "$BIN" ocr --mode base --emit-ids --no-ngram --max-tokens 24 -q "$DOC" | grep -qxF "$base"

# The default n-gram guard (30/90) changes nothing within 24 tokens; a small one breaks the loop.
guarded=$("$BIN" ocr --model "$MODEL" --emit-ids --ngram 3 --ngram-window 20 --max-tokens 24 -q "$DOC")
[ "$guarded" != "$gundam" ] || { echo "n-gram guard had no effect"; exit 1; }

# Streaming text: --raw shows exactly the decoded tokens; the summary line goes to stderr.
"$BIN" ocr --model "$MODEL" --mode tiny --raw --max-tokens 8 "$DOC" >"$tmp/out.txt" 2>"$tmp/err.txt"
[ -s "$tmp/out.txt" ] || { echo "no text on stdout"; exit 1; }
grep -q "mode tiny, grid 1x1, 73 image tokens, 8 generated, stop: max_tokens" "$tmp/err.txt"
ids=$("$BIN" ocr --model "$MODEL" --mode tiny --emit-ids --max-tokens 8 -q "$DOC")
expected=$(printf '%s' "$ids" | "$BIN" detokenize --model "$MODEL")
[ "$(cat "$tmp/out.txt")" = "$expected" ] || { echo "streamed text differs from the decoded ids"; exit 1; }

# Clear one-line errors with a non-zero exit.
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  set +e; err=$("$BIN" "$@" 2>&1 >/dev/null); rc=$?; set -e
  [ $rc -ne 0 ] || { echo "expected failure: $*"; exit 1; }
  grep -q -- "$pattern" <<<"$err" || { echo "expected '$pattern', got: $err"; exit 1; }
  [ "$(wc -l <<<"$err")" -eq 1 ] || { echo "error is not one line: $err"; exit 1; }
}
# Nonsense options are usage errors: exit code 2, one line.
expect_usage() {  # expect_usage PATTERN ARGS...
  local pattern=$1; shift
  set +e; err=$("$BIN" "$@" 2>&1 >/dev/null); rc=$?; set -e
  [ $rc -eq 2 ] || { echo "expected exit 2, got $rc: $*: $err"; exit 1; }
  grep -q -- "$pattern" <<<"$err" || { echo "expected '$pattern', got: $err"; exit 1; }
  [ "$(wc -l <<<"$err")" -eq 1 ] || { echo "error is not one line: $err"; exit 1; }
}
expect_usage "must contain <image>" ocr --model "$MODEL" --prompt "Free OCR." "$DOC"
expect_usage "unknown mode 'huge'" ocr --model "$MODEL" --mode huge "$DOC"
expect_usage "max tiles must be between 2 and 9" ocr --model "$MODEL" --max-tiles 12 "$DOC"
expect_error "no-such.png" ocr --model "$MODEL" "$tmp/no-such.png"
printf 'not a png' > "$tmp/broken.png"
expect_error "broken.png" ocr --model "$MODEL" "$tmp/broken.png"
head -c 2000 "$DOC" > "$tmp/truncated.png"
expect_error "truncated.png" ocr --model "$MODEL" "$tmp/truncated.png"
expect_usage "unknown task" ocr --model "$MODEL" --task summarize "$DOC"
expect_usage "add --out DIR" ocr --model "$MODEL" "$DOC" "$DOC"
expect_usage "--ngram: Value 0 not in range" ocr --model "$MODEL" --ngram 0 "$DOC"
expect_usage "--max-tokens: Value 0 not in range" ocr --model "$MODEL" --max-tokens 0 "$DOC"
expect_usage "--max-tokens: Value -1 not in range" ocr --model "$MODEL" --max-tokens -1 "$DOC"
expect_usage "--temperature: Value -1 not in range" ocr --model "$MODEL" --temperature -1 "$DOC"
expect_usage "--dpi nan: must be 18..1200" ocr --model "$MODEL" --dpi nan "$DOC"
expect_usage "unknown format 'docx'" ocr --model "$MODEL" --format md,docx --out "$tmp/o" "$DOC"
expect_usage "--retry-failed goes with --resume" ocr --model "$MODEL" --retry-failed --out "$tmp/o" "$DOC"
expect_usage "no-such-option" ocr --model "$MODEL" --no-such-option "$DOC"
"$BIN" ocr --help | grep -q "Exit codes: 0 done; 1 an input" || { echo "exit codes not in --help"; exit 1; }
mkdir "$tmp/badmodel"; echo '{' > "$tmp/badmodel/config.json"
expect_error "config.json: not valid JSON" ocr --model "$tmp/badmodel" "$DOC"
echo "ocr: ok"
