{{/*
Chart name, truncated to 63 characters (a DNS label).
*/}}
{{- define "gasoline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name when it already contains the chart name, else RELEASE-CHART.
Truncated to 52 characters so that suffixes ("-operator", "-kv-client", StatefulSet pod ordinals and the
controller-revision-hash label) stay within 63.
*/}}
{{- define "gasoline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version for the helm.sh/chart label.
*/}}
{{- define "gasoline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels. Call with (dict "ctx" $ "component" "operator").
*/}}
{{- define "gasoline.labels" -}}
helm.sh/chart: {{ include "gasoline.chart" .ctx }}
{{ include "gasoline.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: gasoline
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels. Call with (dict "ctx" $ "component" "operator").
*/}}
{{- define "gasoline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gasoline.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Names of the operator's and the kv's objects. */}}
{{- define "gasoline.operator.fullname" -}}
{{- printf "%s-operator" (include "gasoline.fullname" .) }}
{{- end }}

{{- define "gasoline.gateway.fullname" -}}
{{- printf "%s-gateway" (include "gasoline.fullname" .) }}
{{- end }}

{{- define "gasoline.kv.fullname" -}}
{{- printf "%s-kv" (include "gasoline.fullname" .) }}
{{- end }}

{{/*
The operator's ServiceAccount.
*/}}
{{- define "gasoline.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "gasoline.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The kv's ServiceAccount.
*/}}
{{- define "gasoline.kv.serviceAccountName" -}}
{{- if .Values.kv.serviceAccount.create }}
{{- default (include "gasoline.kv.fullname" .) .Values.kv.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.kv.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference. Call with (dict "image" .Values.kv.image "ctx" $): REPOSITORY:TAG, the tag defaulting
to the chart's appVersion; a digest (sha256:...) is appended with "@" instead.
*/}}
{{- define "gasoline.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag | toString }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The Secret holding the kv bearer token, and its key. Pools default to a Secret named gasoline-kv-token with the
key "token" in their own namespace (docs/pool-spec.md, kv.tokenSecretRef), so the chart's Secret has exactly that name.
*/}}
{{- define "gasoline.kv.secretName" -}}
{{- default "gasoline-kv-token" .Values.kv.auth.existingSecret }}
{{- end }}

{{- define "gasoline.kv.secretKey" -}}
{{- if .Values.kv.auth.existingSecret }}
{{- default "token" .Values.kv.auth.existingSecretKey }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/*
The kv address given to the operator (--kv-address) and, through it, to every pool that does not set
spec.kv.address: the chart's headless kv Service (it resolves to every replica; clients follow "not leader"
redirects), or operator.kvAddress.
*/}}
{{- define "gasoline.kv.address" -}}
{{- if .Values.operator.kvAddress }}
{{- .Values.operator.kvAddress }}
{{- else if .Values.kv.enabled }}
{{- printf "%s.%s.svc:7400" (include "gasoline.kv.fullname" .) .Release.Namespace }}
{{- else }}
{{- fail "kv.enabled=false needs operator.kvAddress (the host:port list of your gasoline-kv replicas)" }}
{{- end }}
{{- end }}

{{- define "gasoline.kv.raftSecretName" -}}
{{- default (printf "%s-raft" (include "gasoline.kv.fullname" .)) .Values.kv.raftSecret.existingSecret }}
{{- end }}

{{- define "gasoline.kv.raftSecretKey" -}}
{{- if .Values.kv.raftSecret.existingSecret }}
{{- default "secret" .Values.kv.raftSecret.existingSecretKey }}
{{- else }}
{{- "secret" }}
{{- end }}
{{- end }}

{{/*
The kv token volume (a Secret volume with the token at /var/run/gasoline/kv/token).
*/}}
{{- define "gasoline.kv.tokenVolume" -}}
- name: kv-token
  secret:
    secretName: {{ include "gasoline.kv.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ include "gasoline.kv.secretKey" . }}
        path: token
{{- end }}

{{/*
A soft or hard pod anti-affinity on the node, for (dict "ctx" $ "component" "kv" "mode" "soft").
*/}}
{{- define "gasoline.podAntiAffinity" -}}
{{- if eq .mode "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "gasoline.selectorLabels" . | nindent 10 }}
{{- else if eq .mode "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "gasoline.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}

{{/*
The Secret with the kv's TLS certificate (tls.crt, tls.key) and its CA (ca.crt): kv.tls.existingSecret or the
chart's RELEASE-kv-tls.
*/}}
{{- define "gasoline.kv.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "gasoline.kv.fullname" .)) .Values.kv.tls.existingSecret }}
{{- end }}

{{/*
"true" when the operator (and through it the sidecars) dial the kv over TLS: the chart's kv with kv.tls.enabled,
or your own kv (kv.enabled=false) whose CA is in kv.tls.existingSecret (key ca.crt).
*/}}
{{- define "gasoline.kv.tlsClients" -}}
{{- if and .Values.kv.tls.enabled (or .Values.kv.enabled .Values.kv.tls.existingSecret) }}true{{ end }}
{{- end }}

{{/*
"true" when the kv replicas encrypt their Raft traffic. kv.tls.raft "auto": on for a new install (no StatefulSet
yet, or `helm template`), and on an upgrade whatever the running StatefulSet does, so an upgrade never rolls the
replicas into two groups that cannot talk to each other.
*/}}
{{- define "gasoline.kv.raftTls" -}}
{{- if .Values.kv.tls.enabled }}
{{- $mode := toString .Values.kv.tls.raft }}
{{- if eq $mode "true" }}true
{{- else if eq $mode "auto" }}
{{- $sts := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "gasoline.kv.fullname" .) }}
{{- if not $sts }}true
{{- else }}
{{- range (index $sts.spec.template.spec.containers 0).args }}{{ if eq . "--raft-tls-cert=/var/run/gasoline/tls/tls.crt" }}true{{ end }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
