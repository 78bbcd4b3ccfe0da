// Host-only stand-in for EETQ's utils/cuda_utils.h: the FT_CHECK macros as EETQ defines them, and getSMVersion()
// answering the SM version the harness is told (the one value the real header asks the CUDA driver for).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

// cuda_fp16's half: an IEEE binary16 whose conversion from float rounds to nearest even, as __float2half does.
using half = _Float16;

namespace fastertransformer {

extern int harness_sm_version;
inline int getSMVersion() { return harness_sm_version; }

template <typename... Args>
inline std::string fmtstr(const std::string& format, Args... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, format.c_str(), args...);
  return std::string(buf);
}

[[noreturn]] inline void throwRuntimeError(const char* const file, int const line, std::string const& info = "") {
  throw std::runtime_error(std::string("[FT][ERROR] ") + info + " Assertion fail: " + file + ":" + std::to_string(line) + " \n");
}

inline void myAssert(bool result, const char* const file, int const line, std::string const& info = "") {
  if (!result) throwRuntimeError(file, line, info);
}

}  // namespace fastertransformer

#define FT_CHECK(val) fastertransformer::myAssert(val, __FILE__, __LINE__)
#define FT_CHECK_WITH_INFO(val, info)                                              \
  do {                                                                             \
    bool is_valid_val = (val);                                                     \
    if (!is_valid_val) fastertransformer::myAssert(is_valid_val, __FILE__, __LINE__, (info)); \
  } while (0)
