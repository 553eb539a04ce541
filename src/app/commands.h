// Each subcommand of the dsocr binary lives in its own cmd_*.cpp and registers itself here.
#pragma once
#include <CLI/CLI.hpp>

namespace dsocr::app {

void add_info_command(CLI::App& app);             // cmd_info.cpp
void add_synth_checkpoint_command(CLI::App& app); // cmd_synth.cpp
void add_tokenize_commands(CLI::App& app);        // cmd_tokenize.cpp: tokenize, detokenize
void add_encode_command(CLI::App& app);           // cmd_encode.cpp
void add_ocr_command(CLI::App& app);              // cmd_ocr.cpp
void add_pull_command(CLI::App& app);             // cmd_pull.cpp

}  // namespace dsocr::app
