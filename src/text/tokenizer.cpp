// Byte-level BPE with the semantics of Hugging Face `tokenizers` (see tokenizer.h and
// golden/tokenizer/README.md). Loading validates the whole file; encoding keeps all per-call
// state in an EncodeState so that one Tokenizer can serve several threads.
#include "text/tokenizer.h"

#include <pcre2.h>

#include <algorithm>
#include <array>
#include <queue>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/mapped_file.h"
#include "text/utf8.h"

namespace dsocr {
namespace {

using nlohmann::json;

// Ids above this are rejected at load so that a corrupt file cannot make us allocate gigabytes.
constexpr int64_t kMaxTokenId = (1 << 24) - 1;

// Unicode White_Space, which is what Oniguruma's (and Rust's) `\s` means. PCRE2's `\s` with UCP
// lacks U+0085 (NEL), so pre-tokenizer regexes get this explicit class instead.
constexpr std::array<std::pair<char32_t, char32_t>, 10> kWhiteSpace = {{
    {0x09, 0x0D}, {0x20, 0x20}, {0x85, 0x85}, {0xA0, 0xA0}, {0x1680, 0x1680},
    {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
}};

// text as a one-line JSON string literal, for error messages (patterns hold raw CR/LF).
std::string json_quoted(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_white_space(char32_t cp) {
  for (auto [lo, hi] : kWhiteSpace)
    if (cp >= lo && cp <= hi) return true;
  return false;
}

// The members of kWhiteSpace as the inside of a PCRE2 character class.
std::string white_space_class_body() {
  std::string body;
  for (auto [lo, hi] : kWhiteSpace) {
    body += fmt::format("\\x{{{:X}}}", uint32_t(lo));
    if (hi != lo) body += fmt::format("-\\x{{{:X}}}", uint32_t(hi));
  }
  return body;
}

// Rewrites the Oniguruma escapes whose PCRE2 meaning differs: `\s` and `\S` outside a class, `\s`
// inside one. (`\S` inside a class keeps PCRE2's meaning; no known tokenizer uses it.)
std::string oniguruma_to_pcre2(std::string_view pattern) {
  const std::string ws = white_space_class_body();
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? ws : "[" + ws + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + ws + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

// GPT-2's ByteLevel pre-tokenizer regex, used when a ByteLevel step has use_regex=true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// ---------------------------------------------------------------------------------------------
// PCRE2 wrapper

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

class Regex {
 public:
  enum class Syntax { kOniguruma, kLiteral };

  // Throws Error("regex \"...\" does not compile: ...") (the caller adds the file name).
  Regex(std::string_view source, Syntax syntax) {
    const std::string pattern =
        syntax == Syntax::kOniguruma ? oniguruma_to_pcre2(source) : std::string(source);
    const uint32_t options = PCRE2_UTF | PCRE2_UCP | (syntax == Syntax::kLiteral ? PCRE2_LITERAL : 0);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     options, &error_code, &error_offset, nullptr);
    if (!code) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error_code, message.data(), message.size());
      fail("regex {} does not compile: {}", json_quoted(source),
           reinterpret_cast<const char*>(message.data()));
    }
    code_.reset(code);
    jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }

  // The first non-empty match in subject at or after `start`, as [begin, end) offsets. The
  // subject must be valid UTF-8 (checked once per encode call).
  bool find(std::string_view subject, size_t start, pcre2_match_data* md, size_t& begin,
            size_t& end) const {
    while (start < subject.size()) {
      const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
      const int rc = jit_ ? pcre2_jit_match(code_.get(), s, subject.size(), start, 0, md, nullptr)
                          : pcre2_match(code_.get(), s, subject.size(), start,
                                        PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) return false;
      if (rc < 0) fail("regex match failed with PCRE2 error {}", rc);
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md);
      begin = ovector[0];
      end = ovector[1];
      if (end > begin) return true;
      // An empty match splits nothing: retry from the next character.
      start = begin + 1;
      while (start < subject.size() && (static_cast<unsigned char>(subject[start]) & 0xC0) == 0x80)
        ++start;
    }
    return false;
  }

  bool matches_at(std::string_view subject, size_t at, pcre2_match_data* md) const {
    const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
    return pcre2_match(code_.get(), s, subject.size(), at, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md,
                       nullptr) >= 0;
  }

 private:
  struct CodeDeleter {
    void operator()(pcre2_code* code) const { pcre2_code_free(code); }
  };
  std::unique_ptr<pcre2_code, CodeDeleter> code_;
  bool jit_ = false;
};

// ---------------------------------------------------------------------------------------------
// GPT-2 byte <-> character map: printable bytes stand for themselves, the other 68 bytes map in
// increasing order to U+0100, U+0101, ...

struct ByteLevelMap {
  std::array<char32_t, 256> byte_to_char{};
  std::array<int16_t, 0x100 + 68> char_to_byte{};  // -1: not a byte character

  ByteLevelMap() {
    char_to_byte.fill(-1);
    char32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      byte_to_char[b] = printable ? char32_t(b) : next_extra++;
      char_to_byte[byte_to_char[b]] = int16_t(b);
    }
  }

  // The bytes a token string stands for. Like the ByteLevel decoder, a token holding any character
  // outside the map (an added token such as <｜begin▁of▁sentence｜>) stands for its own UTF-8.
  std::string token_bytes(std::string_view token) const {
    std::string bytes;
    std::string_view rest = token;
    while (!rest.empty()) {
      const utf8::Unit unit = utf8::next_unit(rest);
      if (unit.kind != utf8::Unit::kChar || unit.codepoint >= char_to_byte.size() ||
          char_to_byte[unit.codepoint] < 0)
        return std::string(token);
      bytes += static_cast<char>(char_to_byte[unit.codepoint]);
      rest.remove_prefix(unit.length);
    }
    return bytes;
  }

  std::string token_string(std::string_view bytes) const {
    std::string token;
    for (unsigned char b : bytes) utf8::append(token, byte_to_char[b]);
    return token;
  }
};

// ---------------------------------------------------------------------------------------------
// Merge table: open addressing keyed by the pair of ids (BPE's innermost lookup).

class MergeTable {
 public:
  struct Merge {
    uint32_t rank;
    int32_t id;  // the merged token
  };

  void reserve(size_t count) {
    size_t capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    slots_.assign(capacity, Slot{kEmpty, {}});
    mask_ = capacity - 1;
  }

  // A pair listed twice keeps its later rank, as the reference's HashMap collect does.
  void insert(int32_t left, int32_t right, Merge merge) {
    const uint64_t key = make_key(left, right);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty || slots_[i].key == key) {
        slots_[i] = {key, merge};
        return;
      }
    }
  }

  const Merge* find(int32_t left, int32_t right) const {
    const uint64_t key = make_key(left, right);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are < 2^31, so never a real key
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static uint64_t make_key(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }
  size_t hash(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> 29) & mask_; }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Added tokens: a byte trie searched leftmost-longest (what the reference's Aho-Corasick with
// MatchKind::LeftmostLongest returns).

struct AddedToken {
  int32_t id;
  std::string content;
  bool single_word, lstrip, rstrip, normalized, special;
};

class AddedTokenMatcher {
 public:
  void add(std::string_view content, int32_t token_index) {
    int32_t node = 0;
    for (unsigned char b : content) {
      int32_t child = child_of(node, b);
      if (child < 0) {
        child = int32_t(nodes_.size());
        nodes_[node].children.emplace_back(b, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    nodes_[node].token_index = token_index;
    can_start_[static_cast<unsigned char>(content[0])] = true;
  }

  bool empty() const { return nodes_.size() == 1; }

  // The leftmost-longest match in text[from, to): sets [begin, end) and the token index.
  bool find(std::string_view text, size_t from, size_t to, size_t& begin, size_t& end,
            int32_t& token_index) const {
    for (size_t pos = from; pos < to; ++pos) {
      if (!can_start_[static_cast<unsigned char>(text[pos])]) continue;
      int32_t node = 0;
      token_index = -1;
      for (size_t i = pos; i < to; ++i) {
        node = child_of(node, static_cast<unsigned char>(text[i]));
        if (node < 0) break;
        if (nodes_[node].token_index >= 0) {
          token_index = nodes_[node].token_index;
          end = i + 1;
        }
      }
      if (token_index >= 0) {
        begin = pos;
        return true;
      }
    }
    return false;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token_index = -1;
  };
  int32_t child_of(int32_t node, unsigned char b) const {
    for (auto [byte, child] : nodes_[node].children)
      if (byte == b) return child;
    return -1;
  }
  std::vector<Node> nodes_ = std::vector<Node>(1);
  std::array<bool, 256> can_start_{};
};

// Heterogeneous lookup so that string_view keys need no temporary std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// ---------------------------------------------------------------------------------------------
// JSON reading helpers: every problem becomes one Error line (the caller prefixes the file name).

const json& member(const json& object, const char* key, const char* where) {
  const auto it = object.find(key);
  if (it == object.end()) fail("{} has no '{}'", where, key);
  return *it;
}

bool optional_bool(const json& object, const char* key, bool fallback, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail("{}: '{}' is not a boolean", where, key);
  return it->get<bool>();
}

std::string type_of(const json& object) {
  const auto it = object.find("type");
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// `where()` names the entry; it is only called on failure (the vocab has 128k entries).
template <typename Where>
int32_t read_id(const json& value, const Where& where) {
  if (!value.is_number_integer()) fail("{}: id is not an integer", where());
  const int64_t id = value.get<int64_t>();
  if (id < 0 || id > kMaxTokenId) fail("{}: id {} is out of range [0, {}]", where(), id, kMaxTokenId);
  return int32_t(id);
}

// model.vocab entries in file order. They are taken out of the JSON while it is parsed: building
// and destroying a 128k-key std::map DOM would take most of the load time.
using VocabEntry = std::pair<std::string, json>;

class VocabCapture {
 public:
  explicit VocabCapture(std::vector<VocabEntry>& entries) : entries_(entries) {}

  // nlohmann parser callback; returning false drops the element from the DOM.
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    const bool in_vocab = depth == 3 && path_[1] == "model" && path_[2] == "vocab";
    if (event == json::parse_event_t::key) {
      if (in_vocab) {
        entries_.emplace_back(std::move(parsed.get_ref<std::string&>()), json());
        return false;
      }
      if (depth < int(path_.size())) path_[size_t(depth)] = parsed.get<std::string>();
    } else if (event == json::parse_event_t::value && in_vocab && !entries_.empty()) {
      entries_.back().second = std::move(parsed);  // a non-scalar value stays null: rejected later
      return false;
    }
    return true;
  }

 private:
  std::vector<VocabEntry>& entries_;
  std::array<std::string, 3> path_;  // the key leading to each open object, by depth
};

// Per-call scratch space and the word cache of one encode() call.
struct EncodeState {
  MatchData match_data{pcre2_match_data_create(1, nullptr)};
  std::vector<std::pair<size_t, size_t>> pieces, next_pieces;

  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos, merged_id;
    // Lowest rank first, leftmost first among equal ranks (std::priority_queue is a max-heap).
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Symbol> symbols;
  std::priority_queue<Candidate> candidates;

  // Words seen before in this call -> [offset, offset + count) in cached_ids.
  static constexpr size_t kMaxCachedWordBytes = 64;
  static constexpr size_t kMaxCachedWords = 1 << 17;
  StringMap<std::pair<uint32_t, uint32_t>> cache;
  std::vector<int32_t> cached_ids;
};

}  // namespace

// =============================================================================================

struct Tokenizer::Impl {
  ByteLevelMap byte_level;
  std::vector<std::string> token_strings;  // by id; "" where the id has no token
  std::vector<std::string> token_bytes;    // by id: what the ByteLevel decoder makes of it
  std::vector<uint8_t> special;            // by id
  StringMap<int32_t> vocab;                // model vocab: token string -> id
  StringMap<int32_t> added_ids;            // added token content -> id
  std::array<int32_t, 256> byte_ids{};     // id of each byte's single-character token
  MergeTable merges;
  bool ignore_merges = false;

  std::vector<AddedToken> added_tokens;
  AddedTokenMatcher raw_matcher, normalized_matcher;  // tokens with normalized=false / true
  std::optional<Regex> word_char;                     // `\w`, only if a token is single_word

  std::vector<Regex> splits;  // pre-tokenizer Split regexes, applied in order

  void load(const json& root, std::vector<VocabEntry>& vocab_entries);
  void load_model(const json& model, std::vector<VocabEntry>& vocab_entries);
  void load_added_tokens(const json& list);
  void load_pre_tokenizer(const json& node);
  void check_normalizer_and_decoder(const json& root) const;

  void encode_span(std::string_view text, size_t begin, size_t end, int pass, EncodeState& state,
                   std::vector<int32_t>& out) const;
  void encode_text(std::string_view text, EncodeState& state, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, EncodeState& state, std::vector<int32_t>& out) const;
  void bpe(std::string_view word, EncodeState& state, std::vector<int32_t>& out) const;
};

// ---- loading ----------------------------------------------------------------------------------

void Tokenizer::Impl::load(const json& root, std::vector<VocabEntry>& vocab_entries) {
  if (!root.is_object()) fail("not a JSON object");
  const json& model = member(root, "model", "the file");
  if (!model.is_object()) fail("'model' is not an object");
  load_model(model, vocab_entries);
  if (const auto it = root.find("added_tokens"); it != root.end() && !it->is_null())
    load_added_tokens(*it);
  if (const auto it = root.find("pre_tokenizer"); it != root.end() && !it->is_null())
    load_pre_tokenizer(*it);
  else
    fail("no pre_tokenizer: a byte-level BPE needs a ByteLevel pre-tokenizer");
  check_normalizer_and_decoder(root);
}

void Tokenizer::Impl::load_model(const json& model, std::vector<VocabEntry>& vocab_entries) {
  if (const std::string type = type_of(model); !type.empty() && type != "BPE")
    fail("unsupported model type '{}' (only BPE is supported)", type);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      fail("model.{} is not supported", key);
  }
  if (const auto it = model.find("dropout");
      it != model.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 0.0))
    fail("model.dropout is not supported");
  ignore_merges = optional_bool(model, "ignore_merges", false, "model");

  // Vocab: token string -> id; ids must be distinct.
  const json& vocab_json = member(model, "vocab", "model");
  if (!vocab_json.is_object()) fail("model.vocab is not an object");
  if (vocab_entries.empty()) fail("model.vocab is empty");
  std::vector<int32_t> ids;
  ids.reserve(vocab_entries.size());
  for (const auto& entry : vocab_entries)  // (clang 14 cannot capture structured bindings)
    ids.push_back(read_id(entry.second, [&] { return "vocab entry " + json_quoted(entry.first); }));
  token_strings.assign(size_t(*std::max_element(ids.begin(), ids.end())) + 1, std::string());
  vocab.reserve(vocab_entries.size());
  for (size_t i = 0; i < vocab_entries.size(); ++i) {
    std::string& token = vocab_entries[i].first;
    const int32_t id = ids[i];
    if (token.empty()) fail("vocab has an empty token (id {})", id);
    if (!token_strings[id].empty())
      fail("vocab id {} is used twice ({} and {})", id, json_quoted(token_strings[id]), json_quoted(token));
    if (!vocab.emplace(token, id).second) fail("vocab lists {} twice", json_quoted(token));
    token_strings[id] = std::move(token);
  }

  for (int b = 0; b < 256; ++b) {
    std::string single;
    utf8::append(single, byte_level.byte_to_char[b]);
    const auto it = vocab.find(single);
    if (it == vocab.end())
      fail("model.vocab lacks the byte-level token {} for byte 0x{:02X}", json_quoted(single), b);
    byte_ids[b] = it->second;
  }

  // Merges: "a b" strings or [a, b] pairs; the index is the rank.
  const json& merges_json = member(model, "merges", "model");
  if (!merges_json.is_array()) fail("model.merges is not an array");
  merges.reserve(merges_json.size());
  std::string merged;
  for (size_t rank = 0; rank < merges_json.size(); ++rank) {
    const json& entry = merges_json[rank];
    std::string_view left, right;
    if (entry.is_string()) {
      const std::string& line = entry.get_ref<const std::string&>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        fail("merge {} ({}) is not two tokens separated by one space", rank, json_quoted(line));
      left = std::string_view(line).substr(0, space);
      right = std::string_view(line).substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      left = entry[0].get_ref<const std::string&>();
      right = entry[1].get_ref<const std::string&>();
    } else {
      fail("merge {} is neither a string \"a b\" nor a pair [\"a\", \"b\"]", rank);
    }
    const auto left_it = vocab.find(left), right_it = vocab.find(right);
    merged.assign(left).append(right);
    const auto merged_it = vocab.find(merged);
    for (auto [part, it] : {std::pair{left, left_it}, {right, right_it}, {merged, merged_it}})
      if (it == vocab.end()) fail("merge {} ({} {}): {} is not in the vocab", rank, json_quoted(left), json_quoted(right), json_quoted(part));
    merges.insert(left_it->second, right_it->second, {uint32_t(rank), merged_it->second});
  }

  // Every id's decoded bytes (added tokens overwrite theirs later).
  token_bytes.resize(token_strings.size());
  for (size_t id = 0; id < token_strings.size(); ++id)
    if (!token_strings[id].empty()) token_bytes[id] = byte_level.token_bytes(token_strings[id]);
  special.assign(token_strings.size(), 0);
}

void Tokenizer::Impl::load_added_tokens(const json& list) {
  if (!list.is_array()) fail("'added_tokens' is not an array");
  std::vector<uint8_t> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& entry = list[i];
    const std::string where = fmt::format("added_tokens[{}]", i);
    if (!entry.is_object()) fail("{} is not an object", where);
    const int32_t id = read_id(member(entry, "id", where.c_str()), [&] { return where; });
    const json& content_json = member(entry, "content", where.c_str());
    if (!content_json.is_string() || content_json.get_ref<const std::string&>().empty())
      fail("{}: 'content' is not a non-empty string", where);
    AddedToken token{id,
                     content_json.get<std::string>(),
                     optional_bool(entry, "single_word", false, where),
                     optional_bool(entry, "lstrip", false, where),
                     optional_bool(entry, "rstrip", false, where),
                     optional_bool(entry, "normalized", true, where),
                     optional_bool(entry, "special", false, where)};

    if (size_t(id) >= token_strings.size()) {
      token_strings.resize(size_t(id) + 1);
      token_bytes.resize(size_t(id) + 1);
      special.resize(size_t(id) + 1, 0);
    }
    if (seen.size() <= size_t(id)) seen.resize(size_t(id) + 1, 0);
    if (seen[id]) fail("{}: id {} is used by two added tokens", where, id);
    seen[id] = 1;
    if (const auto it = vocab.find(token.content); it != vocab.end() && it->second != id)
      fail("{}: {} has id {} but the vocab gives it id {}", where, json_quoted(token.content), id, it->second);
    if (!token_strings[id].empty() && token_strings[id] != token.content)
      fail("{}: id {} is already the vocab token {}", where, id, json_quoted(token_strings[id]));
    if (!added_ids.emplace(token.content, id).second)
      fail("{}: {} is listed twice", where, json_quoted(token.content));

    token_strings[id] = token.content;
    token_bytes[id] = byte_level.token_bytes(token.content);
    special[id] = token.special;
    (token.normalized ? normalized_matcher : raw_matcher).add(token.content, int32_t(added_tokens.size()));
    if (token.single_word && !word_char) word_char.emplace("\\w", Regex::Syntax::kOniguruma);
    added_tokens.push_back(std::move(token));
  }
}

void Tokenizer::Impl::load_pre_tokenizer(const json& node) {
  bool byte_level_seen = false;
  auto add = [&](const json& step, auto& self) -> void {
    if (!step.is_object()) fail("pre_tokenizer: a step is not an object");
    const std::string type = type_of(step);
    if (type == "Sequence") {
      const json& steps = member(step, "pretokenizers", "pre_tokenizer Sequence");
      if (!steps.is_array()) fail("pre_tokenizer Sequence: 'pretokenizers' is not an array");
      for (const json& inner : steps) self(inner, self);
    } else if (type == "Split") {
      if (byte_level_seen) fail("pre_tokenizer: a Split after ByteLevel is not supported");
      const json& pattern = member(step, "pattern", "pre_tokenizer Split");
      const json& behavior = member(step, "behavior", "pre_tokenizer Split");
      if (!behavior.is_string() || behavior.get<std::string>() != "Isolated")
        fail("pre_tokenizer Split: behavior {} is not supported (only Isolated)", behavior.dump());
      if (optional_bool(step, "invert", false, "pre_tokenizer Split"))
        fail("pre_tokenizer Split: invert=true is not supported");
      if (const auto re = pattern.find("Regex"); re != pattern.end() && re->is_string())
        splits.emplace_back(re->get<std::string>(), Regex::Syntax::kOniguruma);
      else if (const auto str = pattern.find("String"); str != pattern.end() && str->is_string())
        splits.emplace_back(str->get<std::string>(), Regex::Syntax::kLiteral);
      else
        fail("pre_tokenizer Split: 'pattern' is neither {{\"Regex\": ...}} nor {{\"String\": ...}}");
    } else if (type == "ByteLevel") {
      if (optional_bool(step, "add_prefix_space", false, "pre_tokenizer ByteLevel"))
        fail("pre_tokenizer ByteLevel: add_prefix_space=true is not supported");
      if (optional_bool(step, "use_regex", true, "pre_tokenizer ByteLevel"))
        splits.emplace_back(kGpt2Pattern, Regex::Syntax::kOniguruma);
      byte_level_seen = true;
    } else {
      fail("unsupported pre_tokenizer type '{}'", type);
    }
  };
  add(node, add);
  if (!byte_level_seen) fail("pre_tokenizer has no ByteLevel step: only byte-level BPE is supported");
}

void Tokenizer::Impl::check_normalizer_and_decoder(const json& root) const {
  // The normalizer must be the identity: added tokens with normalized=true are then matched on the
  // raw text too.
  auto is_identity = [](const json& n, auto& self) -> bool {
    if (n.is_null()) return true;
    if (!n.is_object() || type_of(n) != "Sequence") return false;
    const auto it = n.find("normalizers");
    if (it == n.end() || !it->is_array()) return false;
    return std::all_of(it->begin(), it->end(), [&](const json& inner) { return self(inner, self); });
  };
  if (const auto it = root.find("normalizer"); it != root.end() && !is_identity(*it, is_identity))
    fail("unsupported normalizer {} (only none or an empty Sequence)", type_of(*it));

  const auto decoder = root.find("decoder");
  if (decoder == root.end() || !decoder->is_object() || type_of(*decoder) != "ByteLevel")
    fail("unsupported decoder (only ByteLevel is supported)");
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(std::string_view text, const std::string& name) {
  return with_context(name, [&] {
    json root;
    std::vector<VocabEntry> vocab_entries;
    try {
      root = json::parse(text, VocabCapture(vocab_entries));
    } catch (const json::parse_error& e) {
      fail("not valid JSON (syntax error at byte {})", e.byte);
    } catch (const json::exception& e) {  // e.g. a number too large for any type
      fail("not valid JSON ({})", e.what());
    }
    auto impl = std::make_unique<Impl>();
    try {
      impl->load(root, vocab_entries);
    } catch (const json::exception& e) {  // a value of an unexpected type deep inside
      fail("malformed tokenizer ({})", e.what());
    }
    return Tokenizer(std::move(impl));
  });
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  const MappedFile file(path);
  return from_json(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()), path);
}

// ---- encoding ---------------------------------------------------------------------------------

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::to_valid_lossy(text);
    text = repaired;
  }
  EncodeState state;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  impl_->encode_span(text, 0, text.size(), 0, state, ids);
  return ids;
}

// Pass 0 splits off added tokens with normalized=false, pass 1 those with normalized=true (on the
// pieces left over, as the reference does), pass 2 pre-tokenizes and runs BPE.
void Tokenizer::Impl::encode_span(std::string_view text, size_t begin, size_t end, int pass,
                                  EncodeState& state, std::vector<int32_t>& out) const {
  if (begin >= end) return;
  if (pass == 2) return encode_text(text.substr(begin, end - begin), state, out);
  const AddedTokenMatcher& matcher = pass == 0 ? raw_matcher : normalized_matcher;
  if (matcher.empty()) return encode_span(text, begin, end, pass + 1, state, out);

  const std::string_view window = text.substr(0, end);
  auto code_point_before = [&](size_t pos) {  // start offset of the character ending at pos
    do --pos;
    while (pos > begin && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80);
    return pos;
  };
  size_t done = begin, search_from = begin, match_begin = 0, match_end = 0;
  int32_t index = -1;
  while (matcher.find(window, search_from, end, match_begin, match_end, index)) {
    const AddedToken& token = added_tokens[size_t(index)];
    search_from = match_end;
    if (token.single_word) {  // no word character may touch the match
      const bool word_before =
          match_begin > begin && word_char->matches_at(window, code_point_before(match_begin),
                                                       state.match_data.get());
      const bool word_after =
          match_end < end && word_char->matches_at(window, match_end, state.match_data.get());
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {  // absorb the white space before it (not already consumed)
      while (match_begin > done) {
        const size_t prev = code_point_before(match_begin);
        if (!is_white_space(utf8::next_unit(window.substr(prev)).codepoint)) break;
        match_begin = prev;
      }
    }
    if (token.rstrip) {  // absorb the white space after it
      while (match_end < end) {
        const utf8::Unit unit = utf8::next_unit(window.substr(match_end));
        if (!is_white_space(unit.codepoint)) break;
        match_end += unit.length;
      }
      search_from = match_end;
    }
    encode_span(text, done, match_begin, pass + 1, state, out);
    out.push_back(token.id);
    done = match_end;
  }
  encode_span(text, done, end, pass + 1, state, out);
}

// Runs the Split regexes in order, each on every piece the previous one left (matches and the
// text between them both stay pieces), then BPE on each piece.
void Tokenizer::Impl::encode_text(std::string_view text, EncodeState& state,
                                  std::vector<int32_t>& out) const {
  auto& pieces = state.pieces;
  auto& next = state.next_pieces;
  pieces.assign(1, {0, text.size()});
  for (const Regex& regex : splits) {
    next.clear();
    for (auto [begin, end] : pieces) {
      const std::string_view piece = text.substr(begin, end - begin);
      size_t pos = 0, match_begin = 0, match_end = 0;
      while (regex.find(piece, pos, state.match_data.get(), match_begin, match_end)) {
        if (match_begin > pos) next.emplace_back(begin + pos, begin + match_begin);
        next.emplace_back(begin + match_begin, begin + match_end);
        pos = match_end;
      }
      if (pos < piece.size()) next.emplace_back(begin + pos, end);
    }
    std::swap(pieces, next);
  }
  for (auto [begin, end] : pieces) encode_word(text.substr(begin, end - begin), state, out);
}

void Tokenizer::Impl::encode_word(std::string_view word, EncodeState& state,
                                  std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_ids[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (word.size() > EncodeState::kMaxCachedWordBytes) return bpe(word, state, out);
  if (const auto it = state.cache.find(word); it != state.cache.end()) {
    const auto [offset, count] = it->second;
    out.insert(out.end(), state.cached_ids.begin() + offset, state.cached_ids.begin() + offset + count);
    return;
  }
  const size_t first = out.size();
  bpe(word, state, out);
  if (state.cache.size() < EncodeState::kMaxCachedWords) {
    state.cache.emplace(std::string(word), std::pair{uint32_t(state.cached_ids.size()),
                                                     uint32_t(out.size() - first)});
    state.cached_ids.insert(state.cached_ids.end(), out.begin() + first, out.end());
  }
}

// The reference's BPE: starting from one symbol per byte, repeatedly merge the adjacent pair of
// lowest rank (leftmost on ties) until no pair has a merge. A heap of candidates with lazy
// invalidation keeps long words O(n log n).
void Tokenizer::Impl::bpe(std::string_view word, EncodeState& state, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    if (const auto it = vocab.find(byte_level.token_string(word)); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  using Symbol = EncodeState::Symbol;
  auto& symbols = state.symbols;
  auto& candidates = state.candidates;
  const int32_t n = int32_t(word.size());
  symbols.resize(size_t(n));
  for (int32_t i = 0; i < n; ++i)
    symbols[i] = Symbol{byte_ids[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1, true};

  auto propose = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const MergeTable::Merge* m = merges.find(symbols[left].id, symbols[right].id))
      candidates.push({m->rank, left, m->id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) propose(i);

  while (!candidates.empty()) {
    const EncodeState::Candidate top = candidates.top();
    candidates.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    const MergeTable::Merge* m = merges.find(left.id, symbols[left.next].id);
    if (!m || m->id != top.merged_id) continue;  // stale: a neighbour changed since
    Symbol& right = symbols[left.next];
    right.alive = false;
    left.id = top.merged_id;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) propose(left.prev);
    propose(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

// ---- decoding and lookups ---------------------------------------------------------------------

std::string_view Tokenizer::token_bytes(int32_t id, bool skip_special) const {
  if (id < 0 || size_t(id) >= impl_->token_bytes.size()) return {};
  if (skip_special && impl_->special[size_t(id)]) return {};
  return impl_->token_bytes[size_t(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) bytes += token_bytes(id, skip_special);
  return utf8::to_valid_lossy(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_ids.find(token); it != impl_->added_ids.end()) return it->second;
  if (const auto it = impl_->vocab.find(token); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= impl_->token_strings.size()) return {};
  return impl_->token_strings[size_t(id)];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->special.size() && impl_->special[size_t(id)];
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->token_strings.size()); }

std::string StreamDecoder::push(int32_t id) {
  pending_ += tokenizer_->token_bytes(id, skip_special_);
  const size_t ready = pending_.size() - utf8::incomplete_tail(pending_);
  std::string text = utf8::to_valid_lossy(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return text;
}

std::string StreamDecoder::flush() {
  std::string text = utf8::to_valid_lossy(pending_);
  pending_.clear();
  return text;
}

}  // namespace dsocr
