// The version of this build (CMake's project version), for --version, NAME.json and the writers.
#pragma once

namespace dsocr {

#ifndef DSOCR_VERSION
#define DSOCR_VERSION "unknown"
#endif
inline constexpr const char* kVersion = DSOCR_VERSION;

}  // namespace dsocr
