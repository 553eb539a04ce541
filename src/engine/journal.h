// Page-level durability of the document tool. While a document is in progress, every finished page
// (or failed page) is appended to its journal in the output folder as one JSON line and flushed to
// disk at once (fdatasync), so a run killed at page 2,799 of 2,800 loses one page, not hours. The
// first line records the run's identity: the source file (path, size, modification time) and every
// option that changes a page's text (model identity, mode, tiles, prompt, dpi, max tokens, n-gram
// guard, sampling); a journal or a finished NAME.json is reused only when its identity equals the
// current run's.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace dsocr {

using json = nlohmann::ordered_json;

// Serialises JSON that may hold invalid UTF-8 (file names, prompts): such bytes become U+FFFD.
std::string dump_json(const json& j, int indent = -1);

// The differences between two identities, as "key: old -> new" phrases ("" when equal).
std::string identity_difference(const json& before, const json& now);

class Journal {
 public:
  // Opens (creating the folders) the journal at `path` for a run of identity `identity`: an
  // existing journal of the same identity keeps its pages, any other is replaced. Throws Error when
  // the file cannot be written.
  Journal(std::string path, const json& identity);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Pages recorded so far (by page number), and why an existing journal was not reused ("" if none).
  const std::map<int, json>& pages() const { return pages_; }
  const std::string& replaced_because() const { return replaced_because_; }

  // Appends the page's record ({"page": N, ...}) and makes it durable. Throws Error (an
  // OutputError when the disk is full) when it cannot.
  void record(const json& page);
  void remove();  // the document is complete: the journal goes

  // Reads a journal without opening it for writing: its identity and pages (empty when absent or
  // unreadable). A torn last line (a kill during a write) is ignored.
  static bool read(const std::string& path, json* identity, std::map<int, json>* pages);

 private:
  std::string path_;
  int fd_ = -1;
  std::map<int, json> pages_;
  std::string replaced_because_;
};

}  // namespace dsocr
