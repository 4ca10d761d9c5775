{{/* Names and labels. Kept to the minimum so every template reads like the plain manifests in deploy/. */}}
{{- define "tokenscope.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tokenscope.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tokenscope.labels" -}}
{{ include "tokenscope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tokenscope.hmacSecretName" -}}
{{- .Values.hmacKey.existingSecret | default (printf "%s-hmac-key" (include "tokenscope.fullname" .)) -}}
{{- end -}}

{{- define "tokenscope.webhookSecretName" -}}
{{- if eq .Values.webhook.certificates.source "provided" -}}
{{- required "webhook.certificates.provided.secretName is required with source: provided" .Values.webhook.certificates.provided.secretName -}}
{{- else -}}
{{- printf "%s-webhook-tls" (include "tokenscope.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Redis URL without its password; $(REDIS_PASSWORD) is expanded by the kubelet in the pod. */}}
{{- define "tokenscope.redisUrl" -}}
{{- $r := .Values.redis -}}
{{- $auth := ternary ":$(REDIS_PASSWORD)@" "" (ne $r.password.existingSecret "") -}}
{{- if eq $r.mode "sentinel" -}}
{{- $nodes := $r.sentinel.nodes | default list -}}
{{- if not $nodes -}}{{- fail "redis.sentinel.nodes: list the sentinels (host:port)" -}}{{- end -}}
{{- printf "%s://%s%s/%s" (ternary "rediss+sentinel" "redis+sentinel" $r.tls) $auth (join "," $nodes) $r.sentinel.masterName -}}
{{- else if eq $r.mode "cluster" -}}
{{- $nodes := $r.cluster.nodes | default list -}}
{{- if not $nodes -}}{{- fail "redis.cluster.nodes: list some cluster nodes (host:port)" -}}{{- end -}}
{{- printf "%s://%s%s" (ternary "rediss+cluster" "redis+cluster" $r.tls) $auth (join "," $nodes) -}}
{{- else -}}
{{- $url := required "set redis.url, or redis.existingSecret.name for a URL kept in a Secret" $r.url -}}
{{- if $auth -}}
{{- regexReplaceAll "^(rediss?://)" $url (printf "${1}%s" $auth) -}}
{{- else -}}
{{- $url -}}
{{- end -}}
{{- end -}}
{{- end -}}
