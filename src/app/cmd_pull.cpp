// dsocr pull: download a model from the Hugging Face hub (or a mirror) into the dsocr cache, where
// the other commands find it without --model. Interrupted downloads resume; files are verified.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>

#include "app/commands.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/hub.h"
#include "io/model_locator.h"

namespace dsocr::app {
namespace {

using Clock = std::chrono::steady_clock;

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// Renders download progress on stderr: a redrawn bar on a terminal, one line per event otherwise.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool terminal) : terminal_(terminal) {}

  void operator()(const PullProgress& p) {
    using Stage = PullProgress::Stage;
    const std::string prefix = fmt::format("[{}/{}] {}", p.file_index + 1, p.file_count, p.file.path);
    switch (p.stage) {
      case Stage::kVerifying:
        if (terminal_) line(fmt::format("{}  verifying {}", prefix, p.bytes_done > 0 ? "partial download" : "existing file"));
        break;
      case Stage::kUpToDate:
        finish(fmt::format("{}  up to date ({})", prefix, format_bytes(p.file.size)));
        break;
      case Stage::kRetrying:
        finish(fmt::format("{}  connection dropped at {}, resuming", prefix, format_bytes(p.bytes_done)));
        break;
      case Stage::kDownloading:
        downloading(prefix, p);
        break;
      case Stage::kDone: {
        const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
        const double received = static_cast<double>(p.bytes_done - p.bytes_at_start);
        finish(fmt::format("{}  {} done in {} ({:.1f} MB/s)", prefix, format_bytes(p.bytes_done),
                           format_duration(seconds), received / 1e6 / std::max(seconds, 1e-3)));
        break;
      }
    }
  }

 private:
  void downloading(const std::string& prefix, const PullProgress& p) {
    const auto now = Clock::now();
    const bool new_transfer = p.file_index != file_index_ || p.bytes_at_start != at_start_ || p.bytes_done == p.bytes_at_start;
    if (new_transfer) {
      file_index_ = p.file_index;
      at_start_ = p.bytes_at_start;
      started_ = now;
      if (!terminal_) {
        std::fprintf(stderr, "%s  downloading %s%s\n", prefix.c_str(), format_bytes(p.file.size).c_str(),
                     p.bytes_at_start > 0 ? fmt::format(", resuming at {}", format_bytes(p.bytes_at_start)).c_str() : "");
      }
    }
    if (!terminal_ || (!new_transfer && now - last_draw_ < std::chrono::milliseconds(100))) return;
    last_draw_ = now;

    const double seconds = std::chrono::duration<double>(now - started_).count();
    const double rate = seconds > 0.2 ? static_cast<double>(p.bytes_done - p.bytes_at_start) / seconds : 0.0;
    std::string bar, speed;
    if (p.file.size > 0) {
      constexpr int kWidth = 24;
      const double fraction = static_cast<double>(p.bytes_done) / static_cast<double>(p.file.size);
      const int filled = std::clamp(static_cast<int>(kWidth * fraction), 0, kWidth);
      bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    }
    if (rate > 0) {  // no speed until there is something to measure
      speed = fmt::format("  {:.1f} MB/s", rate / 1e6);
      if (p.file.size > 0) speed += "  ETA " + format_duration(static_cast<double>(p.file.size - p.bytes_done) / rate);
    }
    line(fmt::format("{}  {}{} / {}{}", prefix, bar, format_bytes(p.bytes_done), format_bytes(p.file.size), speed));
  }

  // Redraws the current terminal line.
  void line(const std::string& text) {
    std::fprintf(stderr, "\r%s\x1b[K", text.c_str());
    std::fflush(stderr);
  }

  // A line that stays.
  void finish(const std::string& text) {
    if (terminal_) line(text);
    std::fprintf(stderr, "%s\n", terminal_ ? "" : text.c_str());
    std::fflush(stderr);
  }

  bool terminal_;
  int file_index_ = -1;
  int64_t at_start_ = -1;
  Clock::time_point started_ = Clock::now(), last_draw_;
};

struct PullArgs {
  std::string repo = kDefaultModelRepo;
  std::string revision = "main";
  std::string cache;
  bool quiet = false;
};

void run_pull(const PullArgs& args) {
  PullOptions options;
  options.endpoint = env_or("HF_ENDPOINT", kDefaultHubEndpoint);
  options.token = env_or("HF_TOKEN", "");
  options.revision = args.revision;
  const std::string dest = cached_model_dir(args.cache.empty() ? cache_dir() : args.cache, args.repo);
  if (!args.quiet) {
    options.on_progress = ProgressPrinter(isatty(STDERR_FILENO) != 0);
    std::fprintf(stderr, "pulling %s (%s) from %s into %s\n", args.repo.c_str(), args.revision.c_str(),
                 options.endpoint.c_str(), dest.c_str());
  }
  const PullResult result = pull_model(args.repo, dest, options);
  with_context(fmt::format("{}: the downloaded model does not load", dest), [&] { Checkpoint checkpoint(dest); });
  if (!args.quiet) {
    int64_t total = 0;
    for (const HubFile& file : result.listing.files) total += std::max<int64_t>(file.size, 0);
    std::fprintf(stderr, "%zu files, %s (commit %s): %d downloaded, %d already up to date\n",
                 result.listing.files.size(), format_bytes(total).c_str(),
                 result.listing.commit.empty() ? "?" : result.listing.commit.substr(0, 12).c_str(), result.downloaded,
                 result.up_to_date);
  }
  fmt::print("{}\n", dest);  // on stdout, for scripts: MODEL=$(dsocr pull -q)
}

}  // namespace

void add_pull_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pull",
      "Download a model from the Hugging Face hub into the cache (resumable, verified), where the other\n"
      "commands find it without --model. Honours HF_ENDPOINT (a mirror) and HF_TOKEN (gated/private repos).");
  auto args = std::make_shared<PullArgs>();
  cmd->add_option("repo", args->repo, "Hub repository")->capture_default_str();
  cmd->add_option("--revision", args->revision, "Branch, tag or commit")->capture_default_str();
  cmd->add_option("--cache", args->cache, "Cache directory (default: $XDG_CACHE_HOME/dsocr or ~/.cache/dsocr)");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress output; print only the model directory");
  cmd->callback([args] { run_pull(*args); });
}

}  // namespace dsocr::app
