// Small helpers for locating the files of a model directory.
#pragma once
#include <string>

namespace dsocr {

// Some checkouts store a symlink as a tiny text file holding the link's relative target (git with
// core.symlinks=false, e.g. "../tokenizer/tokenizer.json"). When `path` is such a file (under 4 KiB,
// not starting with '{', its trimmed content a relative path to an existing file next to it), this
// returns that target; otherwise it returns `path` unchanged.
std::string resolve_link_file(const std::string& path);

// The path of file `name` in model directory `dir`, with link files resolved.
std::string model_file(const std::string& dir, const std::string& name);

}  // namespace dsocr
