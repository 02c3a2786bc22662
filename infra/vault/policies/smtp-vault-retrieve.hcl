# Policy of the retrieve function: read a tenant's credential and unwrap
# its data keys to open the password it serves. It writes nothing in smtp/
# and cannot create data keys, so it can show a password but never set
# one.

path "smtp/data/+/admin" {
  capabilities = ["read"]
}

path "transit/decrypt/smtp-credentials" {
  capabilities = ["update"]
}

path "transit/keys/reauth-signing" {
  capabilities = ["read"]
}

path "transit/verify/reauth-signing" {
  capabilities = ["update"]
}

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

# Its own token, the one grant of Vault's default policy a function uses
# (the role gives its token no default policy): shared/vault's
# TokenPolicies and TokenAlive.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
