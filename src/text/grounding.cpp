#include "text/grounding.h"

#include <algorithm>
#include <array>
#include <optional>

#include <fmt/format.h>

namespace dsocr {
namespace {

// The EOS token's text, "<｜end▁of▁sentence｜>" (fullwidth bars, U+2581): the PDF driver and HF keep it.
constexpr std::string_view kEosText = "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";

enum class Tag { Ref, RefEnd, Det, DetEnd };
constexpr std::array<std::string_view, 4> kTagText = {"<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"};

std::string_view text_of(Tag t) { return kTagText[size_t(t)]; }

struct TagAt {
  size_t pos;
  Tag tag;
  size_t end() const { return pos + text_of(tag).size(); }
};

std::optional<TagAt> next_tag(std::string_view s, size_t from) {
  for (size_t p = s.find("<|", from); p != std::string_view::npos; p = s.find("<|", p + 1)) {
    for (size_t t = 0; t < kTagText.size(); ++t) {
      if (s.substr(p).starts_with(kTagText[t])) return TagAt{p, Tag(t)};
    }
  }
  return std::nullopt;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

size_t skip_spaces(std::string_view s, size_t p) {
  while (p < s.size() && is_space(s[p])) ++p;
  return p;
}

// Python's str.replace: every occurrence, left to right, in one linear pass.
void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t p = s.find(from);
  if (p == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t copied = 0;
  for (; p != std::string::npos; p = s.find(from, copied)) {
    out.append(s, copied, p - copied);
    out += to;
    copied = p + from.size();
  }
  out.append(s, copied);
  s = std::move(out);
}

void erase_all(std::string& s, std::string_view what) { replace_all(s, what, ""); }

// ---- box lists --------------------------------------------------------------------------------------

struct ParsedBoxes {
  std::vector<Box> boxes;
  int skipped = 0;      // inner lists that were not exactly 4 integers (or were cut off)
  bool clean = true;    // false when anything around the boxes was off (brackets, stray characters)
};

// A strict reader for "[[x1, y1, x2, y2], ...]": integers with optional sign and spaces. It never
// evaluates anything; it keeps every well-formed inner list and counts the others. A flat
// "[x1, y1, x2, y2]" is read as one box (not clean). Values saturate, then are clamped to 0..999.
ParsedBoxes parse_boxes(std::string_view body) {
  ParsedBoxes out;
  int depth = 0;
  int outer_lists = 0;
  std::vector<long> values;      // numbers of the inner list being read (or of a flat list)
  bool list_ok = true;           // the list being read is well-formed so far
  bool after_number = false;     // the last item was a number (expect ',' or ']')
  int inner_lists = 0;

  auto to_box = [](const std::vector<long>& v) {
    auto clamp = [](long x) { return int(std::clamp(x, 0L, 999L)); };
    return Box{clamp(v[0]), clamp(v[1]), clamp(v[2]), clamp(v[3])};
  };
  auto start_list = [&] {
    values.clear();
    list_ok = true;
    after_number = false;
  };

  for (size_t i = 0; i < body.size();) {
    const char c = body[i];
    if (is_space(c)) {
      ++i;
    } else if (c == '[') {
      ++depth;
      if (depth == 1) {
        if (++outer_lists > 1) out.clean = false;  // "[[..]] [[..]]"
        start_list();
      } else if (depth == 2) {
        ++inner_lists;
        start_list();
      } else {
        list_ok = false;  // nested deeper than a box
      }
      ++i;
    } else if (c == ']') {
      if (depth == 2) {
        if (list_ok && values.size() == 4) {
          out.boxes.push_back(to_box(values));
        } else {
          ++out.skipped;
        }
        after_number = false;
      } else if (depth == 1 && inner_lists == 0 && !values.empty()) {
        if (list_ok && values.size() == 4) {
          out.boxes.push_back(to_box(values));
        } else {
          ++out.skipped;
        }
        out.clean = false;  // flat list
      } else if (depth <= 0) {
        out.clean = false;  // one ']' too many
      }
      depth = std::max(depth - 1, 0);
      ++i;
    } else if (c == ',') {
      if (depth >= 2 || (depth == 1 && inner_lists == 0)) {
        if (!after_number) list_ok = false;  // "[1,,2]" or "[,1]"
        after_number = false;
      }
      ++i;
    } else if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
      const bool negative = c == '-';
      size_t j = (c == '-' || c == '+') ? i + 1 : i;
      long value = 0;
      const size_t digits_begin = j;
      for (; j < body.size() && body[j] >= '0' && body[j] <= '9'; ++j) {
        value = std::min(value * 10 + (body[j] - '0'), 1'000'000L);
      }
      if (j == digits_begin || after_number) list_ok = false;
      if (depth == 0 || (depth == 1 && inner_lists > 0)) out.clean = false;  // a number outside any box
      values.push_back(negative ? -value : value);
      after_number = true;
      i = j;
    } else {
      list_ok = false;  // '.', '(', letters, ...: not a strict integer list
      out.clean = false;
      ++i;
    }
  }
  if (depth >= 2) ++out.skipped;  // an inner list cut off (by the token limit)
  if (depth > 0 || outer_lists == 0) out.clean = false;
  if (out.skipped > 0) out.clean = false;
  return out;
}

// Characters a box list is made of: the body of an unclosed det is the longest run of them.
bool is_box_char(char c) {
  return (c >= '0' && c <= '9') || c == '[' || c == ']' || c == ',' || c == ' ' || c == '-' || c == '+';
}

// ---- tag scanner --------------------------------------------------------------------------------------

void note(Block& b, std::string_view problem) {
  b.malformed = true;
  if (!b.problem.empty()) b.problem += "; ";
  b.problem += problem;
}

// Reads "<|det|>BODY<|/det|>" at `pos` into b; returns the end of what it consumed.
size_t read_det(std::string_view raw, size_t pos, Block& b) {
  const size_t body_begin = pos + text_of(Tag::Det).size();
  const auto next = next_tag(raw, body_begin);
  std::string_view body;
  size_t end;
  if (next && next->tag == Tag::DetEnd) {
    body = raw.substr(body_begin, next->pos - body_begin);
    end = next->end();
  } else {
    const size_t limit = next ? next->pos : raw.size();
    size_t stop = body_begin;
    while (stop < limit && is_box_char(raw[stop])) ++stop;
    body = raw.substr(body_begin, stop - body_begin);
    end = stop;
    note(b, "unclosed <|det|>");
  }
  const ParsedBoxes parsed = parse_boxes(body);
  b.boxes = parsed.boxes;
  if (parsed.skipped > 0) {
    note(b, fmt::format("{} box(es) skipped (not 4 integers)", parsed.skipped));
  } else if (!parsed.clean) {
    note(b, "box list is not a clean list of 4-integer lists");
  }
  return end;
}

// Reads the block whose first tag is `first`; returns the end of its span.
size_t read_block(std::string_view raw, const TagAt& first, Block& b) {
  switch (first.tag) {
    case Tag::Ref: {
      const size_t label_begin = first.end();
      const auto next = next_tag(raw, label_begin);
      size_t label_end;
      size_t end;
      if (next && next->tag == Tag::RefEnd) {
        label_end = next->pos;
        end = next->end();
      } else {
        // Unclosed label (cut by the token limit, or a tag missing): it ends at the line's end.
        const size_t limit = next ? next->pos : raw.size();
        label_end = label_begin + std::min(raw.substr(label_begin, limit - label_begin).find('\n'),
                                           limit - label_begin);
        end = label_end;
        note(b, "unclosed <|ref|>");
      }
      b.label = std::string(raw.substr(label_begin, label_end - label_begin));
      const size_t det = skip_spaces(raw, end);
      if (raw.substr(det).starts_with(text_of(Tag::Det))) return read_det(raw, det, b);
      note(b, "<|ref|> without <|det|>");
      return end;
    }
    case Tag::RefEnd: {
      note(b, "<|/ref|> without <|ref|>");
      const size_t det = skip_spaces(raw, first.end());
      if (raw.substr(det).starts_with(text_of(Tag::Det))) return read_det(raw, det, b);
      return first.end();
    }
    case Tag::Det:
      note(b, "<|det|> without <|ref|>");
      return read_det(raw, first.pos, b);
    case Tag::DetEnd:
      break;
  }
  note(b, "stray <|/det|>");
  return first.end();
}

// The block's content: from the end of its span to `next_begin`, one leading "\n" and trailing
// whitespace removed, EOS text dropped.
std::string block_text(std::string_view raw, size_t begin, size_t next_begin) {
  std::string_view t = raw.substr(begin, next_begin - begin);
  if (t.starts_with('\n')) t.remove_prefix(1);
  std::string text(t);
  erase_all(text, kEosText);
  while (!text.empty() && is_space(text.back())) text.pop_back();
  return text;
}

// ---- markdown clean-ups -------------------------------------------------------------------------------

// Every run of three or more newlines becomes one blank line ("\n\n"): the fixed point of the
// official replace("\n\n\n\n", "\n\n").replace("\n\n\n", "\n\n").
std::string collapse_blank_lines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s[i] != '\n') {
      out += s[i++];
      continue;
    }
    size_t run = 0;
    while (i < s.size() && s[i] == '\n') ++run, ++i;
    out.append(std::min<size_t>(run, 2), '\n');
  }
  return out;
}

// Removes `\quad` followed by spaces and a parenthesised tag, as re.sub(r'\\quad\s*\([^)]*\)', '', f).
std::string drop_equation_tags(std::string_view f) {
  constexpr std::string_view kQuad = "\\quad";
  std::string out;
  size_t i = 0;
  while (i < f.size()) {
    const size_t q = f.find(kQuad, i);
    if (q == std::string_view::npos) break;
    const size_t p = skip_spaces(f, q + kQuad.size());
    if (p >= f.size() || f[p] != '(') {
      out.append(f.substr(i, q + 1 - i));  // not a tag: keep the backslash and search on
      i = q + 1;
      continue;
    }
    const size_t close = f.find(')', p);
    if (close == std::string_view::npos) break;  // no ')' left: no later tag can match either
    out.append(f.substr(i, q - i));
    i = close + 1;
  }
  out.append(f.substr(std::min(i, f.size())));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The eval driver's clean_formula: in every one-line display formula \[ ... \] (lazy, no DOTALL),
// drop the equation tags `\quad (n)` and strip the formula.
std::string clean_display_formulas(std::string_view s) {
  std::string out;
  size_t copied = 0;  // s[0, copied) is in out
  size_t search = 0;
  for (size_t open; (open = s.find("\\[", search)) != std::string_view::npos;) {
    const size_t body = open + 2;
    const size_t line_end = std::min(s.find('\n', body), s.size());
    const size_t close = s.substr(0, line_end).find("\\]", body);
    if (close == std::string_view::npos) {
      search = line_end;  // no "\]" after this "\[" on its line, nor after any later one on it
      continue;
    }
    out.append(s.substr(copied, open - copied));
    out += "\\[";
    out += trim(drop_equation_tags(s.substr(body, close - body)));
    out += "\\]";
    copied = search = close + 2;
  }
  out.append(s.substr(copied));
  return out;
}

std::string describe(const PixelBox& b) { return fmt::format("[{}, {}, {}, {}]", b.x1, b.y1, b.x2, b.y2); }

}  // namespace

std::vector<Block> parse_grounding(std::string_view raw) {
  std::vector<Block> blocks;
  size_t pos = 0;
  while (const auto tag = next_tag(raw, pos)) {
    Block b;
    b.span_begin = tag->pos;
    b.span_end = read_block(raw, *tag, b);
    pos = b.span_end;
    blocks.push_back(std::move(b));
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    const size_t next = i + 1 < blocks.size() ? blocks[i + 1].span_begin : raw.size();
    blocks[i].text = block_text(raw, blocks[i].span_end, next);
  }
  return blocks;
}

PixelBox to_pixels(const Box& b, int width, int height) {
  // Written as the official int(v / 999 * S): the division first, in double precision.
  auto map = [](int v, int size) { return int(double(v) / 999.0 * double(size)); };
  return {map(b.x1, width), map(b.y1, height), map(b.x2, width), map(b.y2, height)};
}

PostprocessResult postprocess(std::string_view raw, int page_width, int page_height,
                              const PostprocessOptions& opt) {
  PostprocessResult result;
  result.blocks = parse_grounding(raw);

  std::string& md = result.markdown;
  md.reserve(raw.size());
  size_t cursor = 0;
  for (size_t i = 0; i < result.blocks.size(); ++i) {
    const Block& b = result.blocks[i];
    md.append(raw.substr(cursor, b.span_begin - cursor));
    cursor = b.span_end;
    if (b.malformed) {
      // The label quoted and escaped, and cut short: it is model output and the warning is one line.
      const std::string_view label = std::string_view(b.label).substr(0, 40);
      result.warnings.push_back(fmt::format("grounding block {} (label {:?}): {}", i, label, b.problem));
    }
    if (!opt.link_images || b.label != "image") continue;  // the span is deleted
    for (const Box& box : b.boxes) {
      const PixelBox px = to_pixels(box, page_width, page_height);
      if (px.x2 <= px.x1 || px.y2 <= px.y1) {
        result.warnings.push_back(
            fmt::format("grounding block {}: image box {} has no area; skipped", i, describe(px)));
        continue;
      }
      const int index = int(result.images.size());
      std::string link = opt.page_index < 0 ? fmt::format("images/{}.jpg", index)
                                            : fmt::format("images/{}_{}.jpg", opt.page_index, index);
      md += fmt::format("![]({})\n", link);
      result.images.push_back({index, px, std::move(link)});
    }
  }
  md.append(raw.substr(cursor));

  erase_all(md, kEosText);
  if (opt.eval_cleanup) {
    md = clean_display_formulas(md);
    erase_all(md, "<center>");
    erase_all(md, "</center>");
  }
  if (opt.formula_replacements) {
    replace_all(md, "\\coloneqq", ":=");
    replace_all(md, "\\eqqcolon", "=:");
  }
  if (opt.collapse_blank_lines) md = collapse_blank_lines(md);
  return result;
}

std::string join_pages(const std::vector<std::string>& pages) {
  std::string out;
  for (const auto& page : pages) {
    out += page;
    out += kPageSplit;
  }
  return out;
}

}  // namespace dsocr
