#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "lm/ngram.h"

using namespace dsocr;

namespace {

struct GoldenLine {
  int id;
  std::string kind;
  int ngram_size, window;
  std::vector<int32_t> whitelist, generated, banned, whitelisted;
};

std::vector<GoldenLine> load(const std::string& name) {
  const std::string path = std::string(DSOCR_TEST_DATA) + "/ngram/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<GoldenLine> lines;
  for (std::string text; std::getline(in, text);) {
    auto j = nlohmann::json::parse(text);
    lines.push_back({j.at("id").get<int>(), j.at("kind").get<std::string>(), j.at("ngram_size").get<int>(),
                     j.at("window_size").get<int>(), j.at("whitelist").get<std::vector<int32_t>>(),
                     j.at("generated").get<std::vector<int32_t>>(), j.at("banned").get<std::vector<int32_t>>(),
                     j.at("whitelisted").get<std::vector<int32_t>>()});
  }
  return lines;
}

// Every golden line twice: with the drivers' whitelist (-> banned) and without one (-> banned + whitelisted).
void check_golden(const std::string& name, size_t expected_lines) {
  const auto lines = load(name);
  ASSERT_EQ(lines.size(), expected_lines);
  size_t with_ban = 0, whitelist_mattered = 0;
  for (const auto& g : lines) {
    SCOPED_TRACE(name + " id " + std::to_string(g.id) + " " + g.kind + " n=" + std::to_string(g.ngram_size) +
                 " W=" + std::to_string(g.window));
    NgramGuard guard({g.ngram_size, g.window, g.whitelist, true});
    EXPECT_EQ(guard.banned(g.generated), g.banned);

    std::vector<int32_t> without_whitelist = g.banned;
    without_whitelist.insert(without_whitelist.end(), g.whitelisted.begin(), g.whitelisted.end());
    std::sort(without_whitelist.begin(), without_whitelist.end());
    NgramGuard open_guard({g.ngram_size, g.window, {}, true});
    EXPECT_EQ(open_guard.banned(g.generated), without_whitelist);

    with_ban += !g.banned.empty();
    whitelist_mattered += !g.whitelisted.empty();
  }
  if (expected_lines == 1218) {  // the data really exercises both paths (README table: 377 and 93)
    EXPECT_EQ(with_ban, 52u + 36 + 36 + 62 + 70 + 121);
    EXPECT_EQ(whitelist_mattered, 10u + 12 + 6 + 21 + 18 + 26);
  }
}

}  // namespace

TEST(NgramGuard, MatchesOfficialProcessorOnAllCases) { check_golden("cases.jsonl", 1218); }

TEST(NgramGuard, MatchesOfficialProcessorOnEdgeSettings) { check_golden("edge_settings.jsonl", 120); }

TEST(NgramGuard, WindowBoundsAreInclusiveOfTheNgramStartingAtLMinusW) {
  // n = 3, W = 6. Prefix (7, 8) followed by 9 earlier; the n-gram [7 8 9] must lie within the last 6 ids.
  NgramGuard guard({3, 6, {}, true});
  // L = 7: window = positions 1..6, n-gram at 1..3 is inside.
  EXPECT_EQ(guard.banned(std::vector<int32_t>{0, 7, 8, 9, 1, 7, 8}), (std::vector<int32_t>{9}));
  // L = 8: the n-gram starts at 1 = L-W-1, one id too early.
  EXPECT_TRUE(guard.banned(std::vector<int32_t>{0, 7, 8, 9, 1, 2, 7, 8}).empty());
}

TEST(NgramGuard, RunOfNEqualIdsBansThatIdUnlessWhitelisted) {
  NgramGuard guard({4, 10, {128821}, true});
  EXPECT_EQ(guard.banned(std::vector<int32_t>{5, 5, 5, 5}), (std::vector<int32_t>{5}));
  EXPECT_TRUE(guard.banned(std::vector<int32_t>{5, 5, 5}).empty());  // L < n
  EXPECT_TRUE(guard.banned(std::vector<int32_t>{128821, 128821, 128821, 128821}).empty());
}

TEST(NgramGuard, DisabledOrDegenerateSettingsBanNothing) {
  const std::vector<int32_t> run(50, 42);
  EXPECT_TRUE(NgramGuard({4, 10, {}, false}).banned(run).empty());
  EXPECT_TRUE(NgramGuard({1, 10, {}, true}).banned(run).empty());  // official n = 1 behaviour
  EXPECT_TRUE(NgramGuard({4, 0, {}, true}).banned(run).empty());
  EXPECT_TRUE(NgramGuard({4, 3, {}, true}).banned(run).empty());   // W < n: empty range
  EXPECT_EQ(NgramGuard({4, 4, {}, true}).banned(run), (std::vector<int32_t>{42}));
}

TEST(NgramGuard, RejectsInvalidConfig) {
  auto message = [](NgramGuardConfig cfg) -> std::string {
    try {
      NgramGuard guard(std::move(cfg));
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({0, 90, {}, true}).find("ngram_size must be >= 1, got 0"), std::string::npos);
  EXPECT_NE(message({-3, 90, {}, true}).find("ngram_size"), std::string::npos);
  EXPECT_NE(message({30, -1, {}, true}).find("window must be >= 0, got -1"), std::string::npos);
  EXPECT_EQ(message({1, 0, {}, true}), "");
}

TEST(NgramGuard, ApplySetsOnlyBannedLogitsToMinusInfinity) {
  NgramGuard guard({3, 20, {7}, true});
  // Prefix (1, 2) was followed by 3, by 7 (whitelisted) and by 99 (outside the vocab: ignored).
  const std::vector<int32_t> ids{1, 2, 3, 1, 2, 7, 1, 2, 99, 1, 2};
  EXPECT_EQ(guard.banned(ids), (std::vector<int32_t>{3, 99}));
  std::vector<float> logits(10);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(i) * 0.5f;
  guard.apply(ids, logits.data(), int(logits.size()));
  for (size_t i = 0; i < logits.size(); ++i) {
    if (i == 3) {
      EXPECT_TRUE(std::isinf(logits[i]) && logits[i] < 0);
    } else {
      EXPECT_EQ(logits[i], float(i) * 0.5f) << i;
    }
  }
}

TEST(NgramGuard, LongSequencesOnlyLookAtTheWindow) {
  // 8192 ids: the prefix's only earlier occurrence is far outside the window, so nothing is banned,
  // and the same occurrence inside the window is found.
  std::vector<int32_t> ids(8192);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(1000 + i);
  const std::vector<int32_t> tail{1000, 1001, 1002};  // ids[0..2], followed by 1003
  ids.insert(ids.end(), tail.begin(), tail.end());
  NgramGuard guard({4, 90, {}, true});
  EXPECT_TRUE(guard.banned(ids).empty());
  ids.resize(ids.size() - 3);
  ids.insert(ids.end(), {1, 2, 3, 4, 5, 1, 2, 3});
  EXPECT_EQ(guard.banned(ids), (std::vector<int32_t>{4}));
}
