#!/usr/bin/env bash
# dsocr serve through the official `openai` npm package (installed into the build's testdata folder
# on first use): chat completions whole and streamed give the golden greedy text, vLLM's
# vllm_xargs are taken, and the SDK sees 401 and 400 as its own error classes.
set -euo pipefail
BIN=$1 MODEL=$2 DATA=$3
command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm missing: skipped"; exit 77; }
NPM_DIR=$(cd "$(dirname "$MODEL")" && pwd)/npm-openai
if [ ! -d "$NPM_DIR/node_modules/openai" ]; then
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --silent openai@4 >/dev/null 2>&1 \
    || { echo "npm install openai failed (no registry?): skipped"; exit 77; }
fi
tmp=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$BIN" serve --model "$MODEL" --port 0 --threads 2 --parallel 2 --kv-memory 0.0625 --api-key k-123 2>"$tmp/server.log" &
pid=$!
for _ in $(seq 200); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/server.log")
  [ -n "$port" ] && grep -q "ready" "$tmp/server.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/server.log"; exit 1; }
  sleep 0.1
done
expected=$(printf '%s' "[103973,389,51416,45482,77041,51343,82389,35269,51054,77041,51343,27984,49913,51416,99066,77041,51343,27984,49913,51416,99066,77041,51343,82389]" \
  | "$BIN" detokenize --model "$MODEL")
printf '%s' "$expected" >"$tmp/expected.txt"

cat >"$tmp/client.js" <<'JS'
const fs = require("fs");
const assert = require("assert");
const OpenAI = require(process.env.NPM_DIR + "/node_modules/openai");
const [port, image, expectedFile] = process.argv.slice(2);
const expected = fs.readFileSync(expectedFile, "utf8");
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "k-123", maxRetries: 0 });
const messages = [{ role: "user", content: [
  { type: "image_url", image_url: { url: "data:image/png;base64," + fs.readFileSync(image).toString("base64") } },
  { type: "text", text: "<|grounding|>Convert the document to markdown." } ] }];
(async () => {
  const models = await client.models.list();
  assert.strictEqual(models.data.length, 1);

  // DeepSeek-OCR's own fields go in the body as extra keys.
  const whole = await client.chat.completions.create({ model: "deepseek-ocr", messages, max_tokens: 24, temperature: 0,
                                                       mode: "base", ngram_size: 0 });
  assert.strictEqual(whole.choices[0].message.content, expected);
  assert.strictEqual(whole.choices[0].finish_reason, "length");
  assert.strictEqual(whole.usage.completion_tokens, 24);
  assert.strictEqual(whole.usage.prompt_tokens, 283);

  const stream = await client.chat.completions.create({ model: "deepseek-ocr", messages, max_tokens: 24, mode: "base",
                                                        ngram_size: 0, stream: true, stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length) {
      text += chunk.choices[0].delta.content || "";
      finish = chunk.choices[0].finish_reason || finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.strictEqual(text, expected);
  assert.strictEqual(finish, "length");
  assert.strictEqual(usage.completion_tokens, 24);

  // vLLM's recipe spelling of the guard: window_size and whitelist_token_ids.
  const vllm = await client.chat.completions.create({ model: "deepseek-ocr", messages, max_tokens: 24, mode: "base",
      skip_special_tokens: false, vllm_xargs: { ngram_size: 30, window_size: 90, whitelist_token_ids: [128821, 128822] } });
  assert.strictEqual(vllm.choices[0].message.content, expected);  // the default guard changes nothing in 24 tokens

  await assert.rejects(client.chat.completions.create({ model: "x", messages, mode: "huge" }),
                       (e) => e instanceof OpenAI.BadRequestError && /unknown mode 'huge'/.test(e.message));
  const wrongKey = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "nope", maxRetries: 0 });
  await assert.rejects(wrongKey.chat.completions.create({ model: "x", messages }),
                       (e) => e instanceof OpenAI.AuthenticationError);
  console.log("openai client: ok");
})().catch((e) => { console.error(e); process.exit(1); });
JS
NPM_DIR=$NPM_DIR node "$tmp/client.js" "$port" "$DATA/images/doc.png" "$tmp/expected.txt"
kill -TERM "$pid"; wait "$pid"; pid=
