// Each subcommand of the dsocr binary lives in its own cmd_*.cpp and registers itself here.
#pragma once
#include <CLI/CLI.hpp>

#include "core/error.h"
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

}  // namespace dsocr::app
