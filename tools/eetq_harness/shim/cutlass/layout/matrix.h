// Host-only stand-in for CUTLASS's layout tags (only their identity is used by cutlass_preprocessors.cc).
#pragma once
namespace cutlass { namespace layout {
class RowMajor {};
class ColumnMajor {};
} }
