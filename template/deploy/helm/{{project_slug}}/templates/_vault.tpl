{{/* Vault's credentials in the pod, by auth method. Empty without a `vault` block. */}}

{{/* Environment variables read from the operator's Secret (approle: role id; token: the token). */}}
{{- define "service.vaultEnv" -}}
{{- with .Values.vault }}
{{- if or .approle .token }}
env:
{{- end }}
{{- with .approle }}
  - name: VAULT_ROLE_ID
    valueFrom:
      secretKeyRef:
        name: {{ .existingSecret }}
        key: {{ .roleIdKey }}
{{- end }}
{{- with .token }}
  - name: VAULT_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ .existingSecret }}
        key: {{ .key }}
{{- end }}
{{- end }}
{{- end }}

{{/* Files: the projected service account token (kubernetes) or the secret id (approle). */}}
{{- define "service.vaultMounts" -}}
{{- with .Values.vault }}
{{- if or .kubernetes .approle }}
- name: vault-credentials
  mountPath: /var/run/secrets/vault
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "service.vaultVolumes" -}}
{{- with .Values.vault }}
{{- with .kubernetes }}
- name: vault-credentials
  projected:
    sources:
      - serviceAccountToken:
          path: token
          {{- with .tokenAudience }}
          audience: {{ . }}
          {{- end }}
          expirationSeconds: {{ .tokenExpirationSeconds }}
{{- end }}
{{- with .approle }}
- name: vault-credentials
  secret:
    secretName: {{ .existingSecret }}
    defaultMode: 0440  # read-only, for the fsGroup the service runs in
    items:
      - key: {{ .secretIdKey }}
        path: secret-id
{{- end }}
{{- end }}
{{- end }}
