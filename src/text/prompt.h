// Prompts (spec §6): the official task prompts by name, and the token sequence the model sees:
// [BOS] + tok(text before <image>) + N x <image> placeholder + tok(text after <image>).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace dsocr {

enum class Task { Markdown, Ocr, Free, Figure, Describe, Locate };

// "markdown", "ocr", "free", "figure", "describe", "locate"; throws Error on an unknown name.
Task parse_task(const std::string& name);
const char* task_name(Task task);

// The exact official prompt of a task (spec §6.1). Locate needs the text to find.
std::string task_prompt(Task task, const std::string& locate_text = "");

// A raw prompt must contain <image> exactly once; throws Error otherwise. The prompt is
// strip()ped like the HF path's 'plain' template does.
std::string normalize_prompt(const std::string& prompt);

inline constexpr const char* kImageTag = "<image>";

// Token ids for a prompt with `placeholders` image tokens in place of <image>.
std::vector<int32_t> build_prompt_ids(const Tokenizer& tokenizer, const std::string& prompt, int placeholders,
                                      int32_t bos_id, int32_t image_token_id);

}  // namespace dsocr
