#!/usr/bin/env bash
# The transforms quality table of the README: stories260K quantized with and without SmoothQuant / AWQ, each recipe
# calibrated on the same 64 × 256 WikiText-2 validation tokens (llmq's seeded shuffle), evaluated against the fp32
# model on 32 × 256 held-out WikiText-2 test tokens. Prints a Markdown table (KL divergence, top-1 agreement,
# perplexity). Run from the repo root after `pnpm build`: bash tooling/quality-transforms.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
llmq() { node packages/llmq/dist/cli.js "$@"; }
out=${1:-.quality}
mkdir -p "$out"
llmq convert --from llama2c fixtures/stories260K/stories260K.bin --tokenizer fixtures/stories260K/tok512.bin \
  --output "$out/fp" --overwrite >/dev/null
echo "| recipe | KL divergence (mean, nats/token) | top-1 agreement | perplexity | quantize time |"
echo "|---|---|---|---|---|"
for r in w8a8 smoothquant-w8a8 smoothquant-w8a8-gptq w4a16-g32 awq-w4a16-g32 w4a16-g32-gptq awq-w4a16-g32-gptq; do
  q=$(llmq quantize --model "$out/fp" --recipe "fixtures/recipes/stories260k-$r.yaml" \
    --dataset fixtures/wikitext-2/valid.txt --num-samples 64 --seq-len 256 --output "$out/$r" --overwrite --json 2>/dev/null)
  e=$(llmq eval --model "$out/$r" --reference "$out/fp" --dataset fixtures/wikitext-2/test.txt --seq-len 256 \
    --num-samples 32 --json 2>/dev/null)
  node -e '
    const q = JSON.parse(process.argv[1]), e = JSON.parse(process.argv[2]);
    const kl = e.kl_divergence ?? e.kld ?? {};
    console.log(`| ${process.argv[3]} | ${(kl.mean ?? NaN).toFixed(4)} | ${(100 * (e.top1_agreement ?? e.top1 ?? NaN)).toFixed(2)} % | ${(e.perplexity ?? NaN).toFixed(2)} | ${q.seconds.toFixed(1)} s |`);
  ' "$q" "$e" "$r"
done
node -e 'console.log(`\nfp32 reference perplexity ${JSON.parse(process.argv[1]).reference_perplexity.toFixed(2)}`)' "$e"
