#!/bin/sh
# Creates three small sample "videos" in DIR when it holds none, so the local demo needs no data.
# They are deterministic byte patterns, not real media: the bundled job only checksums them.
set -eu
dir=$1
mkdir -p "$dir"
if ls "$dir"/*.mp4 >/dev/null 2>&1; then
  echo "inputs already present in $dir"
  exit 0
fi
for name in beach city forest; do
  i=0
  while [ $i -lt 2000 ]; do printf '%s frame %05d\n' "$name" $i; i=$((i + 1)); done > "$dir/$name.mp4"
done
echo "created 3 sample videos in $dir"
