# Policy of the audit function (query and verify of the audit trail): the
# trail lives in the Object Lock bucket, so it needs nothing in Vault
# beyond the alert rules' state. No credential, no data key.

path "smtp-alerts/data/*" {
  capabilities = ["create", "read", "update"]
}

# The audit chains' MAC key (shared/audit): one data key per instance,
# and unwrapping the key another instance named on the chain's head.
path "transit/datakey/plaintext/audit-mac" {
  capabilities = ["update"]
}

path "transit/decrypt/audit-mac" {
  capabilities = ["update"]
}

# Verification reads the anchored heads.
path "smtp-audit-anchors/data/*" {
  capabilities = ["read"]
}

# Its own token, the one grant of Vault's default policy a function uses
# (the role gives its token no default policy): shared/vault's
# TokenPolicies and TokenAlive.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
