#!/usr/bin/env bash
# dsocr serve end to end with curl on the tiny golden model: /health, /v1/models, chat completions
# with a data: URL (the golden greedy text), multipart to /v1/ocr with an image and a PDF, the API
# key, 413/429 answers, /metrics, and SIGTERM: a stream in flight finishes, then the server exits 0.
set -euo pipefail
BIN=$1 MODEL=$2 DATA=$3
command -v curl >/dev/null || { echo "curl missing: skipped"; exit 77; }
command -v node >/dev/null || { echo "node missing (reads the JSON answers): skipped"; exit 77; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
DOC=$DATA/images/doc.png

# start_server ARGS...: runs dsocr serve on a free port, sets $pid and $URL once /health says ok.
start_server() {
  "$BIN" serve --model "$MODEL" --port 0 --threads 2 --kv-memory 0.0625 "$@" 2>"$tmp/server.log" &
  pid=$!
  for _ in $(seq 200); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/server.log")
    if [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then URL=http://127.0.0.1:$port; return; fi
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/server.log"; echo "server died"; exit 1; }
    sleep 0.1
  done
  cat "$tmp/server.log"; echo "server did not come up"; exit 1
}
stop_server() { kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=; return $rc; }
# json FILE EXPR: evaluates EXPR on the parsed file (as `j`) and prints it.
json() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(eval(process.argv[2]))' "$1" "$2"; }

expected=$(printf '%s' "[103973,389,51416,45482,77041,51343,82389,35269,51054,77041,51343,27984,49913,51416,99066,77041,51343,27984,49913,51416,99066,77041,51343,82389]" \
  | "$BIN" detokenize --model "$MODEL")

start_server --api-key sekrit --parallel 2 --max-queue 1 --max-body-mb 1
H=(-H "Authorization: Bearer sekrit")
curl -fsS "$URL/health" | grep -q '"status":"ok"'
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/models")" = 401 ] || { echo "no 401 without the key"; exit 1; }
curl -fsS "${H[@]}" "$URL/v1/models" >"$tmp/models.json"
[ "$(json "$tmp/models.json" 'j.data.length')" = 1 ]

# The web page: served without the key, self-contained (no external scripts, styles or fonts).
curl -fsS "$URL/" >"$tmp/page.html"
grep -q '<title>dsocr</title>' "$tmp/page.html"
! grep -Eq '(src|href)="(https?:)?//|@import|url\(https?:' "$tmp/page.html" || { echo "the page loads something from outside"; exit 1; }

# A port in use is one line naming it and exit 1 (no second server sharing the port), before the model loads.
set +e; err=$("$BIN" serve --model "$MODEL" --port "$port" 2>&1 >/dev/null); rc=$?; set -e
[ $rc = 1 ] && [ "$err" = "dsocr: error: 127.0.0.1:$port: cannot listen (Address already in use)" ] \
  || { echo "port in use: exit $rc: $err"; exit 1; }

# Chat completions with the image as a data URL: the golden text, finish_reason and usage.
{ printf '{"model":"x","max_tokens":24,"mode":"base","ngram_size":0,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,'
  base64 -w0 "$DOC"
  printf '"}},{"type":"text","text":"<|grounding|>Convert the document to markdown."}]}]}'; } >"$tmp/chat.json"
curl -fsS "${H[@]}" -H 'Content-Type: application/json' --data-binary @"$tmp/chat.json" "$URL/v1/chat/completions" >"$tmp/answer.json"
[ "$(json "$tmp/answer.json" 'j.choices[0].message.content')" = "$expected" ] || { echo "chat text differs from the golden tokens"; cat "$tmp/answer.json"; exit 1; }
[ "$(json "$tmp/answer.json" 'j.choices[0].finish_reason + " " + j.usage.prompt_tokens + " " + j.usage.completion_tokens')" = "length 283 24" ]

# Multipart to /v1/ocr: an image, and a PDF (made by dsocr's searchable-PDF writer).
curl -fsS "${H[@]}" -F file=@"$DOC" -F mode=tiny -F task=free -F max_tokens=8 "$URL/v1/ocr" >"$tmp/ocr.json"
[ "$(json "$tmp/ocr.json" 'j.pages.length + " " + j.pages[0].index + " " + j.pages[0].generated_tokens + " " + (j.pages[0].dimensions.width > 0)')" = "1 0 8 true" ]
mkdir "$tmp/pdf"
cp "$DOC" "$tmp/pdf/a.png"
"$BIN" ocr --model "$MODEL" --mode tiny --max-tokens 4 --format pdf -q --out "$tmp/pdf/out" "$tmp/pdf/a.png" >/dev/null 2>&1
code=$(curl -sS -o "$tmp/pdf.json" -w '%{http_code}' "${H[@]}" -F file=@"$tmp/pdf/out/a.png.pdf" -F mode=tiny -F task=ocr \
  -F max_tokens=8 -F dpi=72 "$URL/v1/ocr")
if [ "$code" = 400 ] && grep -q "built without PDF support" "$tmp/pdf.json"; then
  echo "serve: this build reads no PDFs: the PDF requests are skipped"
else
  [ "$code" = 200 ] || { echo "PDF: HTTP $code"; cat "$tmp/pdf.json"; exit 1; }
  [ "$(json "$tmp/pdf.json" 'j.pages.length + " " + j.pages[0].dimensions.dpi + " " + j.pages[0].stop_reason')" = "1 72 max_tokens" ]
  # NDJSON: one line per page, then the summary.
  curl -fsS "${H[@]}" -F file=@"$tmp/pdf/out/a.png.pdf" -F mode=tiny -F max_tokens=4 -F stream=true "$URL/v1/ocr" >"$tmp/pdf.ndjson"
  [ "$(wc -l <"$tmp/pdf.ndjson")" = 2 ] && tail -1 "$tmp/pdf.ndjson" | grep -q '"done":true'
fi

# 413 for a body over --max-body-mb, with an error object; 400 for a file that is no document.
head -c 2000000 /dev/zero >"$tmp/big.bin"
code=$(curl -s -o "$tmp/err.json" -w '%{http_code}' "${H[@]}" -H 'Content-Type: application/json' --data-binary @"$tmp/big.bin" "$URL/v1/chat/completions")
[ "$code" = 413 ] && grep -q "too large" "$tmp/err.json" || { echo "expected 413, got $code"; exit 1; }
printf 'hello' >"$tmp/a.txt"
code=$(curl -s -o "$tmp/err.json" -w '%{http_code}' "${H[@]}" -F file=@"$tmp/a.txt" "$URL/v1/ocr")
[ "$code" = 400 ] && grep -q "not an image" "$tmp/err.json" || { echo "expected 400, got $code"; exit 1; }

# 429: parallel 2 + queue 1 admitted, the next refused with Retry-After.
sed 's/"max_tokens":24/"max_tokens":400,"mode":"tiny"/; s/"mode":"base",//' "$tmp/chat.json" >"$tmp/long.json"
long_pids=()
for i in 1 2 3; do
  curl -s "${H[@]}" -H 'Content-Type: application/json' --data-binary @"$tmp/long.json" "$URL/v1/chat/completions" >/dev/null &
  long_pids+=($!)
done
for _ in $(seq 100); do
  curl -s "${H[@]}" "$URL/metrics" | grep -q '^dsocr_requests_in_flight 3$' && break; sleep 0.1
done
code=$(curl -s -D "$tmp/headers" -o "$tmp/err.json" -w '%{http_code}' "${H[@]}" -H 'Content-Type: application/json' \
  --data-binary @"$tmp/chat.json" "$URL/v1/chat/completions")
[ "$code" = 429 ] && grep -qi '^retry-after: 1' "$tmp/headers" || { echo "expected 429, got $code"; exit 1; }
# Those clients hang up: their pages are cancelled and every KV block comes back.
kill "${long_pids[@]}"
wait_for_idle() { for _ in $(seq 600); do curl -s "${H[@]}" "$URL/metrics" | grep -q '^dsocr_requests_in_flight 0$' && return; sleep 0.1; done; echo "requests never finished"; exit 1; }
wait_for_idle
curl -fsS "${H[@]}" "$URL/metrics" >"$tmp/metrics.txt"
grep -q '^dsocr_queue_rejections_total 1$' "$tmp/metrics.txt"
grep -q '^dsocr_requests_total{endpoint="/v1/chat/completions",status="429"} 1$' "$tmp/metrics.txt"
grep -q '^dsocr_request_duration_seconds_count [1-9]' "$tmp/metrics.txt"
grep -q '^dsocr_kv_blocks_used 0$' "$tmp/metrics.txt"
grep -q '^dsocr_pages_total{result="cancelled"} 3$' "$tmp/metrics.txt"

# SIGTERM with a stream in flight (60 tokens): the stream ends properly with [DONE], then the server exits 0.
sed 's/"max_tokens":24/"max_tokens":60,"stream":true/' "$tmp/chat.json" >"$tmp/stream.json"
curl -sN "${H[@]}" -H 'Content-Type: application/json' --data-binary @"$tmp/stream.json" "$URL/v1/chat/completions" >"$tmp/stream.txt" &
curl_pid=$!
for _ in $(seq 100); do grep -q '"content":"[^"]' "$tmp/stream.txt" 2>/dev/null && break; sleep 0.1; done
stop_server || { echo "server exited $?"; cat "$tmp/server.log"; exit 1; }
wait "$curl_pid"
tail -1 "$tmp/stream.txt" | grep -qx 'data: \[DONE\]' || tail -2 "$tmp/stream.txt" | grep -q 'data: \[DONE\]' || { echo "stream cut by SIGTERM"; tail -3 "$tmp/stream.txt"; exit 1; }
grep -q '"finish_reason":"length"' "$tmp/stream.txt"
grep -q "stopped" "$tmp/server.log"
! curl -s "$URL/health" >/dev/null || { echo "still answering after SIGTERM"; exit 1; }
echo "serve: ok"
