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
