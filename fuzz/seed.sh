#!/bin/sh
# Seeds the fuzz corpus with the real samples (kept out of the repository: they carry no license)
# and a few synthetic backups.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/corpus/read_headers"
mkdir -p "$corpus"
cp "$here/../../shared/samples/"*.trn "$corpus/" 2>/dev/null || echo "no samples: synthetic seeds only"
cargo run --quiet --manifest-path "$here/../Cargo.toml" -- gen-share --dir "$corpus" --logs 3 --log-size 8KiB \
    --with-full --full-size 8KiB --empty-after 1 --incomplete-last --wrk 1 >/dev/null
