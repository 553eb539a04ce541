// SHA-256 (FIPS 180-4), used to verify downloaded files against the hub's LFS checksums.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsocr {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // Pads and returns the digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> finish();
  std::string finish_hex();  // lowercase hex, as the hub prints LFS oids

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view bytes);

// Hashes the first `max_bytes` bytes of a file (all of it by default); throws Error naming the file.
std::string sha256_file_hex(const std::string& path, uint64_t max_bytes = UINT64_MAX);

// Hashes the first `max_bytes` of a file into an existing hasher (to continue a resumed download).
void sha256_update_from_file(Sha256& hasher, const std::string& path, uint64_t max_bytes = UINT64_MAX);

}  // namespace dsocr
