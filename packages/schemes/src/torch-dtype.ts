// ----- constants -----

/**
 * Every attribute of `torch` that is a `torch.dtype` (torch 2.13), mapped to `str(dtype)`. compressed-tensors 0.20.0
 * (utils/type.py TorchDtype) accepts "torch.xxx" or "xxx" for any of them and serializes the canonical name, so
 * "torch.float" round-trips as "torch.float32".
 */
export const TORCH_DTYPES: Readonly<Record<string, string>> = {
  bfloat16: "torch.bfloat16", bit: "torch.uint1", bits16: "torch.bits16", bits1x8: "torch.bits1x8",
  bits2x4: "torch.bits2x4", bits4x2: "torch.bits4x2", bits8: "torch.bits8", bool: "torch.bool",
  cdouble: "torch.complex128", cfloat: "torch.complex64", chalf: "torch.complex32", complex128: "torch.complex128",
  complex32: "torch.complex32", complex64: "torch.complex64", double: "torch.float64", float: "torch.float32",
  float16: "torch.float16", float32: "torch.float32", float4_e2m1fn_x2: "torch.float4_e2m1fn_x2", float64: "torch.float64",
  float8_e4m3fn: "torch.float8_e4m3fn", float8_e4m3fnuz: "torch.float8_e4m3fnuz", float8_e5m2: "torch.float8_e5m2",
  float8_e5m2fnuz: "torch.float8_e5m2fnuz", float8_e8m0fnu: "torch.float8_e8m0fnu", half: "torch.float16",
  int: "torch.int32", int1: "torch.int1", int16: "torch.int16", int2: "torch.int2", int3: "torch.int3",
  int32: "torch.int32", int4: "torch.int4", int5: "torch.int5", int6: "torch.int6", int64: "torch.int64",
  int7: "torch.int7", int8: "torch.int8", long: "torch.int64", qint32: "torch.qint32", qint8: "torch.qint8",
  quint2x4: "torch.quint2x4", quint4x2: "torch.quint4x2", quint8: "torch.quint8", short: "torch.int16",
  uint1: "torch.uint1", uint16: "torch.uint16", uint2: "torch.uint2", uint3: "torch.uint3", uint32: "torch.uint32",
  uint4: "torch.uint4", uint5: "torch.uint5", uint6: "torch.uint6", uint64: "torch.uint64", uint7: "torch.uint7",
  uint8: "torch.uint8",
};

/** "torch.float" / "float" → "torch.float32"; undefined when torch has no such dtype. */
export const canonicalTorchDType = (name: string): string | undefined => {
  const bare = name.startsWith("torch.") ? name.slice(6) : name;
  return Object.hasOwn(TORCH_DTYPES, bare) ? TORCH_DTYPES[bare] : undefined;
};
