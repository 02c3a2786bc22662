# Policy of platform operators: inspect stored (encrypted) credentials and
# their history, rotate the Transit master key and rewrap data keys. No
# decrypt: an operator cannot read a password through Vault's CLI.

path "smtp/data/*" {
  capabilities = ["read", "list"]
}

path "smtp/metadata/*" {
  capabilities = ["read", "list"]
}

path "smtp/metadata/" {
  capabilities = ["list"]
}

path "transit/keys/smtp-credentials" {
  capabilities = ["read"]
}

path "transit/keys/smtp-credentials/rotate" {
  capabilities = ["update"]
}

path "transit/rewrap/smtp-credentials" {
  capabilities = ["update"]
}

path "sys/health" {
  capabilities = ["read"]
}
