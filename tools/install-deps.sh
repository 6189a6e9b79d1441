#!/usr/bin/env bash
# Installs every Debian 12 package flowrun needs to build, run and test. Safe to run again.
set -euo pipefail
packages=(
  # toolchain
  g++ make cmake pkg-config ca-certificates
  # libraries (see shared BUILD-NOTES)
  libyaml-cpp-dev libboost-dev libboost-filesystem-dev libboost-system-dev libcurl4-openssl-dev
  # fibers: a waiting for_each item parks on its own small stack, not a thread (engine/io/fiber_scheduler)
  libboost-context-dev
  nlohmann-json3-dev liblua5.4-dev libspdlog-dev libfmt-dev catch2 libsqlite3-dev libcli11-dev
  # RE2: the linear-time engine for user-supplied regexes
  libre2-dev
  # simdjson: the fast path for JSONL lines parsed into Lua (flow.http_lines, batch ingestion)
  libsimdjson-dev
  # Prometheus exposition of the metrics (issue 17)
  prometheus-cpp-dev
  # the browser test of the live view (headless), and the terminal view's test (a pseudo-terminal)
  chromium tmux
  # the test simulators are small Python programs (standard library only)
  python3
  # the short libFuzzer run in the suite (tools/fuzz.sh): clang with its sanitizer and fuzzer runtimes
  clang libclang-rt-14-dev
  # the code style check in the suite (tools/format.sh --check)
  clang-format
  # the benchmarks' peers (bench/run): log scans, event-loop monitors in Node.js and asyncio,
  # the per-step overhead, the threaded monitor
  ripgrep nodejs python3-aiohttp ansible-core python3-requests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
