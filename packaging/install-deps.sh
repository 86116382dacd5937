#!/usr/bin/env bash
# Installs, from Debian 12's own archive, everything tandem needs to build, test, benchmark and run.
# Idempotent: packages already present are left alone, and apt is asked only when one is missing.
# Usage: packaging/install-deps.sh [build|test|bench|all]   (default: all)
set -euo pipefail

build=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
       libuv1-dev node-llhttp libjsoncpp-dev libboost-test-dev libsystemd-dev libcli11-dev
       libhiredis-dev libcurl4-openssl-dev libssl-dev)
test=(curl haproxy redis-server redis-sentinel keepalived systemd-container iproute2 procps psmisc socat
      prometheus prometheus-alertmanager prometheus-node-exporter prometheus-blackbox-exporter
      prometheus-redis-exporter
      chromium python3 python3-pytest python3-pycurl python3-jinja2 python3-yaml
      ansible ansible-lint yamllint lintian dpkg-dev file slowhttptest wrk
      openssh-server openssh-client python3-apt tmux
      nghttp2-client python3-cryptography ccache)
bench=(nginx-light gnuplot-nox)

case "${1:-all}" in
  build) want=("${build[@]}") ;;
  test) want=("${build[@]}" "${test[@]}") ;;
  bench) want=("${build[@]}" "${test[@]}" "${bench[@]}") ;;
  all) want=("${build[@]}" "${test[@]}" "${bench[@]}") ;;
  -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "install-deps: unknown set '$1' (expected build, test, bench or all)" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: these packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' own services (nginx, haproxy, redis) from being started by apt:
# tandem's tests and benchmarks start exactly the processes they need, on the ports they choose.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
