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
{{- if and .Values.redis.enabled (not .Values.redis.existingSecret) }}
{{- $_ := set $data $keys.redisUrl (required "redis.enabled needs redis.url, redis.existingSecret or secret.existingSecret" .Values.redis.url) }}
{{- end }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/*
A secretKeyRef env entry. With an existing Secret the optional keys are marked optional, since the chart
cannot see which keys that Secret holds; with the chart's Secret only keys it wrote are referenced.
Args: dict "root" $ "env" NAME "key" KEY "optional" BOOL, and "secret" NAME for a Secret other than the chart's.
*/}}
{{- define "switchyard.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret | default (include "switchyard.secretName" .root) }}
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

{{/* The leader lease in ms the router will use: redis.leaseMs, or the router's default max(2000, 8 x intervalMs). */}}
{{- define "switchyard.redisLeaseMs" -}}
{{- if gt (int .Values.redis.leaseMs) 0 }}{{ int .Values.redis.leaseMs }}{{ else }}{{ max 2000 (mul 8 (int .Values.redis.intervalMs)) }}{{ end }}
{{- end }}

{{/*
Fails the render on Redis settings the router would refuse at start (SWY_ERR_ENV_INVALID, so every pod would
crash-loop), and on a Redis variable set both here and in server.extraEnv (a duplicate env entry).
*/}}
{{- define "switchyard.checkRedis" -}}
{{- if .Values.redis.enabled }}
{{- $interval := int .Values.redis.intervalMs }}
{{- $lease := int (include "switchyard.redisLeaseMs" .) }}
{{- if lt $lease (mul 3 $interval) }}
{{- fail (printf "redis.leaseMs (%d ms) must be at least 3 x redis.intervalMs (%d ms), so a live leader renews its lease in time" $lease (mul 3 $interval)) }}
{{- end }}
{{- if ge (mul 2 (int .Values.redis.timeoutMs)) $lease }}
{{- fail (printf "redis.timeoutMs (%d ms) must be under half the leader lease of %d ms (redis.leaseMs, or max(2000, 8 x redis.intervalMs) when it is 0)" (int .Values.redis.timeoutMs) $lease) }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "set redis.url or redis.existingSecret, not both: the URL is read from one place only" }}
{{- end }}
{{- $chartSet := dict "SWITCHYARD_REDIS_URL" "redis.url / redis.existingSecret" "SWITCHYARD_REDIS_PREFIX" "redis.prefix" "SWITCHYARD_COORDINATION_MS" "redis.intervalMs" "SWITCHYARD_LEASE_MS" "redis.leaseMs" "SWITCHYARD_REDIS_TIMEOUT_MS" "redis.timeoutMs" }}
{{- range .Values.server.extraEnv }}
{{- if hasKey $chartSet .name }}
{{- fail (printf "server.extraEnv sets %s, which the chart sets from %s while redis.enabled is true: move the value there" .name (get $chartSet .name)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* True when the ServiceMonitor renders: forced on, or `auto` and the Prometheus Operator API exists. */}}
{{- define "switchyard.serviceMonitorEnabled" -}}
{{- $mode := toString .Values.serviceMonitor.enabled }}
{{- if or (eq $mode "true") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) }}true{{ end }}
{{- end }}

{{/*
Memory in MiB the router is sized for: server.memoryMb, else resources.limits.memory (Ki/Mi/Gi/Ti, k/M/G/T or
bytes), else 0 (unknown). The same setting SWITCHYARD_MEMORY_MB carries.
*/}}
{{- define "switchyard.memoryMiB" -}}
{{- $explicit := int (.Values.server.memoryMb | default 0) -}}
{{- $limit := toString (dig "limits" "memory" "" (.Values.resources | default dict)) -}}
{{- if gt $explicit 0 -}}
{{- $explicit -}}
{{- else if regexMatch "^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$" $limit -}}
{{- $number := int64 (regexFind "^[0-9]+" $limit) -}}
{{- $unit := trimPrefix (toString $number) $limit -}}
{{- $bytes := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- div (mul $number (get $bytes $unit)) 1048576 -}}
{{- else -}}
0
{{- end -}}
{{- end -}}

{{/*
NODE_OPTIONS: server.nodeOptions when set; otherwise the semi-space the router's memory rule picks for its memory
setting (src/record/budgets.ts, semiSpaceMbFor): the young generation takes at most a quarter of what the setting
leaves above the 128 MiB idle baseline, 1 to 64 MiB per semi-space; 64 when the memory is unknown.
*/}}
{{- define "switchyard.nodeOptions" -}}
{{- if .Values.server.nodeOptions -}}
{{- .Values.server.nodeOptions -}}
{{- else -}}
{{- $memory := int64 (include "switchyard.memoryMiB" .) -}}
{{- $semi := 64 -}}
{{- if gt $memory 0 -}}
{{- $area := max (div $memory 4) (sub $memory 128) -}}
{{- $semi = min 64 (max 1 (div $area 8)) -}}
{{- end -}}
--max-semi-space-size={{ $semi }}
{{- end -}}
{{- end -}}
