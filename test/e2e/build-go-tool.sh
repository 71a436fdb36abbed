#!/usr/bin/env bash
# Builds one Go command of a module under test/ (a test harness, or a tool pinned by the module's go.mod such as
# helm.sh/helm/v3/cmd/helm) into test/e2e/.bin/<name>/<name>, and reuses it while the module's inputs (go.mod,
# go.sum, its .go files) are unchanged. Go's module and build caches are shared with the control plane's build.
#
# Usage: build-go-tool.sh <module dir> <binary name> [package, default "."] [extra go build flags...]
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 <module dir> <binary name> [package] [go build flags...]" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
mod="$(cd "$1" && pwd)"
name="$2"
pkg="${3:-.}"
shift $(( $# >= 3 ? 3 : 2 ))
out="$here/.bin/$name/$name"
stamp="$here/.bin/$name/inputs.sha256"
inputs="$( { echo "$pkg $*"; cd "$mod" && find . -name '*.go' -o -name go.mod -o -name go.sum | LC_ALL=C sort | xargs cat; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$inputs" ]]; then
  echo "build-go-tool: $out is up to date"
  exit 0
fi
command -v go >/dev/null || { echo "build-go-tool: Go is required" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
# A file of its own: two worktrees sharing .bin may build at once; each rename is atomic.
tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
echo "build-go-tool: building $name ($pkg in ${mod#"$here/"}) with $(go version | cut -d' ' -f3)"
start=$(date +%s)
(cd "$mod" && go build -trimpath -ldflags "-s -w" "$@" -o "$tmp" "$pkg")
mv "$tmp" "$out"
echo "$inputs" > "$stamp"
echo "build-go-tool: built $out in $(( $(date +%s) - start ))s"
