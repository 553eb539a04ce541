// compress-eval: the metrics on hand-made pairs, and whole runs through stand-in recognizers whose
// precision is known (the ground truth itself: 1.0; every tenth word dropped: 0.9), so that the
// table, summary.json and chart.svg must show exactly those numbers; interruption and resume.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "engine/compress.h"
#include "engine/journal.h"
#include "io/files.h"
#include "text/ocr_metrics.h"

using namespace dsocr;
namespace fs = std::filesystem;

TEST(OcrMetrics, EditDistanceOfKnownPairs) {
  EXPECT_DOUBLE_EQ(normalized_edit_distance("kitten", "sitting"), 3.0 / 7);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("abc", "abc"), 0);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("", ""), 0);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("", "abcd"), 1);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("flaw", "lawn"), 2.0 / 4);
  // Characters, not bytes: one substituted 2-byte character in four.
  EXPECT_DOUBLE_EQ(normalized_edit_distance("caf\xc3\xa9", "cafe"), 1.0 / 4);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad"), 1.0 / 2);
}

TEST(OcrMetrics, FoxPrecisionIsTheShareOfDistinctGroundTruthWordsFound) {
  // 4 distinct GT words (the repeated "the" counts once), 3 of them in the output.
  EXPECT_DOUBLE_EQ(fox_precision("the cat saw the dog", "the cat saw a bird"), 3.0 / 4);
  // The other direction: 5 distinct output words, 3 in the ground truth.
  EXPECT_DOUBLE_EQ(output_precision("the cat saw the dog", "the cat saw a bird"), 3.0 / 5);
  // Dropping words lowers Fox precision but not output precision; inventing words the reverse.
  EXPECT_DOUBLE_EQ(fox_precision("a b c d e f g h i j", "a b c d e f g h i"), 0.9);
  EXPECT_DOUBLE_EQ(output_precision("a b c d e f g h i j", "a b c d e f g h i"), 1.0);
  EXPECT_DOUBLE_EQ(fox_precision("a b", "a b x y"), 1.0);
  EXPECT_DOUBLE_EQ(output_precision("a b", "a b x y"), 0.5);
  // Whitespace of any kind splits; words are case- and punctuation-sensitive (str.split()).
  EXPECT_DOUBLE_EQ(fox_precision("One two,\nthree\tfour", "one two, three four"), 3.0 / 4);
  EXPECT_DOUBLE_EQ(fox_precision("a b", ""), 0);
  // Chinese text is scored by characters.
  EXPECT_EQ(score_words("\xe4\xb8\xad\xe6\x96\x87 ab").size(), 4u);
  EXPECT_DOUBLE_EQ(fox_precision("\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad"), 0.5);
}

TEST(Compress, ShuffleKeepsEveryLinesWordsAndIsDeterministic) {
  const std::string text = "one two three four five six\nseven eight nine\n\nten";
  const std::string s = shuffle_words_within_lines(text, "sample-1");
  EXPECT_EQ(s, shuffle_words_within_lines(text, "sample-1"));
  EXPECT_NE(s, text);
  std::vector<std::string> lines_a, lines_b;
  std::stringstream a(text), b(s);
  for (std::string l; std::getline(a, l);) lines_a.push_back(l);
  for (std::string l; std::getline(b, l);) lines_b.push_back(l);
  ASSERT_EQ(lines_a.size(), lines_b.size());
  for (size_t i = 0; i < lines_a.size(); ++i) {
    auto wa = score_words(lines_a[i]), wb = score_words(lines_b[i]);
    std::sort(wa.begin(), wa.end());
    std::sort(wb.begin(), wb.end());
    EXPECT_EQ(wa, wb) << i;
  }
}

namespace {

// Distinct words: a 4-letter base-26 code per index.
std::string distinct_words(int first, int count) {
  std::string out;
  for (int i = first; i < first + count; ++i) {
    std::string w;
    for (int k = 0, v = i; k < 4; ++k, v /= 26) w += char('a' + v % 26);
    if (i > first) out += (i - first) % 12 == 0 ? "\n" : " ";
    out += w;
  }
  return out;
}

std::string key(const Image& image) { return std::string(image.rgb.begin(), image.rgb.end()); }

// Returns the text of the page it is shown (looked up by its pixels), whole or without every tenth word.
class StandInRecognizer : public PageRecognizer {
 public:
  bool drop_tenth = false;
  int submitted = 0;
  int cancel_after = -1;  // sets *cancel after this many submissions
  std::atomic<bool>* cancel = nullptr;
  std::map<std::string, std::string> texts;

  std::shared_ptr<PageJob> submit(Image page, OcrRequest request, TextCallback) override {
    auto job = std::make_shared<PageJob>(uint64_t(++submitted));
    OcrResult r;
    const auto it = texts.find(key(page));
    if (it == texts.end()) {
      r.status = RequestStatus::BadInput;
      r.error = "stand-in: unknown page";
    } else if (!drop_tenth) {
      r.text = it->second;
      r.tokens.assign(3, 1);
    } else {
      const std::vector<std::string> words = score_words(it->second);
      for (size_t i = 0; i < words.size(); ++i) {
        if (i % 10 == 9) continue;
        if (!r.text.empty()) r.text += ' ';
        r.text += words[i];
      }
      r.tokens.assign(3, 1);
    }
    job->finish(r);
    if (submitted == cancel_after && cancel) *cancel = true;
    return job;
  }
};

struct Fixture {
  Tokenizer tokenizer = Tokenizer::from_file(DSOCR_TEST_TOKENIZER);
  TextRenderer renderer;
  std::vector<CorpusSample> corpus;
  CompressEvalOptions options;
  StandInRecognizer recognizer;

  Fixture(const std::string& out) {
    // 200..440 words (multiples of 10): 600..1300 text tokens.
    int first = 0;
    for (int n : {200, 260, 320, 380, 440}) {
      corpus.push_back({"s" + std::to_string(n), distinct_words(first, n)});
      first += n;
    }
    options.out_dir = out;
    options.modes = {Mode::Tiny, Mode::Small};
    options.request.prompt = fox_prompt();
    for (const CorpusSample& s : corpus)
      recognizer.texts[key(render_single_page(renderer, s.text, options.render).page)] = s.text;
  }
};

class Quiet : public CompressEvalObserver {
 public:
  std::vector<std::string> failures;
  void on_failure(const std::string& what, const std::string& reason) override { failures.push_back(what + reason); }
};

json read_json(const fs::path& p) { return json::parse(read_file_text(p.string())); }

}  // namespace

TEST(CompressEval, StandInsGiveExactlyTheirKnownPrecisionInTableSummaryAndChart) {
  for (const bool drop : {false, true}) {
    const fs::path out = fs::temp_directory_path() / (drop ? "dsocr_ce_drop" : "dsocr_ce_truth");
    fs::remove_all(out);
    Fixture f(out.string());
    f.recognizer.drop_tenth = drop;
    Quiet quiet;
    const CompressEvalSummary s = run_compress_eval(f.recognizer, f.tokenizer, f.renderer, f.corpus, f.options, quiet, nullptr);
    EXPECT_TRUE(quiet.failures.empty());
    EXPECT_EQ(s.done, 10);
    const double expected = drop ? 0.9 : 1.0;
    // samples.jsonl: one line per sample and mode, with the spec's token counts.
    std::ifstream in(out / "samples.jsonl");
    int lines = 0;
    std::map<std::string, int> tokens;
    for (std::string line; std::getline(in, line); ++lines) {
      const SampleScore sc = sample_score_from_json(json::parse(line));
      EXPECT_DOUBLE_EQ(sc.precision, expected) << sc.id;
      EXPECT_DOUBLE_EQ(sc.output_precision, 1.0);
      EXPECT_EQ(sc.edit_distance == 0, !drop);
      const int vt = sc.mode == "tiny" ? 64 : 100;
      EXPECT_EQ(sc.vision_tokens, vt);
      EXPECT_EQ(sc.valid_vision_tokens, vt);
      EXPECT_EQ(sc.placeholders, sc.mode == "tiny" ? 73 : 111);
      const CorpusSample& sample = *std::find_if(f.corpus.begin(), f.corpus.end(), [&](auto& c) { return c.id == sc.id; });
      EXPECT_EQ(sc.text_tokens, count_text_tokens(f.tokenizer, sample.text));
      EXPECT_DOUBLE_EQ(sc.compression, double(sc.text_tokens) / vt);
      EXPECT_EQ(sc.stop_reason, "eos");
      tokens[sc.id] = sc.text_tokens;
    }
    EXPECT_EQ(lines, 10);
    // summary.json: per mode, the buckets with samples carry exactly the known precision, and the
    // compression is the mean of the samples' own ratios.
    const json summary = read_json(out / "summary.json");
    ASSERT_EQ(summary["modes"].size(), 2u);
    for (const json& m : summary["modes"]) {
      EXPECT_NEAR(m["precision"].get<double>(), expected, 1e-12);
      const int vt = m["mode"] == "tiny" ? 64 : 100;
      int in_buckets = 0;
      for (const json& b : m["buckets"]) {
        if (b["samples"] == 0) continue;
        in_buckets += b["samples"].get<int>();
        EXPECT_NEAR(b["precision"].get<double>(), expected, 1e-12);
        double sum = 0;
        int n = 0;
        for (const auto& [id, t] : tokens)
          if (t >= b["low"].get<int>() && t < b["high"].get<int>()) sum += double(t) / vt, ++n;
        EXPECT_EQ(n, b["samples"].get<int>());
        EXPECT_NEAR(b["compression"].get<double>(), sum / n, 1e-12);
      }
      EXPECT_EQ(in_buckets, 5);
    }
    // The printed table and the chart say the same.
    const std::string table = format_table(s.modes);
    EXPECT_NE(table.find("600-700"), std::string::npos);
    EXPECT_NE(table.find("1200-1300"), std::string::npos);
    const std::string pct = drop ? "90.0%" : "100.0%";
    EXPECT_NE(table.find(pct), std::string::npos) << table;
    EXPECT_EQ(table.find(drop ? "100.0%" : "90.0%"), std::string::npos) << table;
    const std::string svg = read_file_text((out / "chart.svg").string());
    EXPECT_NE(svg.find("precision " + pct), std::string::npos);
    EXPECT_EQ(svg.find(drop ? "precision 100.0%" : "precision 90.0%"), std::string::npos);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    fs::remove_all(out);
  }
}

TEST(CompressEval, AnInterruptedRunContinuesWhereItStopped) {
  const fs::path whole = fs::temp_directory_path() / "dsocr_ce_whole", part = fs::temp_directory_path() / "dsocr_ce_part";
  fs::remove_all(whole);
  fs::remove_all(part);
  Quiet quiet;
  Fixture a(whole.string());
  a.recognizer.drop_tenth = true;
  run_compress_eval(a.recognizer, a.tokenizer, a.renderer, a.corpus, a.options, quiet, nullptr);

  Fixture b(part.string());
  b.recognizer.drop_tenth = true;
  std::atomic<bool> cancel{false};
  b.recognizer.cancel = &cancel;
  b.recognizer.cancel_after = 3;
  b.options.parallel = 1;
  const CompressEvalSummary first = run_compress_eval(b.recognizer, b.tokenizer, b.renderer, b.corpus, b.options, quiet, &cancel);
  EXPECT_TRUE(first.cancelled);
  EXPECT_EQ(first.done, 3);
  EXPECT_FALSE(fs::exists(part / "summary.json"));
  std::ofstream(part / "samples.jsonl", std::ios::app) << "{\"id\": \"s4";  // a kill in the middle of a line
  cancel = false;
  b.recognizer.cancel_after = -1;
  b.recognizer.submitted = 0;
  const CompressEvalSummary second = run_compress_eval(b.recognizer, b.tokenizer, b.renderer, b.corpus, b.options, quiet, &cancel);
  EXPECT_EQ(second.reused, 3);
  EXPECT_EQ(second.done, 7);
  EXPECT_EQ(b.recognizer.submitted, 7);  // only what was missing ran
  EXPECT_EQ(read_json(part / "summary.json")["modes"], read_json(whole / "summary.json")["modes"]);
  EXPECT_EQ(read_file_text((part / "chart.svg").string()), read_file_text((whole / "chart.svg").string()));
  // Other options in the same folder: refused, unless restarting.
  b.options.render.font_size = 9;
  EXPECT_THROW(run_compress_eval(b.recognizer, b.tokenizer, b.renderer, b.corpus, b.options, quiet, nullptr), Error);
  b.recognizer.submitted = 0;
  Quiet restarted;
  const CompressEvalSummary again =
      run_compress_eval(b.recognizer, b.tokenizer, b.renderer, b.corpus, b.options, restarted, nullptr, true);
  EXPECT_EQ(again.reused, 0);  // the old results are gone; 9 pt pages are not the stand-in's, so every read fails
  EXPECT_EQ(again.failed, 10);
  EXPECT_EQ(restarted.failures.size(), 10u);
  EXPECT_EQ(read_file_text((part / "samples.jsonl").string()), "");
  fs::remove_all(whole);
  fs::remove_all(part);
}

TEST(CompressEval, ShuffledControlScoresAgainstTheShuffledText) {
  const fs::path out = fs::temp_directory_path() / "dsocr_ce_shuffled";
  fs::remove_all(out);
  Fixture f(out.string());
  f.options.control = Control::Shuffled;
  f.options.modes = {Mode::Tiny};
  f.recognizer.texts.clear();
  for (const CorpusSample& s : f.corpus) {
    const std::string shuffled = shuffle_words_within_lines(s.text, s.id);
    f.recognizer.texts[key(render_single_page(f.renderer, shuffled, f.options.render).page)] = shuffled;
  }
  Quiet quiet;
  const CompressEvalSummary s = run_compress_eval(f.recognizer, f.tokenizer, f.renderer, f.corpus, f.options, quiet, nullptr);
  EXPECT_EQ(s.done, 5);
  EXPECT_TRUE(quiet.failures.empty());
  EXPECT_NEAR(s.modes[0].precision, 1.0, 1e-12);
  EXPECT_EQ(read_json(out / "run.json")["control"], "shuffled");
  fs::remove_all(out);
}

TEST(CompressEval, CorpusFormatsAndErrors) {
  const fs::path dir = fs::temp_directory_path() / "dsocr_ce_corpus";
  fs::remove_all(dir);
  fs::create_directories(dir / "txt" / "sub");
  std::ofstream(dir / "txt" / "b.txt") << "bee";
  std::ofstream(dir / "txt" / "sub" / "a.txt") << "ay";
  std::ofstream(dir / "txt" / "notes.md") << "skipped";
  const auto folder = read_corpus((dir / "txt").string());
  ASSERT_EQ(folder.size(), 2u);
  EXPECT_EQ(folder[0].id, "b");
  EXPECT_EQ(folder[1].id, "sub/a");
  EXPECT_EQ(folder[1].text, "ay");
  std::ofstream(dir / "c.jsonl") << "{\"id\": \"x\", \"text\": \"one\"}\n\n{\"id\": 7, \"text\": \"two\"}\n";
  const auto jsonl = read_corpus((dir / "c.jsonl").string());
  ASSERT_EQ(jsonl.size(), 2u);
  EXPECT_EQ(jsonl[1].id, "7");
  std::ofstream(dir / "bad.jsonl") << "{\"id\": \"x\", \"text\": \"one\"}\n{\"id\": \"x\", \"text\": \"two\"}\n";
  try {
    read_corpus((dir / "bad.jsonl").string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl: line 2: id \"x\" appears twice"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "broken.jsonl") << "{\"id\": \"x\"}\n";
  EXPECT_THROW(read_corpus((dir / "broken.jsonl").string()), Error);
  fs::remove_all(dir);
}

TEST(OpticalContext, RenderedTextBecomesThePlaceholderFeatures) {
  ThreadPool pool(2);
  CpuBackend backend(pool);
  Checkpoint ckpt(DSOCR_TEST_MODEL);
  VisionEncoder encoder(ckpt, backend);
  TextRenderer renderer;
  RenderOptions o;
  o.font_size = 30;
  const std::string text = "Optical context: older turns of a conversation, kept as pixels.";
  for (Mode mode : {Mode::Tiny, Mode::Base}) {
    const OpticalContext c = encode_text_as_vision(encoder, renderer, text, o, mode);
    ASSERT_EQ(c.features.size(), 1u);
    ASSERT_EQ(c.tokens.size(), 1u);
    EXPECT_EQ(c.n_embed, encoder.n_embed());
    EXPECT_EQ(c.tokens[0].placeholders, mode == Mode::Tiny ? 73 : 273);
    ASSERT_EQ(c.features[0].size(), size_t(c.tokens[0].placeholders) * size_t(c.n_embed));
    // The same features as encoding the rendered page itself, and not all alike.
    EXPECT_EQ(c.features[0], encoder.encode_page(make_views(c.rendered.pages[0], mode)));
    EXPECT_NE(c.features[0][0], c.features[0][size_t(c.n_embed) * 5 + 3]);
  }
}

TEST(ContextCompress, RecentTurnsStayTextOlderOnesGoToTiersByAge) {
  std::vector<Turn> turns;
  for (int i = 0; i < 9; ++i) turns.push_back({i % 2 ? "assistant" : "user", "turn " + std::to_string(i)});
  const ContextPlan even = plan_context(turns, 3, {Mode::Base, Mode::Small, Mode::Tiny}, 0);
  EXPECT_EQ(even.recent, (std::vector<size_t>{6, 7, 8}));
  ASSERT_EQ(even.tiers.size(), 3u);
  EXPECT_EQ(even.tiers[0].mode, Mode::Base);
  EXPECT_EQ(even.tiers[0].turns, (std::vector<size_t>{4, 5}));  // the newest older turns: highest resolution
  EXPECT_EQ(even.tiers[1].turns, (std::vector<size_t>{2, 3}));
  EXPECT_EQ(even.tiers[2].turns, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(even.tiers[2].text, "user: turn 0\n\nassistant: turn 1");
  // One turn per tier: the last tier takes all the rest; tiers left without turns are left out.
  const ContextPlan one = plan_context(turns, 5, {Mode::Gundam, Mode::Large, Mode::Tiny}, 1);
  ASSERT_EQ(one.tiers.size(), 3u);
  EXPECT_EQ(one.tiers[0].turns, (std::vector<size_t>{3}));
  EXPECT_EQ(one.tiers[1].turns, (std::vector<size_t>{2}));
  EXPECT_EQ(one.tiers[2].turns, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(plan_context(turns, 8, {Mode::Base, Mode::Tiny}, 5).tiers.size(), 1u);
  EXPECT_TRUE(plan_context(turns, 20, {Mode::Base}, 0).tiers.empty());
}
