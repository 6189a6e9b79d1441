#!/bin/sh
# The bundled job: what a GPU instance's start command would run, reduced to work any machine
# can do. It "processes" INPUT in stages (a checksum stands in for the transcode), prints
# progress, writes a result file under OUTPUT_DIR, prints its location, and ends with the
# success marker the workflow waits for.
set -eu
input=$1
output_dir=$2
stage_delay=${JOB_STAGE_DELAY:-0.2}
name=$(basename "$input")
mkdir -p "$output_dir"
echo "job: processing $name"
for pct in 10 35 60 85; do
  echo "progress: $pct%"
  sleep "$stage_delay"
done
sum=$(sha256sum "$input" | cut -d' ' -f1)
bytes=$(wc -c < "$input" | tr -d ' ')
result="$output_dir/${name%.*}.json"
printf '{"input": "%s", "sha256": "%s", "bytes": %s}\n' "$name" "$sum" "$bytes" > "$result"
echo "progress: 100%"
echo "RESULT_URL=file://$(cd "$(dirname "$result")" && pwd)/$(basename "$result")"
echo "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY"
