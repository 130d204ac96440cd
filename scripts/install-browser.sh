#!/usr/bin/env bash
# Debian's chromium for the browser tests: Playwright's own browser download
# cannot work on machines without internet, so the tests drive /usr/bin/chromium.
set -euo pipefail
# The CJK font is needed too: the format tests print Chinese seeds to PDF with it.
if [ -x /usr/bin/chromium ] && ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
