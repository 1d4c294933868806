#!/usr/bin/env bash
# Debian packages some offline assets come from. Installs them when run as root and they are missing;
# otherwise says once what to run. Notebooks that need a missing one report "missing asset" with the fix.
set -u
PKGS="dataset-fashion-mnist wordnet-base wordnet-sense-index"
missing=""
[ -e /usr/share/datasets/fashion-mnist ] || missing="$missing dataset-fashion-mnist"
[ -e /usr/share/wordnet/data.noun ] || missing="$missing wordnet-base"
[ -e /usr/share/wordnet/index.sense ] || missing="$missing wordnet-sense-index"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
else
  echo "NOTE: the Debian packages$missing are missing and installing them needs root:"
  echo "      sudo apt-get update && sudo apt-get install -y --no-install-recommends $PKGS"
  echo "      Until then the notebooks that need them are reported as 'missing asset' (the rest run)."
fi
exit 0
