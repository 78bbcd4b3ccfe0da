#!/usr/bin/env bash
# Shared by tooling/quality-*.sh (sourced): `quality_table OUT RECIPE...` converts stories260K into OUT/fp, quantizes it
# with each recipe (a name under fixtures/recipes/stories260k-NAME.yaml, or a path ending in .yaml), calibrated on the
# same 64 × 256 WikiText-2 validation tokens (llmq's seeded shuffle), evaluates each against the fp32 model on 32 × 256
# held-out WikiText-2 test tokens with `llmq eval`, and prints a Markdown table (KL divergence, top-1 agreement,
# perplexity, quantize time). Run from the repo root after `pnpm build`.
llmq() { node packages/llmq/dist/cli.js "$@"; }
quality_table() {
  local out=$1 r f q e name
  shift
  mkdir -p "$out"
  llmq convert --from llama2c fixtures/stories260K/stories260K.bin --tokenizer fixtures/stories260K/tok512.bin \
    --output "$out/fp" --overwrite >/dev/null
  echo "| recipe | KL divergence (mean, nats/token) | top-1 agreement | perplexity | quantize time |"
  echo "|---|---|---|---|---|"
  for r in "$@"; do
    f="fixtures/recipes/stories260k-$r.yaml" name=$r
    case $r in *.yaml) f=$r name=$(basename "$r" .yaml) ;; esac
    q=$(llmq quantize --model "$out/fp" --recipe "$f" \
      --dataset fixtures/wikitext-2/valid.txt --num-samples 64 --seq-len 256 --output "$out/$name" --overwrite --json 2>/dev/null)
    e=$(llmq eval --model "$out/$name" --reference "$out/fp" --dataset fixtures/wikitext-2/test.txt --seq-len 256 \
      --num-samples 32 --json 2>/dev/null)
    node -e '
      const q = JSON.parse(process.argv[1]), e = JSON.parse(process.argv[2]);
      const kl = e.kl_divergence ?? e.kld ?? {};
      console.log(`| ${process.argv[3]} | ${(kl.mean ?? NaN).toFixed(4)} | ${(100 * (e.top1_agreement ?? e.top1 ?? NaN)).toFixed(2)} % | ${(e.perplexity ?? NaN).toFixed(2)} | ${q.seconds.toFixed(1)} s |`);
    ' "$q" "$e" "$name"
  done
  node -e 'console.log(`\nfp32 reference perplexity ${JSON.parse(process.argv[1]).reference_perplexity.toFixed(2)}`)' "$e"
}
