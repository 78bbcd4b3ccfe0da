// Host-only stand-in for CUTLASS's arch tags: kMinComputeCapability as cutlass/arch/arch.h sets it.
#pragma once
namespace cutlass { namespace arch {
struct Sm70 { static int const kMinComputeCapability = 70; };
struct Sm75 { static int const kMinComputeCapability = 75; };
struct Sm80 { static int const kMinComputeCapability = 80; };
} }
