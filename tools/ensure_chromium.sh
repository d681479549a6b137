#!/usr/bin/env bash
# The browser test drives Debian's Chromium (playwright's own browser download is not used).
# Installs it when missing and we are root; otherwise says how to install it.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "note: chromium is not installed; the browser test will be skipped (sudo apt-get install chromium)" >&2
fi
