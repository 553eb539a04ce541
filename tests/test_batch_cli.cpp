// The document tool end to end through the real binary on the tiny model: a multi-page PDF made
// here, a folder with a corrupt file, --pages, --boxes, --resume, truncation flags, and Ctrl-C.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "io/files.h"
#include "io/image.h"
#include "io/pdf.h"
#include "io/pdf_writer.h"
#include "vision/resample.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace dsocr;

extern char** environ;

namespace {

const std::string kData = DSOCR_TEST_DATA;

struct CliRun {
  int rc;
  std::string err;
};

// Runs dsocr with args (stdout to /dev/null, stderr captured).
CliRun run_dsocr(const std::vector<std::string>& args, const fs::path& work) {
  const fs::path err = work / "stderr.txt";
  std::string cmd = std::string(DSOCR_BIN);
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " >/dev/null 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file_text((err).string())};
}

std::vector<std::string> common(const fs::path& out) {
  return {"ocr", "--model", DSOCR_TEST_MODEL, "--mode", "tiny", "--max-tokens", "6", "--out", out.string()};
}

bool no_temp_files(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().string().find(".tmp") != std::string::npos) return false;
  return true;
}

class BatchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    work = fs::temp_directory_path() / ("dsocr_batch_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(work);
    fs::create_directories(work);
  }
  void TearDown() override { fs::remove_all(work); }

  // A 3-page PDF: the receipt, a downscaled slide and a downscaled document page (72 dpi page size).
  // Tests that read it are skipped in a build without PDF support (NoPdfBuildRefusesPdfs covers that build).
  fs::path make_pdf() {
    const Image small = load_image(kData + "/images/small.png");
    const Image wide = load_image(kData + "/images/wide.png");
    const Image doc = load_image(kData + "/images/doc.png");
    const fs::path pdf = work / "report.pdf";
    write_images_pdf({small, resize_bicubic(wide, 480, 270), resize_bicubic(doc, 298, 421)}, pdf.string());
    return pdf;
  }
  fs::path work;
};

}  // namespace

TEST_F(BatchCli, MultiPagePdfToMarkdownJsonAndBoxes) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const fs::path pdf = make_pdf();
  const fs::path out = work / "out";
  auto args = common(out);
  args.insert(args.end(), {"--boxes", "-q", pdf.string()});
  const CliRun r = run_dsocr(args, work);
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = json::parse(read_file_text((out / "report.json").string()));
  EXPECT_TRUE(j["complete"].get<bool>());
  EXPECT_EQ(j["mode"], "tiny");
  EXPECT_EQ(j["dpi"], 144);
  ASSERT_EQ(j["pages"].size(), 3u);
  EXPECT_EQ(j["pages"][0]["width"], 1000);  // 500 pt at 144 dpi
  EXPECT_EQ(j["pages"][0]["height"], 800);
  EXPECT_EQ(j["pages"][2]["width"], 596);
  for (const auto& p : j["pages"]) {
    EXPECT_EQ(p["stop_reason"], "max_tokens");
    EXPECT_TRUE(p["truncated"].get<bool>());  // no EOS within 6 tokens: kept and flagged
    EXPECT_EQ(p["generated_tokens"], 6);
    EXPECT_EQ(p["image_tokens"], 73);
  }
  EXPECT_EQ(j["summary"]["truncated"], 3);
  // Pages joined by the official page-split line, once after every page.
  const std::string md = read_file_text((out / "report.md").string()), raw = read_file_text((out / "report.raw.md").string());
  size_t splits = 0;
  for (size_t at = 0; (at = raw.find("<--- Page Split --->", at)) != std::string::npos; ++at) ++splits;
  EXPECT_EQ(splits, 3u);
  EXPECT_NE(md.find("<--- Page Split --->"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "report.boxes.pdf"));
  EXPECT_TRUE(no_temp_files(out));
}

TEST_F(BatchCli, PageSelection) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const fs::path pdf = make_pdf();
  const fs::path out = work / "out";
  auto args = common(out);
  args.insert(args.end(), {"--pages", "1,3", "-q", pdf.string()});
  ASSERT_EQ(run_dsocr(args, work).rc, 0);
  const json j = json::parse(read_file_text((out / "report.json").string()));
  ASSERT_EQ(j["pages"].size(), 2u);
  EXPECT_EQ(j["pages"][0]["page"], 1);
  EXPECT_EQ(j["pages"][1]["page"], 3);
  args = common(out);
  args.insert(args.end(), {"--pages", "7-9", pdf.string()});
  const CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("none of the requested --pages exist"), std::string::npos) << r.err;
}

// -DDSOCR_WITH_PDF=OFF: a PDF is refused with a message that names it and says why; other inputs go on.
TEST_F(BatchCli, NoPdfBuildRefusesPdfs) {
  if (pdf_supported()) GTEST_SKIP() << "built with PDF support";
  const fs::path pdf = make_pdf();
  fs::copy_file(kData + "/images/small.png", work / "small.png");
  const fs::path out = work / "out";
  auto args = common(out);
  args.insert(args.end(), {"-q", pdf.string(), (work / "small.png").string()});
  const CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("report.pdf: this dsocr was built without PDF support"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(out / "small.md"));
}

TEST_F(BatchCli, FolderWithACorruptFileContinuesReportsAndResumes) {
  const fs::path in = work / "in";
  fs::create_directories(in / "sub");
  fs::copy_file(kData + "/images/small.png", in / "a.png");
  fs::copy_file(kData + "/images/small.png", in / "sub" / "b.png");
  std::ofstream(in / "broken.jpg") << "definitely not a jpeg";
  std::ofstream(in / "broken.pdf") << "%PDF-1.4 truncated";
  std::ofstream(in / "notes.txt") << "ignored";
  const fs::path out = work / "out";
  auto args = common(out);
  args.push_back(in.string());
  CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 1) << r.err;  // something failed
  EXPECT_NE(r.err.find("broken.jpg"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("broken.pdf"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("4 document(s): 2 done, 0 skipped, 2 failed"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(out / "a.md"));
  EXPECT_TRUE(fs::exists(out / "sub" / "b.json"));
  EXPECT_FALSE(fs::exists(out / "broken.json"));
  EXPECT_FALSE(fs::exists(out / "notes.json"));
  EXPECT_TRUE(no_temp_files(out));

  // --resume: the finished documents are skipped, the broken ones are tried (and fail) again.
  const auto a_time = fs::last_write_time(out / "a.json");
  args.push_back("--resume");
  r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("4 document(s): 0 done, 2 skipped, 2 failed"), std::string::npos) << r.err;
  EXPECT_EQ(fs::last_write_time(out / "a.json"), a_time);
}

TEST_F(BatchCli, InterruptKeepsFinishedDocumentsAndResumeCompletes) {
  const fs::path in = work / "in";
  fs::create_directories(in);
  for (const char* name : {"p1.png", "p2.png", "p3.png", "p4.png"})
    fs::copy_file(kData + "/images/small.png", in / name);
  const fs::path out = work / "out";
  std::vector<std::string> args = {DSOCR_BIN, "ocr", "--model", DSOCR_TEST_MODEL, "--mode", "tiny", "--no-ngram",
                                   "--max-tokens", "3000", "--out", out.string(), "-q", in.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The child's output goes to a file: it must not share (and possibly break) the test's pipes.
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  const std::string log = (work / "interrupted.log").string();
  posix_spawn_file_actions_addopen(&files, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&files, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, DSOCR_BIN, &files, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&files);
  // Interrupt once the first document is written (or after a while).
  for (int i = 0; i < 600 && !fs::exists(out / "p1.json"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << "\n"
                                 << read_file_text((work / "interrupted.log").string());
  EXPECT_EQ(WEXITSTATUS(status), 130) << read_file_text((work / "interrupted.log").string());
  // Whatever exists is complete; the interrupted document left nothing behind.
  int complete = 0;
  for (const char* stem : {"p1", "p2", "p3", "p4"}) {
    if (!fs::exists(out / (std::string(stem) + ".json"))) {
      EXPECT_FALSE(fs::exists(out / (std::string(stem) + ".md")));
      continue;
    }
    EXPECT_TRUE(json::parse(read_file_text((out / (std::string(stem) + ".json")).string()))["complete"].get<bool>());
    ++complete;
  }
  EXPECT_LT(complete, 4);
  if (fs::exists(out)) {
    EXPECT_TRUE(no_temp_files(out));
  }

  auto resume = std::vector<std::string>{"ocr", "--model", DSOCR_TEST_MODEL, "--mode", "tiny", "--max-tokens", "3",
                                         "--out", out.string(), "--resume", in.string()};
  const CliRun r = run_dsocr(resume, work);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find(std::to_string(complete) + " skipped"), std::string::npos) << r.err;
  for (const char* stem : {"p1", "p2", "p3", "p4"}) EXPECT_TRUE(fs::exists(out / (std::string(stem) + ".json")));
}
