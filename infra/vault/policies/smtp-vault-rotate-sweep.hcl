# Policy of the daily rotation sweep: it lists every tenant's metadata
# (no secret read), marks the day-173 notice in custom_metadata, and runs
# the rotations within its own budget itself (the same steps as the rotate
# function). It serves no HTTP route, so it verifies no re-auth token.

path "smtp/data/+/admin" {
  capabilities = ["create", "read", "update"]
}

path "smtp/data/+/mailu" {
  capabilities = ["read"]
}

path "smtp/data/+/lock" {
  capabilities = ["create", "read", "update"]
}

path "smtp/metadata/" {
  capabilities = ["list"]
}

path "smtp/metadata/+/admin" {
  capabilities = ["read", "patch"]
  allowed_parameters = {
    "custom_metadata" = []
  }
}

path "transit/datakey/plaintext/smtp-credentials" {
  capabilities = ["update"]
}

path "transit/decrypt/smtp-credentials" {
  capabilities = ["update"]
}

path "smtp-alerts/data/*" {
  capabilities = ["create", "read", "update"]
}
