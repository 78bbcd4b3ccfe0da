// Runs EETQ's own host code (kernels-community/quantization-eetq cutlass_kernels/cutlass_preprocessors.cc, compiled
// unchanged against shim/) on one weight: symmetric_quantize, the call quant_weights makes, for the SM version given.
// stdin: "rows cols dtype sm\n" (dtype 32 = float, 16 = half) then rows*cols little-endian values, row-major.
// stdout: the unprocessed int8 codes, the preprocessed bytes, then the scales (in the weight's dtype).
// Exit 2 with EETQ's FT_CHECK message on stderr when EETQ refuses (shapes, unsupported arch).
#include <cstdio>
#include <iostream>
#include <vector>
#include "cuda_utils.h"
#include "cutlass_preprocessors.h"

namespace fastertransformer { int harness_sm_version = 0; }
namespace ft = fastertransformer;

template <typename T>
static int run(size_t rows, size_t cols) {
  std::vector<T> w(rows * cols);
  if (std::fread(w.data(), sizeof(T), w.size(), stdin) != w.size()) return 3;
  std::vector<int8_t> unprocessed(rows * cols), processed(rows * cols);
  std::vector<T> scales(cols);
  ft::symmetric_quantize<T, T>(processed.data(), unprocessed.data(), scales.data(), w.data(), {rows, cols}, ft::QuantType::INT8_WEIGHT_ONLY);
  std::fwrite(unprocessed.data(), 1, unprocessed.size(), stdout);
  std::fwrite(processed.data(), 1, processed.size(), stdout);
  std::fwrite(scales.data(), sizeof(T), scales.size(), stdout);
  return 0;
}

int main() {
  size_t rows = 0, cols = 0;
  int dtype = 0;
  if (std::scanf("%zu %zu %d %d", &rows, &cols, &dtype, &ft::harness_sm_version) != 4 || std::getchar() != '\n') return 3;
  try {
    return dtype == 32 ? run<float>(rows, cols) : run<half>(rows, cols);
  } catch (const std::exception& e) {
    std::cerr << e.what();
    return 2;
  }
}
