// Host-only stand-in for CUTLASS's MMA operator tag.
#pragma once
namespace cutlass { namespace arch { struct OpMultiplyAdd {}; } }
