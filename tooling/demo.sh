#!/usr/bin/env bash
# The README's main job on the bundled model: convert stories260K (llama2.c) to an HF directory, quantize it to
# W4A16 group 32 with round-to-nearest and with GPTQ, and print perplexity, KL divergence and top-1 agreement of
# both against the unquantized model on held-out WikiText-2 text.
set -euo pipefail
cd "$(dirname "$0")/.."
pnpm -s build >/dev/null
llmq() { node packages/llmq/dist/cli.js "$@"; }
out=.demo
mkdir -p "$out"

llmq convert --from llama2c fixtures/stories260K/stories260K.bin --tokenizer fixtures/stories260K/tok512.bin \
  --output "$out/stories260K" --overwrite
llmq quantize --model "$out/stories260K" --recipe fixtures/recipes/stories260k-w4a16-g32.yaml \
  --output "$out/stories260K-W4A16-rtn" --overwrite --report "$out/quantize-rtn.html"
llmq quantize --model "$out/stories260K" --recipe fixtures/recipes/stories260k-w4a16-g32-gptq.yaml \
  --dataset fixtures/wikitext-2/valid.txt --num-samples 64 --seq-len 256 \
  --output "$out/stories260K-W4A16-gptq" --overwrite --report "$out/quantize-gptq.html"
for m in rtn gptq; do
  echo "== W4A16 g32 $m vs fp32 (WikiText-2 test, 32 windows × 256 tokens)"
  llmq eval --model "$out/stories260K-W4A16-$m" --reference "$out/stories260K" \
    --dataset fixtures/wikitext-2/test.txt --seq-len 256 --num-samples 32 --report "$out/eval-$m.html"
done
llmq inspect "$out/stories260K-W4A16-gptq" | head -5
