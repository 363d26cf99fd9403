#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when one is missing.
set -euo pipefail

needed=()
# Browser tests drive Debian's Chromium (never a downloaded browser); speech tests use espeak-ng and sox.
[ -x /usr/bin/chromium ] || needed+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || needed+=(espeak-ng)
command -v sox >/dev/null 2>&1 || needed+=(sox)

if [ ${#needed[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages: ${needed[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
else
  apt_get=(sudo apt-get)
fi
"${apt_get[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends "${needed[@]}"
