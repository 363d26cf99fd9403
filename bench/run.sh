#!/usr/bin/env bash
# Run a benchmark from a fresh clone: bench/run.sh simulate|spawn|capacity|web [options]
# Sets up .venv with the test requirements (the simulator uses tests/fakes) through the Makefile,
# and installs espeak-ng and sox from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  simulate|spawn|capacity|web) ;;
  *) echo "usage: bench/run.sh simulate|spawn|capacity|web [options]   (see BENCHMARKS.md)" >&2; exit 2 ;;
esac

make --no-print-directory .venv/.dev-installed

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
if [ ${#missing[@]} -gt 0 ]; then
  apt_get=(apt-get)
  [ "$(id -u)" -eq 0 ] || apt_get=(sudo apt-get)
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi

exec .venv/bin/python -m "bench.$1" "${@:2}"
