{{/*
Names, labels and images shared by every template.
*/}}

{{- define "trunkline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: the release name, plus the chart
name unless the release name already contains it. */}}
{{- define "trunkline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "trunkline.operator.fullname" -}}
{{- printf "%s-operator" (include "trunkline.fullname" .) }}
{{- end }}

{{- define "trunkline.dataplane.fullname" -}}
{{- printf "%s-dataplane" (include "trunkline.fullname" .) }}
{{- end }}

{{- define "trunkline.bgp.fullname" -}}
{{- printf "%s-bgp" (include "trunkline.fullname" .) }}
{{- end }}

{{- define "trunkline.operator.serviceAccountName" -}}
{{- default (include "trunkline.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- end }}

{{- define "trunkline.dataplane.serviceAccountName" -}}
{{- default (include "trunkline.dataplane.fullname" .) .Values.dataplane.serviceAccount.name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "trunkline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "trunkline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: trunkline
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a component: (dict "ctx" $ "component" "operator"). */}}
{{- define "trunkline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trunkline.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a component's resources. */}}
{{- define "trunkline.componentLabels" -}}
{{ include "trunkline.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* An image reference: (dict "ctx" $ "image" .Values.operator.image). */}}
{{- define "trunkline.image" -}}
{{- $tag := .image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion }}
{{- if .ctx.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .ctx.Values.image.registry) .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* The rules of a Role or ClusterRole of deploy/rbac/, copied into files/rbac/
(the single source: a test fails when the copy differs). */}}
{{- define "trunkline.rbacRules" -}}
{{- $role := .ctx.Files.Get (printf "files/rbac/%s.yaml" .file) | fromYaml }}
{{- if not $role.rules }}
{{- fail (printf "files/rbac/%s.yaml has no rules" .file) }}
{{- end }}
{{- toYaml $role.rules }}
{{- end }}

{{/* The name of the Lease the operator campaigns for: the resourceNames of
the leader election Role, so the two cannot disagree. */}}
{{- define "trunkline.leaseName" -}}
{{- $role := .Files.Get "files/rbac/operator-leader-election.yaml" | fromYaml }}
{{- $name := "" }}
{{- range $role.rules }}
{{- if .resourceNames }}{{ $name = first .resourceNames }}{{ end }}
{{- end }}
{{- required "files/rbac/operator-leader-election.yaml names no Lease" $name }}
{{- end }}

{{/* The name of the Lease the BGP speaker campaigns for: the resourceNames
of its namespace Role (deploy/rbac/bgp-namespace.yaml). */}}
{{- define "trunkline.bgp.leaseName" -}}
{{- $role := .Files.Get "files/rbac/bgp-namespace.yaml" | fromYaml }}
{{- $name := "" }}
{{- range $role.rules }}
{{- if .resourceNames }}{{ $name = first .resourceNames }}{{ end }}
{{- end }}
{{- required "files/rbac/bgp-namespace.yaml names no Lease" $name }}
{{- end }}
