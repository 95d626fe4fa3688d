{{/* Names: <fullname>-<component>, trimmed to the 63 characters a label value allows. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "herald.fullname" -}}
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

{{/* (dict "root" $ "component" "operator") */}}
{{- define "herald.componentName" -}}
{{- printf "%s-%s" (include "herald.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of every object; .component may be empty for objects shared by components. */}}
{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "herald.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/part-of: herald
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* "true" when (dict "root" $ "component" ...) is rendered, else "": the operator and the
senders always, herald-api and the bot when enabled. */}}
{{- define "herald.enabled" -}}
{{- $values := index .root.Values .component -}}
{{- if or (has .component (list "operator" "sender")) $values.enabled -}}true{{- end -}}
{{- end -}}

{{- define "herald.serviceAccountName" -}}
{{- $values := index .root.Values .component -}}
{{- if $values.serviceAccount.create -}}
{{- default (include "herald.componentName" .) $values.serviceAccount.name -}}
{{- else -}}
{{- default "default" $values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "herald.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The connections every component shares: NATS (with this component's own identity),
PostgreSQL, logs. (dict "root" $ "component" "sender") */}}
{{- define "herald.commonEnv" -}}
{{- $values := .root.Values -}}
- name: HERALD_NATS_URL
{{- if $values.nats.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ $values.nats.existingSecret }}
      key: {{ $values.nats.urlKey }}
{{- else }}
  value: {{ $values.nats.url | quote }}
{{- end }}
{{- include "herald.natsEnv" . }}
- name: HERALD_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required: the name of a Secret holding the PostgreSQL DSN" $values.database.existingSecret }}
      key: {{ $values.database.urlKey }}
- name: HERALD_TOKEN_KEYS_FILE
  value: /etc/herald/token-keys/keys
- name: HERALD_LOG_FORMAT
  value: {{ $values.logs.format | quote }}
- name: HERALD_LOG_LEVEL
  value: {{ $values.logs.level | quote }}
{{- end -}}

{{/* The Secret holding the token key ring: yours, or the one the chart makes. */}}
{{- define "herald.tokenKeysSecret" -}}
{{- .Values.tokenKeys.existingSecret | default (printf "%s-token-keys" (include "herald.fullname" .)) -}}
{{- end -}}

{{/* Where the NATS files are mounted; the HERALD_NATS_*_FILE variables point here. */}}
{{- define "herald.natsDir" -}}/etc/herald/nats{{- end -}}

{{/* The component's NATS identity, from nats.auth.<component>: each has its own NATS user
with only its permissions (docs/nats.md). Passwords and tokens come from a Secret as
variables, an nkey seed or .creds file from a Secret as a file, the CA and the client
certificate from Secrets as files. (dict "root" $ "component" "sender") */}}
{{- define "herald.natsAuth" -}}
{{- $auth := index .root.Values.nats.auth .component -}}
{{- $where := printf "nats.auth.%s" .component -}}
{{- range $key := list "passwordKey" "tokenKey" "nkeySeedKey" "credsKey" -}}
{{- if and (index $auth $key) (not $auth.existingSecret) -}}
{{- fail (printf "%s.%s names a key of %s.existingSecret, which is not set" $where $key $where) -}}
{{- end -}}
{{- end -}}
{{- if and $auth.user (not $auth.passwordKey) -}}
{{- fail (printf "%s.user needs %s.passwordKey: the key of %s.existingSecret holding the password" $where $where $where) -}}
{{- end -}}
{{- if and $auth.passwordKey (not $auth.user) -}}
{{- fail (printf "%s.passwordKey needs %s.user" $where $where) -}}
{{- end -}}
{{- $ways := 0 -}}
{{- range $key := list "user" "tokenKey" "nkeySeedKey" "credsKey" -}}
{{- if index $auth $key }}{{ $ways = add1 $ways }}{{ end -}}
{{- end -}}
{{- if gt $ways 1 -}}
{{- fail (printf "%s: set one of user, tokenKey, nkeySeedKey and credsKey; a component authenticates one way" $where) -}}
{{- end -}}
{{- toYaml $auth -}}
{{- end -}}

{{- define "herald.natsEnv" -}}
{{- $auth := include "herald.natsAuth" . | fromYaml -}}
{{- $tls := .root.Values.nats.tls -}}
{{- $dir := include "herald.natsDir" . -}}
{{- if $auth.user }}
- name: HERALD_NATS_USER
  value: {{ $auth.user | quote }}
- name: HERALD_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $auth.existingSecret }}
      key: {{ $auth.passwordKey }}
{{- end }}
{{- if $auth.tokenKey }}
- name: HERALD_NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $auth.existingSecret }}
      key: {{ $auth.tokenKey }}
{{- end }}
{{- if $auth.nkeySeedKey }}
- name: HERALD_NATS_NKEY_SEED_FILE
  value: {{ printf "%s/auth/seed.nk" $dir | quote }}
{{- end }}
{{- if $auth.credsKey }}
- name: HERALD_NATS_CREDS_FILE
  value: {{ printf "%s/auth/user.creds" $dir | quote }}
{{- end }}
{{- if $tls.caSecret }}
- name: HERALD_NATS_TLS_CA_FILE
  value: {{ printf "%s/ca/ca.crt" $dir | quote }}
{{- end }}
{{- if $auth.tlsSecret }}
- name: HERALD_NATS_TLS_CERT_FILE
  value: {{ printf "%s/client/tls.crt" $dir | quote }}
- name: HERALD_NATS_TLS_KEY_FILE
  value: {{ printf "%s/client/tls.key" $dir | quote }}
{{- end }}
{{- with $tls.serverName }}
- name: HERALD_NATS_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Volumes for the NATS files of (dict "root" $ "component" "sender"); 0440: readable by
the pod's fsGroup, which the container's user is in, and nobody else. */}}
{{- define "herald.natsVolumes" -}}
{{- $auth := include "herald.natsAuth" . | fromYaml -}}
{{- $tls := .root.Values.nats.tls -}}
{{- if or $auth.nkeySeedKey $auth.credsKey }}
- name: nats-auth
  secret:
    secretName: {{ $auth.existingSecret }}
    defaultMode: 288  # 0440
    items:
      {{- with $auth.nkeySeedKey }}
      - {key: {{ . | quote }}, path: seed.nk}
      {{- end }}
      {{- with $auth.credsKey }}
      - {key: {{ . | quote }}, path: user.creds}
      {{- end }}
{{- end }}
{{- if $tls.caSecret }}
- name: nats-ca
  secret:
    secretName: {{ $tls.caSecret }}
    defaultMode: 288  # 0440
    items:
      - {key: {{ $tls.caKey | quote }}, path: ca.crt}
{{- end }}
{{- if $auth.tlsSecret }}
- name: nats-client-tls
  secret:
    secretName: {{ $auth.tlsSecret }}
    defaultMode: 288  # 0440
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
{{- end }}
{{- end -}}

{{- define "herald.natsVolumeMounts" -}}
{{- $auth := include "herald.natsAuth" . | fromYaml -}}
{{- $dir := include "herald.natsDir" . -}}
{{- if or $auth.nkeySeedKey $auth.credsKey }}
- name: nats-auth
  mountPath: {{ printf "%s/auth" $dir }}
  readOnly: true
{{- end }}
{{- if .root.Values.nats.tls.caSecret }}
- name: nats-ca
  mountPath: {{ printf "%s/ca" $dir }}
  readOnly: true
{{- end }}
{{- if $auth.tlsSecret }}
- name: nats-client-tls
  mountPath: {{ printf "%s/client" $dir }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* The pod-level parts every component shares: (dict "root" $ "component" "sender") */}}
{{- define "herald.podSpecCommon" -}}
{{- $values := index .root.Values .component -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  # The root filesystem is read-only; Python and libraries may still want a scratch /tmp.
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  # The ring that seals bot tokens on NATS; the same for every component.
  - name: token-keys
    secret:
      secretName: {{ include "herald.tokenKeysSecret" .root }}
      defaultMode: 288  # 0440
      items:
        - {key: {{ .root.Values.tokenKeys.key | quote }}, path: keys}
  {{- include "herald.natsVolumes" . | nindent 2 }}
{{- end -}}

{{- define "herald.containerCommon" -}}
image: {{ include "herald.image" .root | quote }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  {{- toYaml .root.Values.containerSecurityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: token-keys
    mountPath: /etc/herald/token-keys
    readOnly: true
  {{- include "herald.natsVolumeMounts" . | nindent 2 }}
{{- end -}}

{{/* Pod template metadata: (dict "root" $ "component" "sender") */}}
{{- define "herald.podMetadata" -}}
{{- $values := index .root.Values .component -}}
labels:
  {{- include "herald.selectorLabels" . | nindent 2 }}
  {{- with $values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "herald.operatorBroadcastRules" -}}
- apiGroups: [herald.dev]
  resources: [broadcasts]
  verbs: [get, list, watch, patch]
- apiGroups: [herald.dev]
  resources: [broadcasts/status]
  verbs: [get, patch]
# Only enforced with the OwnerReferencesPermissionEnforcement admission plugin, which
# guards finalizers too.
- apiGroups: [herald.dev]
  resources: [broadcasts/finalizers]
  verbs: [update]
# Bots: indexed (list, watch), patched by kopf's annotations, their status written.
- apiGroups: [herald.dev]
  resources: [bots]
  verbs: [get, list, watch, patch]
- apiGroups: [herald.dev]
  resources: [bots/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end -}}
