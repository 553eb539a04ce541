// dsocr encode: run only the vision half on one image or one PDF page and dump the preprocessed
// views, the tile grid and the feature sequence the decoder would receive (for inspection and parity
// checks). A PDF page is rendered as `dsocr ocr` renders it (--dpi, --pdf-renderer).
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "app/commands.h"
#include "backend/cpu/cpu_backend.h"
#include "core/thread_pool.h"
#include "engine/document.h"
#include "io/checkpoint.h"
#include "io/image.h"
#include "io/model_locator.h"
#include "io/safetensors.h"
#include "vision/encoder.h"
#include "vision/preprocess.h"

namespace dsocr::app {

namespace {

struct EncodeArgs {
  std::string model, mode = "gundam", image, dump, pdf_renderer = "default";
  int max_tiles = 6, threads = 0, page = 1;
  double dpi = 144;
};

// The page to encode: page `page` (1-based) of a PDF, rendered at --dpi, or of an image (a TIFF's
// directories are pages too). Bad options are UsageErrors, checked before anything is read.
Image load_page(const EncodeArgs& a, SafetensorsWriter& meta) {
  if (!std::isfinite(a.dpi) || a.dpi < 18 || a.dpi > 1200) throw UsageError(fmt::format("--dpi {}: must be 18..1200", a.dpi));
  PdfRenderer renderer = PdfRenderer::Default;
  try {
    renderer = parse_pdf_renderer(a.pdf_renderer);
    check_pdf_renderer(renderer);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  std::vector<std::string> missing;
  const std::vector<InputDocument> docs = collect_inputs({a.image}, &missing);
  if (!missing.empty()) fail("{}: no such file", a.image);
  if (docs.size() != 1 || docs.front().path == "-") throw UsageError(fmt::format("{}: encode takes one image or PDF file", a.image));
  if (!docs.front().is_pdf) return load_image_page(a.image, a.page - 1);
  const PdfDocument pdf(a.image, renderer);
  meta.set_metadata("dpi", fmt::format("{}", a.dpi));
  meta.set_metadata("pdf_renderer", pdf_renderer_name(pdf.renderer()));
  return pdf.render_page(a.page - 1, a.dpi);
}

void add_view(SafetensorsWriter& w, const std::string& name, const Image& view) {
  w.add(name, DType::U8, {view.height, view.width, 3}, view.rgb.data(), view.rgb.size());
}

void run_encode(const EncodeArgs& a) {
  const Mode mode = parse_mode(a.mode);
  SafetensorsWriter w;
  const Image page = load_page(a, w);
  ThreadPool pool(a.threads);
  CpuBackend backend(pool);
  Checkpoint ckpt(resolve_model_dir(a.model));
  VisionEncoder encoder(ckpt, backend);

  const auto t0 = std::chrono::steady_clock::now();
  const PageViews views = make_views(page, mode, a.max_tiles);
  const std::vector<float> features = encoder.encode_page(views);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const int64_t hidden = ckpt.config().projector.n_embed;
  const int64_t tokens = int64_t(features.size()) / hidden;
  if (!a.dump.empty()) {
    add_view(w, "view.global", views.global);
    for (size_t k = 0; k < views.tiles.size(); ++k) add_view(w, "view.tile." + std::to_string(k), views.tiles[k]);
    const int32_t grid[2] = {views.grid.cols, views.grid.rows};
    w.add("grid", DType::I32, {2}, grid, sizeof grid);
    w.add_f32("features", {tokens, hidden}, features);
    w.set_metadata("mode", mode_name(mode));
    w.set_metadata("image", a.image);
    w.set_metadata("page", std::to_string(a.page));
    w.write(a.dump);
  }
  fmt::print("{}{}: {}x{}, mode {}, grid {}x{}, views 1 global {}px + {} tiles {}px, {} tokens, {:.3f}s{}\n", a.image,
             a.page > 1 ? fmt::format(" page {}", a.page) : "",
             page.width, page.height, mode_name(mode), views.grid.cols, views.grid.rows, views.global.width,
             views.tiles.size(), views.tiles.empty() ? 0 : views.tiles.front().width, tokens, seconds,
             a.dump.empty() ? "" : " -> " + a.dump);
}

}  // namespace

void add_encode_command(CLI::App& app) {
  auto a = std::make_shared<EncodeArgs>();
  auto* cmd = app.add_subcommand("encode", "Run the vision encoder on one image or PDF page; print a summary, optionally "
                                           "dump views, grid and features (safetensors)");
  cmd->add_option("image", a->image, "Image or PDF file")->required();
  cmd->add_option("--page", a->page, "Page to encode, from 1 (a PDF's, or a multi-page TIFF's)")
      ->default_str("1")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--dpi", a->dpi, "PDF rendering resolution, 18..1200")->default_str("144");
  cmd->add_option("--pdf-renderer", a->pdf_renderer, pdf_renderer_help())->default_str(pdf_renderer_name(PdfRenderer::Default));
  cmd->add_option("-m,--model", a->model, "Model directory (default: $DSOCR_MODEL, then the dsocr cache)");
  cmd->add_option("--mode", a->mode, "tiny | small | base | large | gundam | gundam-master")->default_str("gundam");
  cmd->add_option("--max-tiles", a->max_tiles, "Gundam modes: most tiles, 2..9")->default_str("6");
  cmd->add_option("--dump", a->dump,
                  "Write view.global (U8 [S,S,3]), view.tile.K (U8, K = row*cols+col), grid (I32 [cols, rows]) and "
                  "features (F32 [N, hidden]) to this safetensors file");
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all cores)");
  cmd->callback([a] { run_encode(*a); });
}

}  // namespace dsocr::app
