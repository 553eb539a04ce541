// dsocr: DeepSeek-OCR as one native binary. Subcommands are registered from cmd_*.cpp.
#include <pthread.h>

#include <csignal>
#include <cstdio>

#include "app/commands.h"
#include "app/signals.h"
#include "core/error.h"
#include "core/version.h"

// SIGINT/SIGTERM are blocked from the first code the program runs (before main and any static
// initialiser that might start a thread); SignalWatcher in main() then handles them.
__attribute__((constructor(101))) static void block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int main(int argc, char** argv) {
  dsocr::app::SignalWatcher signals;  // before any other thread exists
  CLI::App app{
      "dsocr - DeepSeek-OCR inference engine (CPU, optional CUDA).\n"
      "Reads page images and PDFs, writes markdown (with layout boxes on request).\n"
      "Examples:\n"
      "  dsocr ocr --model ~/models/DeepSeek-OCR page.png\n"
      "  dsocr info ~/models/DeepSeek-OCR\n"
      "  dsocr encode --model DIR --mode base page.png --dump feats.safetensors"};
  app.require_subcommand(1);
  // Usage errors are one line, like every other error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return "dsocr: error: " + std::string(e.what()) + "\n"; });
  app.set_version_flag("--version", std::string("dsocr ") + dsocr::kVersion);
  dsocr::app::add_info_command(app);
  dsocr::app::add_synth_checkpoint_command(app);
  dsocr::app::add_tokenize_commands(app);
  dsocr::app::add_encode_command(app);
  dsocr::app::add_ocr_command(app, signals);
  dsocr::app::add_pull_command(app);
  dsocr::app::add_status_command(app);
  dsocr::app::add_serve_command(app, signals);
  dsocr::app::add_render_command(app);
  dsocr::app::add_compress_eval_command(app, signals);
  dsocr::app::add_context_compress_command(app, signals);
  dsocr::app::add_docs_commands(app);  // last: it documents the commands above
  app.footer(dsocr::app::kExitCodesHelp);
  // A closed pipe is a write error to report (and exit non-zero), not a silent death by SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command that already reported its failures
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints the help, the version or the parser's message
    return rc == 0 ? 0 : dsocr::app::kExitUsage;
  } catch (const dsocr::app::UsageError& e) {
    std::fprintf(stderr, "dsocr: error: %s\n", e.what());
    return dsocr::app::kExitUsage;
  } catch (const dsocr::Error& e) {
    std::fprintf(stderr, "dsocr: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "dsocr: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsocr: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
