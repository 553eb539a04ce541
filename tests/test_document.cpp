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

TEST(Document, CollectsFoldersRecursivelySortedAndNamesOutputsUniquely) {
  const fs::path root = fs::temp_directory_path() / "dsocr_collect";
  fs::remove_all(root);
  fs::create_directories(root / "b" / "deep");
  for (const char* f : {"z.png", "a.PDF", "notes.txt", "b/x.jpg", "b/deep/y.webp", "b/x.tiff"})
    std::ofstream(root / f) << "x";
  std::vector<std::string> missing;
  const auto docs = collect_inputs({root.string(), (root / "z.png").string(), "/no/such/file.png"}, &missing);
  ASSERT_EQ(docs.size(), 6u);
  EXPECT_EQ(docs[0].name, "a");
  EXPECT_TRUE(docs[0].is_pdf);
  EXPECT_EQ(docs[1].name, "b/deep/y");
  EXPECT_EQ(docs[2].name, "b/x");
  EXPECT_EQ(docs[3].name, "b/x_2");  // x.tiff would overwrite x.jpg's outputs
  EXPECT_EQ(docs[4].name, "z");
  EXPECT_EQ(docs[5].name, "z_2");
  EXPECT_FALSE(docs[4].is_pdf);
  EXPECT_EQ(missing, (std::vector<std::string>{"/no/such/file.png"}));
  fs::remove_all(root);
}
