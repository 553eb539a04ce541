#include <gtest/gtest.h>

#include "core/error.h"
#include "text/prompt.h"
#include "text/stream_filter.h"

using namespace dsocr;

namespace {
const Tokenizer& tokenizer() {
  static const Tokenizer t = Tokenizer::from_file(DSOCR_TEST_TOKENIZER);
  return t;
}
}  // namespace

TEST(Prompt, DocumentPromptMatchesTheGoldenInputIds) {
  // golden/lm: input_ids = [0] + [128815] x N + the 9 ids of the prompt tail.
  const auto ids = build_prompt_ids(tokenizer(), task_prompt(Task::Markdown), 273, 0, 128815);
  ASSERT_EQ(ids.size(), 283u);
  EXPECT_EQ(ids[0], 0);
  for (int i = 1; i <= 273; ++i) ASSERT_EQ(ids[size_t(i)], 128815);
  const std::vector<int32_t> tail(ids.begin() + 274, ids.end());
  EXPECT_EQ(tail, (std::vector<int32_t>{201, 128820, 21842, 270, 4940, 304, 2121, 7919, 16}));
}

TEST(Prompt, TextBeforeTheImageIsKept) {
  const auto ids = build_prompt_ids(tokenizer(), "Look: <image> Free OCR. ", 2, 0, 128815);
  const auto before = tokenizer().encode("Look: ");
  const auto after = tokenizer().encode(" Free OCR.");  // strip() removed only the outer spaces
  std::vector<int32_t> expect{0};
  expect.insert(expect.end(), before.begin(), before.end());
  expect.insert(expect.end(), {128815, 128815});
  expect.insert(expect.end(), after.begin(), after.end());
  EXPECT_EQ(ids, expect);
}

TEST(Prompt, TasksGiveTheOfficialPrompts) {
  EXPECT_EQ(task_prompt(Task::Free), "<image>\nFree OCR.");
  EXPECT_EQ(task_prompt(Task::Ocr), "<image>\n<|grounding|>OCR this image.");
  EXPECT_EQ(task_prompt(Task::Figure), "<image>\nParse the figure.");
  EXPECT_EQ(task_prompt(Task::Describe), "<image>\nDescribe this image in detail.");
  EXPECT_EQ(task_prompt(Task::Locate, "the total"), "<image>\nLocate <|ref|>the total<|/ref|> in the image.");
  EXPECT_THROW(task_prompt(Task::Locate), Error);
  EXPECT_EQ(parse_task("figure"), Task::Figure);
  EXPECT_THROW(parse_task("summarize"), Error);
}

TEST(Prompt, RawPromptsNeedExactlyOneImageTag) {
  EXPECT_EQ(normalize_prompt("  <image>\nFree OCR. "), "<image>\nFree OCR.");
  try {
    normalize_prompt("Free OCR.");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must contain <image>"), std::string::npos);
  }
  EXPECT_THROW(normalize_prompt("<image><image>"), Error);
}

TEST(StreamFilter, RemovesGroundingSpansAcrossPieceBoundaries) {
  const std::string raw =
      "<|ref|>title<|/ref|><|det|>[[10, 20, 30, 40]]<|/det|>\n# Title\n\n<|ref|>text<|/ref|><|det|>[[1, 2, 3, 4]]"
      "<|/det|>\nBody < text |> here.";
  for (size_t step : {1u, 2u, 3u, 7u, 1000u}) {
    GroundingStreamFilter f;
    std::string out;
    for (size_t i = 0; i < raw.size(); i += step) out += f.push(std::string_view(raw).substr(i, step));
    out += f.flush();
    EXPECT_EQ(out, "# Title\n\nBody < text |> here.") << "step " << step;
  }
  GroundingStreamFilter f;
  EXPECT_EQ(f.push("abc <|ref|>cut off"), "abc ");
  EXPECT_EQ(f.flush(), "");  // an unfinished span never shows
}
