#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"

using namespace dsocr;

namespace {

std::vector<uint8_t> blob(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

std::string parse_error(const std::vector<uint8_t>& b) {
  try {
    parse_safetensors_header(b.data(), b.size(), b.size(), "x.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, ParsesValidHeader) {
  auto b = blob(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
                R"("b":{"dtype":"I64","shape":[1],"data_offsets":[12,20]}})",
                20);
  auto h = parse_safetensors_header(b.data(), b.size(), b.size(), "x");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors.at("a").dtype, DType::BF16);
  EXPECT_EQ(h.tensors.at("a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors.at("b").begin, 12u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
}

TEST(Safetensors, RejectsMalformedHeaders) {
  EXPECT_NE(parse_error({1, 2, 3}).find("truncated"), std::string::npos);
  auto big = blob("{}", 0);
  big[0] = 0xff;
  big[1] = 0xff;
  EXPECT_NE(parse_error(big).find("exceeds the file size"), std::string::npos);
  EXPECT_NE(parse_error(blob("{not json", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error(blob(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1)).find("unsupported dtype"),
            std::string::npos);
  EXPECT_NE(parse_error(blob(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8)).find("beyond"),
            std::string::npos);
  EXPECT_NE(parse_error(blob(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                             12))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(parse_error(blob(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)).find("needs 12"),
            std::string::npos);
  EXPECT_NE(parse_error(blob(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)).find("negative"),
            std::string::npos);
  EXPECT_NE(parse_error(blob(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8)).find("reversed"),
            std::string::npos);
}

TEST(Safetensors, WriterRoundTrip) {
  auto path = (std::filesystem::temp_directory_path() / "dsocr_rt.safetensors").string();
  SafetensorsWriter w;
  w.add_f32("x", {2, 2}, {1.f, 2.f, 3.f, 4.f});
  int32_t ids[3] = {7, 8, 9};
  w.add("ids", DType::I32, {3}, ids, sizeof ids);
  w.write(path);
  SafetensorsFile f(path);
  EXPECT_EQ(f.get("x").to_f32(), (std::vector<float>{1, 2, 3, 4}));
  auto v = f.get("ids");
  EXPECT_EQ(v.dtype, DType::I32);
  EXPECT_EQ(reinterpret_cast<const int32_t*>(v.data)[2], 9);
  EXPECT_THROW(f.get("missing"), Error);
  std::filesystem::remove(path);
}

TEST(Safetensors, OpensGoldenCheckpoint) {
  SafetensorsFile f(std::string(DSOCR_TEST_DATA) + "/tiny-model/model-00001-of-000001.safetensors");
  EXPECT_EQ(f.header().tensors.size(), 181u);
  auto pos = f.get("model.vision_model.embeddings.position_ids");
  EXPECT_EQ(pos.dtype, DType::I64);
  EXPECT_EQ(reinterpret_cast<const int64_t*>(pos.data)[256], 256);
  EXPECT_EQ(f.get("model.embed_tokens.weight").shape, (std::vector<int64_t>{129280, 64}));
}
