// The document tool end to end through the real binary on the tiny model: a multi-page PDF made
// here, a folder with a corrupt file, --pages, --boxes, formats, --resume with run identities,
// page journals that survive kill -9, interrupts, stdin/stdout, and bad output folders.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <random>
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

json read_json(const fs::path& p) { return json::parse(read_file_text(p.string())); }

// Starts dsocr (stdout to /dev/null, stderr to `log`), returns its pid.
pid_t spawn_dsocr(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), DSOCR_BIN);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The child's output goes to a file: it must not share (and possibly break) the test's pipes.
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&files, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, DSOCR_BIN, &files, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&files);
  return pid;
}

// Waits (up to 5 s) until process `pid` blocks SIGINT and SIGTERM, i.e. its own first code has run: before
// that (the dynamic loader mapping libraries) no program can handle a signal.
void wait_until_signals_handled(pid_t pid) {
  const uint64_t want = (uint64_t(1) << (SIGINT - 1)) | (uint64_t(1) << (SIGTERM - 1));
  for (int i = 0; i < 5000; ++i) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("SigBlk:", 0) == 0 && (std::stoull(line.substr(7), nullptr, 16) & want) == want) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Pages recorded in a document's journal (the run in progress), 0 if there is none.
int journal_pages(const fs::path& out, const std::string& name) {
  const fs::path j = out / ".dsocr" / (name + ".journal.jsonl");
  if (!fs::exists(j)) return 0;
  std::ifstream in(j);
  std::string line;
  int n = -1;  // the identity line
  while (std::getline(in, line))
    if (!line.empty() && line.back() == '}') ++n;
  return std::max(n, 0);
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
  args.insert(args.end(), {"--boxes", "-q", "--format", "md,json,hocr,alto,pdf", pdf.string()});
  const CliRun r = run_dsocr(args, work);
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = read_json(out / "report.pdf.json");
  EXPECT_TRUE(j["complete"].get<bool>());
  EXPECT_EQ(j["mode"], "tiny");
  EXPECT_EQ(j["dpi"], 144);
  EXPECT_EQ(j["pdf_renderer"], pdf_renderer_name(PdfRenderer::Default));
  EXPECT_FALSE(j["dsocr"].get<std::string>().empty());
  EXPECT_EQ(j["model"]["identity"].get<std::string>().size(), 16u);
  ASSERT_EQ(j["pages"].size(), 3u);
  EXPECT_EQ(j["pages"][0]["width"], 1000);  // 500 pt at 144 dpi
  EXPECT_EQ(j["pages"][0]["height"], 800);
  EXPECT_EQ(j["pages"][2]["width"], 596);
  for (const auto& p : j["pages"]) {
    EXPECT_EQ(p["stop_reason"], "max_tokens");
    EXPECT_TRUE(p["truncated"].get<bool>());  // no EOS within 6 tokens: kept and flagged
    EXPECT_EQ(p["generated_tokens"], 6);
    EXPECT_EQ(p["image_tokens"], 73);
    EXPECT_FALSE(p["raw"].get<std::string>().empty()) << "the page's text is in NAME.json";
    EXPECT_TRUE(p.contains("markdown"));
  }
  EXPECT_EQ(j["summary"]["truncated"], 3);
  // Pages joined by the official page-split line, once after every page; the same text as NAME.json.
  const std::string md = read_file_text((out / "report.pdf.md").string()), raw = read_file_text((out / "report.pdf.raw.md").string());
  size_t splits = 0;
  for (size_t at = 0; (at = raw.find("<--- Page Split --->", at)) != std::string::npos; ++at) ++splits;
  EXPECT_EQ(splits, 3u);
  EXPECT_NE(raw.find(j["pages"][1]["raw"].get<std::string>()), std::string::npos);
  EXPECT_NE(md.find("<--- Page Split --->"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "report.pdf.boxes.pdf"));
  EXPECT_TRUE(fs::exists(out / "report.pdf.hocr"));
  EXPECT_TRUE(fs::exists(out / "report.pdf.alto.xml"));
  EXPECT_EQ(PdfDocument((out / "report.pdf.pdf").string()).page_count(), 3);
  EXPECT_FALSE(fs::exists(out / ".dsocr" / "report.pdf.journal.jsonl")) << "a finished document has no journal";
  EXPECT_TRUE(no_temp_files(out));
}

TEST_F(BatchCli, PageSelectionAndResumeOfTheOtherPages) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const fs::path pdf = make_pdf();
  const fs::path out = work / "out";
  auto args = common(out);
  args.insert(args.end(), {"--pages", "1,3", "-q", pdf.string()});
  ASSERT_EQ(run_dsocr(args, work).rc, 0);
  json j = read_json(out / "report.pdf.json");
  ASSERT_EQ(j["pages"].size(), 2u);
  EXPECT_EQ(j["pages"][0]["page"], 1);
  EXPECT_EQ(j["pages"][1]["page"], 3);
  const std::string page1 = j["pages"][0]["raw"];
  // --resume of the whole PDF runs page 2 only and keeps pages 1 and 3.
  args = common(out);
  args.insert(args.end(), {"--resume", pdf.string()});
  CliRun r = run_dsocr(args, work);
  ASSERT_EQ(r.rc, 0) << r.err;
  j = read_json(out / "report.pdf.json");
  ASSERT_EQ(j["pages"].size(), 3u);
  EXPECT_EQ(j["pages"][0]["raw"], page1);
  EXPECT_NE(r.err.find("1 page(s) done (2 more kept from before)"), std::string::npos) << r.err;
  // Pages past the end are a usage error (exit 2).
  args = common(out);
  args.insert(args.end(), {"--pages", "7-9", pdf.string()});
  r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--pages 7: " + pdf.string() + " has 3 page(s)"), std::string::npos) << r.err;
}

// --pdf-renderer: recorded in NAME.json and part of the run identity (the pixels differ, so may the text).
TEST_F(BatchCli, ThePdfRendererIsChosenRecordedAndPartOfTheRunIdentity) {
  if (pdf_renderers().size() < 2) GTEST_SKIP() << "needs both MuPDF and poppler";
  const fs::path pdf = make_pdf();
  const fs::path out = work / "out";
  auto args = common(out);
  args.insert(args.end(), {"--pages", "1", "-q", "--pdf-renderer", "mupdf", pdf.string()});
  ASSERT_EQ(run_dsocr(args, work).rc, 0);
  EXPECT_EQ(read_json(out / "report.pdf.json")["pdf_renderer"], "mupdf");
  args = common(out);
  args.insert(args.end(), {"--pages", "1", "--resume", "--pdf-renderer", "poppler", pdf.string()});
  CliRun r = run_dsocr(args, work);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("made differently (generation.pdf_renderer: \"mupdf\" -> \"poppler\")"), std::string::npos) << r.err;
  EXPECT_EQ(read_json(out / "report.pdf.json")["pdf_renderer"], "poppler");
  args = common(out);
  args.insert(args.end(), {"--pdf-renderer", "pdfium", pdf.string()});
  r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--pdf-renderer pdfium: must be mupdf or poppler"), std::string::npos) << r.err;
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
  EXPECT_TRUE(fs::exists(out / "small.png.md"));
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
  EXPECT_TRUE(fs::exists(out / "a.png.md"));
  EXPECT_TRUE(fs::exists(out / "sub" / "b.png.json"));
  EXPECT_FALSE(fs::exists(out / "broken.jpg.json"));
  EXPECT_FALSE(fs::exists(out / "notes.txt.json"));
  EXPECT_TRUE(no_temp_files(out));

  // --resume: the finished documents are skipped, the broken ones are tried (and fail) again.
  const auto a_time = fs::last_write_time(out / "a.png.json");
  args.push_back("--resume");
  r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("4 document(s): 0 done, 2 skipped, 2 failed"), std::string::npos) << r.err;
  EXPECT_EQ(fs::last_write_time(out / "a.png.json"), a_time);

  // A new file in the folder changes no other document's outputs, and is itself read.
  fs::copy_file(kData + "/images/small.png", in / "a.bmp.png");
  std::ofstream(in / "a.png.json") << "an input named like an output is still just an input";
  r = run_dsocr(args, work);
  EXPECT_NE(r.err.find("1 done, 2 skipped"), std::string::npos) << r.err;
  EXPECT_EQ(fs::last_write_time(out / "a.png.json"), a_time);
  EXPECT_TRUE(fs::exists(out / "a.bmp.png.json"));

  // A changed option redoes a document and says why.
  args = common(out);
  args[6] = "7";  // --max-tokens 7
  args.insert(args.end(), {"--resume", "--format", "md,json", (in / "a.png").string()});
  r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("redoing: the previous results were made differently (generation.max_tokens: 6 -> 7)"), std::string::npos) << r.err;
  EXPECT_EQ(read_json(out / "a.png.json")["pages"][0]["generated_tokens"], 7);
}

// Ctrl-C (SIGINT) and SIGTERM: the run stops cleanly with 130, keeps every finished page in the
// document's journal, and --resume continues from there.
TEST_F(BatchCli, InterruptKeepsFinishedPagesAndResumeCompletes) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const Image page = load_image(kData + "/images/small.png");
  const fs::path pdf = work / "long.pdf";
  write_images_pdf(std::vector<Image>(6, page), pdf.string());
  const fs::path out = work / "out";
  const std::string log = (work / "interrupted.log").string();
  std::vector<std::string> args = {"ocr", "--model", DSOCR_TEST_MODEL, "--mode", "tiny", "--no-ngram", "--max-tokens",
                                   "600", "-p", "2", "--out", out.string(), "-q", pdf.string()};
  const pid_t pid = spawn_dsocr(args, log);
  // Interrupt once two pages are in the journal (or after a while).
  for (int i = 0; i < 1200 && journal_pages(out, "long.pdf") < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << "\n"
                                 << read_file_text(log);
  EXPECT_EQ(WEXITSTATUS(status), 130) << read_file_text(log);
  const int kept = journal_pages(out, "long.pdf");
  EXPECT_GE(kept, 2);
  EXPECT_LT(kept, 6);
  EXPECT_FALSE(fs::exists(out / "long.pdf.json")) << "the document is not complete";
  EXPECT_TRUE(no_temp_files(out));

  // The same options and --resume: only the missing pages run.
  args.push_back("--resume");
  const CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 0) << r.err;
  const json j = read_json(out / "long.pdf.json");
  ASSERT_EQ(j["pages"].size(), 6u);
  EXPECT_TRUE(j["complete"].get<bool>());
}

// kill -9 at random moments, then --resume: finished pages are never lost or redone, orphaned
// temporary files are removed, and every page ends up done exactly once.
TEST_F(BatchCli, KillNineLosesAtMostThePagesInFlight) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const Image page = load_image(kData + "/images/small.png");
  const fs::path pdf = work / "doc.pdf";
  write_images_pdf(std::vector<Image>(8, page), pdf.string());
  const fs::path out = work / "out";
  const std::vector<std::string> args = {"ocr", "--model", DSOCR_TEST_MODEL, "--mode", "tiny", "--no-ngram", "--max-tokens",
                                         "200", "-p", "2", "--resume", "--out", out.string(), "-q", pdf.string()};
  std::mt19937 rng(12345);
  int kept_before = 0;
  for (int round = 0; round < 6 && !fs::exists(out / "doc.pdf.json"); ++round) {
    const pid_t pid = spawn_dsocr(args, (work / "run.log").string());
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    const int kept = journal_pages(out, "doc.pdf");
    if (!fs::exists(out / "doc.pdf.json")) {
      EXPECT_GE(kept, kept_before) << "round " << round << ": finished pages were lost";
    }
    kept_before = kept;
  }
  std::ofstream(out / "doc.pdf.md.tmp0123456789abcdef") << "what a kill -9 inside a write leaves";
  const CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 0) << r.err;
  const json j = read_json(out / "doc.pdf.json");
  ASSERT_EQ(j["pages"].size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(j["pages"][i]["page"], i + 1);
  EXPECT_TRUE(no_temp_files(out));
}

// 100 interrupts at random moments (SIGINT or SIGTERM, sometimes twice): never a crash, always 0 or
// 130, and what was finished stays finished. 20 under $DSOCR_TEST_LIGHT (the sanitizer builds).
TEST_F(BatchCli, HundredInterruptsNeverCrash) {
  const int max_trials = std::getenv("DSOCR_TEST_LIGHT") ? 20 : 100;
  const unsigned seed = 20261201;
  std::mt19937 rng(seed);
  const fs::path in = work / "in";
  fs::create_directories(in);
  for (const char* name : {"p1.png", "p2.png", "p3.png"}) fs::copy_file(kData + "/images/small.png", in / name);
  const fs::path out = work / "out";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  int trials = 0;
  for (; trials < max_trials && std::chrono::steady_clock::now() < deadline; ++trials) {
    const std::vector<std::string> args = {"ocr", "--model", DSOCR_TEST_MODEL, "--mode", (trials % 3) ? "tiny" : "gundam",
                                           "--no-ngram", "--max-tokens", "400", "--resume", "--out", out.string(), "-q",
                                           in.string()};
    const std::string log = (work / "trial.log").string();
    const pid_t pid = spawn_dsocr(args, log);
    wait_until_signals_handled(pid);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 900000));
    kill(pid, rng() % 2 ? SIGINT : SIGTERM);
    if (rng() % 5 == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
      kill(pid, SIGINT);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status)) << "trial " << trials << " (seed " << seed << "): killed by signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << "\n" << read_file_text(log);
    const int rc = WEXITSTATUS(status);
    ASSERT_TRUE(rc == 0 || rc == 130) << "trial " << trials << " (seed " << seed << "): exit " << rc << "\n"
                                      << read_file_text(log);
    int complete = 0;
    for (const char* stem : {"p1.png", "p2.png", "p3.png"})
      if (fs::exists(out / (std::string(stem) + ".json"))) {
        ASSERT_TRUE(read_json(out / (std::string(stem) + ".json"))["complete"].get<bool>()) << stem;
        ++complete;
      }
    if (complete == 3) fs::remove_all(out);  // start over, so later trials interrupt real work
  }
  EXPECT_GE(trials, std::min(40, max_trials)) << "too few trials in the time allowed";
  RecordProperty("trials", trials);
}

// A page whose recognition fails is recorded as failed; --resume does not retry it unless asked.
TEST_F(BatchCli, FailedPagesAreRecordedAndRetriedOnlyWhenAsked) {
  const fs::path in = work / "in";
  fs::create_directories(in);
  fs::copy_file(kData + "/images/doc.png", in / "doc.png");
  const fs::path out = work / "out";
  // Gundam with a 200-token context: the prompt does not fit, the page fails as bad input.
  std::vector<std::string> args = {"ocr", "--model", DSOCR_TEST_MODEL, "--max-tokens", "6", "--out", out.string(),
                                   "--prompt", "<image>\n" + [] { std::string s; for (int i = 0; i < 9000; ++i) s += " x"; return s; }(), in.string()};
  CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 1) << r.err;
  json j = read_json(out / "doc.png.json");
  EXPECT_FALSE(j["complete"].get<bool>());
  EXPECT_EQ(j["pages"][0]["status"], "failed");
  EXPECT_NE(j["pages"][0]["error"].get<std::string>().find("context holds"), std::string::npos);
  args.push_back("--resume");
  r = run_dsocr(args, work);
  EXPECT_NE(r.err.find("1 page(s) failed before (--retry-failed to run them again)"), std::string::npos) << r.err;
  EXPECT_EQ(r.rc, 1);
  args.push_back("--retry-failed");
  r = run_dsocr(args, work);
  EXPECT_NE(r.err.find("failed: " + (in / "doc.png").string()), std::string::npos) << r.err;
}

TEST_F(BatchCli, OutputFolderProblemsAreFoundBeforeWork) {
  fs::copy_file(kData + "/images/small.png", work / "a.png");
  // A folder that cannot be written (a file in the way) fails at once, with one line.
  std::ofstream(work / "blocked") << "a file, not a folder";
  auto args = common(work / "blocked" / "out");
  args.push_back((work / "a.png").string());
  CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("blocked/out"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // An output folder inside the input folder: its outputs are never read as inputs.
  const fs::path in = work / "in";
  fs::create_directories(in);
  fs::copy_file(kData + "/images/small.png", in / "a.png");
  args = common(in / "results");
  args.push_back(in.string());
  ASSERT_EQ(run_dsocr(args, work).rc, 0);
  args.push_back("--boxes");  // writes a PNG inside in/results, which must not become an input
  r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("1 document(s)"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(in / "results" / "results"));
}

// Non-UTF-8 file names and prompts are written safely (JSON stays valid) and nothing else stops.
TEST_F(BatchCli, NonUtf8NamesAndPrompts) {
  const fs::path in = work / "in";
  fs::create_directories(in);
  const std::string odd = std::string("caf\xe9-") + "\xff.png";
  fs::copy_file(kData + "/images/small.png", in / odd);
  fs::copy_file(kData + "/images/small.png", in / "plain.png");
  const fs::path out = work / "out";
  auto args = common(out);
  args.insert(args.end(), {"--prompt", std::string("<image>\nFree \xfe OCR."), in.string()});
  const CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 0) << r.err;
  const json j = read_json(out / (odd + ".json"));  // parses: invalid bytes were replaced
  EXPECT_NE(j["source"].get<std::string>().find("caf\xef\xbf\xbd-"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "plain.png.json"));
}

// stdin in, JSON lines out; a failing stdout is an error, not a silent success.
TEST_F(BatchCli, StdinAndJsonLinesOnStdout) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const fs::path pdf = make_pdf();
  const std::string cmd = std::string(DSOCR_BIN) + " ocr --model '" + DSOCR_TEST_MODEL +
                          "' --mode tiny --max-tokens 5 -q --format jsonl --out - - < '" + pdf.string() + "'";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string text;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
  EXPECT_EQ(pclose(p), 0);
  std::istringstream lines(text);
  std::string line;
  std::vector<int> pages;
  while (std::getline(lines, line)) {
    const json j = json::parse(line);
    EXPECT_EQ(j["source"], "-");
    EXPECT_EQ(j["generated_tokens"], 5);
    EXPECT_TRUE(j.contains("markdown") && j.contains("raw") && j.contains("blocks") && j.contains("stop_reason"));
    pages.push_back(j["page"]);
  }
  std::sort(pages.begin(), pages.end());
  EXPECT_EQ(pages, (std::vector<int>{1, 2, 3}));
  // An image on stdin, one page; and /dev/full as stdout fails with exit 1.
  const std::string full = std::string(DSOCR_BIN) + " ocr --model '" + DSOCR_TEST_MODEL +
                           "' --mode tiny --max-tokens 3 -q --format jsonl --out - - < '" + kData +
                           "/images/small.png' > /dev/full 2>'" + (work / "err.txt").string() + "'";
  const int status = std::system(full.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(read_file_text((work / "err.txt").string()).find("stdout: write failed"), std::string::npos);
  const std::string single = std::string(DSOCR_BIN) + " ocr --model '" + DSOCR_TEST_MODEL + "' --mode tiny --max-tokens 3 -q '" +
                             kData + "/images/small.png' > /dev/full 2>/dev/null";
  EXPECT_EQ(WEXITSTATUS(std::system(single.c_str())), 1);
}

// A multi-page TIFF is read page by page, like a PDF.
TEST_F(BatchCli, MultiPageTiffPages) {
  const fs::path tiff = fs::path(kData) / "images" / "pillow" / "tiff_three_pages.tif";
  const fs::path out = work / "out";
  auto args = common(out);
  args.push_back(tiff.string());
  const CliRun r = run_dsocr(args, work);
  EXPECT_EQ(r.rc, 0) << r.err;
  const json j = read_json(out / "tiff_three_pages.tif.json");
  ASSERT_EQ(j["pages"].size(), 3u);
  EXPECT_NE(read_file_text((out / "tiff_three_pages.tif.raw.md").string()).find("<--- Page Split --->"), std::string::npos);
}
