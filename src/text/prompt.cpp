#include "text/prompt.h"

#include "core/error.h"

namespace dsocr {

Task parse_task(const std::string& name) {
  if (name == "markdown") return Task::Markdown;
  if (name == "ocr") return Task::Ocr;
  if (name == "free") return Task::Free;
  if (name == "figure") return Task::Figure;
  if (name == "describe") return Task::Describe;
  if (name == "locate") return Task::Locate;
  fail("unknown task '{}' (expected markdown, ocr, free, figure, describe or locate)", name);
}

const char* task_name(Task task) {
  switch (task) {
    case Task::Markdown: return "markdown";
    case Task::Ocr: return "ocr";
    case Task::Free: return "free";
    case Task::Figure: return "figure";
    case Task::Describe: return "describe";
    case Task::Locate: return "locate";
  }
  return "?";
}

std::string task_prompt(Task task, const std::string& locate_text) {
  switch (task) {
    case Task::Markdown: return "<image>\n<|grounding|>Convert the document to markdown.";
    case Task::Ocr: return "<image>\n<|grounding|>OCR this image.";
    case Task::Free: return "<image>\nFree OCR.";
    case Task::Figure: return "<image>\nParse the figure.";
    case Task::Describe: return "<image>\nDescribe this image in detail.";
    case Task::Locate:
      if (locate_text.empty()) fail("task 'locate' needs the text to find (--task locate --locate \"TEXT\")");
      return "<image>\nLocate <|ref|>" + locate_text + "<|/ref|> in the image.";
  }
  fail("unknown task");
}

std::string normalize_prompt(const std::string& prompt) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = prompt.find_first_not_of(ws);
  std::string p = b == std::string::npos ? "" : prompt.substr(b, prompt.find_last_not_of(ws) - b + 1);
  const size_t first = p.find(kImageTag);
  if (first == std::string::npos) fail("prompt must contain {} (where the page goes), e.g. \"<image>\\nFree OCR.\"", kImageTag);
  if (p.find(kImageTag, first + 1) != std::string::npos)
    fail("prompt contains {} more than once; dsocr reads one image per prompt", kImageTag);
  return p;
}

std::vector<int32_t> build_prompt_ids(const Tokenizer& tokenizer, const std::string& prompt, int placeholders,
                                      int32_t bos_id, int32_t image_token_id) {
  const std::string p = normalize_prompt(prompt);
  const size_t at = p.find(kImageTag);
  std::vector<int32_t> ids{bos_id};
  const auto before = tokenizer.encode(std::string_view(p).substr(0, at));
  ids.insert(ids.end(), before.begin(), before.end());
  ids.insert(ids.end(), size_t(placeholders), image_token_id);
  const auto after = tokenizer.encode(std::string_view(p).substr(at + std::char_traits<char>::length(kImageTag)));
  ids.insert(ids.end(), after.begin(), after.end());
  return ids;
}

}  // namespace dsocr
