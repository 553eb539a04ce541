// Sharding for job arrays: every input in exactly one shard for any N, stable when the folder order
// changes; large PDFs split into page ranges covering every page once; `dsocr status` over shards.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/error.h"
#include "engine/shard.h"
#include "io/files.h"

using namespace dsocr;
namespace fs = std::filesystem;

namespace {
std::vector<InputDocument> some_inputs(int n) {
  std::vector<InputDocument> docs;
  for (int i = 0; i < n; ++i) docs.push_back({"/in/" + std::to_string(i) + ".png", "dir/" + std::to_string(i) + ".png", false, {}});
  return docs;
}
std::function<const char*(const char*)> env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    static thread_local std::string value;
    auto it = vars.find(name);
    if (it == vars.end()) return nullptr;
    value = it->second;
    return value.c_str();
  };
}
}  // namespace

TEST(Shard, ParsesExplicitSlurmAndKubernetes) {
  ShardSpec s = parse_shard("2/5", env({}));
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  EXPECT_EQ(s.name(), "2-of-5");
  s = parse_shard("auto", env({{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}));
  EXPECT_EQ(s.index, 3);
  EXPECT_EQ(s.count, 4);
  s = parse_shard("auto", env({{"SLURM_ARRAY_TASK_ID", "12"}, {"SLURM_ARRAY_TASK_MIN", "10"}, {"SLURM_ARRAY_TASK_MAX", "13"}}));
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 4);
  // A task resubmitted alone (sbatch --array=2): its own MIN/COUNT are 2/1, auto/N keeps shard 2.
  s = parse_shard("auto/4", env({{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_MIN", "2"}, {"SLURM_ARRAY_TASK_COUNT", "1"}}));
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 4);
  s = parse_shard("auto/8", env({{"JOB_COMPLETION_INDEX", "7"}}));
  EXPECT_EQ(s.index, 7);
  EXPECT_EQ(s.count, 8);
  for (const char* bad : {"3/3", "-1/3", "1/0", "x/2", "2", "auto/x"}) EXPECT_THROW(parse_shard(bad, env({})), Error) << bad;
  EXPECT_THROW(parse_shard("auto", env({})), Error);
  EXPECT_THROW(parse_shard("auto", env({{"JOB_COMPLETION_INDEX", "1"}})), Error) << "Kubernetes needs N";
}

TEST(Shard, EveryInputInExactlyOneShardWhateverTheOrder) {
  const std::vector<InputDocument> docs = some_inputs(57);
  std::vector<InputDocument> shuffled = docs;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  auto none = [](const InputDocument&) { return 0; };
  for (int n : {1, 2, 3, 4, 7, 16}) {
    std::map<std::string, int> owner;
    for (int k = 0; k < n; ++k) {
      const auto mine = shard_inputs(docs, {k, n}, 200, none);
      const auto mine_shuffled = shard_inputs(shuffled, {k, n}, 200, none);
      std::set<std::string> a, b;
      for (const auto& d : mine) a.insert(d.name), ++owner[d.name];
      for (const auto& d : mine_shuffled) b.insert(d.name);
      EXPECT_EQ(a, b) << "shard " << k << " of " << n << " depends on the order";
    }
    ASSERT_EQ(owner.size(), docs.size()) << n;
    for (const auto& [name, count] : owner) EXPECT_EQ(count, 1) << name << " in " << count << " shards of " << n;
  }
  // Adding a file moves no other file.
  std::vector<InputDocument> more = docs;
  more.push_back({"/in/new.png", "dir/new.png", false, {}});
  for (int k = 0; k < 4; ++k) {
    auto before = shard_inputs(docs, {k, 4}, 200, none), after = shard_inputs(more, {k, 4}, 200, none);
    after.erase(std::remove_if(after.begin(), after.end(), [](const auto& d) { return d.name == "dir/new.png"; }), after.end());
    ASSERT_EQ(before.size(), after.size());
  }
}

TEST(Shard, LargePdfsSplitIntoPageRangesCoveringEveryPageOnce) {
  std::vector<InputDocument> docs = {{"/in/big.pdf", "big.pdf", true, {}}, {"/in/small.pdf", "small.pdf", true, {}}};
  auto pages = [](const InputDocument& d) { return d.name == "big.pdf" ? 1234 : 40; };
  std::vector<int> seen(1235, 0);
  int small_owners = 0;
  for (int k = 0; k < 3; ++k)
    for (const InputDocument& d : shard_inputs(docs, {k, 3}, 100, pages)) {
      if (d.name.rfind("big.pdf.p", 0) == 0) {
        EXPECT_EQ(d.name, fmt::format("big.pdf.p{:04}-{:04}", d.first_page, d.last_page));
        for (int p = d.first_page; p <= d.last_page; ++p) ++seen[size_t(p)];
      } else {
        EXPECT_EQ(d.name, "small.pdf");
        EXPECT_EQ(d.first_page, 0);
        ++small_owners;
      }
    }
  for (int p = 1; p <= 1234; ++p) ASSERT_EQ(seen[size_t(p)], 1) << "page " << p;
  EXPECT_EQ(small_owners, 1);
}

// Three shards through the binary, then `dsocr status`: clean; a removed output is reported missing.
TEST(Shard, ShardsWriteOneFolderAndStatusSummarisesThem) {
  const fs::path work = fs::temp_directory_path() / ("dsocr_shard_" + std::to_string(::getpid()));
  fs::remove_all(work);
  fs::create_directories(work / "in");
  for (int i = 0; i < 9; ++i) fs::copy_file(std::string(DSOCR_TEST_DATA) + "/images/small.png", work / "in" / (std::to_string(i) + ".png"));
  std::ofstream(work / "in" / "broken.png") << "not a png";
  const fs::path out = work / "out";
  auto dsocr = [&](const std::string& args) {
    const std::string cmd = std::string(DSOCR_BIN) + " " + args + " >'" + (work / "o.txt").string() + "' 2>&1";
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  const std::string common = std::string("ocr --model '") + DSOCR_TEST_MODEL + "' --mode tiny --max-tokens 4 -q --out '" +
                             out.string() + "' '" + (work / "in").string() + "' --shard ";
  EXPECT_NE(dsocr("status '" + out.string() + "'"), 0) << "no such folder yet";
  dsocr(common + "0/3");
  dsocr(common + "2/3");
  EXPECT_EQ(dsocr("status '" + out.string() + "'"), 1);
  EXPECT_NE(read_file_text((work / "o.txt").string()).find("shard 1-of-3 has not started"), std::string::npos)
      << read_file_text((work / "o.txt").string());
  dsocr(common + "1/3");
  EXPECT_EQ(dsocr("status '" + out.string() + "'"), 1) << "the broken input is a failure";
  const std::string report = read_file_text((work / "o.txt").string());
  EXPECT_NE(report.find("10 document(s): 9 done, 1 failed, 0 in progress, 0 missing"), std::string::npos) << report;
  EXPECT_NE(report.find("failed: broken.png"), std::string::npos) << report;
  fs::remove(work / "in" / "broken.png");
  for (int k = 0; k < 3; ++k) dsocr(common + std::to_string(k) + "/3 --resume");
  EXPECT_EQ(dsocr("status '" + out.string() + "'"), 0) << read_file_text((work / "o.txt").string());
  fs::remove(out / "4.png.json");
  EXPECT_EQ(dsocr("status '" + out.string() + "'"), 1);
  EXPECT_NE(read_file_text((work / "o.txt").string()).find("missing: 4.png (shard "), std::string::npos);
  fs::remove_all(work);
}
