// dsocr render: text -> page images (OUTDIR/page-0001.png, ...) plus OUTDIR/render.json, the pages'
// vision-token counts in every mode and, with a tokenizer, the text tokens they hold.
#include <filesystem>
#include <iostream>
#include <iterator>
#include <optional>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/render_options.h"
#include "engine/compress.h"
#include "engine/journal.h"
#include "io/files.h"

namespace fs = std::filesystem;

namespace dsocr::app {

namespace {

struct RenderCommandArgs {
  RenderArgs render;
  std::string input = "-", out, fit, model;
  double ratio = 0;
  int max_tiles = 6;
  bool quiet = false;
};

std::string read_input(const std::string& path) {
  if (path == "-") {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) fail("stdin: read error");
    return text;
  }
  return read_file_text(path);
}

std::string page_file_name(int page) { return fmt::format("page-{:04d}.png", page); }

// Pages of an earlier, longer rendering into the same folder would be mistaken for this one's.
void remove_stale_pages(const std::string& dir, int pages) {
  static const std::regex kPage(R"(page-(\d{4,})\.png)");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, kPage) && std::stoll(m[1].str()) > pages) fs::remove(entry.path(), ec);
  }
}

json missing_glyphs_json(const std::vector<MissingGlyph>& missing) {
  json out = json::array();
  for (const MissingGlyph& g : missing)
    out.push_back({{"codepoint", fmt::format("U+{:04X}", uint32_t(g.codepoint))}, {"count", g.count}});
  return out;
}

int run_render(const RenderCommandArgs& a) {
  RenderOptions options = render_options(a.render);
  std::optional<Mode> fit_mode;
  if (!a.fit.empty()) {
    try {
      fit_mode = parse_mode(a.fit);
    } catch (const Error& e) {
      throw UsageError(std::string("--fit: ") + e.what());
    }
    if (!(a.ratio > 0)) throw UsageError("--fit needs --ratio R (text tokens per vision token, > 0)");
    page_tile_grid(1024, 1024, *fit_mode, a.max_tiles);
  } else if (a.ratio > 0) {
    throw UsageError("--ratio goes with --fit MODE");
  }
  const std::string text = read_input(a.input);
  std::optional<Tokenizer> tokenizer;
  if (fit_mode || !a.model.empty()) tokenizer.emplace(load_tokenizer(a.model));
  const int text_tokens = tokenizer ? count_text_tokens(*tokenizer, text) : -1;
  TextRenderer renderer(options.font);
  json fit_json;
  if (fit_mode) {
    const FitResult fit = fit_font_size(renderer, text, text_tokens, options, *fit_mode, a.max_tiles, a.ratio);
    options.font_size = fit.font_size;
    fit_json = {{"mode", mode_name(*fit_mode)}, {"ratio_asked", a.ratio},   {"ratio", fit.ratio},
                {"reached", fit.reached},      {"font_size", fit.font_size}, {"pages_used", fit.fill}};
    if (!fit.reached)
      fmt::print(stderr, "dsocr: warning: --fit {} --ratio {}: stopped at {} pt with ratio {:.2f}\n", a.fit, a.ratio,
                 fit.font_size, fit.ratio);
  }
  const RenderedText rendered = renderer.render(text, options, true);

  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) fail("{}: cannot create the output folder: {}", a.out, ec.message());
  for (size_t i = 0; i < rendered.pages.size(); ++i)
    save_png(rendered.pages[i], (fs::path(a.out) / page_file_name(int(i) + 1)).string());
  remove_stale_pages(a.out, rendered.page_count);

  const int width = page_width_px(options), height = page_height_px(options);
  json manifest = {{"input", a.input},
                   {"font", renderer.font_path()},
                   {"font_size", options.font_size},
                   {"page", {{"width", width}, {"height", height}, {"dpi", options.dpi}}},
                   {"pages", rendered.page_count},
                   {"lines", rendered.lines},
                   {"lines_per_page", rendered.lines_per_page},
                   {"pages_used", rendered.fill},
                   {"missing_glyphs", missing_glyphs_json(rendered.missing)}};
  if (text_tokens >= 0) manifest["text_tokens"] = text_tokens;
  json modes = json::object();
  for (Mode m : {Mode::Tiny, Mode::Small, Mode::Base, Mode::Large, Mode::Gundam, Mode::GundamMaster}) {
    const VisionTokenCount c = vision_token_count(width, height, m, a.max_tiles);
    json j = {{"placeholders_per_page", c.placeholders}, {"raw_per_page", c.raw}, {"valid_per_page", c.valid},
              {"raw", c.raw * rendered.page_count}, {"valid", c.valid * rendered.page_count}};
    if (text_tokens >= 0) j["compression"] = double(text_tokens) / double(c.raw * rendered.page_count);
    modes[mode_name(m)] = j;
  }
  manifest["vision_tokens"] = modes;
  if (!fit_json.is_null()) manifest["fit"] = fit_json;
  write_file_atomic((fs::path(a.out) / "render.json").string(), dump_json(manifest, 2) + "\n");

  if (!rendered.missing.empty())
    fmt::print(stderr, "dsocr: warning: {}: {} (drawn as the font's empty box; --font FILE with a font that has them)\n",
               renderer.font_path(), describe_missing_glyphs(rendered.missing));
  if (!a.quiet) {
    fmt::print(stderr, "dsocr: {} page{} of {}x{} px at {:.2f} pt -> {}/page-*.png", rendered.page_count,
               rendered.page_count == 1 ? "" : "s", width, height, options.font_size, a.out);
    if (text_tokens >= 0) fmt::print(stderr, ", {} text tokens", text_tokens);
    if (fit_mode) fmt::print(stderr, ", {:.2f} text tokens per valid {} vision token", fit_json["ratio"].get<double>(), a.fit);
    fmt::print(stderr, "\n");
  }
  return kExitOk;
}

}  // namespace

void add_render_command(CLI::App& app) {
  auto a = std::make_shared<RenderCommandArgs>();
  auto* cmd = app.add_subcommand("render",
                                 "Render text into page images (HarfBuzz shaping, FreeType rasterising; right-to-left\n"
                                 "and CJK text with a font that has them). Text that does not fit flows onto more pages.\n"
                                 "Writes OUTDIR/page-0001.png, ... and OUTDIR/render.json (font, pages, missing glyphs,\n"
                                 "the pages' vision tokens in every mode, text tokens with a tokenizer).");
  cmd->add_option("input", a->input, "UTF-8 text file, or - for stdin (the default)");
  cmd->add_option("-o,--out", a->out, "Output folder")->required();
  add_render_options(cmd, a->render);
  cmd->add_option("--fit", a->fit, "Choose the font size for this mode (tiny, small, base, large, gundam, gundam-master)...");
  cmd->add_option("--ratio", a->ratio, "... so that the pages hold about R text tokens per valid vision token")
      ->check(CLI::Range(0.001, 1e6));
  cmd->add_option("--max-tiles", a->max_tiles, "Gundam modes: most tiles per page, 2..9")->default_str("6");
  cmd->add_option("-m,--model", a->model, "Model directory or tokenizer.json for counting text tokens (needed by --fit)");
  cmd->add_flag("-q,--quiet", a->quiet, "No summary line");
  cmd->callback([a] {
    const int rc = run_render(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace dsocr::app
