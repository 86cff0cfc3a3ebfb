#!/usr/bin/env bash
# Regenerates Sources/Tansu/Generated from every .proto file under ../../proto and
# ../../third_party. Needs buf, protoc-gen-swift and protoc-gen-connect-swift on PATH; README.md
# says how to build the two plugins. set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

for tool in protoc-gen-swift protoc-gen-connect-swift; do
  if ! command -v "$tool" > /dev/null; then
    echo "generate.sh: $tool not found on PATH; build it as README.md describes" >&2
    exit 1
  fi
done

# The repository's own buf, installed by npm, when no buf is on PATH.
buf=$(command -v buf || echo "$root/node_modules/.bin/buf")

# Old output goes first, so a message or service removed from the protos disappears here too.
find "$here/Sources/Tansu/Generated" -name '*.swift' -delete
cd "$here"
"$buf" generate --template buf.gen.yaml
