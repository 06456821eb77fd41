{{/* Standard chart helpers (helm create) plus gpu-operator's image join. */}}

{{- define "accel-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "accel-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "accel-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "accel-operator.labels" -}}
app.kubernetes.io/name: {{ include "accel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "accel-operator.chart" . }}
{{- end }}

{{- define "accel-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "accel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Full image reference from an operand spec: repository/image:version, or
repository/image@version when version is a digest (gpu-operator's rule: a ClusterPolicy
pins an operand by writing `version: sha256:...`).
Call as (dict "spec" .Values.driver "root" $).
*/}}
{{- define "accel-operator.image" -}}
{{- $version := toString (.spec.version | default .root.Chart.AppVersion) -}}
{{- if hasPrefix "sha256:" $version -}}
{{- printf "%s/%s@%s" .spec.repository .spec.image $version -}}
{{- else -}}
{{- printf "%s/%s:%s" .spec.repository .spec.image $version -}}
{{- end -}}
{{- end }}

{{/* The sibling fields of an operand image, as ClusterPolicy writes them. */}}
{{- define "accel-operator.imageFields" -}}
repository: {{ .spec.repository | quote }}
image: {{ .spec.image | quote }}
version: {{ toString (.spec.version | default .default) | quote }}
{{- end }}
