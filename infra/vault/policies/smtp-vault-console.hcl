# Policy of the console function (the overview): it lists the tenants,
# reads their metadata and the non-secret fields of their records
# (username, webmail URL; the password and data key it reads stay sealed).
# It can neither decrypt nor write anything in smtp/.

path "smtp/metadata/" {
  capabilities = ["list"]
}

path "smtp/metadata/+/admin" {
  capabilities = ["read"]
}

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
