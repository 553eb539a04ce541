// Each subcommand of the dsocr binary lives in its own cmd_*.cpp and registers itself here.
#pragma once
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "text/tokenizer.h"

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

// An error in the options or arguments: exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

void add_info_command(CLI::App& app);             // cmd_info.cpp
void add_synth_checkpoint_command(CLI::App& app); // cmd_synth.cpp
void add_tokenize_commands(CLI::App& app);        // cmd_tokenize.cpp: tokenize, detokenize
void add_encode_command(CLI::App& app);           // cmd_encode.cpp
void add_ocr_command(CLI::App& app, class SignalWatcher& signals);              // cmd_ocr.cpp
void add_pull_command(CLI::App& app);
void add_status_command(CLI::App& app);            // cmd_status.cpp             // cmd_pull.cpp
void add_render_command(CLI::App& app);            // cmd_render.cpp
void add_compress_eval_command(CLI::App& app, class SignalWatcher& signals);  // cmd_compress_eval.cpp
void add_context_compress_command(CLI::App& app, class SignalWatcher& signals);  // cmd_context_compress.cpp

// The tokenizer of --model: a model directory or a tokenizer.json; "" = the usual model search
// (cmd_tokenize.cpp).
Tokenizer load_tokenizer(const std::string& model);

}  // namespace dsocr::app
