# Policy of the console function (the pages, the overview, the viewing
# events): it reads the status index and the non-secret fields of a
# tenant's record (username, webmail URL; the password and data key it
# reads stay sealed). It can neither decrypt nor write anything in smtp/.

path "smtp/data/+/admin" {
  capabilities = ["read"]
}

# The viewing events route needs the caller's re-auth token: verified
# with the signing key's public half (transit/verify for other key types).
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

# The health route: raft leader and peers (sys/health and sys/leader need
# no token).
path "sys/storage/raft/configuration" {
  capabilities = ["read"]
}

# The overview reads the status index (shared/credential/index.go).
path "smtp-index/data/*" {
  capabilities = ["read"]
}

# Its own token, the one grant of Vault's default policy a function uses
# (the role gives its token no default policy): shared/vault's
# TokenPolicies and TokenAlive.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
