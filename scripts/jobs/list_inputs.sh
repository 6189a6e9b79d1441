#!/bin/sh
# Prints the video files of DIR as a JSON list of paths (sorted), for a for_each.
set -eu
dir=$1
first=1
printf '['
for f in "$dir"/*.mp4 "$dir"/*.mov "$dir"/*.mkv; do
  [ -f "$f" ] || continue
  [ $first -eq 1 ] || printf ','
  first=0
  printf '"%s"' "$(printf '%s' "$f" | sed 's/\\/\\\\/g; s/"/\\"/g')"
done
printf ']\n'
