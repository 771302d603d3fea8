#!/usr/bin/env bash
# Installs the Debian packages tidegate builds, tests and benchmarks with.
# Idempotent: only packages that are missing are installed, so a warm machine pays nothing.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config clang-format curl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libssl-dev libsqlite3-dev libhiredis-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev llvm-14
  prometheus hey wrk nginx redis-server openssl valgrind
  chromium  # the console's browser test (tests/integration/console_test.cc), headless
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js runs the official `openai` client in a test; Debian's nodejs if the machine has none.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} Debian packages present"
else
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm packages of the tests (pinned in tests/node/package-lock.json): the openai client, and
# kubernetes-models, ajv and yaml for the manifest validator (yaml also for the dashboard and
# Prometheus rules validator). npm ci when any dependency of
# package.json is missing or at another version than pinned (a machine warmed before one was
# added gets it too).
node_dir="$(dirname "$0")/../tests/node"
if ! (cd "$node_dir" && node -e '
  const deps = require("./package.json").dependencies;
  for (const m in deps)
    if (require("./node_modules/" + m + "/package.json").version !== deps[m]) process.exit(1);
' 2>/dev/null); then
  echo "deps: npm ci in tests/node"
  (cd "$node_dir" && npm ci --no-audit --no-fund --silent)
fi
echo "deps: done"
