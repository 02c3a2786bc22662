# Policy of the rekey operator command (scripts/rekey): rotate the Transit
# master key and rewrap every stored data key. It can rewrap but never
# decrypt, so no password or data key is readable with it.

path "transit/keys/smtp-credentials/rotate" {
  capabilities = ["update"]
}

path "transit/rewrap/smtp-credentials" {
  capabilities = ["update"]
}

path "smtp/data/*" {
  capabilities = ["create", "read", "update"]
}

path "smtp/metadata/*" {
  capabilities = ["read", "list"]
}

path "smtp/metadata/" {
  capabilities = ["list"]
}

# Its actions are audited like the functions': the audit chains' MAC key.
path "transit/datakey/plaintext/audit-mac" {
  capabilities = ["update"]
}

path "transit/decrypt/audit-mac" {
  capabilities = ["update"]
}
