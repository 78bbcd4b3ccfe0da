// Host-only stand-in for cutlass::platform::enable_if.
#pragma once
#include <type_traits>
namespace cutlass { namespace platform { template <bool C, typename T = void> using enable_if = std::enable_if<C, T>; } }
