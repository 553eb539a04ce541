#include "server/web_page.h"

namespace dsocr::server {

// Everything inline: no CDN, no build step. The model's text is never inserted as HTML: the small
// markdown renderer escapes it and only re-creates the few elements it understands (headings,
// lists, emphasis, code, and the <table>/<tr>/<td>/<th> markup DeepSeek-OCR writes, without attributes).
std::string_view web_page_html() {
  return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>dsocr</title>
<style>
 body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}
 header{padding:10px 18px;background:#223;color:#fff;display:flex;gap:14px;align-items:center;flex-wrap:wrap}
 header h1{font-size:18px;margin:0 10px 0 0}
 header label{font-size:13px} select,input,button{font:inherit}
 #drop{margin:14px 18px;padding:22px;border:2px dashed #889;border-radius:8px;text-align:center;background:#fff;cursor:pointer}
 #drop.over{background:#eef}
 main{display:grid;grid-template-columns:1fr 1fr;gap:14px;padding:0 18px 18px}
 section{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px;min-height:120px;overflow:auto}
 section h2{font-size:14px;margin:0 0 6px;color:#556}
 #raw{white-space:pre-wrap;font:12px/1.4 ui-monospace,monospace;max-height:320px;overflow:auto}
 #pages canvas{max-width:100%;border:1px solid #ccc;display:block;margin-bottom:8px}
 #markdown table{border-collapse:collapse} #markdown td,#markdown th{border:1px solid #aaa;padding:2px 6px}
 #status{font-size:13px;color:#ccd} .err{color:#b00020;font-weight:600}
</style></head>
<body>
<header><h1>dsocr</h1>
 <label>Task <select id="task"><option value="markdown">markdown</option><option value="ocr">ocr</option>
  <option value="free">free</option><option value="figure">figure</option><option value="describe">describe</option></select></label>
 <label>Mode <select id="mode"><option>gundam</option><option>gundam-master</option><option>tiny</option><option>small</option>
  <option>base</option><option>large</option></select></label>
 <label>Max tokens <input id="max_tokens" type="number" min="1" value="" placeholder="all" style="width:6em"></label>
 <label>API key <input id="key" type="password" style="width:9em"></label>
 <button id="dl_md" disabled>Download .md</button><button id="dl_json" disabled>Download .json</button>
 <span id="status">Drop an image or a PDF below.</span>
</header>
<div id="drop">Drop an image or PDF here, or click to choose one. <input id="file" type="file" accept="image/*,application/pdf" hidden></div>
<main>
 <section><h2>Page and boxes</h2><div id="pages"></div></section>
 <section><h2>Markdown</h2><div id="markdown"></div></section>
 <section style="grid-column:1/3"><h2>Model output (streamed)</h2><div id="raw"></div></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const TASK_PROMPTS = {markdown: "<|grounding|>Convert the document to markdown.", ocr: "<|grounding|>OCR this image.",
  free: "Free OCR.", figure: "Parse the figure.", describe: "Describe this image in detail."};
let result = null;  // what the downloads save: {markdown, json}
$("key").value = localStorage.getItem("dsocr_key") || "";
$("key").onchange = () => localStorage.setItem("dsocr_key", $("key").value);

function headers(json) {
  const h = json ? {"Content-Type": "application/json"} : {};
  if ($("key").value) h.Authorization = "Bearer " + $("key").value;
  return h;
}
function status(text, error) { $("status").textContent = text; $("status").className = error ? "err" : ""; }
function escapeHtml(s) { return s.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])); }

// Grounding spans: <|ref|>LABEL<|/ref|><|det|>[[x1, y1, x2, y2], ...]<|/det|> in a 0..999 frame.
function parseBlocks(raw) {
  const blocks = [], re = /<\|ref\|>([\s\S]*?)<\|\/ref\|>\s*<\|det\|>([\s\S]*?)<\|\/det\|>/g;
  let m;
  while ((m = re.exec(raw))) {
    const boxes = [];
    for (const b of m[2].matchAll(/\[\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\]/g))
      boxes.push(b.slice(1, 5).map((v) => Math.min(999, Math.max(0, +v))));
    blocks.push({label: m[1], boxes999: boxes});
  }
  return blocks;
}
function stripGrounding(raw) {
  return raw.replace(/<\|ref\|>[\s\S]*?<\|\/ref\|>\s*<\|det\|>[\s\S]*?<\|\/det\|>\n?/g, "").replace(/<\|\/?(ref|det)\|>/g, "");
}

// A small markdown renderer over escaped text.
function inline(s) {
  return s.replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>").replace(/\*([^*]+)\*/g, "<i>$1</i>");
}
function renderMarkdown(md) {
  const out = [];
  let list = false;
  for (const line of escapeHtml(md).split("\n")) {
    const h = /^(#{1,6})\s+(.*)$/.exec(line), li = /^\s*[-*]\s+(.*)$/.exec(line);
    if (!li && list) { out.push("</ul>"); list = false; }
    if (h) out.push(`<h${h[1].length}>${inline(h[2])}</h${h[1].length}>`);
    else if (li) { if (!list) { out.push("<ul>"); list = true; } out.push(`<li>${inline(li[1])}</li>`); }
    else if (line.trim()) out.push(`<p>${inline(line)}</p>`);
  }
  if (list) out.push("</ul>");
  // The model's HTML tables: only bare table tags come back to life.
  return out.join("\n").replace(/&lt;(\/?)(table|thead|tbody|tr|td|th)&gt;/g, "<$1$2>");
}

const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"];
function drawPage(img, blocks, pixelBoxes) {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  let drawn = 0;
  blocks.forEach((b, i) => {
    g.strokeStyle = g.fillStyle = COLORS[i % COLORS.length];
    g.lineWidth = Math.max(2, c.width / 400);
    g.font = Math.max(12, c.width / 60) + "px sans-serif";
    const boxes = pixelBoxes ? b.boxes : b.boxes999.map(([x1, y1, x2, y2]) =>
      [x1 / 999 * c.width, y1 / 999 * c.height, x2 / 999 * c.width, y2 / 999 * c.height]);
    for (const [x1, y1, x2, y2] of boxes) {
      g.strokeRect(x1, y1, x2 - x1, y2 - y1);
      g.fillText(b.label, x1 + 2, Math.max(12, y1 - 3));
      ++drawn;
    }
  });
  c.dataset.boxes = drawn;
  $("pages").appendChild(c);
  return drawn;
}
function loadImage(src) {
  return new Promise((ok, bad) => { const i = new Image(); i.onload = () => ok(i); i.onerror = bad; i.src = src; });
}
function readDataUrl(file) {
  return new Promise((ok) => { const r = new FileReader(); r.onload = () => ok(r.result); r.readAsDataURL(file); });
}
async function failed(res) {
  let msg = "HTTP " + res.status;
  try { msg += ": " + (await res.json()).error.message; } catch (e) {}
  status(msg, true);
}
function options() {
  const o = {mode: $("mode").value};
  if ($("max_tokens").value) o.max_tokens = +$("max_tokens").value;
  return o;
}
function finish(markdown, json, boxes) {
  result = {markdown, json};
  $("dl_md").disabled = $("dl_json").disabled = false;
  document.body.dataset.done = "1";
  document.body.dataset.boxes = boxes;
}

// An image: chat completions with stream: true, the text shown as it arrives.
async function runImage(file) {
  const url = await readDataUrl(file);
  const body = {model: "dsocr", stream: true, ...options(), messages: [{role: "user", content: [
    {type: "image_url", image_url: {url}}, {type: "text", text: TASK_PROMPTS[$("task").value]}]}]};
  const res = await fetch("/v1/chat/completions", {method: "POST", headers: headers(true), body: JSON.stringify(body)});
  if (!res.ok) return failed(res);
  const reader = res.body.getReader(), dec = new TextDecoder();
  let buf = "", raw = "", finishReason = null, usage = null;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += dec.decode(value, {stream: true});
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, at); buf = buf.slice(at + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) { status(chunk.error.message, true); continue; }
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices && chunk.choices[0];
      if (!choice) continue;
      if (choice.delta && choice.delta.content) { raw += choice.delta.content; $("raw").textContent = raw; }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  }
  const blocks = parseBlocks(raw), markdown = stripGrounding(raw).trim();
  $("markdown").innerHTML = renderMarkdown(markdown);
  const boxes = drawPage(await loadImage(url), blocks, false);
  status(`done: ${usage ? usage.completion_tokens : "?"} tokens, ${finishReason}, ${boxes} boxes`);
  finish(markdown, {raw, blocks, finish_reason: finishReason, usage}, boxes);
}

// A PDF: /v1/ocr streamed as NDJSON, each page with its image, markdown and blocks as it finishes.
async function runPdf(file) {
  const form = new FormData();
  form.append("file", file);
  form.append("task", $("task").value);
  form.append("stream", "true");
  form.append("include_page_image", "true");
  for (const [k, v] of Object.entries(options())) form.append(k, String(v));
  const res = await fetch("/v1/ocr", {method: "POST", headers: headers(false), body: form});
  if (!res.ok) return failed(res);
  const reader = res.body.getReader(), dec = new TextDecoder();
  let buf = "", boxes = 0;
  const pages = [];
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += dec.decode(value, {stream: true});
    let at;
    while ((at = buf.indexOf("\n")) >= 0) {
      const line = JSON.parse(buf.slice(0, at)); buf = buf.slice(at + 1);
      if (line.done) continue;
      pages.push(line);
      pages.sort((a, b) => a.index - b.index);
      $("raw").textContent = pages.map((p) => `--- page ${p.index + 1} ---\n` + (p.raw || p.error || "")).join("\n");
      $("markdown").innerHTML = renderMarkdown(pages.map((p) => p.markdown).join("\n\n"));
      if (line.page_image_base64) boxes += drawPage(await loadImage(line.page_image_base64), line.blocks || [], true);
      status(`${pages.length} page(s) done`);
    }
  }
  status(`done: ${pages.length} page(s), ${boxes} boxes`);
  finish(pages.map((p) => p.markdown).join("\n\n<--- Page Split --->\n\n"), {pages}, boxes);
}

async function run(file) {
  $("pages").innerHTML = $("markdown").innerHTML = $("raw").textContent = "";
  delete document.body.dataset.done;
  status("working on " + file.name + " ...");
  try {
    const head = new Uint8Array(await file.slice(0, 5).arrayBuffer());
    const isPdf = String.fromCharCode(...head) === "%PDF-";
    await (isPdf ? runPdf(file) : runImage(file));
  } catch (e) { status(String(e), true); }
}
function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], {type}));
  a.download = name; a.click();
}
$("dl_md").onclick = () => result && download("page.md", result.markdown, "text/markdown");
$("dl_json").onclick = () => result && download("page.json", JSON.stringify(result.json, null, 2), "application/json");
const drop = $("drop");
drop.onclick = () => $("file").click();
$("file").onchange = () => $("file").files[0] && run($("file").files[0]);
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) run(e.dataTransfer.files[0]); };
</script></body></html>
)HTML";
}

}  // namespace dsocr::server
