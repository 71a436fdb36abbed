#!/usr/bin/env bash
# Builds the one-binary control plane (embedded etcd, kube-apiserver, kube-controller-manager) from Go modules
# into test/e2e/.bin/<kubernetes version>/controlplane, reusing it (and Go's module and build caches) when it
# is already there. A cold build on 2 cores takes many minutes: progress is printed as packages compile.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mod="$here/controlplane"
version="$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit} $1=="require" && $2=="k8s.io/kubernetes" {print $3; exit}' "$mod/go.mod")"
[[ -n "$version" ]] || { echo "build-control-plane: no k8s.io/kubernetes version in $mod/go.mod" >&2; exit 1; }
out="$here/.bin/$version/controlplane"
stamp="$here/.bin/$version/inputs.sha256"
inputs="$(cat "$mod/go.mod" "$mod/go.sum" "$mod/main.go" | sha256sum | cut -d' ' -f1)"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$inputs" ]]; then
  echo "build-control-plane: $out is up to date ($version)"
  exit 0
fi
command -v go >/dev/null || { echo "build-control-plane: Go is required" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
# A file of its own: two worktrees sharing .bin may build at once; each rename is atomic.
tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
minor="${version#v1.}"; minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
echo "build-control-plane: building k8s.io/kubernetes $version with $(go version | cut -d' ' -f3) (first build: many minutes)"
start=$(date +%s)
cd "$mod"
# -v names each package as it is compiled: print a count every 100 so a long build shows it is alive.
go build -v -trimpath -ldflags "$ldflags" -o "$tmp" . 2>&1 | awk -v start="$start" '
  /^#|: error|cannot |undefined:/ { print; next }
  { n++; if (n % 100 == 0) { printf "build-control-plane: %d packages compiled (%ds)\n", n, systime() - start; fflush() } }
  END { printf "build-control-plane: %d packages compiled\n", n }'
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "build-control-plane: go build failed" >&2; exit 1; }
mv "$tmp" "$out"
echo "$inputs" > "$stamp"
echo "build-control-plane: built $out in $(( $(date +%s) - start ))s"
