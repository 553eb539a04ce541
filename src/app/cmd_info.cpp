// dsocr info MODEL_DIR: what a checkpoint holds (parameter counts per component, dtypes, key
// config values, supported modes) — a quick check that a download or a synthetic model is sound.
#include <cstdio>

#include <fmt/format.h>

#include "app/commands.h"
#include "backend/cpu/kernels.h"
#include "io/checkpoint.h"

namespace dsocr::app {

namespace {

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

void print_info(const std::string& dir) {
  Checkpoint ckpt(dir);
  const ModelConfig& c = ckpt.config();
  const ParameterCounts p = ckpt.count_parameters();
  auto row = [](const char* name, int64_t n) { fmt::print("  {:<28} {:>15}\n", name, with_commas(n)); };
  fmt::print("model      {}\n", dir);
  fmt::print("weights    {} shard(s), {:.2f} GB mapped\n", ckpt.shards().size(), double(ckpt.mapped_bytes()) / 1e9);
  std::string dtypes;
  for (const auto& [name, n] : p.dtypes) dtypes += fmt::format("{}{} x {}", dtypes.empty() ? "" : ", ", n, name);
  fmt::print("tensors    {} ({})\n", ckpt.tensor_names().size(), dtypes);
  fmt::print("parameters (float)\n");
  row("SAM + compressor", p.sam);
  row("CLIP-L", p.clip);
  row("projector", p.projector);
  row("newline + separator", p.special);
  row("vision total", p.vision());
  row("LM embeddings", p.lm_embed);
  row("LM attention", p.lm_attention);
  row("LM dense MLP (layer 0)", p.lm_dense_mlp);
  row("LM routers", p.lm_router);
  row("LM routed experts", p.lm_experts);
  row("LM shared experts", p.lm_shared);
  row("LM norms", p.lm_norms);
  row("LM head", p.lm_head);
  row("LM total", p.lm());
  if (p.other) row("other", p.other);
  row("total", p.total());
  row("LM active per token", p.active_per_token(c.lm));
  const LmConfig& lm = c.lm;
  fmt::print("vision     SAM {}x{} ({} heads, global blocks {}), CLIP {}x{} ({} heads), projector {} -> {}\n",
             c.sam.layers, c.sam.width, c.sam.heads, fmt::join(c.sam.global_attn_indexes, ","), c.clip.layers,
             c.clip.width, c.clip.heads, c.projector.input_dim, c.projector.n_embed);
  fmt::print("decoder    {} layers, hidden {}, {} heads x {}, dense FFN {}, MoE {} experts (top-{}, {} shared) x {}\n",
             lm.layers, lm.hidden, lm.heads, lm.head_dim, lm.intermediate, lm.n_routed_experts, lm.experts_per_token,
             lm.n_shared_experts, lm.moe_intermediate);
  fmt::print("           vocab {}, context {}, rope theta {}, bos {} eos {}\n", lm.vocab_size, lm.max_position_embeddings,
             lm.rope_theta, lm.bos_token_id, lm.eos_token_id);
  fmt::print("modes      tiny (512, 64 tokens), small (640, 100), base (1024, 256), large (1280, 400),\n"
             "           gundam (640 tiles + 1024 global), gundam-master (1024 tiles + 1280 global)\n");
  fmt::print("tokenizer  {}\n", ckpt.tokenizer_path());
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show what a model directory holds: parameter counts, dtypes, configuration;\n"
                                          "or, with --cpu, which CPU kernels this machine runs");
  auto dir = std::make_shared<std::string>();
  auto cpu = std::make_shared<bool>(false);
  cmd->add_option("model_dir", *dir, "DeepSeek-OCR model directory (config.json, tokenizer.json, *.safetensors)");
  cmd->add_flag("--cpu", *cpu,
                "The CPU, the kernel variants built in and the one in use ($DSOCR_ISA=avx2|base|... caps it)");
  cmd->callback([dir, cpu] {
    if (*cpu) fmt::print("{}\n", cpu::describe_cpu_kernels());
    if (!dir->empty()) print_info(*dir);
    else if (!*cpu) throw UsageError("info: give a model directory, or --cpu");
  });
}

}  // namespace dsocr::app
