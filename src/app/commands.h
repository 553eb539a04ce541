// Each subcommand of the dsocr binary lives in its own cmd_*.cpp and registers itself here.
#pragma once
#include <CLI/CLI.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "io/pdf.h"
#include "text/tokenizer.h"
#include "engine/engine.h"

namespace dsocr::app {

// Exit codes of every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // an input, a page or an output failed (reported on stderr)
inline constexpr int kExitUsage = 2;        // bad options or arguments
inline constexpr int kExitInterrupted = 130;
inline constexpr const char* kExitCodesHelp =
    "Exit codes: 0 done; 1 an input, page or output failed (each reported on stderr, the rest is done);\n"
    "2 usage error (bad option or argument); 130 interrupted (SIGINT/SIGTERM: finished pages are kept,\n"
    "--resume continues).";

// --pdf-renderer's help (ocr, encode): the choices and which of them this build has.
inline std::string pdf_renderer_help() {
  std::vector<std::string> built;
  for (PdfRenderer r : pdf_renderers()) built.push_back(pdf_renderer_name(r));
  return fmt::format("PDF renderer: mupdf (the official pipeline's pixels: it renders with PyMuPDF) | poppler;\n"
                     "built in: {}",
                     built.empty() ? "none" : fmt::format("{}", fmt::join(built, ", ")));
}

// An error in the options or arguments: exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Pages in flight when --parallel is not given (ocr, serve): what the KV cache holds at a typical
// page length (about 2,500 tokens: a Gundam prompt and a long page of text), at least 1, at most 16.
int default_parallel(const EngineOptions& options, const Checkpoint& checkpoint);

void add_info_command(CLI::App& app);             // cmd_info.cpp
void add_synth_checkpoint_command(CLI::App& app); // cmd_synth.cpp
void add_tokenize_commands(CLI::App& app);        // cmd_tokenize.cpp: tokenize, detokenize
void add_encode_command(CLI::App& app);           // cmd_encode.cpp
void add_ocr_command(CLI::App& app, class SignalWatcher& signals);              // cmd_ocr.cpp
void add_pull_command(CLI::App& app);              // cmd_pull.cpp
void add_status_command(CLI::App& app);            // cmd_status.cpp
void add_serve_command(CLI::App& app, class SignalWatcher& signals);            // cmd_serve.cpp
void add_render_command(CLI::App& app);            // cmd_render.cpp
void add_compress_eval_command(CLI::App& app, class SignalWatcher& signals);  // cmd_compress_eval.cpp
void add_context_compress_command(CLI::App& app, class SignalWatcher& signals);  // cmd_context_compress.cpp
// cmd_docs.cpp: `man` and `completion bash`, generated from the commands registered before it.
void add_docs_commands(CLI::App& app);

// The tokenizer of --model: a model directory or a tokenizer.json; "" = the usual model search
// (cmd_tokenize.cpp).
Tokenizer load_tokenizer(const std::string& model);

}  // namespace dsocr::app
