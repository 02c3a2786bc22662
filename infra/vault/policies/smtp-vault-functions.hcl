# Policy of the smtp-vault functions. They read and write tenants'
# credentials with check-and-set, patch custom_metadata, and use the derived
# Transit key for data keys. They can never delete or destroy a version, nor
# export or read the Transit key.

path "smtp/data/*" {
  capabilities = ["create", "read", "update"]
}

path "smtp/metadata/*" {
  capabilities = ["read", "list", "patch"]
}

path "smtp/metadata/" {
  capabilities = ["list"]
}

path "transit/datakey/plaintext/smtp-credentials" {
  capabilities = ["update"]
}

path "transit/decrypt/smtp-credentials" {
  capabilities = ["update"]
}

path "transit/rewrap/smtp-credentials" {
  capabilities = ["update"]
}
