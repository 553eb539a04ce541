#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsocr {

namespace {
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> TensorView::to_f32() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  dsocr::to_f32(dtype, data, out.data(), out.size());
  return out;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string TensorView::shape_str() const { return shape_to_string(shape); }

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t available, uint64_t file_size,
                                           const std::string& what) {
  if (file_size < 8 || available < 8) fail("{}: truncated safetensors file ({} bytes, no header length)", what, file_size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes) fail("{}: safetensors header length {} is implausible (limit {})", what, n, kMaxHeaderBytes);
  if (n > file_size - 8) fail("{}: safetensors header length {} exceeds the file size {}", what, n, file_size);
  if (8 + n > available) fail("{}: header not fully available", what);

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes + 8, bytes + 8 + n);
  } catch (const std::exception& e) {
    fail("{}: safetensors header is not valid JSON ({})", what, e.what());
  }
  if (!j.is_object()) fail("{}: safetensors header is not a JSON object", what);

  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> ranges;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("{}: __metadata__ is not an object", what);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("{}: __metadata__ value for '{}' is not a string", what, m.key());
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail("{}: tensor '{}' lacks dtype, shape or data_offsets", what, name);
    const auto& jd = v["dtype"];
    const auto& js = v["shape"];
    const auto& jo = v["data_offsets"];
    if (!jd.is_string()) fail("{}: tensor '{}' has a non-string dtype", what, name);
    SafetensorsHeader::Entry e{};
    if (!parse_dtype(jd.get<std::string>(), &e.dtype))
      fail("{}: tensor '{}' has unsupported dtype '{}'", what, name, jd.get<std::string>());
    if (!js.is_array() || js.size() > 8) fail("{}: tensor '{}' has a malformed shape", what, name);
    uint64_t numel = 1;
    for (const auto& d : js) {
      if (!d.is_number_unsigned()) fail("{}: tensor '{}' has a negative or non-integer dimension", what, name);
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t(1) << 48) / dim) fail("{}: tensor '{}' shape is too large", what, name);
      numel *= dim;
      e.shape.push_back(int64_t(dim));
    }
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      fail("{}: tensor '{}' has malformed data_offsets", what, name);
    e.begin = jo[0].get<uint64_t>();
    e.end = jo[1].get<uint64_t>();
    if (e.begin > e.end) fail("{}: tensor '{}' data_offsets [{}, {}] are reversed", what, name, e.begin, e.end);
    if (e.end > data_size)
      fail("{}: tensor '{}' data_offsets end {} is beyond the data section ({} bytes): file truncated?", what, name,
           e.end, data_size);
    if (e.end - e.begin != numel * dtype_size(e.dtype))
      fail("{}: tensor '{}' has {} bytes but shape {} x {} needs {}", what, name, e.end - e.begin,
           shape_to_string(e.shape), dtype_name(e.dtype), numel * dtype_size(e.dtype));
    ranges.push_back({{e.begin, e.end}, name});
    h.tensors.emplace(name, std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first.first < ranges[i - 1].first.second)
      fail("{}: tensors '{}' and '{}' overlap", what, ranges[i - 1].second, ranges[i].second);
  }
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  header_ = parse_safetensors_header(file_.data(), file_.size(), file_.size(), path);
}

TensorView SafetensorsFile::get(const std::string& name) const {
  auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) fail("{}: missing tensor '{}'", path(), name);
  const auto& e = it->second;
  TensorView v;
  v.name = name;
  v.dtype = e.dtype;
  v.shape = e.shape;
  v.data = file_.data() + header_.data_start + e.begin;
  v.nbytes = size_t(e.end - e.begin);
  return v;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : header_.tensors) out.push_back(k);
  return out;
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                            size_t nbytes) {
  Item item{dtype, std::move(shape), {}};
  item.bytes.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + nbytes);
  items_[name] = std::move(item);
}

void SafetensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values) {
  add(name, DType::F32, std::move(shape), values.data(), values.size() * 4);
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::ordered_json header;
  if (!metadata_.empty()) {
    nlohmann::ordered_json m;
    for (const auto& [k, v] : metadata_) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const auto& [name, item] : items_) {
    header[name] = {{"dtype", std::string(dtype_name(item.dtype))},
                    {"shape", item.shape},
                    {"data_offsets", {offset, offset + item.bytes.size()}}};
    offset += item.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("{}: cannot write", tmp);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), std::streamsize(text.size()));
    for (const auto& [name, item] : items_)
      out.write(reinterpret_cast<const char*>(item.bytes.data()), std::streamsize(item.bytes.size()));
    if (!out) fail("{}: write failed", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail("{}: cannot rename into place: {}", path, ec.message());
}

}  // namespace dsocr
