// The tokenizer against the golden cases made with Hugging Face `tokenizers` (tests/data/tokenizer),
// plus streaming decode and the rejection of malformed tokenizer files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_files.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

using namespace dsocr;
using nlohmann::json;

namespace {

const Tokenizer& real_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_file(DSOCR_TEST_TOKENIZER);
  return tokenizer;
}

std::vector<json> read_jsonl(const std::string& name) {
  std::ifstream in(std::string(DSOCR_TEST_DATA) + "/tokenizer/" + name);
  EXPECT_TRUE(in) << name;
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(json::parse(line));
  return lines;
}

const std::vector<json>& golden_cases() {
  static const std::vector<json> cases = read_jsonl("cases.jsonl");
  return cases;
}

std::string escaped(const std::string& s) { return json(s).dump(-1, ' ', true, json::error_handler_t::replace); }

}  // namespace

TEST(Tokenizer, LoadsRealFile) {
  const Tokenizer& tok = real_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 128827);
  EXPECT_EQ(tok.token_to_id("<image>"), 128815);
  EXPECT_EQ(tok.token_to_id("<｜begin▁of▁sentence｜>"), 0);
  EXPECT_EQ(tok.token_to_id("Ġ"), 223);
  EXPECT_EQ(tok.token_to_id("no such token"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(223), "Ġ");
  EXPECT_EQ(tok.id_to_token(128826), "<|Assistant|>");
  EXPECT_EQ(tok.id_to_token(128827), "");
  EXPECT_EQ(tok.id_to_token(-1), "");
  EXPECT_TRUE(tok.is_special(0));
  EXPECT_TRUE(tok.is_special(128815));
  EXPECT_TRUE(tok.is_special(128805));   // <|EOT|>: special although normalized
  EXPECT_FALSE(tok.is_special(128803));  // <｜User｜> is not special
  EXPECT_FALSE(tok.is_special(223));
  EXPECT_FALSE(tok.is_special(129000));
}

TEST(Tokenizer, DocumentPrompt) {
  EXPECT_EQ(real_tokenizer().encode("\n<|grounding|>Convert the document to markdown."),
            (std::vector<int32_t>{201, 128820, 21842, 270, 4940, 304, 2121, 7919, 16}));
}

TEST(Tokenizer, GoldenEncodeCases) {
  const Tokenizer& tok = real_tokenizer();
  int checked = 0;
  for (const json& c : golden_cases()) {
    if (!c.contains("text")) continue;
    const std::string text = c["text"];
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text), expected) << "text " << escaped(text);
    ++checked;
  }
  EXPECT_EQ(checked, 457);
}

TEST(Tokenizer, GoldenDecodeCases) {
  const Tokenizer& tok = real_tokenizer();
  int checked = 0;
  for (const json& c : golden_cases()) {
    if (c.contains("text")) continue;
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << "ids " << c["ids"].dump();
    ++checked;
  }
  EXPECT_EQ(checked, 105);
}

TEST(Tokenizer, GoldenDecodeSkippingSpecialTokens) {
  const Tokenizer& tok = real_tokenizer();
  const auto cases = read_jsonl("decode_skip_special.jsonl");
  ASSERT_EQ(cases.size(), 8u);
  for (const json& c : cases) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), c["decoded"].get<std::string>()) << c["ids"].dump();
  }
}

TEST(Tokenizer, EncodedCasesRoundTrip) {
  const Tokenizer& tok = real_tokenizer();
  for (const json& c : golden_cases()) {
    if (!c.contains("text")) continue;
    const std::string text = c["text"];
    EXPECT_EQ(tok.decode(tok.encode(text)), text) << escaped(text);
  }
}

TEST(Tokenizer, RandomTextRoundTrips) {
  // Byte-level BPE loses nothing: decode(encode(s)) == s for any valid UTF-8, including special
  // token strings, near misses, odd white space and marks. Deterministic pseudo-random strings.
  const std::vector<std::string> pool = {
      "a", "Z", "7", "١", "½", " ", "  ", "\t", "\n", "\r\n", "\u0085", "\u00a0", "\u3000", "\u200b",
      "\ufeff", "中", "文", "の", "カ", "한", "é", "e\u0301", "\u0301", "🚀", "👨\u200d👩", "\ufe0f", "'s",
      ".NET", "<image>", "<|ref|>", "<|/ref|>", "<td>", "</td", "<｜User｜>", "<|EOT|>", "<｜", "▁", "$",
      "\\frac", "{", "}", "\x01", "\x7f", "\U0010FFFF", "\uE000", "123", "4567"};
  const Tokenizer& tok = real_tokenizer();
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    for (uint64_t n = next() % 40; n > 0; --n) text += pool[next() % pool.size()];
    const std::vector<int32_t> ids = tok.encode(text);
    ASSERT_EQ(tok.decode(ids), text) << escaped(text);
    StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    ASSERT_EQ(streamed + stream.flush(), text) << escaped(text);
  }
}

TEST(Tokenizer, UnknownIdsAreSkippedOnDecode) {
  const std::vector<int32_t> ids = {19923, 2058, 128827, 129279, -5, 1 << 30, 19923, 2058};
  EXPECT_EQ(real_tokenizer().decode(ids), "Hello worldHello world");
}

TEST(Tokenizer, InvalidUtf8InputIsReadAsReplacementCharacters) {
  const Tokenizer& tok = real_tokenizer();
  EXPECT_EQ(tok.encode("a\xFF" "b"), tok.encode("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(tok.encode("\xE4\xB8"), tok.encode("\xEF\xBF\xBD"));
}

TEST(Tokenizer, LongRunsStayFast) {
  // One pre-token of 200k spaces and one of 200k letters: BPE must not be quadratic.
  const Tokenizer& tok = real_tokenizer();
  const std::string spaces(200000, ' '), letters(200000, 'a');
  EXPECT_EQ(tok.decode(tok.encode(spaces)), spaces);
  EXPECT_EQ(tok.decode(tok.encode(letters)), letters);
}

TEST(StreamDecoder, MatchesFullDecodeOnEveryCase) {
  const Tokenizer& tok = real_tokenizer();
  int checked = 0;
  for (const json& c : golden_cases()) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    for (bool skip_special : {false, true}) {
      StreamDecoder stream(tok, skip_special);
      std::string text;
      for (int32_t id : ids) {
        const std::string piece = stream.push(id);
        EXPECT_TRUE(utf8::is_valid(piece)) << c["ids"].dump();
        text += piece;
      }
      const std::string rest = stream.flush();
      EXPECT_TRUE(utf8::is_valid(rest));
      text += rest;
      EXPECT_EQ(text, tok.decode(ids, skip_special)) << c["ids"].dump();
    }
    ++checked;
  }
  EXPECT_EQ(checked, 562);
}

TEST(StreamDecoder, HoldsBackASplitCharacter) {
  const Tokenizer& tok = real_tokenizer();
  StreamDecoder stream(tok);
  // 中 = E4 B8 AD spread over three byte tokens.
  EXPECT_EQ(stream.push(163), "");
  EXPECT_EQ(stream.push(119), "");
  EXPECT_EQ(stream.push(258), "中");
  // A cut-off character followed by ASCII is released as U+FFFD at once.
  EXPECT_EQ(stream.push(163), "");
  EXPECT_EQ(stream.push(*tok.token_to_id("a")), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(stream.push(163), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.flush(), "");
}

TEST(Utf8, LossyConversionReplacesMaximalSubparts) {
  EXPECT_EQ(utf8::to_valid_lossy("\xE4\xB8"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8::to_valid_lossy("\xB8\xAD"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::to_valid_lossy("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::to_valid_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::to_valid_lossy("\xF0\x9F\x98"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8::to_valid_lossy("\xE4\xB8\xE4\xB8\xAD"), "\xEF\xBF\xBD中");
  EXPECT_EQ(utf8::incomplete_tail("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8::incomplete_tail("a\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(utf8::incomplete_tail("a\xED\xA0"), 0u);  // a surrogate can never complete
}

// ---- small synthetic tokenizers -----------------------------------------------------------------

namespace {

// GPT-2's byte -> character map, written independently of the implementation.
std::string byte_char(int b) {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int extra = 0;
    for (int i = 0; i < 256; ++i) {
      const bool printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
      const int cp = printable ? i : 0x100 + extra++;
      std::string s;
      if (cp < 0x80) {
        s += char(cp);
      } else {
        s += char(0xC0 | (cp >> 6));
        s += char(0x80 | (cp & 0x3F));
      }
      t[size_t(i)] = s;
    }
    return t;
  }();
  return table[size_t(b)];
}

// A valid tiny byte-level BPE: ids 0..255 are the bytes, 256 = "ab", 257 = "abc", 258 = "Ġab",
// and one added token "<x>" = 259.
json tiny_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  vocab["Ġab"] = 258;
  return json{
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b", json::array({"ab", "c"}), "Ġ ab"})}}},
      {"added_tokens",
       json::array({{{"id", 259}, {"content", "<x>"}, {"special", true}, {"normalized", false},
                     {"lstrip", false}, {"rstrip", false}, {"single_word", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"}, {"pattern", {{"Regex", "\\s+(?!\\S)|\\s*\\S+"}}}, {"behavior", "Isolated"}, {"invert", false}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
      {"decoder", {{"type", "ByteLevel"}}},
  };
}

std::string load_error(const json& tokenizer) {
  try {
    Tokenizer::from_json(tokenizer.dump(), "tok.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded without error)";
}

std::string file_error(const std::string& path) {
  try {
    Tokenizer::from_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded without error)";
}

}  // namespace

TEST(Tokenizer, TinyTokenizerMergesBothMergeForms) {
  Tokenizer tok = Tokenizer::from_json(tiny_tokenizer().dump(), "tiny");
  EXPECT_EQ(tok.vocab_size(), 260);
  EXPECT_EQ(tok.encode("abc ab<x>abd"), (std::vector<int32_t>{257, 258, 259, 256, 'd'}));
  EXPECT_EQ(tok.decode(tok.encode("abc ab<x>abd")), "abc ab<x>abd");
  EXPECT_EQ(tok.decode(tok.encode("abc ab<x>abd"), true), "abc ababd");
  Tokenizer moved = std::move(tok);
  EXPECT_EQ(moved.encode("ab"), (std::vector<int32_t>{256}));
}

TEST(Tokenizer, AddedTokenStripFlags) {
  json j = tiny_tokenizer();
  j["added_tokens"][0]["lstrip"] = true;
  j["added_tokens"][0]["rstrip"] = true;
  const Tokenizer strip = Tokenizer::from_json(j.dump(), "strip");
  EXPECT_EQ(strip.encode("a  <x>  b"), (std::vector<int32_t>{'a', 259, 'b'}));

  j = tiny_tokenizer();
  j["added_tokens"][0]["single_word"] = true;
  const Tokenizer word = Tokenizer::from_json(j.dump(), "word");
  EXPECT_EQ(word.encode("a <x> b"), (std::vector<int32_t>{'a', ' ', 259, ' ', 'b'}));
  EXPECT_NE(word.encode("a<x>b"), (std::vector<int32_t>{'a', 259, 'b'}));  // touches words: plain text
}

TEST(Tokenizer, RejectsMalformedFiles) {
  const auto tmp = std::filesystem::temp_directory_path() / "dsocr_test_tokenizer_bad.json";
  EXPECT_EQ(file_error("/nonexistent/tokenizer.json"), "/nonexistent/tokenizer.json: cannot open: No such file or directory");
  EXPECT_EQ(file_error("/tmp"), "/tmp: not a regular file");
  std::ofstream(tmp) << "{\"model\": [1, 2";
  EXPECT_EQ(file_error(tmp.string()), tmp.string() + ": not valid JSON (syntax error at byte 16)");
  std::filesystem::remove(tmp);

  EXPECT_EQ(load_error(json::array()), "tok.json: not a JSON object");
  EXPECT_EQ(load_error(json::object()), "tok.json: the file has no 'model'");

  json j = tiny_tokenizer();
  j["model"]["type"] = "WordPiece";
  EXPECT_EQ(load_error(j), "tok.json: unsupported model type 'WordPiece' (only BPE is supported)");

  j = tiny_tokenizer();
  j["model"].erase("vocab");
  EXPECT_EQ(load_error(j), "tok.json: model has no 'vocab'");

  j = tiny_tokenizer();
  j["model"].erase("merges");
  EXPECT_EQ(load_error(j), "tok.json: model has no 'merges'");

  j = tiny_tokenizer();
  j["model"]["merges"].push_back("x zz");
  EXPECT_EQ(load_error(j), "tok.json: merge 3 (\"x\" \"zz\"): \"zz\" is not in the vocab");

  j = tiny_tokenizer();
  j["model"]["merges"].push_back("a c");  // both parts exist, "ac" does not
  EXPECT_EQ(load_error(j), "tok.json: merge 3 (\"a\" \"c\"): \"ac\" is not in the vocab");

  j = tiny_tokenizer();
  j["model"]["merges"].push_back("abc");
  EXPECT_EQ(load_error(j), "tok.json: merge 3 (\"abc\") is not two tokens separated by one space");

  j = tiny_tokenizer();
  j["model"]["vocab"]["zz"] = 256;
  EXPECT_EQ(load_error(j), "tok.json: vocab id 256 is used twice (\"ab\" and \"zz\")");

  j = tiny_tokenizer();
  j["model"]["vocab"] = json::object();
  EXPECT_EQ(load_error(j), "tok.json: model.vocab is empty");

  j = tiny_tokenizer();
  j["model"]["vocab"] = json::array({1, 2});
  EXPECT_EQ(load_error(j), "tok.json: model.vocab is not an object");

  j = tiny_tokenizer();
  j["model"]["vocab"]["zz"] = "7";
  EXPECT_EQ(load_error(j), "tok.json: vocab entry \"zz\": id is not an integer");

  j = tiny_tokenizer();
  j["model"]["vocab"]["zz"] = {{"id", 7}};
  EXPECT_EQ(load_error(j), "tok.json: vocab entry \"zz\": id is not an integer");

  {
    std::string text = tiny_tokenizer().dump();
    const std::string entry = "\"ab\":256";
    ASSERT_NE(text.find(entry), std::string::npos);
    text.replace(text.find(entry), entry.size(), entry + ",\"ab\":300");
    std::string error;
    try {
      Tokenizer::from_json(text, "tok.json");
    } catch (const Error& e) {
      error = e.what();
    }
    EXPECT_EQ(error, "tok.json: vocab lists \"ab\" twice");
  }

  j = tiny_tokenizer();
  j["model"]["vocab"]["zz"] = -3;
  EXPECT_EQ(load_error(j), "tok.json: vocab entry \"zz\": id -3 is out of range [0, 16777215]");

  j = tiny_tokenizer();
  j["model"]["vocab"]["zz"] = 4000000000LL;  // would allocate gigabytes if trusted
  EXPECT_EQ(load_error(j), "tok.json: vocab entry \"zz\": id 4000000000 is out of range [0, 16777215]");

  j = tiny_tokenizer();
  j["model"]["vocab"].erase("Ġ");
  j["model"]["merges"] = json::array({"a b"});
  EXPECT_EQ(load_error(j), "tok.json: model.vocab lacks the byte-level token \"Ġ\" for byte 0x20");

  j = tiny_tokenizer();
  j["added_tokens"].push_back({{"id", 259}, {"content", "<y>"}});
  EXPECT_EQ(load_error(j), "tok.json: added_tokens[1]: id 259 is used by two added tokens");

  j = tiny_tokenizer();
  j["added_tokens"][0]["id"] = 5;
  EXPECT_EQ(load_error(j), "tok.json: added_tokens[0]: id 5 is already the vocab token \"ą\"");

  j = tiny_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{N}";
  EXPECT_EQ(load_error(j).rfind("tok.json: regex \"(\\\\p{N}\" does not compile: missing closing parenthesis", 0), 0u)
      << load_error(j);

  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_EQ(load_error(j), "tok.json: unsupported pre_tokenizer type 'Whitespace'");

  j = tiny_tokenizer();
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_EQ(load_error(j), "tok.json: unsupported decoder (only ByteLevel is supported)");

  j = tiny_tokenizer();
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_EQ(load_error(j), "tok.json: unsupported normalizer Lowercase (only none or an empty Sequence)");
}

TEST(ModelFiles, ResolvesLinkFiles) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "dsocr_test_link_files";
  fs::remove_all(dir);
  fs::create_directories(dir / "model");
  fs::create_directories(dir / "tokenizer");
  std::ofstream(dir / "tokenizer" / "tokenizer.json") << "{}";
  std::ofstream(dir / "model" / "tokenizer.json") << "../tokenizer/tokenizer.json\n";
  std::ofstream(dir / "model" / "broken.json") << "../tokenizer/missing.json";
  std::ofstream(dir / "model" / "real.json") << "{\"a\": 1}";

  EXPECT_EQ(resolve_link_file((dir / "model" / "tokenizer.json").string()),
            (dir / "tokenizer" / "tokenizer.json").string());
  EXPECT_EQ(resolve_link_file((dir / "model" / "broken.json").string()), (dir / "model" / "broken.json").string());
  EXPECT_EQ(resolve_link_file((dir / "model" / "real.json").string()), (dir / "model" / "real.json").string());
  EXPECT_EQ(resolve_link_file((dir / "model" / "absent.json").string()), (dir / "model" / "absent.json").string());
  fs::remove_all(dir);
}
