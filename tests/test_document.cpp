#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/document.h"

using namespace dsocr;
namespace fs = std::filesystem;

TEST(Document, PageRanges) {
  EXPECT_EQ(parse_page_ranges("1-3,7"), (std::vector<int>{1, 2, 3, 7}));
  EXPECT_EQ(parse_page_ranges("5, 2-3,3"), (std::vector<int>{2, 3, 5}));
  EXPECT_EQ(parse_page_ranges("4"), (std::vector<int>{4}));
  for (const char* bad : {"", "0", "a", "3-1", "1-", "-2", "1,,2", "1.5"}) EXPECT_THROW(parse_page_ranges(bad), Error) << bad;
}

TEST(Document, CollectsFoldersRecursivelySortedAndNamesOutputsByPath) {
  const fs::path root = fs::temp_directory_path() / "dsocr_collect";
  fs::remove_all(root);
  fs::create_directories(root / "b" / "deep");
  fs::create_directories(root / "out" / "images");
  for (const char* f : {"z.png", "a.PDF", "notes.txt", "b/x.jpg", "b/deep/y.webp", "b/x.tiff", "out/z.png.boxes.png",
                        "out/images/1.jpg"})
    std::ofstream(root / f) << "x";
  std::vector<std::string> missing;
  // z.png twice (in the folder and by name) is one input; the output folder inside it is skipped.
  const auto docs = collect_inputs({root.string(), "/no/such/file.png"}, &missing, (root / "out").string());
  ASSERT_EQ(docs.size(), 5u);
  EXPECT_EQ(docs[0].name, "a.PDF");
  EXPECT_TRUE(docs[0].is_pdf);
  EXPECT_EQ(docs[1].name, "b/deep/y.webp");
  EXPECT_EQ(docs[2].name, "b/x.jpg");
  EXPECT_EQ(docs[3].name, "b/x.tiff");  // never x_2: names do not depend on the other files
  EXPECT_EQ(docs[4].name, "z.png");
  EXPECT_FALSE(docs[4].is_pdf);
  EXPECT_EQ(missing, (std::vector<std::string>{"/no/such/file.png"}));
  EXPECT_EQ(collect_inputs({root.string(), (root / "z.png").string()}, nullptr, (root / "out").string()).size(), 5u);
  // Two different files that would write the same outputs are an error naming both.
  fs::create_directories(root / "other");
  std::ofstream(root / "other" / "z.png") << "x";
  try {
    collect_inputs({(root / "z.png").string(), (root / "other" / "z.png").string()}, nullptr);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("would both write z.png.*"), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}

TEST(Document, FormatsAndTempFiles) {
  EXPECT_EQ(parse_formats("md,json"), (std::set<OutputFormat>{OutputFormat::Markdown, OutputFormat::Json}));
  EXPECT_EQ(parse_formats("hocr,alto,pdf").size(), 3u);
  EXPECT_THROW(parse_formats("md,docx"), Error);
  EXPECT_THROW(parse_formats(""), Error);
  const fs::path root = fs::temp_directory_path() / "dsocr_orphans";
  fs::remove_all(root);
  fs::create_directories(root / "sub");
  fs::create_directories(root / "sub" / "images" / "b.png");
  std::ofstream(root / "a.png.md.tmp0123456789abcdef") << "x";
  std::ofstream(root / "sub" / "b.png.json.tmpfedcba9876543210") << "x";
  std::ofstream(root / "sub" / "images" / "b.png" / "0.jpg.tmpfedcba9876543210") << "x";
  std::ofstream(root / "other.png.md.tmp0123456789abcdef") << "another worker's file";
  std::ofstream(root / "keep.tmp") << "x";
  std::ofstream(root / "a.png.md") << "x";
  EXPECT_EQ(remove_orphan_temp_files(root.string(), {"a.png", "sub/b.png"}), 3);
  EXPECT_TRUE(fs::exists(root / "keep.tmp"));
  EXPECT_TRUE(fs::exists(root / "a.png.md"));
  EXPECT_TRUE(fs::exists(root / "other.png.md.tmp0123456789abcdef"));
  fs::remove_all(root);
}
