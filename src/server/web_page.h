// GET /: one self-contained page (HTML, CSS and JavaScript, no external resources) to try the server:
// drop an image or PDF, pick the task and mode, watch the text stream in (chat completions with
// stream: true for an image, /v1/ocr NDJSON for a PDF), see the rendered markdown and the layout
// boxes drawn over the page, and download the markdown or the JSON.
#pragma once
#include <string_view>

namespace dsocr::server {

std::string_view web_page_html();

}  // namespace dsocr::server
