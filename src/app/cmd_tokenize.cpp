// dsocr tokenize / detokenize: the model's tokenizer on stdin, for scripting and debugging.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "core/error.h"
#include "io/model_files.h"
#include "io/model_locator.h"
#include "text/tokenizer.h"

namespace dsocr::app {

// --model names a model directory (its tokenizer.json is used) or a tokenizer.json itself; without
// it, the usual model search.
Tokenizer load_tokenizer(const std::string& model) {
  const bool is_file = !model.empty() && std::filesystem::is_regular_file(model);
  const std::string path = is_file ? resolve_link_file(model) : model_file(resolve_model_dir(model), "tokenizer.json");
  return Tokenizer::from_file(path);
}

namespace {

std::string read_stdin() {
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (std::cin.bad()) fail("stdin: read error");
  return input;
}

std::vector<int32_t> parse_id_array(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("stdin: not valid JSON (syntax error at byte {})", e.byte);
  }
  if (!j.is_array()) fail("stdin: expected a JSON array of token ids");
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& v = j[i];
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
      fail("stdin: element {} ({}) is not a 32-bit integer token id", i, v.dump());
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

}  // namespace

void add_tokenize_commands(CLI::App& app) {
  auto model = std::make_shared<std::string>();
  auto* tokenize = app.add_subcommand(
      "tokenize",
      "Read UTF-8 text from stdin (all of it, trailing newline included) and print its token ids as "
      "one JSON array. No BOS is added; special-token strings such as <image> become their ids.");
  tokenize->add_option("-m,--model", *model,
                       "model directory containing tokenizer.json, or the file itself (default: $DSOCR_MODEL, then "
                       "the dsocr cache)");
  tokenize->callback([model] {
    const Tokenizer tokenizer = load_tokenizer(*model);
    const std::vector<int32_t> ids = tokenizer.encode(read_stdin());
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  });

  auto skip_special = std::make_shared<bool>(false);
  auto* detokenize = app.add_subcommand(
      "detokenize",
      "Read a JSON array of token ids from stdin and print the text exactly (no newline added). "
      "Special tokens are kept unless --skip-special; ids without a token are skipped.");
  detokenize->add_option("-m,--model", *model,
                         "model directory containing tokenizer.json, or the file itself (default: $DSOCR_MODEL, "
                         "then the dsocr cache)");
  detokenize->add_flag("--skip-special", *skip_special, "drop special tokens such as <image> and EOS");
  detokenize->callback([model, skip_special] {
    const Tokenizer tokenizer = load_tokenizer(*model);
    const std::string text = tokenizer.decode(parse_id_array(read_stdin()), *skip_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
  });
}

}  // namespace dsocr::app
