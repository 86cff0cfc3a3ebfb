#!/bin/sh
# Generates Java messages, their Kotlin DSL and Connect-Kotlin clients from every .proto file
# under the given roots. Maven calls it in generate-sources (see pom.xml) after copying protoc,
# the protoc-gen-connect-kotlin jar and the well-known-type .proto files into TOOLS.
#
# Usage: generate.sh TOOLS OUT PROTO_ROOT...
set -eu

tools=$1
out=$2
shift 2

protoc="$tools/protoc"
chmod +x "$protoc"

# protoc runs plugins as executables; this wrapper starts the plugin jar on the same JVM
# that runs Maven.
plugin="$tools/protoc-gen-connect-kotlin"
java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
cat > "$plugin" <<WRAPPER
#!/bin/sh
exec "$java_bin" -jar "$tools/protoc-gen-connect-kotlin.jar" "\$@"
WRAPPER
chmod +x "$plugin"

rm -rf "$out"
mkdir -p "$out/java" "$out/kotlin" "$out/connect"

# Each root is an import path; files are named relative to their root, as buf does.
includes="-I$tools/include"
for root in "$@"; do
  includes="$includes -I$root"
done

files=$(for root in "$@"; do (cd "$root" && find . -name '*.proto' | sed 's|^\./||'); done | sort)
if [ -z "$files" ]; then
  echo "generate.sh: no .proto files under $*" >&2
  exit 1
fi

# shellcheck disable=SC2086 # includes and files are word lists on purpose
"$protoc" $includes \
  --plugin=protoc-gen-connect-kotlin="$plugin" \
  --java_out="$out/java" \
  --kotlin_out="$out/kotlin" \
  --connect-kotlin_out="$out/connect" \
  --connect-kotlin_opt=generateCallbackMethods=false,generateCoroutineMethods=true,generateBlockingUnaryMethods=true \
  $files

echo "generate.sh: $(echo "$files" | wc -l | tr -d ' ') proto files -> $out"
