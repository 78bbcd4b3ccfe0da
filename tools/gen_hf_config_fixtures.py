#!/usr/bin/env python3
# transformers' quantization config classes as @llmq/hf-quantizers must reproduce them: for each case the input
# dict, how it was built (the class's from_dict, the constructor with those keyword arguments, or
# AutoQuantizationConfig.from_dict), and either to_dict / to_diff_dict / to_json_string of the result or the error
# (exception type and message) it raised.
#
# Command (from the repo root; deterministic):
#   $LLMQ_PYTHON tools/gen_hf_config_fixtures.py
#
# Versions: transformers 5.24.0, hqq 0.2.8.post1 (HqqConfig needs it), torchao 0.18.0 (TorchAoConfig needs it),
# compressed-tensors 0.20.0. Inputs are JSON so ints and floats stay apart (6 vs 6.0 matters to BitsAndBytesConfig).
#
# Output: packages/hf-quantizers/fixtures/hf-configs.json
import json
import logging
import os
import warnings
from importlib.metadata import version

import transformers
from transformers.quantizers.auto import AutoQuantizationConfig
from transformers.utils import quantization_config as qc

transformers.logging.set_verbosity_error()
logging.disable(logging.WARNING)
warnings.simplefilter("ignore")

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "hf-quantizers", "fixtures", "hf-configs.json")
CLASSES = {c: getattr(qc, c) for c in ["BitsAndBytesConfig", "GPTQConfig", "AwqConfig", "HqqConfig", "QuantoConfig", "EetqConfig",
                                        "FbgemmFp8Config", "TorchAoConfig", "AqlmConfig", "CompressedTensorsConfig"]}

TAO_INT4 = {"default": {"_type": "Int4WeightOnlyConfig", "_version": 2, "_data": {"group_size": 32}}}
TAO_INT8 = {"default": {"_type": "Int8WeightOnlyConfig", "_version": 2, "_data": {}}}
TAO_DYN = {"default": {"_type": "Int8DynamicActivationInt8WeightConfig", "_version": 2, "_data": {}}}

# (class, how, input). how: "from_dict" = Cls.from_dict(d), "init" = Cls(**d), "auto" = AutoQuantizationConfig.from_dict(d)
CASES = [
    ("BitsAndBytesConfig", "init", {}),
    ("BitsAndBytesConfig", "auto", {"load_in_4bit": True}),
    ("BitsAndBytesConfig", "auto", {"load_in_8bit": True, "quant_method": "gptq"}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                                          "bnb_4bit_compute_dtype": "bfloat16", "bnb_4bit_quant_storage": "bfloat16"}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": True, "bnb_4bit_compute_dtype": "half", "blocksize": 128}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_8bit": True, "llm_int8_threshold": 4.5, "llm_int8_skip_modules": ["lm_head", "mlp.down_proj"]}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_8bit": True, "llm_int8_has_fp16_weight": True, "llm_int8_enable_fp32_cpu_offload": True}),
    ("BitsAndBytesConfig", "from_dict", {"quant_method": "bitsandbytes", "_load_in_4bit": True, "_load_in_8bit": False, "load_in_4bit": True,
                                          "load_in_8bit": False, "llm_int8_threshold": 6.0, "bnb_4bit_quant_type": "fp4", "bnb_4bit_compute_dtype": "float32",
                                          "bnb_4bit_quant_storage": "uint8", "bnb_4bit_use_double_quant": False}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": True, "load_in_8bit": True}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": 1}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_8bit": "yes"}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_8bit": True, "llm_int8_threshold": 6}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_8bit": True, "llm_int8_skip_modules": "lm_head"}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_8bit": True, "llm_int8_enable_fp32_cpu_offload": 0}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_8bit": True, "llm_int8_has_fp16_weight": None}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": True, "bnb_4bit_compute_dtype": 3}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": True, "bnb_4bit_quant_storage": "int4"}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": True, "bnb_4bit_quant_storage": 8}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": True, "bnb_4bit_quant_type": 4}),
    ("BitsAndBytesConfig", "from_dict", {"load_in_4bit": True, "bnb_4bit_use_double_quant": "true"}),
    ("GPTQConfig", "init", {"bits": 4}),
    ("GPTQConfig", "auto", {"quant_method": "gptq", "bits": 8, "group_size": -1, "desc_act": True, "sym": False, "damp_percent": 0.01,
                            "dataset": "wikitext2", "checkpoint_format": "GPTQ_V2", "backend": "TORCH"}),
    ("GPTQConfig", "from_dict", {"bits": 3, "dataset": ["a b c", "d e"], "true_sequential": False, "block_name_to_quantize": "model.layers",
                                 "model_seqlen": 256, "format": "gptq_v2", "meta": {"quantizer": ["llmq"]}, "unknown_key": 1}),
    ("GPTQConfig", "from_dict", {"bits": 5}),
    ("GPTQConfig", "from_dict", {"bits": 4, "group_size": 0}),
    ("GPTQConfig", "from_dict", {"bits": 4, "group_size": -2}),
    ("GPTQConfig", "from_dict", {"bits": 4, "damp_percent": 1.0}),
    ("GPTQConfig", "from_dict", {"bits": 4, "damp_percent": 0}),
    ("GPTQConfig", "from_dict", {"bits": 4, "dataset": "ptb"}),
    ("GPTQConfig", "from_dict", {"bits": 4, "dataset": {"a": 1}}),
    ("AwqConfig", "init", {}),
    ("AwqConfig", "auto", {"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": False, "version": "GEMV", "backend": "autoawq",
                           "modules_to_not_convert": ["lm_head"]}),
    ("AwqConfig", "from_dict", {"format": "gemv_fast", "backend": "llm-awq"}),
    ("AwqConfig", "from_dict", {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}),
    ("AwqConfig", "from_dict", {"version": "exllama"}),
    ("AwqConfig", "from_dict", {"backend": "cuda"}),
    ("AwqConfig", "from_dict", {"bits": 3}),
    ("AwqConfig", "from_dict", {"damp_percent": 2}),
    ("HqqConfig", "init", {}),
    ("HqqConfig", "init", {"nbits": 2, "group_size": 32, "axis": 0, "view_as_float": True, "skip_modules": ["lm_head", "down_proj"]}),
    ("HqqConfig", "init", {"nbits": 8, "group_size": 128, "axis": 1}),
    ("HqqConfig", "init", {"axis": 2}),
    ("HqqConfig", "init", {"nbits": 5}),
    ("HqqConfig", "init", {"group_size": 12}),
    ("HqqConfig", "from_dict", {"quant_config": {"weight_quant_params": {"nbits": 1, "channel_wise": True, "group_size": 8, "optimize": True,
                                "round_zero": False, "axis": 1, "view_as_float": False}, "scale_quant_params": None, "zero_quant_params": None,
                                "offload_meta": False}, "skip_modules": []}),
    ("HqqConfig", "auto", {"quant_method": "hqq", "skip_modules": ["lm_head"], "quant_config": {"offload_meta": False, "scale_quant_params": None,
                           "zero_quant_params": None, "weight_quant_params": {"axis": 0, "channel_wise": True, "group_size": 16, "nbits": 3,
                                                                              "optimize": True, "round_zero": True, "view_as_float": False}}}),
    ("QuantoConfig", "init", {}),
    ("QuantoConfig", "from_dict", {"weights": "int4", "modules_to_not_convert": ["lm_head"]}),
    ("QuantoConfig", "auto", {"quant_method": "quanto", "weights": "float8", "activations": "int8"}),
    ("QuantoConfig", "from_dict", {"weights": "int3"}),
    ("QuantoConfig", "from_dict", {"weights": "int2", "activations": "int4"}),
    ("EetqConfig", "init", {}),
    ("EetqConfig", "auto", {"quant_method": "eetq", "modules_to_not_convert": ["lm_head", "gate"]}),
    ("EetqConfig", "from_dict", {"weights": "int4"}),
    ("FbgemmFp8Config", "init", {}),
    ("FbgemmFp8Config", "auto", {"quant_method": "fbgemm_fp8", "activation_scale_ub": 600.0, "modules_to_not_convert": ["lm_head"]}),
    ("TorchAoConfig", "from_dict", {"quant_type": TAO_INT8}),
    ("TorchAoConfig", "from_dict", {"quant_type": TAO_INT4, "modules_to_not_convert": ["lm_head"]}),
    ("TorchAoConfig", "auto", {"quant_method": "torchao", "quant_type": TAO_DYN, "include_input_output_embeddings": True,
                               "untie_embedding_weights": True}),
    ("TorchAoConfig", "init", {"quant_type": "int4_weight_only"}),
    ("AqlmConfig", "init", {}),
    ("AqlmConfig", "auto", {"quant_method": "aqlm", "in_group_size": 16, "num_codebooks": 2, "nbits_per_codebook": 8,
                            "linear_weights_not_to_quantize": ["model.embed_tokens.weight", "lm_head.weight"]}),
    ("AqlmConfig", "from_dict", {"in_group_size": 8.0}),
    ("AqlmConfig", "from_dict", {"out_group_size": "1"}),
    ("AqlmConfig", "from_dict", {"num_codebooks": None}),
    ("AqlmConfig", "from_dict", {"nbits_per_codebook": 2.5}),
    ("AqlmConfig", "from_dict", {"linear_weights_not_to_quantize": "lm_head.weight"}),
    ("CompressedTensorsConfig", "init", {}),
    ("CompressedTensorsConfig", "auto", {"quant_method": "compressed-tensors", "run_compressed": False}),
    ("CompressedTensorsConfig", "from_dict", {"dequantize": True, "use_optimized_inference": True}),
    # with a scheme: to_dict is compressed-tensors' QuantizationConfig.model_dump() (every default filled in)
    ("CompressedTensorsConfig", "init", {"config_groups": {"group_0": {"targets": ["Linear"], "weights": {
        "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}}},
        "format": "pack-quantized", "ignore": ["lm_head"]}),
    ("CompressedTensorsConfig", "auto", {"quant_method": "compressed-tensors", "version": "0.20.0", "sparsity_config": {},
        "transform_config": {}, "format": "float-quantized", "quantization_status": "compressed",
        "global_compression_ratio": None, "ignore": ["lm_head"], "kv_cache_scheme": None,
        "config_groups": {"group_0": {"targets": ["Linear"], "format": "float-quantized",
            "weights": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "channel", "dynamic": False,
                        "observer": "minmax"},
            "input_activations": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token",
                                  "dynamic": True, "observer": None}}}}),
    ("CompressedTensorsConfig", "from_dict", {"quantization_config": {"kv_cache_scheme": {"num_bits": 8, "type": "float",
        "symmetric": True, "strategy": "tensor", "dynamic": False}, "quantization_status": "frozen"}}),
    ("CompressedTensorsConfig", "init", {"config_groups": {"group_0": {"targets": ["re:.*q_proj$"], "weights": {
        "num_bits": 4, "type": "int", "symmetric": False, "strategy": "group", "group_size": 32, "actorder": "weight"}}},
        "global_compression_ratio": 1.5, "dequantize": True}),
    # dispatch errors
    (None, "auto", {"bits": 4}),
    (None, "auto", {"quant_method": "int3-magic"}),
]


def build(cls_name, how, d):
    if how == "auto":
        return AutoQuantizationConfig.from_dict(json.loads(json.dumps(d)))
    cls = CLASSES[cls_name]
    arg = json.loads(json.dumps(d))
    return cls.from_dict(arg) if how == "from_dict" else cls(**arg)


def main():
    cases = []
    for cls_name, how, d in CASES:
        case = {"class": cls_name, "how": how, "input": d}
        try:
            c = build(cls_name, how, d)
            case["result_class"] = type(c).__name__
            case["to_dict"] = json.loads(json.dumps(c.to_dict()))
            case["to_diff_dict"] = json.loads(json.dumps(c.to_diff_dict()))
            case["to_json_string"] = c.to_json_string()
            case["to_json_string_full"] = c.to_json_string(use_diff=False)
        except Exception as e:  # noqa: BLE001 - every error is the fixture
            case["error"] = {"type": type(e).__name__, "message": str(e)}
        cases.append(case)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"transformers": version("transformers"), "hqq": version("hqq"), "torchao": version("torchao"),
                   "compressed-tensors": version("compressed-tensors"), "cases": cases}, f, indent=1)
        f.write("\n")
    print(len(cases), "cases,", sum("error" in c for c in cases), "errors")


if __name__ == "__main__":
    main()
