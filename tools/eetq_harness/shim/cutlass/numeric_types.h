// Host-only stand-in for CUTLASS's element types and sizeof_bits (the bit widths mixed_gemm_B_layout.h reads).
#pragma once
#include <cstdint>
namespace cutlass {
struct half_t {};
struct bfloat16_t {};
struct uint4b_t {};
template <typename T> struct sizeof_bits { static constexpr int value = int(sizeof(T) * 8); };
template <> struct sizeof_bits<uint4b_t> { static constexpr int value = 4; };
}
