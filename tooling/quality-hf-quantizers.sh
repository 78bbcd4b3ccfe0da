#!/usr/bin/env bash
# The transformers-methods table of the README: each quantization_config llmq quantizes on load (`llmq quantize
# --hf-config`), saved in transformers' / hqq's layout, read back and evaluated by llmq against the unquantized model
# on held-out WikiText-2 test windows of 256 tokens (32 for stories260K, 8 for SmolLM2): KL divergence, top-1
# agreement, perplexity, model.safetensors size.
# stories260K (llama2.c, f32) and SmolLM2-135M-Instruct (its Q4_1 GGUF dequantized to f32 by llmq convert — the
# reference is that dense model, so the rows measure the method, not the GGUF). Prints a Markdown table.
# GPTQConfig / AwqConfig rows are calibrated by llmq's GPTQ / AWQ on WikiText-2 validation text (64 windows of 256
# tokens; the eval windows are the test split) and written in the AutoGPTQ / GPTQModel / AutoAWQ layout (float16); a
# row's models column ("all" or one model) says where it runs: stories260K's MLP (172 wide) cannot be packed at 4
# bits, SmolLM2's 576-wide inputs take whole groups of 64, not 128. EETQ needs in and out features in multiples of 64
# (its SM 75-89 weight layout): on stories260K only q_proj / o_proj fit (k/v have 32 outputs, the MLP is 172 wide).
# TorchAo's dynamic-activation and FbgemmFp8's rows are evaluated with their run-time input quantization (int8 per
# token / fp8 per row); FbgemmFp8 saves the rest of the model in bfloat16 (transformers forces it), so its row
# includes that cast. TorchAo's int4 rows (torchao's Int4Tensor, plain layout, in float32 like the int8 rows) take
# group sizes that divide the models' inputs: torchao leaves a weight whose in_features is not a multiple of group_size
# dense (stories260K's 172-wide down_proj at 32; at the default 128 nothing of either model but SmolLM2's down_proj).
# Run from the repo root after `pnpm build`: bash tooling/quality-hf-quantizers.sh [out_dir] (MODELS="stories260k" for
# one model, ROWS=<regex> for the rows whose label matches)
set -euo pipefail
cd "$(dirname "$0")/.."
llmq() { node packages/llmq/dist/cli.js "$@"; }
out=${1:-.quality-hf}
mkdir -p "$out"
llmq convert --from llama2c fixtures/stories260K/stories260K.bin --tokenizer fixtures/stories260K/tok512.bin \
  --output "$out/stories260k" --overwrite >/dev/null
MODELS=${MODELS:-stories260k smollm2}
if [[ " $MODELS " == *" smollm2 "* ]]; then
  smol=$(bash tools/fetch_smollm2.sh)
  llmq convert --from gguf "$smol" --output "$out/smollm2" --overwrite >/dev/null
fi
declare -A SAMPLES=([stories260k]=32 [smollm2]=8)
ATTENTION='"modules_in_block_to_quantize": [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.o_proj"]]'
CONFIGS=(
  'bnb NF4|all|{"load_in_4bit": true, "bnb_4bit_quant_type": "nf4"}'
  'bnb NF4 + double quant|all|{"load_in_4bit": true, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": true}'
  'bnb FP4|all|{"load_in_4bit": true}'
  'bnb LLM.int8|all|{"load_in_8bit": true}'
  'HQQ 4-bit g64|all|{"quant_method": "hqq", "nbits": 4, "group_size": 64}'
  'HQQ 3-bit g64|all|{"quant_method": "hqq", "nbits": 3, "group_size": 64}'
  'HQQ 2-bit g16|all|{"quant_method": "hqq", "nbits": 2, "group_size": 16}'
  'EETQ int8, q/o_proj only|stories260k|{"quant_method": "eetq", "modules_to_not_convert": ["lm_head", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]}'
  'EETQ int8|smollm2|{"quant_method": "eetq"}'
  'GPTQ 8-bit per channel, desc_act (v1)|all|{"quant_method": "gptq", "bits": 8, "group_size": -1, "desc_act": true}'
  "GPTQ 4-bit g32, attention only (v1)|stories260k|{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 32, $ATTENTION}"
  'GPTQ 4-bit g64 asym, desc_act (v2)|smollm2|{"quant_method": "gptq", "bits": 4, "group_size": 64, "sym": false, "desc_act": true, "format": "gptq_v2"}'
  'AWQ GEMM 4-bit g32, attention only|stories260k|{"quant_method": "awq", "group_size": 32, "modules_to_not_convert": ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]}'
  'AWQ GEMM 4-bit g64|smollm2|{"quant_method": "awq", "group_size": 64}'
  'TorchAo int8 weight-only (per row)|all|{"quant_method": "torchao", "quant_type": {"default": {"_type": "Int8WeightOnlyConfig", "_version": 2, "_data": {}}}}'
  'TorchAo int8 dynamic activations + int8 weights|all|{"quant_method": "torchao", "quant_type": {"default": {"_type": "Int8DynamicActivationInt8WeightConfig", "_version": 2, "_data": {}}}}'
  'TorchAo int4 weight-only g32 (plain; down_proj stays dense: 172 % 32 != 0)|stories260k|{"quant_method": "torchao", "quant_type": {"default": {"_type": "Int4WeightOnlyConfig", "_version": 2, "_data": {"group_size": 32}}}}'
  'TorchAo int4 weight-only g64 (plain)|smollm2|{"quant_method": "torchao", "quant_type": {"default": {"_type": "Int4WeightOnlyConfig", "_version": 2, "_data": {"group_size": 64}}}}'
  'FbgemmFp8 (bf16 model, fp8 weights and inputs)|all|{"quant_method": "fbgemm_fp8"}'
)
ROWS=${ROWS:-.}
echo "| model | method (quantization_config) | KL divergence (mean, nats/token) | top-1 agreement | perplexity (fp32) | model.safetensors |"
echo "|---|---|---|---|---|---|"
for model in $MODELS; do
  for entry in "${CONFIGS[@]}"; do
    label=${entry%%|*}
    rest=${entry#*|}
    models=${rest%%|*}
    cfg=${rest#*|}
    [[ "$models" == all || "$models" == "$model" ]] || continue
    [[ "$label" =~ $ROWS ]] || continue
    q="$out/$model-$(echo "$label" | tr -c 'A-Za-z0-9' '-')"
    calib=()
    [[ "$label" == GPTQ* || "$label" == AWQ* ]] && calib=(--dataset fixtures/wikitext-2/valid.txt --num-samples 64 --seq-len 256)
    llmq quantize --model "$out/$model" --hf-config "$cfg" "${calib[@]}" --output "$q" --overwrite --json >/dev/null 2>&1
    e=$(llmq eval --model "$q" --reference "$out/$model" --dataset fixtures/wikitext-2/test.txt --seq-len 256 \
      --num-samples "${SAMPLES[$model]}" --json 2>/dev/null)
    node -e '
      const e = JSON.parse(process.argv[1]);
      const mb = (require("fs").statSync(process.argv[4]).size / 2 ** 20).toFixed(2);
      console.log(`| ${process.argv[2]} | ${process.argv[3]} | ${e.kld.mean.toFixed(4)} | ${(100 * e.top1).toFixed(2)} % | ${e.perplexity.toFixed(2)} (${e.reference_perplexity.toFixed(2)}) | ${mb} MiB |`);
    ' "$e" "$model" "$label" "$q/model.safetensors"
  done
done
