#include "engine/compress.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "io/files.h"

namespace dsocr {

int count_text_tokens(const Tokenizer& tokenizer, std::string_view text) { return int(tokenizer.encode(text).size()); }

FitResult fit_font_size(TextRenderer& renderer, std::string_view text, int text_tokens, const RenderOptions& base,
                        Mode mode, int max_tiles, double ratio) {
  if (!(ratio > 0) || !std::isfinite(ratio)) fail("fit: ratio {} must be a positive number", ratio);
  RenderOptions o = base;
  const VisionTokenCount per_page = vision_token_count(page_width_px(o), page_height_px(o), mode, max_tiles);
  auto evaluate = [&](double size) {
    o.font_size = size;
    const RenderedText r = renderer.render(text, o, false);
    FitResult f;
    f.font_size = size;
    f.pages = r.page_count;
    f.fill = r.fill;
    f.per_page = per_page;
    f.ratio = r.fill > 0 ? double(text_tokens) / (r.fill * per_page.valid) : 0;
    return f;
  };
  // Sizes in hundredths of a point; ratio(lo) >= target > ratio(hi) once bracketed.
  int lo = 100, hi = 50000;
  FitResult at_lo = evaluate(lo / 100.0);
  if (at_lo.ratio < ratio) {  // even the smallest font is not dense enough
    at_lo.reached = false;
    return at_lo;
  }
  FitResult at_hi = evaluate(hi / 100.0);
  if (at_hi.ratio >= ratio) {  // the text is so short that even the largest font packs it tighter
    at_hi.reached = false;
    return at_hi;
  }
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    FitResult f = evaluate(mid / 100.0);
    if (f.ratio >= ratio) {
      lo = mid;
      at_lo = f;
    } else {
      hi = mid;
      at_hi = f;
    }
  }
  return std::abs(at_lo.ratio - ratio) <= std::abs(at_hi.ratio - ratio) ? at_lo : at_hi;
}

}  // namespace dsocr

// ---- single pages, corpora, controls -----------------------------------------------------------

namespace dsocr {

namespace {

// Calls each(json, line number) for every non-blank line of a JSON-lines file; a line that is not
// JSON fails naming the file, the line and what the file should hold (`expected`).
template <typename Each>
void for_each_json_line(const std::string& path, std::string_view expected, Each&& each) {
  const std::string content = read_file_text(path);
  size_t line_no = 0;
  for (size_t pos = 0; pos < content.size();) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();
    const std::string_view line(content.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error&) {
      fail("{}: line {}: not valid JSON ({})", path, line_no, expected);
    }
    each(j, line_no);
  }
}

}  // namespace

SinglePage render_single_page(TextRenderer& renderer, std::string_view text, const RenderOptions& options) {
  RenderOptions o = options;
  RenderedText r = renderer.render(text, o, false);
  if (r.page_count > 1) {
    // Largest size (hundredths of a point) below the asked one at which the text is one page.
    int lo = 100, hi = int(std::lround(options.font_size * 100));
    o.font_size = lo / 100.0;
    if (renderer.render(text, o, false).page_count > 1)
      fail("the text does not fit one page even at 1 pt ({} lines)", r.lines);
    while (hi - lo > 1) {
      const int mid = lo + (hi - lo) / 2;
      o.font_size = mid / 100.0;
      (renderer.render(text, o, false).page_count == 1 ? lo : hi) = mid;
    }
    o.font_size = lo / 100.0;
  }
  r = renderer.render(text, o, true);
  return {std::move(r.pages.front()), o.font_size, std::move(r.missing)};
}

std::vector<CorpusSample> read_corpus(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<CorpusSample> out;
  std::set<std::string> ids;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file() && it->path().extension() == ".txt") files.push_back(it->path());
    if (ec) fail("{}: cannot list the folder: {}", path, ec.message());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      std::string id = fs::relative(f, path).replace_extension().generic_string();
      out.push_back({id, read_file_text(f.string())});
    }
    if (out.empty()) fail("{}: no .txt files in the folder", path);
    return out;
  }
  for_each_json_line(path, "a corpus is a folder of .txt files or JSON lines with id and text",
                     [&](const nlohmann::json& j, size_t line_no) {
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      fail("{}: line {}: no \"text\" string", path, line_no);
    std::string id;
    if (j.contains("id") && j["id"].is_string()) id = j["id"].get<std::string>();
    else if (j.contains("id") && j["id"].is_number_integer()) id = std::to_string(j["id"].get<int64_t>());
    else fail("{}: line {}: no \"id\" (a string or an integer)", path, line_no);
    if (!ids.insert(id).second) fail("{}: line {}: id \"{}\" appears twice", path, line_no, id);
    out.push_back({id, j["text"].get<std::string>()});
  });
  if (out.empty()) fail("{}: no samples", path);
  return out;
}

std::string shuffle_words_within_lines(std::string_view text, std::string_view key) {
  uint64_t state = 1469598103934665603ull;  // FNV-1a of the key seeds a 64-bit LCG
  for (unsigned char c : key) state = (state ^ c) * 1099511628211ull;
  auto next = [&state](uint64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % bound;
  };
  std::string out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::vector<std::string_view> words;
    for (size_t i = pos; i < end;) {
      while (i < end && (text[i] == ' ' || text[i] == '\t')) ++i;
      size_t j = i;
      while (j < end && text[j] != ' ' && text[j] != '\t') ++j;
      if (j > i) words.push_back(text.substr(i, j - i));
      i = j;
    }
    for (size_t i = words.size(); i > 1; --i) std::swap(words[i - 1], words[next(i)]);  // Fisher-Yates
    for (size_t i = 0; i < words.size(); ++i) {
      if (i) out += ' ';
      out += words[i];
    }
    if (end == text.size()) break;
    out += '\n';
    pos = end + 1;
  }
  return out;
}

Control parse_control(const std::string& name) {
  if (name == "none") return Control::None;
  if (name == "shuffled") return Control::Shuffled;
  fail("control '{}': expected none or shuffled", name);
}

const char* control_name(Control control) { return control == Control::Shuffled ? "shuffled" : "none"; }

nlohmann::ordered_json to_json(const SampleScore& s) {
  return {{"id", s.id},
          {"mode", s.mode},
          {"control", s.control},
          {"text_tokens", s.text_tokens},
          {"vision_tokens", s.vision_tokens},
          {"valid_vision_tokens", s.valid_vision_tokens},
          {"placeholders", s.placeholders},
          {"compression", s.compression},
          {"precision", s.precision},
          {"output_precision", s.output_precision},
          {"edit_distance", s.edit_distance},
          {"stop_reason", s.stop_reason},
          {"generated_tokens", s.generated_tokens},
          {"font_size", s.font_size},
          {"output", s.output}};
}

SampleScore sample_score_from_json(const nlohmann::ordered_json& j) {
  try {
    SampleScore s;
    s.id = j.at("id").get<std::string>();
    s.mode = j.at("mode").get<std::string>();
    s.control = j.at("control").get<std::string>();
    s.text_tokens = j.at("text_tokens").get<int>();
    s.vision_tokens = j.at("vision_tokens").get<int>();
    s.valid_vision_tokens = j.at("valid_vision_tokens").get<int>();
    s.placeholders = j.at("placeholders").get<int>();
    s.compression = j.at("compression").get<double>();
    s.precision = j.at("precision").get<double>();
    s.output_precision = j.at("output_precision").get<double>();
    s.edit_distance = j.at("edit_distance").get<double>();
    s.stop_reason = j.at("stop_reason").get<std::string>();
    s.generated_tokens = j.at("generated_tokens").get<int>();
    s.font_size = j.at("font_size").get<double>();
    s.output = j.at("output").get<std::string>();
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail("sample record: {}", e.what());
  }
}

}  // namespace dsocr

namespace dsocr {

OpticalContext encode_text_as_vision(VisionEncoder& encoder, TextRenderer& renderer, std::string_view text,
                                     const RenderOptions& options, Mode mode, int max_tiles) {
  OpticalContext out;
  out.rendered = renderer.render(text, options, true);
  out.n_embed = encoder.n_embed();
  for (const Image& page : out.rendered.pages) {
    out.tokens.push_back(vision_token_count(page.width, page.height, mode, max_tiles));
    out.features.push_back(encoder.encode_page(make_views(page, mode, max_tiles)));
  }
  return out;
}

std::vector<Turn> read_conversation(const std::string& path) {
  std::vector<Turn> out;
  for_each_json_line(path, "a conversation is JSON lines of {\"role\", \"content\"}",
                     [&](const nlohmann::json& j, size_t line_no) {
    const char* field = j.is_object() && j.contains("content") ? "content" : "text";
    if (!j.is_object() || !j.contains(field) || !j[field].is_string())
      fail("{}: line {}: no \"content\" (or \"text\") string", path, line_no);
    Turn t;
    t.role = j.contains("role") && j["role"].is_string() ? j["role"].get<std::string>() : "";
    t.text = j[field].get<std::string>();
    out.push_back(std::move(t));
  });
  if (out.empty()) fail("{}: no turns", path);
  return out;
}

ContextPlan plan_context(const std::vector<Turn>& turns, int keep, const std::vector<Mode>& tiers, int turns_per_tier) {
  if (keep < 0) fail("context: keep {} must be >= 0", keep);
  if (tiers.empty()) fail("context: no tiers");
  ContextPlan plan;
  const size_t n = turns.size(), kept = std::min(n, size_t(keep)), older = n - kept;
  for (size_t i = older; i < n; ++i) plan.recent.push_back(i);
  if (older == 0) return plan;
  const size_t per = turns_per_tier > 0 ? size_t(turns_per_tier) : (older + tiers.size() - 1) / tiers.size();
  std::vector<std::vector<size_t>> groups(tiers.size());
  for (size_t age = 0; age < older; ++age) {  // age 0 = the newest older turn
    const size_t tier = std::min(age / per, tiers.size() - 1);
    groups[tier].insert(groups[tier].begin(), older - 1 - age);
  }
  for (size_t t = 0; t < tiers.size(); ++t) {
    if (groups[t].empty()) continue;
    TierPlan tp{tiers[t], groups[t], ""};
    for (size_t i : groups[t]) {
      if (!tp.text.empty()) tp.text += "\n\n";
      tp.text += turns[i].role.empty() ? turns[i].text : turns[i].role + ": " + turns[i].text;
    }
    plan.tiers.push_back(std::move(tp));
  }
  return plan;
}

}  // namespace dsocr
