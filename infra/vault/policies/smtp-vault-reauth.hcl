# Policy of the reauth function: the only one that signs re-auth tokens
# and writes the failed-attempt records (lockouts). It touches no
# credential and no data key.
#
# The staff's own login needs no path here: auth/userpass/login/* and
# sys/mfa/validate are unauthenticated, and the token they yield revokes
# itself under Vault's default policy.

path "smtp-access/data/reauth/*" {
  capabilities = ["create", "read", "update"]
}

path "transit/sign/reauth-signing" {
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
