#!/usr/bin/env bash
# dsocr render, compress-eval and context-compress end to end (the tiny golden model reads the pages).
# Usage: compress.sh DSOCR_BIN TINY_MODEL_DIR TESTS_DATA_DIR
set -euo pipefail
BIN=$1 MODEL=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {'d': d}))" "$@"; }
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 77; }
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { echo "fonts-dejavu-core missing: skipped"; exit 77; }

# ---- render: same bytes twice, overflow onto more pages, stale pages removed, missing glyphs reported
python3 -c "print(' '.join('word%d' % i for i in range(1500)))" >"$tmp/long.txt"
"$BIN" render -q --size 16 -o "$tmp/r1" "$tmp/long.txt"
"$BIN" render -q --size 16 -o "$tmp/r2" <"$tmp/long.txt"
pages=$(field "$tmp/r1/render.json" "d['pages']")
[ "$pages" -ge 2 ] || fail "1500 words at 16 pt should need several pages, got $pages"
[ -f "$tmp/r1/page-$(printf %04d "$pages").png" ] || fail "last page missing"
for f in "$tmp"/r1/page-*.png; do cmp -s "$f" "$tmp/r2/$(basename "$f")" || fail "$(basename "$f") differs between runs"; done
"$BIN" render -q --size 8 -o "$tmp/r1" "$tmp/long.txt"
[ ! -f "$tmp/r1/page-$(printf %04d "$pages").png" ] || fail "a page of the earlier, longer rendering was left behind"
printf 'abc \xe4\xb8\xad\xe6\x96\x87\n' >"$tmp/cjk.txt"
"$BIN" render -o "$tmp/cjk" "$tmp/cjk.txt" 2>"$tmp/err.txt"
grep -q "no glyph for U+4E2D, U+6587" "$tmp/err.txt" || fail "missing glyphs not reported: $(cat "$tmp/err.txt")"
[ "$(field "$tmp/cjk/render.json" "d['missing_glyphs'][0]['codepoint']")" = "U+4E2D" ] || fail "render.json lacks the missing glyphs"

# Errors: one line naming the problem; exit 2 for options, 1 for files.
set +e
"$BIN" render -o "$tmp/x" --fit tiny "$tmp/long.txt" 2>"$tmp/err.txt"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--fit needs --ratio" "$tmp/err.txt" || fail "--fit without --ratio: rc $rc $(cat "$tmp/err.txt")"
"$BIN" render -o "$tmp/x" --page huge "$tmp/long.txt" 2>"$tmp/err.txt"; rc=$?
[ $rc -eq 2 ] || fail "--page huge: rc $rc"
echo "not a font" >"$tmp/bad.ttf"
"$BIN" render -o "$tmp/x" --font "$tmp/bad.ttf" "$tmp/long.txt" 2>"$tmp/err.txt"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err.txt")" -eq 1 ] && grep -q "$tmp/bad.ttf: cannot load the font" "$tmp/err.txt" \
  || fail "bad font: rc $rc $(cat "$tmp/err.txt")"
"$BIN" render -o "$tmp/x" "$tmp/none.txt" 2>"$tmp/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "$tmp/none.txt" "$tmp/err.txt" || fail "missing input: rc $rc"
set -e

# --fit: the pages hold about the asked ratio of text tokens per valid vision token.
"$BIN" render -q --fit small --ratio 8 --model "$MODEL" -o "$tmp/fit" "$tmp/long.txt"
ratio=$(field "$tmp/fit/render.json" "d['fit']['ratio']")
python3 -c "import sys; r=float(sys.argv[1]); sys.exit(0 if abs(r-8)<0.25 else 1)" "$ratio" || fail "fit ratio $ratio, asked 8"

# ---- compress-eval with the tiny model
mkdir -p "$tmp/corpus"
echo "The quick brown fox jumps over the lazy dog." >"$tmp/corpus/a.txt"
echo "Optical compression of long contexts." >"$tmp/corpus/b.txt"
args=(--model "$MODEL" --max-tokens 6 --kv-memory 0.05 -p 2 -t 2)
"$BIN" compress-eval "${args[@]}" --modes tiny,small -o "$tmp/ce" "$tmp/corpus" >"$tmp/table.txt" 2>"$tmp/err.txt" || fail "compress-eval: $(cat "$tmp/err.txt")"
[ "$(wc -l <"$tmp/ce/samples.jsonl")" -eq 4 ] || fail "expected 4 sample lines"
python3 - "$tmp/ce" <<'EOF' || fail "samples.jsonl / summary.json content"
import json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/samples.jsonl")]
keys = {"id", "mode", "text_tokens", "vision_tokens", "valid_vision_tokens", "compression", "precision", "edit_distance", "stop_reason"}
assert all(keys <= set(r) for r in rows), rows[0].keys()
assert sorted((r["id"], r["mode"]) for r in rows) == [("a", "small"), ("a", "tiny"), ("b", "small"), ("b", "tiny")]
for r in rows:
    assert r["vision_tokens"] == {"tiny": 64, "small": 100}[r["mode"]]
    assert abs(r["compression"] - r["text_tokens"] / r["vision_tokens"]) < 1e-12
    assert 0 <= r["precision"] <= 1 and 0 <= r["edit_distance"] <= 1
    assert r["stop_reason"] in ("eos", "max_tokens")
s = json.load(open(d + "/summary.json"))
assert [m["mode"] for m in s["modes"]] == ["tiny", "small"]
assert all(m["samples"] == 2 for m in s["modes"])
EOF
grep -q "^600-700" "$tmp/table.txt" && grep -q "^1200-1300" "$tmp/table.txt" || fail "no Table 2 rows: $(cat "$tmp/table.txt")"
grep -q "<svg" "$tmp/ce/chart.svg" || fail "no chart"
# Run again: nothing to do; other options in the same folder: refused with the difference named.
"$BIN" compress-eval "${args[@]}" --modes tiny,small -o "$tmp/ce" "$tmp/corpus" >/dev/null 2>"$tmp/err.txt"
grep -q "4 already done in this folder, 0 to run" "$tmp/err.txt" || fail "rerun redid work: $(cat "$tmp/err.txt")"
[ "$(wc -l <"$tmp/ce/samples.jsonl")" -eq 4 ] || fail "rerun added lines"
set +e
"$BIN" compress-eval "${args[@]}" --modes tiny,small --size 9 -o "$tmp/ce" "$tmp/corpus" >/dev/null 2>"$tmp/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "made differently (render:" "$tmp/err.txt" || fail "changed options accepted: rc $rc $(cat "$tmp/err.txt")"
"$BIN" compress-eval "${args[@]}" --control shuffled --modes tiny -o "$tmp/ce_shuffled" "$tmp/corpus" >/dev/null 2>&1
[ "$(field "$tmp/ce_shuffled/run.json" "d['control']")" = "shuffled" ] || fail "control not recorded"

# A killed run continues where it stopped: SIGTERM after the first finished page, then the same command.
for i in 1 2 3 4 5 6; do echo "sample $i has a few words to read back from its page" >"$tmp/corpus/c$i.txt"; done
slow=(--model "$MODEL" --modes tiny,small --max-tokens 40 --no-ngram --kv-memory 0.05 -p 1 -t 2)
"$BIN" compress-eval "${slow[@]}" -o "$tmp/killed" "$tmp/corpus" >/dev/null 2>"$tmp/err1.txt" &
pid=$!
for _ in $(seq 600); do [ -s "$tmp/killed/samples.jsonl" ] && break; sleep 0.1; done
kill -TERM $pid
set +e; wait $pid; rc=$?; set -e
[ $rc -eq 130 ] || [ $rc -eq 0 ] || fail "interrupted run: rc $rc $(cat "$tmp/err1.txt")"
before=$(wc -l <"$tmp/killed/samples.jsonl")
echo "interrupted (rc $rc) after $before of 16 page reads"
"$BIN" compress-eval "${slow[@]}" -o "$tmp/killed" "$tmp/corpus" >/dev/null 2>"$tmp/err2.txt"
grep -q "($before already done in this folder" "$tmp/err2.txt" || fail "resume did not reuse $before: $(cat "$tmp/err2.txt")"
python3 - "$tmp/killed/samples.jsonl" <<'EOF' || fail "resumed run: wrong or duplicate lines"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = [(r["id"], r["mode"]) for r in rows]
assert len(keys) == 16 and len(set(keys)) == 16, keys
EOF

# ---- context-compress: recent turns as text, older ones rendered per tier; --read-back scores each tier
python3 -c "
import json
for i in range(8):
    print(json.dumps({'role': 'user' if i % 2 == 0 else 'assistant', 'content': 'turn %d: some words of the conversation' % i}))
" >"$tmp/chat.jsonl"
"$BIN" context-compress --model "$MODEL" --keep 2 --tiers base,small,tiny --read-back --max-tokens 6 -t 2 \
  -o "$tmp/ctx" "$tmp/chat.jsonl" >"$tmp/ctx.txt" 2>"$tmp/err.txt" || fail "context-compress: $(cat "$tmp/err.txt")"
python3 - "$tmp/ctx" <<'EOF' || fail "context manifest"
import json, os, sys
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))
assert [t["turn"] for t in m["recent"]] == [6, 7]
assert [t["mode"] for t in m["tiers"]] == ["base", "small", "tiny"]
assert [t["turns"] for t in m["tiers"]] == [[4, 5], [2, 3], [0, 1]]
assert [t["vision_tokens"] for t in m["tiers"]] == [256, 100, 64]
for t in m["tiers"]:
    assert all(os.path.exists(os.path.join(d, p)) for p in t["pages"])
    assert 0 <= t["read_back"]["precision"] <= 1
assert m["totals"]["context_tokens"] == m["totals"]["recent_text_tokens"] + 256 + 100 + 64
EOF
grep -q "^1 " "$tmp/ctx.txt" && [ -f "$tmp/ctx/forgetting.svg" ] || fail "no forgetting table/chart"
echo ok
