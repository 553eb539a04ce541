// POST /v1/ocr in the request and response shape of Mistral's OCR API (which LiteLLM and other
// clients speak), with dsocr's own per-page fields added.
//
// In: a document as multipart `file` (the other form fields are the options) or JSON
// {"document": {"type": "document_url", "document_url": "data:application/pdf;base64,..."}} /
// {"type": "image_url", "image_url": "data:image/png;base64,..."}, and the options
//   task (markdown|ocr|free|figure|describe|locate, with `locate` TEXT) or prompt (with <image>),
//   pages ("1-3,7", 1-based; or Mistral's array of 0-based indices), dpi (PDFs, 18..1200, 144),
//   include_image_base64, include_page_image (dsocr's: the page as a JPEG data URL, for drawing the
//   boxes over it), stream (NDJSON: one page per line as pages finish), and the generation
//   options of request_parsing.h. PDF pages get the official PDF driver's n-gram guard (20/50)
//   unless the request sets one.
// Out per page: index (0-based), markdown (crop links are the image ids), images (id, corners in
// page pixels, image_base64 as a data URL when asked), dimensions (dpi, width, height), and dsocr's
// record (engine/document.h: page, raw, blocks, stop_reason, truncated, token counts, timings).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/document.h"
#include "engine/request.h"
#include "io/image.h"

namespace dsocr::server {

struct OcrApiRequest {
  std::string model;
  std::string document;          // the bytes
  bool is_pdf = false;
  OcrRequest ocr;                // for images; PDF pages: with pdf_ngram unless the request set a guard
  NgramGuardConfig pdf_ngram;
  std::vector<int> pages;        // 1-based, sorted; empty: all
  double dpi = 144;
  bool include_image_base64 = false;
  bool include_page_image = false;
  bool stream = false;
};

// `options`: the JSON body, or the form fields (values that parse as JSON numbers or booleans are
// those). `uploaded`: the multipart file's bytes ("" for a JSON body, which then needs `document`).
// Throws ApiError (400) naming the field.
OcrApiRequest parse_ocr_request(const nlohmann::json& options, const std::string* uploaded, const std::string& allow_files);

// Form fields as JSON values: "true"/"false"/numbers become JSON, the rest stays text.
nlohmann::json form_value(const std::string& text);

// One finished page in the response. `index`: 0-based; `dpi`: 0 for an image.
nlohmann::json ocr_page_json(const PageRecord& record, const Image& page, int index, double dpi, bool include_image_base64,
                             bool include_page_image = false);
// A page that failed (render error, bad input, engine error).
nlohmann::json ocr_failed_page_json(int index, const std::string& error);
// The crop link (and image id) of region K on page `page` (1-based) of a paged document or an image.
std::string ocr_image_id(bool paged, int page, int region_index);

nlohmann::json ocr_usage(int pages_processed, size_t doc_size_bytes, int prompt_tokens, int completion_tokens);

}  // namespace dsocr::server
