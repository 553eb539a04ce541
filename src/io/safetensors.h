// safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets}} (+ optional "__metadata__"), then the tensor bytes. Reading validates everything
// (lengths, offsets in range and not overlapping, dtypes, shape x dtype = byte count).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "io/mapped_file.h"

namespace dsocr {

// A tensor's bytes in some buffer it does not own (usually a mapped file).
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
  int64_t dim(int i) const { return shape.at(size_t(i < 0 ? int(shape.size()) + i : i)); }
  std::vector<float> to_f32() const;  // widened copy
  std::string shape_str() const;     // "[64, 1280]"
};

std::string shape_to_string(const std::vector<int64_t>& shape);

struct SafetensorsHeader {
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;  // offsets relative to the start of the data section
  };
  std::map<std::string, Entry> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + header length
};

// Parses and validates the header of a safetensors blob of file_size bytes, given its first
// bytes (at least 8 + header length of them). `what` names the file in errors.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t available, uint64_t file_size,
                                           const std::string& what);

// One mapped .safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return file_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  bool has(const std::string& name) const { return header_.tensors.count(name) != 0; }
  TensorView get(const std::string& name) const;  // throws naming the tensor and the file
  std::vector<std::string> names() const;
  // The file's header (length prefix and JSON) as stored, and the file size: its identity, cheaply.
  std::string_view header_bytes() const {
    return {reinterpret_cast<const char*>(file_.data()), size_t(header_.data_start)};
  }
  size_t file_size() const { return file_.size(); }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
};

// Collects tensors and writes them as one safetensors file (names sorted, header padded to 8).
class SafetensorsWriter {
 public:
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void write(const std::string& path) const;  // atomically: temp file + rename

 private:
  struct Item {
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Item> items_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace dsocr
