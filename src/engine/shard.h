// Many machines without a cluster manager of our own: shard K of N of a job array (Slurm, Kubernetes
// Indexed Jobs) takes a deterministic share of the inputs, so N workers together do each input exactly
// once, and every worker writes only its own outputs into the shared folder. Documents go to the shard
// picked by a stable hash of their output name (never by their position: adding or reordering files
// moves no other document); a PDF with more than `range_pages` pages is cut into ranges of that many
// pages, each range a document of its own (NAME.pFIRST-LAST) placed by the hash of NAME and its index.
//
// Each shard records what it owns in OUT/.dsocr/shards/K-of-N.json; `dsocr status OUT` reads those
// manifests and the outputs to say what is done, failed, truncated, in progress or missing.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/document.h"

namespace dsocr {

struct ShardSpec {
  int index = 0, count = 1;
  std::string name() const;  // "2-of-4"
};

// "K/N" (0-based K), "auto" or "auto/N". auto: K = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN and N =
// SLURM_ARRAY_TASK_COUNT (or MAX - MIN + 1); auto/N: K = SLURM_ARRAY_TASK_ID itself (so a task resubmitted
// alone keeps its shard: use this form with --array=0-(N-1)); else Kubernetes' JOB_COMPLETION_INDEX with N
// from "auto/N" or DSOCR_SHARD_COUNT. Throws Error saying what is missing or out of range. getenv is injectable for tests.
ShardSpec parse_shard(const std::string& spec, const std::function<const char*(const char*)>& getenv);

uint64_t stable_hash(std::string_view text);  // FNV-1a 64: the same on every machine and run

// The inputs shard `spec` owns. page_count(doc) is asked only for PDFs (and only when N > 1).
std::vector<InputDocument> shard_inputs(const std::vector<InputDocument>& docs, const ShardSpec& spec, int range_pages,
                                        const std::function<int(const InputDocument&)>& page_count);

// The manifest of one shard: the documents it owns; finished once its run ended without interruption.
void write_shard_manifest(const std::string& out_dir, const ShardSpec& spec, const std::vector<InputDocument>& docs,
                          bool finished, const BatchSummary* summary);

struct StatusReport {
  int shards_expected = 0;                  // N of the manifests found (0: none)
  std::vector<std::string> shards_missing;  // "2-of-4": no manifest
  std::vector<std::string> shards_unfinished;
  int documents = 0, done = 0, failed = 0, in_progress = 0, missing = 0;
  int pages_done = 0, pages_failed = 0, pages_truncated = 0;
  std::vector<std::string> problems;        // one line each: failed pages, missing documents
  bool clean() const {
    return shards_missing.empty() && shards_unfinished.empty() && failed == 0 && in_progress == 0 && missing == 0;
  }
};

// What the manifests in OUT say, checked against the outputs. Without manifests (runs older than this
// version) the NAME.json files found are summarised.
StatusReport output_status(const std::string& out_dir);

}  // namespace dsocr
