{{/* Named templates shared by the Switchyard chart: names, labels, secret wiring and render-time checks. */}}

{{/* Chart name, truncated to the 63-character DNS label limit. */}}
{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "switchyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version for the helm.sh/chart label. */}}
{{- define "switchyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: immutable on a Deployment, so they never carry versions or the chart label. */}}
{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels for every resource. */}}
{{- define "switchyard.labels" -}}
helm.sh/chart: {{ include "switchyard.chart" . }}
{{ include "switchyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference; a digest pins the exact build and wins over the tag. */}}
{{- define "switchyard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap holding the policy files. */}}
{{- define "switchyard.policiesConfigMapName" -}}
{{- default (printf "%s-policies" (include "switchyard.fullname" .)) .Values.policies.existingConfigMap }}
{{- end }}

{{/* Name of the Secret the pods read credentials from (chart-managed or existing). */}}
{{- define "switchyard.secretName" -}}
{{- default (include "switchyard.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/*
Credentials the chart-managed Secret holds, as a map of key name to value. Only keys with a value are
written, and the Deployment references exactly these keys, so no pod waits on a missing key.
*/}}
{{- define "switchyard.managedSecretData" -}}
{{- $keys := .Values.secret.keys }}
{{- $data := dict }}
{{- if .Values.secret.existingSecret }}
{{- /* The existing Secret holds the credentials: nothing to write. */}}
{{- else }}
{{- if .Values.admin.token }}
{{- $_ := set $data $keys.adminToken .Values.admin.token }}
{{- end }}
{{- if .Values.unleash.enabled }}
{{- $_ := set $data $keys.unleashApiToken (required "unleash.enabled needs unleash.apiToken or secret.existingSecret" .Values.unleash.apiToken) }}
{{- if .Values.unleash.adminToken }}
{{- $_ := set $data $keys.unleashAdminToken .Values.unleash.adminToken }}
{{- end }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $_ := set $data $keys.redisUrl (required "redis.enabled needs redis.url or secret.existingSecret" .Values.redis.url) }}
{{- end }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/*
A secretKeyRef env entry. With an existing Secret the optional keys are marked optional, since the chart
cannot see which keys that Secret holds; with the chart's Secret only keys it wrote are referenced.
Args: dict "root" $ "env" NAME "key" KEY "optional" BOOL
*/}}
{{- define "switchyard.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "switchyard.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/* Fails the render when the pod could be killed before it finishes draining. */}}
{{- define "switchyard.checkGracePeriod" -}}
{{- $needMs := add (int .Values.server.drainMs) (mul (int .Values.server.preStopSleepSeconds) 1000) }}
{{- if le (mul (int .Values.terminationGracePeriodSeconds) 1000) $needMs }}
{{- fail (printf "terminationGracePeriodSeconds (%d s) must exceed server.preStopSleepSeconds + server.drainMs (%d ms), or in-flight requests are cut off" (int .Values.terminationGracePeriodSeconds) $needMs) }}
{{- end }}
{{- end }}

{{/* Fails the render when several pods would share a claim that only one node can mount. */}}
{{- define "switchyard.checkPersistence" -}}
{{- if and .Values.persistence.enabled (not .Values.persistence.existingClaim) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- if not (has "ReadWriteMany" .Values.persistence.accessModes) }}
{{- fail "persistence with more than one replica needs persistence.accessModes to include ReadWriteMany (or use the emptyDir default and share state through Redis)" }}
{{- end }}
{{- end }}
{{- end }}

{{/* True when the ServiceMonitor renders: forced on, or `auto` and the Prometheus Operator API exists. */}}
{{- define "switchyard.serviceMonitorEnabled" -}}
{{- $mode := toString .Values.serviceMonitor.enabled }}
{{- if or (eq $mode "true") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) }}true{{ end }}
{{- end }}
