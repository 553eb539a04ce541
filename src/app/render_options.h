// The text-rendering options shared by render, compress-eval and context-compress, and their lists of
// modes.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "text/render.h"
#include "vision/preprocess.h"

namespace dsocr::app {

struct RenderArgs {
  std::string font, page = "a4";
  double size = 11, dpi = 144, margin = 12, column_gap = 6, line_spacing = 1.2;
  int columns = 1;
};

void add_render_options(CLI::App* cmd, RenderArgs& a);
// Throws UsageError on a bad page size or value.
RenderOptions render_options(const RenderArgs& a);
// A comma-separated list of mode names, in order; `unique` drops repeats. Throws UsageError naming
// `option` on an unknown or missing mode.
std::vector<Mode> parse_mode_list(const std::string& list, const char* option, bool unique);

}  // namespace dsocr::app
