// dsocr synth-checkpoint: a full-size checkpoint of random weights in the official format, for
// measuring speed and memory without the real 6.7 GB download.
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "app/commands.h"
#include "io/checkpoint.h"
#include "io/synth_checkpoint.h"

namespace dsocr::app {

void add_synth_checkpoint_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth-checkpoint",
                                 "Write a checkpoint of random bf16 weights in the official layout "
                                 "(full size by default: ~6.7 GB)");
  auto opt = std::make_shared<SynthOptions>();
  auto quiet = std::make_shared<bool>(false);
  cmd->add_option("--out", opt->out_dir, "Output directory")->required();
  cmd->add_option("--seed", opt->seed, "Random seed")->default_val(1);
  cmd->add_option("--like", opt->like, "Take the sizes from this config.json or model directory instead of the official ones");
  cmd->add_option("--tokenizer", opt->tokenizer, "tokenizer.json to copy (default: the one in --like DIR)");
  cmd->add_flag("--sparse", opt->sparse, "Write only the header and leave the data as zeros (a sparse file: no disk cost)");
  cmd->add_option("--threads", opt->threads, "Writer threads (default: all cores)");
  cmd->add_flag("-q,--quiet", *quiet, "No progress output");
  cmd->callback([opt, quiet] {
    const bool tty = isatty(2);
    if (!*quiet && tty) {
      opt->progress = [](uint64_t done, uint64_t total) {
        std::fprintf(stderr, "\rwriting weights: %6.2f / %.2f GB", double(done) / 1e9, double(total) / 1e9);
        std::fflush(stderr);
      };
    }
    const SynthResult r = write_synthetic_checkpoint(*opt);
    if (!*quiet && tty) std::fprintf(stderr, "\n");
    Checkpoint check(opt->out_dir);  // prove that it loads like the real one
    fmt::print("wrote {} tensors, {:.3f} GB, in {:.2f} s ({:.0f} MB/s){} -> {}\n", r.tensors, double(r.bytes) / 1e9,
               r.seconds, double(r.bytes) / 1e6 / std::max(r.seconds, 1e-9), opt->sparse ? " [sparse]" : "",
               opt->out_dir);
  });
}

}  // namespace dsocr::app
