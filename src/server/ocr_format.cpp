#include "server/ocr_format.h"

#include "server/api_error.h"
#include "server/request_parsing.h"
#include "text/prompt.h"

using json = nlohmann::json;

namespace dsocr::server {

namespace {

std::string string_field(const json& o, const char* name) {
  if (!o.at(name).is_string()) bad_request(name, "must be a string");
  return o.at(name).get<std::string>();
}

bool bool_field(const json& o, const char* name) {
  if (!o.at(name).is_boolean()) bad_request(name, "must be true or false");
  return o.at(name).get<bool>();
}

std::string document_of(const json& d, const std::string& allow_files) {
  if (!d.is_object()) bad_request("document", "must be an object with a type");
  const std::string type = d.value("type", json()).is_string() ? d["type"].get<std::string>() : "";
  if (type != "document_url" && type != "image_url")
    bad_request("document.type", "must be document_url or image_url");
  return load_url(url_field(d, type, "document"), allow_files, "document." + type);
}

}  // namespace

json form_value(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  if (!text.empty() && (std::isdigit(uint8_t(text[0])) || text[0] == '-') &&
      text.find_first_not_of("0123456789.-+eE") == std::string::npos) {
    const json v = json::parse(text, nullptr, false);
    if (v.is_number()) return v;
  }
  return text;
}

OcrApiRequest parse_ocr_request(const json& o, const std::string* uploaded, const std::string& allow_files) {
  if (!o.is_object()) bad_request("", "the request body must be a JSON object");
  OcrApiRequest r;
  if (has_field(o, "model") && o["model"].is_string()) r.model = o["model"].get<std::string>();
  if (uploaded) {
    r.document = *uploaded;
  } else {
    if (!has_field(o, "document")) bad_request("document", "missing: {\"type\": \"document_url\", \"document_url\": \"data:...\"}");
    r.document = document_of(o["document"], allow_files);
  }
  const std::string kind = sniff_document(r.document);
  if (kind.empty()) bad_request(uploaded ? "file" : "document", "not an image (PNG, JPEG, WebP, TIFF, BMP, GIF) or a PDF");
  r.is_pdf = kind == "pdf";

  const bool has_prompt = has_field(o, "prompt"), has_task = has_field(o, "task"), has_locate = has_field(o, "locate");
  if (has_prompt && (has_task || has_locate)) bad_request("prompt", "give either prompt or task, not both");
  try {
    if (has_prompt) {
      r.ocr.prompt = normalize_prompt(string_field(o, "prompt"));
    } else {
      const Task task = has_task ? parse_task(string_field(o, "task")) : (has_locate ? Task::Locate : Task::Markdown);
      if (task == Task::Locate && !has_locate) bad_request("locate", "the locate task needs the text to find");
      r.ocr.prompt = task_prompt(task, has_locate ? string_field(o, "locate") : "");
    }
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    bad_request(has_prompt ? "prompt" : "task", e.what());
  }
  apply_generation_options(o, r.ocr);
  const bool guard_given = has_field(o, "ngram_size") || has_field(o, "ngram_window") ||
                           (has_field(o, "vllm_xargs") && o["vllm_xargs"].is_object() &&
                            (has_field(o["vllm_xargs"], "ngram_size") || has_field(o["vllm_xargs"], "window_size")));
  r.pdf_ngram = guard_given ? r.ocr.generation.ngram : *BatchOptions().pdf_ngram;

  if (has_field(o, "pages")) {
    const json& p = o["pages"];
    if (p.is_array()) {  // Mistral: 0-based indices
      for (const json& i : p) {
        if (!i.is_number_integer() || i.get<int64_t>() < 0 || i.get<int64_t>() > (1 << 20))
          bad_request("pages", "an array of 0-based page indices, or a string such as \"1-3,7\" (1-based)");
        r.pages.push_back(int(i.get<int64_t>()) + 1);
      }
      std::sort(r.pages.begin(), r.pages.end());
      r.pages.erase(std::unique(r.pages.begin(), r.pages.end()), r.pages.end());
      if (r.pages.empty()) bad_request("pages", "is empty");
    } else if (p.is_string() || p.is_number_integer()) {
      try {
        r.pages = parse_page_ranges(p.is_string() ? p.get<std::string>() : std::to_string(p.get<int64_t>()));
      } catch (const Error& e) {
        bad_request("pages", e.what());
      }
    } else {
      bad_request("pages", "an array of 0-based page indices, or a string such as \"1-3,7\" (1-based)");
    }
  }
  if (has_field(o, "dpi")) {
    if (!o["dpi"].is_number()) bad_request("dpi", "must be a number");
    r.dpi = o["dpi"].get<double>();
    if (!std::isfinite(r.dpi) || r.dpi < 18 || r.dpi > 1200) bad_request("dpi", fmt::format("{}: must be 18..1200", r.dpi));
  }
  if (has_field(o, "include_image_base64")) r.include_image_base64 = bool_field(o, "include_image_base64");
  if (has_field(o, "include_page_image")) r.include_page_image = bool_field(o, "include_page_image");
  if (has_field(o, "stream")) r.stream = bool_field(o, "stream");
  return r;
}

std::string ocr_image_id(bool paged, int page, int region_index) {
  return paged ? fmt::format("img-{}-{}.jpeg", page - 1, region_index) : fmt::format("img-{}.jpeg", region_index);
}

namespace {
std::string jpeg_data_url(const Image& image) {
  const std::vector<uint8_t> jpeg = encode_jpeg(image, 90);
  return "data:image/jpeg;base64," + encode_base64(std::string_view(reinterpret_cast<const char*>(jpeg.data()), jpeg.size()));
}
}  // namespace

json ocr_page_json(const PageRecord& record, const Image& page, int index, double dpi, bool include_image_base64,
                   bool include_page_image) {
  json out;
  out["index"] = index;
  out["markdown"] = record.json.value("markdown", "");
  auto images = json::array();
  for (const ImageRegion& region : record.images) {
    json im = {{"id", region.link},
               {"top_left_x", region.box.x1}, {"top_left_y", region.box.y1},
               {"bottom_right_x", region.box.x2}, {"bottom_right_y", region.box.y2},
               {"image_base64", nullptr}};
    if (include_image_base64) im["image_base64"] = jpeg_data_url(crop(page, region.box.x1, region.box.y1, region.box.x2, region.box.y2));
    images.push_back(std::move(im));
  }
  out["images"] = std::move(images);
  out["dimensions"] = {{"dpi", dpi > 0 ? json(dpi) : json(nullptr)}, {"height", page.height}, {"width", page.width}};
  for (auto it = record.json.begin(); it != record.json.end(); ++it)
    if (it.key() != "markdown" && it.key() != "images" && it.key() != "width" && it.key() != "height") out[it.key()] = it.value();
  if (include_page_image) out["page_image_base64"] = jpeg_data_url(page);
  return out;
}

json ocr_failed_page_json(int index, const std::string& error) {
  return {{"index", index}, {"page", index + 1}, {"status", "failed"}, {"error", error}, {"markdown", ""},
          {"images", json::array()}};
}

json ocr_usage(int pages_processed, size_t doc_size_bytes, int prompt_tokens, int completion_tokens) {
  return {{"pages_processed", pages_processed}, {"doc_size_bytes", doc_size_bytes},
          {"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}};
}

}  // namespace dsocr::server
