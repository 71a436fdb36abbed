#!/usr/bin/env bash
# Makes a CA and a serving certificate for the webhook with openssl, and writes the (git-ignored) inputs of a
# kustomize overlay: the TLS Secret with the serving certificate, and the CA for every webhook's caBundle.
#
#   certs/gen-certs.sh            in-cluster Service: SANs DNS:<service>.<namespace>.svc and
#                                 DNS:<service>.<namespace>.svc.cluster.local;
#                                 writes manifests/overlays/certs-script/generated/
#   certs/gen-certs.sh --local    webhook on this host: SANs IP:127.0.0.1 and DNS:localhost, webhook URLs
#                                 https://127.0.0.1:<port>/mutate and /validate;
#                                 writes manifests/overlays/local/generated/
# Options:
#   --port N                      port of the local webhook (default 8443; --local only)
#   --apply                       then run `kubectl apply -k` on the overlay
#   --out DIR                     keys and certificates (default certs/out, git-ignored; keep the CA key safe)
#   --manifests DIR               the manifests tree whose overlay gets generated/ (default manifests/)
#   --service NAME --namespace NS the Service the certificate names (default acr-pull-webhook/acr-pull-webhook;
#                                 an overlay that renames them must match)
#   --days N                      serving certificate lifetime in days (default 365)
# Idempotent and safe to re-run: the CA is kept when present (so caBundle stays valid) and the serving
# certificate is renewed; re-apply the overlay and the webhook reloads the rotated files without a restart.
# Works offline; needs only openssl (and kubectl for --apply).
set -euo pipefail
umask 077

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
mode=service port=8443 apply=false out="$here/out" manifests="$root/manifests"
service=acr-pull-webhook namespace=acr-pull-webhook days=365

die() { echo "gen-certs: $*" >&2; exit 2; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --local) mode=local ;;
    --port) need "$@"; port="$2"; shift ;;
    --apply) apply=true ;;
    --out) need "$@"; out="$2"; shift ;;
    --manifests) need "$@"; manifests="$2"; shift ;;
    --service) need "$@"; service="$2"; shift ;;
    --namespace) need "$@"; namespace="$2"; shift ;;
    --days) need "$@"; days="$2"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
if [[ ! "$port" =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); then die "--port must be 1-65535, not $port"; fi
if [[ ! "$days" =~ ^[1-9][0-9]{0,5}$ ]]; then die "--days must be a positive number, not $days"; fi
dns1123='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
if [[ ! "$service" =~ $dns1123 || ! "$namespace" =~ $dns1123 ]]; then die "--service and --namespace must be DNS labels"; fi
command -v openssl >/dev/null || { echo "gen-certs: openssl is required" >&2; exit 1; }
if [[ "$mode" == local ]]; then overlay="$manifests/overlays/local"; else overlay="$manifests/overlays/certs-script"; fi
if [[ ! -f "$overlay/kustomization.yaml" ]]; then die "no overlay at $overlay (see --manifests)"; fi

mkdir -p "$out"
chmod 700 "$out"
ext="" dir=""
cleanup() {
  rm -f "$out/ca.key.new" "$out/ca.crt.new"
  if [[ -n "$ext" ]]; then rm -f "$ext"; fi
  if [[ -n "$dir" ]]; then rm -f "$dir/tls.csr" "$dir/tls.key.new" "$dir/tls.crt.new"; fi
}
trap cleanup EXIT

# CA: kept across runs. Explicit extensions: Go (the API server) wants CA:TRUE and keyCertSign.
if [[ ! -s "$out/ca.crt" || ! -s "$out/ca.key" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -sha256 \
    -subj "/CN=acr-pull-webhook CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$out/ca.key.new" -out "$out/ca.crt.new" 2>/dev/null
  mv "$out/ca.key.new" "$out/ca.key"
  mv "$out/ca.crt.new" "$out/ca.crt"
  echo "gen-certs: new CA $out/ca.crt"
else
  [[ "$(openssl x509 -in "$out/ca.crt" -noout -pubkey)" == "$(openssl pkey -in "$out/ca.key" -pubout)" ]] ||
    { echo "gen-certs: $out/ca.key does not match $out/ca.crt" >&2; exit 1; }
  openssl x509 -in "$out/ca.crt" -noout -checkend $((days * 86400)) >/dev/null ||
    echo "gen-certs: warning: the CA in $out expires before the new serving certificate; move $out away to make a new CA" >&2
fi

if [[ "$mode" == local ]]; then
  sans="IP:127.0.0.1,DNS:localhost"
  dir="$out/local"
else
  sans="DNS:${service}.${namespace}.svc,DNS:${service}.${namespace}.svc.cluster.local"
  dir="$out/${service}.${namespace}"
fi
mkdir -p "$dir"
ext="$(mktemp)"
printf '%s\n' "subjectAltName=$sans" "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth" \
  "keyUsage=critical,digitalSignature,keyEncipherment" >"$ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=${service}.${namespace}.svc" \
  -keyout "$dir/tls.key.new" -out "$dir/tls.csr" 2>/dev/null
openssl x509 -req -sha256 -in "$dir/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
  -days "$days" -extfile "$ext" -out "$dir/tls.crt.new" 2>/dev/null
# Each file is replaced by a rename, so a reader never sees a half-written one; the key goes first (for a
# moment the webhook may read the new key with the old certificate: it keeps its old pair and retries).
mv "$dir/tls.key.new" "$dir/tls.key"
mv "$dir/tls.crt.new" "$dir/tls.crt"
echo "gen-certs: serving certificate $dir/tls.crt (SANs $sans), key $dir/tls.key"

# The overlay's inputs: data only; the overlay's kustomization.yaml says where each value goes.
gen="$overlay/generated"
mkdir -p "$gen"
# Files written by earlier versions of this script.
rm -f "$gen/mutating.yaml" "$gen/validating.yaml" "$gen/tls.crt" "$gen/tls.key"
write() { # $1 = file name under generated/, $2 = mode, stdin = content
  cat >"$gen/.$1.new"
  chmod "$2" "$gen/.$1.new"
  mv "$gen/.$1.new" "$gen/$1"
}
{
  echo "# Written by certs/gen-certs.sh; do not edit."
  echo "caBundle=$(base64 <"$out/ca.crt" | tr -d '\n')"
  if [[ "$mode" == local ]]; then
    echo "mutateURL=https://127.0.0.1:${port}/mutate"
    echo "validateURL=https://127.0.0.1:${port}/validate"
  fi
} | write webhook.env 644
if [[ "$mode" == service ]]; then
  # The Secret as a plain manifest (one-line base64): kustomize's secretGenerator wraps base64 at 70 columns,
  # which makes every later `kubectl apply` report the unchanged Secret as "configured".
  {
    echo "# Written by certs/gen-certs.sh; do not edit. Holds the private key: keep it out of version control."
    echo "apiVersion: v1"
    echo "kind: Secret"
    echo "metadata:"
    echo "  name: acr-pull-webhook-tls"
    echo "  namespace: ${namespace}"
    echo "type: kubernetes.io/tls"
    echo "data:"
    echo "  tls.crt: $(base64 <"$dir/tls.crt" | tr -d '\n')"
    echo "  tls.key: $(base64 <"$dir/tls.key" | tr -d '\n')"
  } | write tls-secret.yaml 600
fi
echo "gen-certs: kustomize inputs in $gen"

if [[ "$apply" == true ]]; then
  kubectl apply -k "$overlay"
elif [[ "$mode" == local ]]; then
  echo "gen-certs: next: kubectl apply -k $overlay, then run the webhook with TLS_CERT_FILE=$dir/tls.crt TLS_KEY_FILE=$dir/tls.key PORT=$port"
else
  echo "gen-certs: next: kubectl apply -k $overlay"
fi
