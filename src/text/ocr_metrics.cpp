#include "text/ocr_metrics.h"

#include <algorithm>
#include <set>

#include "text/utf8.h"

namespace dsocr {

namespace {

std::vector<char32_t> code_points(std::string_view text) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < text.size();) {
    const utf8::Unit u = utf8::next_unit(text.substr(i));
    i += u.length;
    out.push_back(u.kind == utf8::Unit::kChar ? u.codepoint : 0xFFFD);
  }
  return out;
}

// Python's str.isspace() for the characters that occur in text.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_chinese(char32_t c) { return c >= 0x4E00 && c <= 0x9FA5; }

std::string to_utf8(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) utf8::append(out, cps[i]);
  return out;
}

// |a & b| / |b| over distinct words; 0 when b is empty.
double set_precision(const std::vector<std::string>& reference, const std::vector<std::string>& test) {
  const std::set<std::string> ref(reference.begin(), reference.end()), hyp(test.begin(), test.end());
  if (hyp.empty()) return 0;
  size_t both = 0;
  for (const std::string& w : hyp) both += ref.count(w);
  return double(both) / double(hyp.size());
}

}  // namespace

std::vector<std::string> score_words(std::string_view text) {
  const std::vector<char32_t> cps = code_points(text);
  std::vector<std::string> out;
  if (std::any_of(cps.begin(), cps.end(), is_chinese)) {
    for (char32_t c : cps)
      if (!is_space(c)) out.push_back(to_utf8({c}, 0, 1));
    return out;
  }
  for (size_t i = 0; i < cps.size();) {
    while (i < cps.size() && is_space(cps[i])) ++i;
    size_t j = i;
    while (j < cps.size() && !is_space(cps[j])) ++j;
    if (j > i) out.push_back(to_utf8(cps, i, j));
    i = j;
  }
  return out;
}

double fox_precision(std::string_view ground_truth, std::string_view output) {
  return set_precision(score_words(output), score_words(ground_truth));
}

double output_precision(std::string_view ground_truth, std::string_view output) {
  return set_precision(score_words(ground_truth), score_words(output));
}

double normalized_edit_distance(std::string_view a_text, std::string_view b_text) {
  const std::vector<char32_t> a = code_points(a_text), b = code_points(b_text);
  if (a.empty() && b.empty()) return 0;
  std::vector<size_t> row(b.size() + 1), next(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    next[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      next[j] = std::min({row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(row, next);
  }
  return double(row[b.size()]) / double(std::max(a.size(), b.size()));
}

}  // namespace dsocr
