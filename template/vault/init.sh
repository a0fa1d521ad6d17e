#!/bin/sh
# One-shot setup of a development Vault (OpenBao or Vault) for this service; compose.yaml
# runs it after the dev server is healthy. Safe to run again: every step overwrites.
#
# Gives the service least privilege: a policy that can only read its own KV v2
# secret, an AppRole with short-lived tokens, and a secret id handed over through
# a file (APPROLE_DIR/secret-id), never through the environment or a log line.
#
# Uses the `bao` CLI (VAULT_CLI=vault for HashiCorp's, which reads VAULT_ADDR and
# VAULT_TOKEN instead). Needs BAO_ADDR and BAO_TOKEN (a token allowed to configure
# Vault), and:
#   SERVICE        the service's name: policy, role and secret path
#   ROLE_ID        the role id to pin (so compose.yaml can name it)
#   SERVICE_TOKEN  for token auth: the id of a periodic token to create with the policy
#   APPROLE_DIR    where to write the secret id (default /approle)
#   DATABASE_URL   the example secret's database_url
set -eu

: "${SERVICE:?set SERVICE}"
: "${ROLE_ID:?set ROLE_ID}"
APPROLE_DIR="${APPROLE_DIR:-/approle}"
CLI="${VAULT_CLI:-bao}"
KV_MOUNT="${KV_MOUNT:-secret}"
POLICY="${SERVICE}-read"

# KV v2 at secret/ (a dev server has it already; a fresh server gets it here).
if ! "$CLI" secrets list -format=json | grep -q "\"${KV_MOUNT}/\""; then
    "$CLI" secrets enable -path="${KV_MOUNT}" -version=2 kv
fi
if ! "$CLI" auth list -format=json | grep -q '"approle/"'; then
    "$CLI" auth enable approle
fi

"$CLI" policy write "${POLICY}" - <<POLICY
# ${SERVICE}: read its own secret, nothing else (token renewal and lookup come
# from the default policy).
path "${KV_MOUNT}/data/${SERVICE}" {
  capabilities = ["read"]
}
POLICY

"$CLI" kv put -mount="${KV_MOUNT}" "${SERVICE}" \
    database_url="${DATABASE_URL:-sqlite+aiosqlite:///./data/app.db}" \
    example_api_key="change-me-in-vault" >/dev/null

"$CLI" write "auth/approle/role/${SERVICE}" \
    token_policies="${POLICY}" token_ttl=1h token_max_ttl=4h \
    secret_id_ttl=24h secret_id_num_uses=0 >/dev/null
"$CLI" write "auth/approle/role/${SERVICE}/role-id" role_id="${ROLE_ID}" >/dev/null

mkdir -p "${APPROLE_DIR}"
umask 077
"$CLI" write -f -field=secret_id "auth/approle/role/${SERVICE}/secret-id" >"${APPROLE_DIR}/secret-id.new"
# The service runs as another user: it must be able to read the file.
chmod 0444 "${APPROLE_DIR}/secret-id.new"
mv "${APPROLE_DIR}/secret-id.new" "${APPROLE_DIR}/secret-id"

if [ -n "${SERVICE_TOKEN:-}" ]; then
    "$CLI" token revoke "${SERVICE_TOKEN}" >/dev/null 2>&1 || true
    "$CLI" token create -id="${SERVICE_TOKEN}" -policy="${POLICY}" -period=1h -orphan >/dev/null
fi

echo "vault ready for ${SERVICE}: policy ${POLICY}, role ${SERVICE}, secret ${KV_MOUNT}/${SERVICE}"
