#!/bin/bash
# `npm run mutate:parts [part ...]`: Stryker over src/ one part at a time, each part with its own incremental file
# (reports/stryker-incremental-<part>.json), then the score over every part run so far. A full `npm run mutate`
# needs hours on 2 cores, most of it for static mutants (code run while a module loads, tested against every
# test); here they are left out (--ignoreStatic: reported as Ignored, counted in the score's "ignored" column).
# With no argument every part runs; keep the incremental files and a rerun tests only what changed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

# Each part is a glob; the exclusions come from stryker.config.mjs's `mutate` list, the single source for them.
declare -A PARTS=(
  [acr]='src/acr/**/*.ts'
  [admission]='src/admission/**/*.ts'
  [config]='src/config/**/*.ts'
  [cloud]='src/cloud/**/*.ts'
  [credential-provider]='src/credential-provider/**/*.ts'
  [kube]='src/kube/**/*.ts'
  [pull-secrets]='src/pull-secrets/**/*.ts'
  [top]='src/*.ts,src/util/**/*.ts,src/standalone/**/*.ts'
)
ORDER=(acr admission config cloud credential-provider kube pull-secrets top)

exclusions=$(node --input-type=module -e "const c = (await import('./stryker.config.mjs')).default; console.log(c.mutate.filter((g) => g.startsWith('!')).join(','))") || exit 2

# `--list`: each part and the globs Stryker gets for it, nothing run.
if [ "${1:-}" = --list ]; then
  for part in "${ORDER[@]}"; do printf '%s\t%s\n' "$part" "${PARTS[$part]},$exclusions"; done
  exit 0
fi

# Arguments after `--` go to Stryker as they are (e.g. `-- --concurrency 4` for a part whose tests mostly wait on
# timers, where two workers leave the cores idle).
parts=()
extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; extra=("$@"); break; fi
  parts+=("$1")
  shift
done
[ ${#parts[@]} -eq 0 ] && parts=("${ORDER[@]}")
unknown=0
for part in "${parts[@]}"; do
  if [ -z "${PARTS[$part]:-}" ]; then
    echo "unknown part '$part'; parts: ${ORDER[*]}" >&2
    unknown=1
  fi
done
[ "$unknown" -eq 0 ] || exit 2

npm run build --silent || exit 2
failed=0
for part in "${parts[@]}"; do
  start=$(date +%s)
  echo "== $part: ${PARTS[$part]},$exclusions"
  npx stryker run --ignoreStatic --incrementalFile "reports/stryker-incremental-$part.json" --mutate "${PARTS[$part]},$exclusions" "${extra[@]}" || failed=1
  echo "== $part: $(( $(date +%s) - start )) s"
done

reports=()
for part in "${ORDER[@]}"; do
  [ -f "reports/stryker-incremental-$part.json" ] && reports+=("reports/stryker-incremental-$part.json")
done
node dist/scripts/mutation-score.js "${reports[@]}" test/MUTANTS.md || failed=1
exit "$failed"
