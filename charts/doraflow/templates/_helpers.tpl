{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "doraflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: release-chart unless the release name already contains the chart. */}}
{{- define "doraflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "doraflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels; call with (dict "root" $ "component" "api"). */}}
{{- define "doraflow.labels" -}}
helm.sh/chart: {{ include "doraflow.chart" .root }}
app.kubernetes.io/name: {{ include "doraflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: doraflow
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "doraflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "doraflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "doraflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret every Doraflow pod reads its URLs and shared secret from. */}}
{{- define "doraflow.runtimeSecret" -}}
{{- default (printf "%s-runtime" (include "doraflow.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{- define "doraflow.serviceAccount" -}}
{{- printf "%s-%s" (include "doraflow.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Environment shared by every Doraflow container. */}}
{{- define "doraflow.env" -}}
- name: DORAFLOW_KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: DORAFLOW_KAFKA_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: DORAFLOW_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: DORAFLOW_LOG_FORMAT
  value: json
{{- end -}}

{{- define "doraflow.envFrom" -}}
- secretRef:
    name: {{ include "doraflow.runtimeSecret" . }}
{{- end -}}

{{/* Probes on the service endpoints every Doraflow process exposes. */}}
{{- define "doraflow.probes" -}}
livenessProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 20
  timeoutSeconds: 3
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
{{- end -}}
