#!/usr/bin/env bash
# Builds the pinned helm and promtool (each pinned by its own go.mod here) into test/e2e/.bin/<name>/<name> with
# test/e2e/build-go-tool.sh, reusing them while their go.mod/go.sum are unchanged. Cold: a few minutes each on
# 2 cores; warm: instant. Both are needed by the chart and monitoring tests (npm test skips those tests, saying
# so, when a binary is missing; .ci/run builds them first and requires them).
#
# Usage: test/tools/build.sh [helm] [promtool]   (default: both)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/../e2e/build-go-tool.sh"
version_of() { awk -v m="$1" '$1==m {print $2; exit}' "$2"; }

build_helm() {
  local v k8s minor
  v="$(version_of helm.sh/helm/v3 "$here/helm/go.mod")"
  k8s="$(version_of k8s.io/client-go "$here/helm/go.mod")"
  minor="${k8s#v0.}"; minor="${minor%%.*}"
  # Helm's Makefile sets these: its version, and the Kubernetes version `helm template` and `helm lint` assume
  # (without them helm assumes Kubernetes 1.20 and a chart's kubeVersion constraint fails).
  nice -n 10 bash "$build" "$here/helm" helm helm.sh/helm/v3/cmd/helm \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
}

build_promtool() {
  local v
  v="$(version_of github.com/prometheus/prometheus "$here/promtool/go.mod")"
  # remove_all_sd leaves out the cloud service discoveries (AWS, Azure, GCE, ...): promtool's rule checks and rule
  # unit tests do not use them, and they are most of the build. (The 3.5 LTS, v0.305, has no such tag.)
  nice -n 10 bash "$build" "$here/promtool" promtool github.com/prometheus/prometheus/cmd/promtool \
    -tags remove_all_sd -ldflags "-s -w -X github.com/prometheus/common/version.Version=$v"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(helm promtool)
for t in "${targets[@]}"; do
  case "$t" in
    helm) build_helm ;;
    promtool) build_promtool ;;
    *) echo "usage: $0 [helm] [promtool]" >&2; exit 2 ;;
  esac
done
