#!/usr/bin/env bash
# Makes a CA and a serving certificate for the webhook with openssl, and writes the kustomize inputs that put
# the certificate into a Secret and the CA into the webhook configurations' caBundle.
#
#   certs/gen-certs.sh                 in-cluster Service: SANs <service>.<namespace>.svc[.cluster.local];
#                                      writes manifests/overlays/certs-script/generated/
#   certs/gen-certs.sh --local [--port 8443]
#                                      webhook on this host: SANs IP 127.0.0.1 and localhost, URL
#                                      https://127.0.0.1:<port>/...; writes manifests/overlays/local/generated/
#   --apply                            then `kubectl apply -k` the overlay
#   --out DIR                          where keys and certificates go (default certs/out, git-ignored)
#   --service NAME --namespace NS      default acr-pull-webhook / acr-pull-webhook
#   --days N                           serving certificate lifetime (default 365)
# Idempotent: the CA is kept when present (rotating the serving certificate keeps caBundle valid); run again
# before the serving certificate expires; the webhook reloads rotated files without a restart.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
mode=service port=8443 apply=false out="$here/out" service=acr-pull-webhook namespace=acr-pull-webhook days=365
while [[ $# -gt 0 ]]; do
  case "$1" in
    --local) mode=local ;;
    --port) port="$2"; shift ;;
    --apply) apply=true ;;
    --out) out="$2"; shift ;;
    --service) service="$2"; shift ;;
    --namespace) namespace="$2"; shift ;;
    --days) days="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gen-certs: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
command -v openssl >/dev/null || { echo "gen-certs: openssl is required" >&2; exit 1; }
mkdir -p "$out"
chmod 700 "$out"

if [[ ! -s "$out/ca.crt" || ! -s "$out/ca.key" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=acr-pull-webhook CA" -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
  echo "gen-certs: new CA in $out/ca.crt"
fi

if [[ "$mode" == local ]]; then
  sans="IP:127.0.0.1,DNS:localhost"
  dir="$out/local"
  overlay="$root/manifests/overlays/local"
else
  sans="DNS:${service}.${namespace}.svc,DNS:${service}.${namespace}.svc.cluster.local"
  dir="$out/${service}.${namespace}"
  overlay="$root/manifests/overlays/certs-script"
fi
mkdir -p "$dir"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=${service}.${namespace}.svc" \
  -keyout "$dir/tls.key.new" -out "$dir/tls.csr" 2>/dev/null
openssl x509 -req -in "$dir/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days "$days" \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$sans") \
  -out "$dir/tls.crt.new" 2>/dev/null
# Key first, then certificate, each by rename: a reader never sees a half-written file.
mv "$dir/tls.key.new" "$dir/tls.key"
mv "$dir/tls.crt.new" "$dir/tls.crt"
rm -f "$dir/tls.csr"
echo "gen-certs: serving certificate $dir/tls.crt (SANs $sans)"

ca_b64="$(base64 < "$out/ca.crt" | tr -d '\n')"
gen="$overlay/generated"
mkdir -p "$gen"
ops() { # $1 = webhook count, $2 = path for the URL (empty: keep the Service reference)
  local i
  for ((i = 0; i < $1; i++)); do
    if [[ -n "$2" ]]; then
      printf -- '- op: remove\n  path: /webhooks/%d/clientConfig/service\n' "$i"
      printf -- '- op: add\n  path: /webhooks/%d/clientConfig/url\n  value: https://127.0.0.1:%s%s\n' "$i" "$port" "$2"
    fi
    printf -- '- op: add\n  path: /webhooks/%d/clientConfig/caBundle\n  value: %s\n' "$i" "$ca_b64"
  done
}
if [[ "$mode" == local ]]; then
  ops 2 /mutate > "$gen/mutating.yaml"
  ops 1 /validate > "$gen/validating.yaml"
else
  ops 2 "" > "$gen/mutating.yaml"
  ops 1 "" > "$gen/validating.yaml"
  cp "$dir/tls.crt" "$gen/tls.crt"
  cp "$dir/tls.key" "$gen/tls.key"
fi
echo "gen-certs: kustomize inputs in $gen"

if [[ "$apply" == true ]]; then
  kubectl apply -k "$overlay"
fi
