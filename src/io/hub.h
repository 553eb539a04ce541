// Downloads a model repository from the Hugging Face hub (or a mirror speaking the same API) into a
// plain directory: only the files dsocr reads, resumable (FILE.part + HTTP Range) and verified
// (size, and sha256 for LFS files) before each file is renamed into place.
//
// This layer never reads the environment: the caller passes the endpoint and token (the CLI takes
// them from HF_ENDPOINT and HF_TOKEN, as the hub's own tools do).
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dsocr {

inline constexpr const char* kDefaultHubEndpoint = "https://huggingface.co";

struct HubFile {
  std::string path;    // repository-relative name, e.g. "config.json"
  int64_t size = -1;   // bytes; -1 when the hub did not say
  std::string sha256;  // lowercase hex for LFS files; empty for small git files (checked by size only)
};

// True for the files inference reads: config, tokenizer files, the shard index and *.safetensors
// at the top of the repository (not the python sources, images or docs).
bool is_model_file(const std::string& repo_path);

struct PullProgress {
  enum class Stage {
    kVerifying,    // hashing bytes already on disk (a complete file, or a .part being resumed)
    kDownloading,  // bytes_done grows as data arrives
    kRetrying,     // the connection dropped; the next attempt resumes from bytes_done
    kDone,         // downloaded and verified
    kUpToDate,     // already present and verified; nothing downloaded
  };
  Stage stage;
  const HubFile& file;
  int64_t bytes_done;      // bytes of this file on disk so far
  int64_t bytes_at_start;  // bytes that were already on disk when this transfer began
  int file_index;          // 0-based position among file_count files
  int file_count;
};

struct PullOptions {
  std::string endpoint = kDefaultHubEndpoint;  // a trailing '/' is ignored
  std::string revision = "main";               // branch, tag or commit
  std::string token;                           // sent as "Authorization: Bearer" when not empty
  int retries = 3;                             // resumed attempts after a dropped connection, per file
  std::chrono::milliseconds retry_delay{1000};  // before retry k, wait k * retry_delay
  std::function<void(const PullProgress&)> on_progress;  // optional
};

struct RepoListing {
  std::string commit;           // the commit `revision` resolved to; empty if the server did not say
  std::vector<HubFile> files;   // the model files, config.json last
};

// Asks the hub which model files `repo` ("owner/name") has at options.revision, with sizes and
// LFS checksums. Throws Error: endpoint unreachable, HTTP 401/403/404, a repository without
// config.json or weights, malformed answers.
RepoListing list_model_files(const std::string& repo, const PullOptions& options);

struct PullResult {
  RepoListing listing;
  int downloaded = 0;            // files fetched (fully or resumed)
  int up_to_date = 0;            // files already present and verified
  int64_t bytes_downloaded = 0;  // bytes received over the network
};

// Downloads the model files of `repo` into `dest_dir` (created if needed). Complete files are
// skipped, a FILE.part left by an interrupted run is resumed, config.json is written last so that
// its presence marks a complete download. Throws Error with a one-line message naming the file:
// unreachable endpoint, HTTP errors, checksum mismatch (the bad file is removed), disk full.
PullResult pull_model(const std::string& repo, const std::string& dest_dir, const PullOptions& options);

// "6.67 GB", "512.0 kB", "17 B" (decimal units, as the hub shows sizes).
std::string format_bytes(int64_t bytes);

}  // namespace dsocr
