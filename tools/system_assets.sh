#!/usr/bin/env bash
# Debian packages some offline assets come from, and the browser the JupyterLab tests drive (chromium with
# chromium-driver; selenium talks to it, so nothing downloads a browser). Installs them when run as root and
# they are missing; otherwise says once what to run. Notebooks that need a missing one report "missing asset"
# with the fix; the browser tests skip (and fail as root, where this script should have installed it).
set -u
PKGS="dataset-fashion-mnist wordnet-base wordnet-sense-index chromium chromium-driver"
missing=""
[ -e /usr/share/datasets/fashion-mnist ] || missing="$missing dataset-fashion-mnist"
[ -e /usr/share/wordnet/data.noun ] || missing="$missing wordnet-base"
[ -e /usr/share/wordnet/index.sense ] || missing="$missing wordnet-sense-index"
command -v chromium >/dev/null || missing="$missing chromium"
command -v chromedriver >/dev/null || missing="$missing chromium-driver"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
else
  echo "NOTE: the Debian packages$missing are missing and installing them needs root:"
  echo "      sudo apt-get update && sudo apt-get install -y --no-install-recommends $PKGS"
  echo "      Until then the notebooks that need them are reported as 'missing asset' (the rest run)"
  echo "      and the browser tests (tests/test_browser.py) skip."
fi
exit 0
