#!/usr/bin/env sh
# Installs what `npm start` and `npm test` need when it is missing, so both work on a fresh
# clone: the npm packages (which bring Node.js 24 as node_modules/.bin/node) and, for tests,
# grpcurl (built with `go install`). npm runs this as the prestart and pretest script.
set -eu
cd "$(dirname "$0")/.."

# The stamp holds the checksum of the package-lock.json that node_modules was installed from;
# comparing content, not file times, keeps a fresh checkout of the same lock from reinstalling.
lock_sum="$(cksum < package-lock.json)"
if [ -L node_modules ]; then
  # A symbolic link means another checkout (such as the main work tree of a git worktree)
  # owns the install; reinstalling through the link would change that checkout's packages.
  :
elif [ ! -f node_modules/.tansu-installed ] || [ "$(cat node_modules/.tansu-installed)" != "$lock_sum" ]; then
  echo "Installing npm packages (npm ci)..."
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.tansu-installed
fi

if [ "${1:-}" = "test" ]; then
  GOBIN_DIR="$(go env GOPATH 2>/dev/null)/bin"
  if ! command -v grpcurl >/dev/null 2>&1 && [ ! -x "$GOBIN_DIR/grpcurl" ]; then
    if command -v go >/dev/null 2>&1; then
      echo "Installing grpcurl with go install..."
      go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
    else
      echo "grpcurl is missing and Go is not installed; the grpcurl tests will fail" >&2
    fi
  fi
fi
