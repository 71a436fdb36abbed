{{/* Names: <release> when it already contains the chart name (the usual `helm install acr-pull-webhook`). */}}
{{- define "acr-pull-webhook.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "acr-pull-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The standard labels. Never app.kubernetes.io/managed-by=acr-pull-webhook: that label marks the pull Secrets the
webhook manages (and deletes when idle); the chart's objects say Helm.
*/}}
{{- define "acr-pull-webhook.labels" -}}
{{ include "acr-pull-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: webhook
app.kubernetes.io/part-of: acr-pull-webhook
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "acr-pull-webhook.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "acr-pull-webhook.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "secret" -}}
{{ .Values.certificates.secret.name }}
{{- else -}}
{{ include "acr-pull-webhook.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{/* The namespaces never served: kube-system and the webhook's own (it must always be able to start). */}}
{{- define "acr-pull-webhook.namespaceSelector" -}}
matchExpressions:
  - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, {{ .Release.Namespace }}]}
  - {key: acr-pull-webhook.k8s.aliyun.com/ignore, operator: NotIn, values: ["true"]}
{{- end -}}

{{/* clientConfig of one webhook: the Service, or webhook.url for a webhook outside the cluster. */}}
{{- define "acr-pull-webhook.clientConfig" -}}
{{- $root := index . 0 -}}
{{- $path := index . 1 -}}
{{- $ca := index . 2 -}}
{{- if $root.Values.webhook.url }}
url: {{ printf "%s%s" (trimSuffix "/" $root.Values.webhook.url) $path | quote }}
{{- else }}
service: {name: {{ include "acr-pull-webhook.fullname" $root }}, namespace: {{ $root.Release.Namespace }}, path: {{ $path }}, port: 443}
{{- end }}
{{- if $ca }}
caBundle: {{ $ca }}
{{- end }}
{{- end -}}

{{/*
The self-signed CA and serving certificate, made once per render and shared by the Secret and the webhooks'
caBundle (memoized in .Values). An existing Secret is reused, so upgrades do not rotate the CA under the API
server; delete the Secret and upgrade to renew. helm template (no cluster) makes new ones every time.
*/}}
{{- define "acr-pull-webhook.selfSigned" -}}
{{- if not (hasKey .Values "__selfSigned") -}}
{{- $name := include "acr-pull-webhook.tlsSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- $data := dict -}}
{{- if $existing }}{{ $data = $existing.data | default dict }}{{ end -}}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") -}}
{{- $_ := set .Values "__selfSigned" (dict "ca" (index $data "ca.crt") "crt" (index $data "tls.crt") "key" (index $data "tls.key")) -}}
{{- else -}}
{{- $svc := include "acr-pull-webhook.fullname" . -}}
{{- $dns := list (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- $ips := list -}}
{{- if .Values.webhook.url -}}
{{- $host := regexReplaceAll ":[0-9]+$" (urlParse .Values.webhook.url).host "" -}}
{{- if regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$" $host }}{{ $ips = append $ips $host }}{{ else }}{{ $dns = append $dns $host }}{{ end -}}
{{- end -}}
{{- $days := int .Values.certificates.selfSigned.validityDays -}}
{{- $ca := genCA (printf "%s CA" $svc) $days -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc .Release.Namespace) $ips $dns $days $ca -}}
{{- $_ := set .Values "__selfSigned" (dict "ca" ($ca.Cert | b64enc) "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The caBundle every webhook carries: none with cert-manager (its cainjector fills it). */}}
{{- define "acr-pull-webhook.caBundle" -}}
{{- if eq .Values.certificates.mode "self-signed" -}}
{{- include "acr-pull-webhook.selfSigned" . -}}
{{- .Values.__selfSigned.ca -}}
{{- else if eq .Values.certificates.mode "secret" -}}
{{- .Values.certificates.secret.caBundle | b64enc -}}
{{- end -}}
{{- end -}}

{{/*
Workloads are sent only when their pod template (or, misplaced, their own metadata) has ACR annotations: the
template at spec.template, or spec.jobTemplate.spec.template for CronJobs. Every field is read behind has().
*/}}
{{- define "acr-pull-webhook.workloadMatchConditions" -}}
- name: has-acr-annotations
  expression: {{ include "acr-pull-webhook.workloadCondition" . | quote }}
{{- end -}}
{{- define "acr-pull-webhook.workloadCondition" -}}
{{- $acr := ".annotations.exists(k, k.startsWith('k8s.aliyun.com/acr-'))" -}}
(has(object.metadata.annotations) && object.metadata{{ $acr }}) || (has(object.spec) && has(object.spec.template) && has(object.spec.template.metadata) && has(object.spec.template.metadata.annotations) && object.spec.template.metadata{{ $acr }}) || (has(object.spec) && has(object.spec.jobTemplate) && has(object.spec.jobTemplate.spec) && has(object.spec.jobTemplate.spec.template) && has(object.spec.jobTemplate.spec.template.metadata) && has(object.spec.jobTemplate.spec.template.metadata.annotations) && object.spec.jobTemplate.spec.template.metadata{{ $acr }})
{{- end -}}

{{/*
The credential helper's ConfigMap as config.credentialHelper.configMap says ("namespace/name"; the webhook's
default when unset), or "" when it is turned off. The kube-system Role follows it, so moving the ConfigMap moves
the grant.
*/}}
{{- define "acr-pull-webhook.helperConfigMap" -}}
{{- $helper := get (.Values.config | default dict) "credentialHelper" | default dict -}}
{{- if hasKey $helper "configMap" -}}
{{- $helper.configMap | default "" | trim -}}
{{- else -}}
kube-system/acr-configuration
{{- end -}}
{{- end -}}
