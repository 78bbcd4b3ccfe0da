#!/usr/bin/env bash
# The transformers-methods table of the README: each quantization_config llmq quantizes on load (`llmq quantize
# --hf-config`), saved in transformers' / hqq's layout, read back and evaluated by llmq against the unquantized model
# on held-out WikiText-2 test windows of 256 tokens (32 for stories260K, 8 for SmolLM2): KL divergence, top-1
# agreement, perplexity, model.safetensors size.
# stories260K (llama2.c, f32) and SmolLM2-135M-Instruct (its Q4_1 GGUF dequantized to f32 by llmq convert — the
# reference is that dense model, so the rows measure the method, not the GGUF). Prints a Markdown table.
# Run from the repo root after `pnpm build`: bash tooling/quality-hf-quantizers.sh [out_dir] (MODELS="stories260k" for one)
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
CONFIGS=(
  'bnb NF4|{"load_in_4bit": true, "bnb_4bit_quant_type": "nf4"}'
  'bnb NF4 + double quant|{"load_in_4bit": true, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": true}'
  'bnb FP4|{"load_in_4bit": true}'
  'bnb LLM.int8|{"load_in_8bit": true}'
  'HQQ 4-bit g64|{"quant_method": "hqq", "nbits": 4, "group_size": 64}'
  'HQQ 3-bit g64|{"quant_method": "hqq", "nbits": 3, "group_size": 64}'
  'HQQ 2-bit g16|{"quant_method": "hqq", "nbits": 2, "group_size": 16}'
)
echo "| model | method (quantization_config) | KL divergence (mean, nats/token) | top-1 agreement | perplexity (fp32) | model.safetensors |"
echo "|---|---|---|---|---|---|"
for model in $MODELS; do
  for entry in "${CONFIGS[@]}"; do
    label=${entry%%|*}
    cfg=${entry#*|}
    q="$out/$model-$(echo "$label" | tr -c 'A-Za-z0-9' '-')"
    llmq quantize --model "$out/$model" --hf-config "$cfg" --output "$q" --overwrite --json >/dev/null 2>&1
    e=$(llmq eval --model "$q" --reference "$out/$model" --dataset fixtures/wikitext-2/test.txt --seq-len 256 \
      --num-samples "${SAMPLES[$model]}" --json 2>/dev/null)
    node -e '
      const e = JSON.parse(process.argv[1]);
      const mb = (require("fs").statSync(process.argv[4]).size / 2 ** 20).toFixed(2);
      console.log(`| ${process.argv[2]} | ${process.argv[3]} | ${e.kld.mean.toFixed(4)} | ${(100 * e.top1).toFixed(2)} % | ${e.perplexity.toFixed(2)} (${e.reference_perplexity.toFixed(2)}) | ${mb} MiB |`);
    ' "$e" "$model" "$label" "$q/model.safetensors"
  done
done
