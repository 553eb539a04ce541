// dsocr context-compress: the paper's "memory decay" (§4 and Figure 13) made concrete. A conversation
// (JSONL turns) keeps its most recent turns as text; older turns are rendered into pages read at
// ever lower resolution tiers (gundam -> large -> base -> small -> tiny by age). Writes the pages
// and OUT/manifest.json with every tier's token budget against the text tokens it replaces;
// --read-back reads each tier with the model and reports what survives (a forgetting curve).
#include <unistd.h>

#include <filesystem>
#include <list>
#include <optional>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/render_options.h"
#include "app/signals.h"
#include "engine/compress.h"
#include "engine/engine.h"
#include "engine/journal.h"
#include "io/files.h"
#include "io/model_locator.h"
#include "text/ocr_metrics.h"

namespace fs = std::filesystem;

namespace dsocr::app {

namespace {

struct ContextArgs {
  std::string input, out, model, tiers = "gundam,large,base,small,tiny";
  RenderArgs render;
  int keep = 4, turns_per_tier = 0, max_tiles = 6, max_tokens = 0, parallel = 4, threads = 0;
  bool read_back = false, quiet = false;
};

int run_context_compress(const ContextArgs& a, SignalWatcher& signals) {
  const std::vector<Mode> tier_modes = parse_mode_list(a.tiers, "--tiers", false);
  const RenderOptions options = render_options(a.render);
  page_tile_grid(1024, 1024, Mode::Gundam, a.max_tiles);
  const std::vector<Turn> turns = read_conversation(a.input);
  const ContextPlan plan = plan_context(turns, a.keep, tier_modes, a.turns_per_tier);
  std::unique_ptr<Engine> engine;
  std::optional<Tokenizer> own_tokenizer;
  if (a.read_back) {
    signals.set_graceful();
    EngineOptions eo;
    eo.model_dir = resolve_model_dir(a.model);
    eo.threads = a.threads;
    eo.max_sequences = a.parallel;
    engine = std::make_unique<Engine>(eo);
  } else {
    own_tokenizer.emplace(load_tokenizer(a.model));
  }
  const Tokenizer& tokenizer = engine ? engine->tokenizer() : *own_tokenizer;
  TextRenderer renderer(options.font);
  fs::create_directories(a.out);

  json manifest = json::object();
  json recent = json::array();
  int original_tokens = 0, kept_tokens = 0, vision_total = 0, valid_total = 0;
  for (size_t i = 0; i < turns.size(); ++i) original_tokens += count_text_tokens(tokenizer, turns[i].text);
  for (size_t i : plan.recent) {
    const int t = count_text_tokens(tokenizer, turns[i].text);
    kept_tokens += t;
    recent.push_back({{"turn", i}, {"role", turns[i].role}, {"text_tokens", t}, {"text", turns[i].text}});
  }
  struct TierPages {
    std::vector<Image> pages;
    int text_tokens = 0;
  };
  std::vector<TierPages> tier_pages;
  json tiers = json::array();
  for (size_t k = 0; k < plan.tiers.size(); ++k) {
    const TierPlan& tp = plan.tiers[k];
    RenderedText r = renderer.render(tp.text, options, true);
    const std::string dir = fmt::format("tier-{}-{}", k + 1, mode_name(tp.mode));
    json files = json::array();
    for (size_t p = 0; p < r.pages.size(); ++p) {
      const std::string rel = fmt::format("{}/page-{:04d}.png", dir, p + 1);
      fs::create_directories(fs::path(a.out) / dir);
      save_png(r.pages[p], (fs::path(a.out) / rel).string());
      files.push_back(rel);
    }
    const VisionTokenCount c = vision_token_count(r.pages[0].width, r.pages[0].height, tp.mode, a.max_tiles);
    const int text_tokens = count_text_tokens(tokenizer, tp.text), pages = int(r.pages.size());
    vision_total += c.raw * pages;
    valid_total += c.valid * pages;
    if (!r.missing.empty())
      fmt::print(stderr, "dsocr: warning: tier {}: {}: {}\n", k + 1, renderer.font_path(), describe_missing_glyphs(r.missing));
    tiers.push_back({{"tier", k + 1},
                     {"mode", mode_name(tp.mode)},
                     {"turns", tp.turns},
                     {"text_tokens", text_tokens},
                     {"pages", files},
                     {"vision_tokens", c.raw * pages},
                     {"valid_vision_tokens", c.valid * pages},
                     {"placeholders", c.placeholders * pages},
                     {"compression", double(text_tokens) / double(c.raw * pages)}});
    tier_pages.push_back({std::move(r.pages), text_tokens});
  }

  std::vector<SampleScore> curve;
  if (engine) {
    // Every page of every tier through the engine, up to --parallel at once.
    struct Job {
      size_t tier, page;
      std::shared_ptr<PageJob> job;
    };
    std::vector<Job> jobs;
    std::vector<std::vector<std::string>> outputs(plan.tiers.size());
    std::vector<std::string> stops(plan.tiers.size(), "eos");
    for (size_t k = 0; k < plan.tiers.size(); ++k) outputs[k].resize(tier_pages[k].pages.size());
    std::list<Job> pending;
    std::vector<std::pair<size_t, size_t>> order;
    for (size_t k = 0; k < plan.tiers.size(); ++k)
      for (size_t p = 0; p < tier_pages[k].pages.size(); ++p) order.push_back({k, p});
    size_t next = 0;
    while (next < order.size() || !pending.empty()) {
      if (signals.interrupted()) {
        for (Job& j : pending) j.job->cancel();
        fmt::print(stderr, "dsocr: interrupted: the pages and manifest are not written\n");
        return kExitInterrupted;
      }
      while (pending.size() < size_t(a.parallel) && next < order.size()) {
        const auto [k, p] = order[next++];
        OcrRequest request;
        request.mode = plan.tiers[k].mode;
        request.max_tiles = a.max_tiles;
        request.prompt = fox_prompt();
        request.generation.max_new_tokens = a.max_tokens;
        pending.push_back({k, p, engine->submit(tier_pages[k].pages[p], request)});
      }
      pending.front().job->wait_for(std::chrono::milliseconds(50));
      for (auto it = pending.begin(); it != pending.end();) {
        if (!it->job->done()) {
          ++it;
          continue;
        }
        const OcrResult r = it->job->wait();
        if (r.status != RequestStatus::Ok && r.status != RequestStatus::Cancelled)
          fail("tier {} page {}: {}", it->tier + 1, it->page + 1, r.error);
        outputs[it->tier][it->page] = r.text;
        if (r.stop != StopReason::Eos) stops[it->tier] = stop_reason_name(r.stop);
        it = pending.erase(it);
      }
    }
    for (size_t k = 0; k < plan.tiers.size(); ++k) {
      std::string text;
      for (const std::string& o : outputs[k]) text += (text.empty() ? "" : "\n") + o;
      SampleScore s;
      s.id = fmt::format("tier {}", k + 1);
      s.mode = mode_name(plan.tiers[k].mode);
      s.text_tokens = tier_pages[k].text_tokens;
      s.vision_tokens = tiers[k]["vision_tokens"].get<int>();
      s.compression = tiers[k]["compression"].get<double>();
      s.precision = fox_precision(plan.tiers[k].text, text);
      s.output_precision = output_precision(plan.tiers[k].text, text);
      s.edit_distance = normalized_edit_distance(text, plan.tiers[k].text);
      s.stop_reason = stops[k];
      tiers[k]["read_back"] = {{"precision", s.precision},
                               {"output_precision", s.output_precision},
                               {"edit_distance", s.edit_distance},
                               {"stop_reason", s.stop_reason},
                               {"text", text}};
      curve.push_back(s);
    }
  }
  manifest["conversation"] = a.input;
  manifest["turns"] = turns.size();
  manifest["font"] = renderer.font_path();
  manifest["font_size"] = options.font_size;
  manifest["recent"] = recent;
  manifest["tiers"] = tiers;
  manifest["totals"] = {{"original_text_tokens", original_tokens},
                        {"recent_text_tokens", kept_tokens},
                        {"vision_tokens", vision_total},
                        {"valid_vision_tokens", valid_total},
                        {"context_tokens", kept_tokens + vision_total}};
  write_file_atomic((fs::path(a.out) / "manifest.json").string(), dump_json(manifest, 2) + "\n");

  std::string table = fmt::format("{:<6} {:<14} {:>7} {:>11} {:>13} {:>11}", "tier", "mode", "turns", "text tokens",
                                  "vision tokens", "compression");
  if (engine) table += fmt::format(" {:>9} {:>13}", "precision", "edit distance");
  table += "\n";
  for (size_t k = 0; k < plan.tiers.size(); ++k) {
    table += fmt::format("{:<6} {:<14} {:>7} {:>11} {:>13} {:>10.1f}x", k + 1, mode_name(plan.tiers[k].mode),
                         plan.tiers[k].turns.size(), tiers[k]["text_tokens"].get<int>(),
                         tiers[k]["vision_tokens"].get<int>(), tiers[k]["compression"].get<double>());
    if (engine) table += fmt::format(" {:>8.1f}% {:>13.3f}", curve[k].precision * 100, curve[k].edit_distance);
    table += "\n";
  }
  table += fmt::format("recent {} turns as text: {} tokens; context {} -> {} tokens ({} text + {} vision)\n",
                       plan.recent.size(), kept_tokens, original_tokens, kept_tokens + vision_total, kept_tokens,
                       vision_total);
  std::fputs(table.c_str(), stdout);
  if (engine) {
    std::vector<std::string> modes;
    for (const TierPlan& tp : plan.tiers)
      if (std::find(modes.begin(), modes.end(), mode_name(tp.mode)) == modes.end()) modes.push_back(mode_name(tp.mode));
    write_file_atomic((fs::path(a.out) / "forgetting.svg").string(),
                      make_chart_svg(curve, summarize(curve, modes), "Forgetting curve: what each tier keeps"));
  }
  return kExitOk;
}

}  // namespace

void add_context_compress_command(CLI::App& app, SignalWatcher& signals) {
  auto a = std::make_shared<ContextArgs>();
  auto* cmd = app.add_subcommand(
      "context-compress",
      "Memory decay for a conversation (JSONL of {\"role\", \"content\"}): the most recent --keep turns stay text,\n"
      "older turns are rendered into pages for ever lower resolution tiers by age. Writes OUT/tier-K-MODE/page-*.png\n"
      "and OUT/manifest.json (every tier's vision tokens against the text tokens it replaces); --read-back reads\n"
      "each tier with the model and reports what survives (table, OUT/forgetting.svg).");
  cmd->add_option("conversation", a->input, "JSONL file, one turn per line")->required();
  cmd->add_option("-o,--out", a->out, "Output folder")->required();
  cmd->add_option("-m,--model", a->model, "Model directory (the tokenizer counts text tokens; --read-back runs it)");
  cmd->add_option("--keep", a->keep, "Most recent turns kept as text")->default_str("4")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--tiers", a->tiers, "Modes from the newest older turns to the oldest")
      ->default_str("gundam,large,base,small,tiny");
  cmd->add_option("--turns-per-tier", a->turns_per_tier, "Older turns per tier (0: split evenly; the last takes the rest)")
      ->default_str("0")
      ->check(CLI::Range(0, 1 << 20));
  add_render_options(cmd, a->render);
  cmd->add_option("--max-tiles", a->max_tiles, "Gundam modes: most tiles per page, 2..9")->default_str("6");
  cmd->add_flag("--read-back", a->read_back, "Read every tier back with the model (Fox prompt) and score it");
  cmd->add_option("--max-tokens", a->max_tokens, "With --read-back: most tokens per page")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-p,--parallel", a->parallel, "With --read-back: pages at once")->default_str("4")->check(CLI::Range(1, 256));
  cmd->add_option("-t,--threads", a->threads, "CPU threads")->check(CLI::Range(1, 1024));
  cmd->add_flag("-q,--quiet", a->quiet, "No progress output");
  cmd->footer(kExitCodesHelp);
  cmd->callback([a, &signals] {
    const int rc = run_context_compress(*a, signals);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace dsocr::app
