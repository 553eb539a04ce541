// dsocr status OUT: what a (sharded) run has done, from the manifests every worker writes and the
// outputs: done, failed, truncated, in progress, missing. Exits 1 while anything is missing or failed.
#include <fmt/format.h>

#include "app/commands.h"
#include "engine/shard.h"

namespace dsocr::app {

void add_status_command(CLI::App& app) {
  auto out = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("status", "Summarise an output folder: documents done, failed, truncated, in progress\n"
                                           "or missing, across every shard that wrote into it. Exit 0 when complete.");
  cmd->add_option("out", *out, "The --out folder of `dsocr ocr`")->required();
  cmd->add_flag("-q,--quiet", *quiet, "Only the summary line");
  cmd->footer(kExitCodesHelp);
  cmd->callback([out, quiet] {
    const StatusReport r = output_status(*out);
    if (!*quiet)
      for (const std::string& p : r.problems) fmt::print("{}\n", p);
    for (const std::string& s : r.shards_missing) fmt::print("shard {} has not started\n", s);
    for (const std::string& s : r.shards_unfinished) fmt::print("shard {} has not finished\n", s);
    fmt::print("{}: {} document(s): {} done, {} failed, {} in progress, {} missing; {} page(s) done, {} failed, {} "
               "truncated{}\n",
               *out, r.documents, r.done, r.failed, r.in_progress, r.missing, r.pages_done, r.pages_failed,
               r.pages_truncated, r.shards_expected > 1 ? fmt::format("; {} shards", r.shards_expected) : std::string());
    if (!r.clean()) throw CLI::RuntimeError(kExitFailure);
  });
}

}  // namespace dsocr::app
