#include "app/render_options.h"

#include <algorithm>
#include <sstream>

#include "app/commands.h"
#include "core/error.h"

namespace dsocr::app {

void add_render_options(CLI::App* cmd, RenderArgs& a) {
  cmd->add_option("--font", a.font, "TrueType/OpenType font file (default: DejaVu Sans, Debian fonts-dejavu-core)");
  cmd->add_option("--size", a.size, "Font size in points")->default_str("11")->check(CLI::Range(1.0, 500.0));
  cmd->add_option("--page", a.page, "Page size: a4, a5, a3, letter, legal, or WxH in millimetres")->default_str("a4");
  cmd->add_option("--dpi", a.dpi, "Pixels per inch of the pages, 18..1200 (144: A4 = 1191x1684 px)")
      ->default_str("144")
      ->check(CLI::Range(18.0, 1200.0));
  cmd->add_option("--margin", a.margin, "Page margins in millimetres")->default_str("12")->check(CLI::Range(0.0, 500.0));
  cmd->add_option("--columns", a.columns, "Text columns per page")->default_str("1")->check(CLI::Range(1, 16));
  cmd->add_option("--column-gap", a.column_gap, "Space between columns in millimetres")
      ->default_str("6")
      ->check(CLI::Range(0.0, 500.0));
  cmd->add_option("--line-spacing", a.line_spacing, "Baseline distance in multiples of the font size")
      ->default_str("1.2")
      ->check(CLI::Range(0.5, 10.0));
}

RenderOptions render_options(const RenderArgs& a) {
  RenderOptions o;
  o.font = a.font;
  o.font_size = a.size;
  try {
    parse_page_size(a.page, &o.page_width_mm, &o.page_height_mm);
  } catch (const Error& e) {
    throw UsageError(std::string("--page: ") + e.what());
  }
  o.dpi = a.dpi;
  o.margin_mm = a.margin;
  o.columns = a.columns;
  o.column_gap_mm = a.column_gap;
  o.line_spacing = a.line_spacing;
  return o;
}

std::vector<Mode> parse_mode_list(const std::string& list, const char* option, bool unique) {
  std::vector<Mode> modes;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    Mode m;
    try {
      m = parse_mode(name);
    } catch (const Error& e) {
      throw UsageError(std::string(option) + ": " + e.what());
    }
    if (!unique || std::find(modes.begin(), modes.end(), m) == modes.end()) modes.push_back(m);
  }
  if (modes.empty()) throw UsageError(std::string(option) + ": give at least one mode, e.g. tiny,small");
  return modes;
}

}  // namespace dsocr::app
