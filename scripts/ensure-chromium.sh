#!/usr/bin/env bash
# Makes sure a Chromium is on this machine, for the console's browser tests
# (console/browser_test.go drives it headless with chromedp; nothing runs
# beforehand). Installs Debian's chromium package when it is missing (the
# chromium-driver package is not needed: chromedp speaks the DevTools
# protocol itself). With $CHROMIUM pointing at a Chrome or Chromium binary,
# it does nothing.
set -euo pipefail

have_chromium() {
  [ -n "${CHROMIUM:-}" ] && [ -x "${CHROMIUM}" ] && return 0
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$name" >/dev/null 2>&1 && return 0
  done
  return 1
}

if have_chromium; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no Chromium and no apt-get: install Chromium or Chrome, or set CHROMIUM to its binary" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
echo "ensure-chromium: installing Chromium (Debian package) for the console's browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium >/dev/null
if ! have_chromium; then
  echo "ensure-chromium: the chromium package installed no chromium binary on PATH" >&2
  exit 1
fi
