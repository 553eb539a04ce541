#include "engine/shard.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "engine/journal.h"
#include "io/files.h"

namespace fs = std::filesystem;

namespace dsocr {

std::string ShardSpec::name() const { return fmt::format("{}-of-{}", index, count); }

namespace {

int parse_int(std::string_view s, const char* what) {
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) fail("--shard: {} '{}' is not a whole number", what, s);
  return v;
}

}  // namespace

ShardSpec parse_shard(const std::string& spec, const std::function<const char*(const char*)>& getenv) {
  ShardSpec s;
  auto env = [&](const char* name) -> const char* {
    const char* v = getenv(name);
    return v && *v ? v : nullptr;
  };
  if (spec.rfind("auto", 0) == 0) {
    int given_count = 0;
    if (spec.size() > 4) {
      if (spec[4] != '/') fail("--shard '{}': use K/N, auto or auto/N", spec);
      given_count = parse_int(std::string_view(spec).substr(5), "N");
    }
    if (const char* id = env("SLURM_ARRAY_TASK_ID")) {
      const int task = parse_int(id, "SLURM_ARRAY_TASK_ID");
      int min = 0, count = 0;
      if (const char* m = env("SLURM_ARRAY_TASK_MIN")) min = parse_int(m, "SLURM_ARRAY_TASK_MIN");
      if (const char* c = env("SLURM_ARRAY_TASK_COUNT")) {
        count = parse_int(c, "SLURM_ARRAY_TASK_COUNT");
      } else if (const char* mx = env("SLURM_ARRAY_TASK_MAX")) {
        count = parse_int(mx, "SLURM_ARRAY_TASK_MAX") - min + 1;
      }
      if (given_count) {
        // N given: the array's task ids are the shard numbers, so one task resubmitted alone
        // (sbatch --array=2, whose own MIN and COUNT are 2 and 1) still does shard 2.
        s = {task, given_count};
      } else {
        if (count <= 0) fail("--shard auto: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor _MAX");
        s = {task - min, count};
      }
    } else if (const char* k = env("JOB_COMPLETION_INDEX")) {
      s.index = parse_int(k, "JOB_COMPLETION_INDEX");
      s.count = given_count;
      if (!s.count)
        if (const char* c = env("DSOCR_SHARD_COUNT")) s.count = parse_int(c, "DSOCR_SHARD_COUNT");
      if (s.count <= 0) fail("--shard auto: Kubernetes gives no shard count: use --shard auto/N (the Job's completions)");
    } else {
      fail("--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set");
    }
  } else {
    const size_t slash = spec.find('/');
    if (slash == std::string::npos) fail("--shard '{}': use K/N (K from 0), auto or auto/N", spec);
    s = {parse_int(std::string_view(spec).substr(0, slash), "K"), parse_int(std::string_view(spec).substr(slash + 1), "N")};
  }
  if (s.count < 1 || s.count > 100000) fail("--shard: {} shards is not a count (1..100000)", s.count);
  if (s.index < 0 || s.index >= s.count) fail("--shard: shard {} does not exist in 0..{}", s.index, s.count - 1);
  return s;
}

uint64_t stable_hash(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::vector<InputDocument> shard_inputs(const std::vector<InputDocument>& docs, const ShardSpec& spec, int range_pages,
                                        const std::function<int(const InputDocument&)>& page_count) {
  if (spec.count == 1) return docs;
  std::vector<InputDocument> out;
  for (const InputDocument& d : docs) {
    const uint64_t h = stable_hash(d.name);
    const int pages = d.is_pdf && range_pages > 0 ? page_count(d) : 0;
    if (pages > range_pages) {
      const int ranges = (pages + range_pages - 1) / range_pages;
      for (int r = 0; r < ranges; ++r) {
        if (int((h + uint64_t(r)) % uint64_t(spec.count)) != spec.index) continue;
        InputDocument part = d;
        part.first_page = r * range_pages + 1;
        part.last_page = std::min(pages, (r + 1) * range_pages);
        part.name = fmt::format("{}.p{:04}-{:04}", d.name, part.first_page, part.last_page);
        out.push_back(std::move(part));
      }
    } else if (int(h % uint64_t(spec.count)) == spec.index) {
      out.push_back(d);
    }
  }
  return out;
}

namespace {
std::string manifests_dir(const std::string& out) { return (fs::path(out) / ".dsocr" / "shards").string(); }
}  // namespace

void write_shard_manifest(const std::string& out_dir, const ShardSpec& spec, const std::vector<InputDocument>& docs,
                          bool finished, const BatchSummary* summary) {
  json m;
  m["shard"] = spec.index;
  m["of"] = spec.count;
  auto list = json::array();
  for (const InputDocument& d : docs) list.push_back({{"name", d.name}, {"source", d.path}});
  m["documents"] = list;
  m["finished"] = finished;
  if (summary) {
    json failed = json::object();
    for (const auto& [name, why] : summary->failed_documents) failed[name] = why;
    m["failed"] = failed;
  }
  if (summary)
    m["summary"] = {{"documents_done", summary->documents_done}, {"documents_failed", summary->documents_failed},
                    {"pages_done", summary->pages_done}, {"pages_failed", summary->pages_failed}};
  write_file_atomic((fs::path(manifests_dir(out_dir)) / (spec.name() + ".json")).string(), dump_json(m, 1) + "\n");
}

StatusReport output_status(const std::string& out_dir) {
  StatusReport r;
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec)) fail("{}: no such folder", out_dir);
  // The manifests: the documents every shard owns.
  std::map<std::string, std::string> owner;  // document name -> shard
  std::map<std::string, std::string> failed_without_outputs;
  std::set<int> seen;
  static const std::regex manifest_name(R"((\d+)-of-(\d+)\.json)");
  const std::string mdir = manifests_dir(out_dir);
  if (fs::is_directory(mdir, ec))
    for (const auto& e : fs::directory_iterator(mdir, ec)) {
      std::smatch m;
      const std::string file = e.path().filename().string();
      if (!std::regex_match(file, m, manifest_name)) continue;
      json j;
      try {
        j = json::parse(read_file_text(e.path().string()));
      } catch (const std::exception& ex) {
        r.problems.push_back(fmt::format("{}: unreadable manifest: {}", e.path().string(), ex.what()));
        continue;
      }
      const int of = j.value("of", 0);
      if (r.shards_expected && of != r.shards_expected)
        r.problems.push_back(fmt::format("{}: from a run with {} shards, others have {}", file, of, r.shards_expected));
      r.shards_expected = std::max(r.shards_expected, of);
      seen.insert(j.value("shard", -1));
      if (!j.value("finished", false)) r.shards_unfinished.push_back(file.substr(0, file.size() - 5));
      for (const json& d : j["documents"]) owner[d["name"].get<std::string>()] = file.substr(0, file.size() - 5);
      if (j.contains("failed"))
        for (auto it = j["failed"].begin(); it != j["failed"].end(); ++it) failed_without_outputs[it.key()] = it.value();
    }
  for (int k = 0; k < r.shards_expected; ++k)
    if (!seen.count(k)) r.shards_missing.push_back(fmt::format("{}-of-{}", k, r.shards_expected));
  if (owner.empty()) {  // no manifests: whatever NAME.json files there are
    for (auto it = fs::recursive_directory_iterator(out_dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path p = it->path();
      if (p.string().find("/.dsocr") != std::string::npos || p.extension() != ".json") continue;
      owner[fs::relative(p, out_dir, ec).replace_extension("").string()] = "";
    }
  }

  for (const auto& [name, shard] : owner) {
    ++r.documents;
    const fs::path result = fs::path(out_dir) / (name + ".json");
    const fs::path journal = fs::path(out_dir) / ".dsocr" / (name + ".journal.jsonl");
    const std::string where = shard.empty() ? "" : fmt::format(" (shard {})", shard);
    if (fs::exists(result, ec)) {
      try {
        const json j = json::parse(read_file_text(result.string()));
        int failed = 0;
        for (const json& p : j["pages"]) {
          if (p.value("status", "done") != "done") {
            ++failed;
            r.problems.push_back(fmt::format("failed: {} page {}: {}", name, p.value("page", 0), p.value("error", "")));
          } else {
            ++r.pages_done;
            r.pages_truncated += p.value("truncated", false) ? 1 : 0;
          }
        }
        r.pages_failed += failed;
        if (failed) ++r.failed;
        else ++r.done;
        continue;
      } catch (const std::exception& e) {
        r.problems.push_back(fmt::format("{}: unreadable: {}", result.string(), e.what()));
        ++r.failed;
        continue;
      }
    }
    if (auto f = failed_without_outputs.find(name); f != failed_without_outputs.end()) {
      ++r.failed;
      r.problems.push_back(fmt::format("failed: {}{}: {}", name, where, f->second));
    } else if (fs::exists(journal, ec)) {
      ++r.in_progress;
      r.problems.push_back(fmt::format("in progress: {}{}", name, where));
    } else {
      ++r.missing;
      r.problems.push_back(fmt::format("missing: {}{}", name, where));
    }
  }
  return r;
}

}  // namespace dsocr
