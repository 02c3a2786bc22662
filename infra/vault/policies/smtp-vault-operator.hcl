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

# Who is locked out of re-authentication, and since when.
path "smtp-access/data/reauth/*" {
  capabilities = ["read"]
}

path "smtp-access/metadata/reauth/*" {
  capabilities = ["read", "list"]
}

path "smtp-access/metadata/reauth/" {
  capabilities = ["list"]
}

path "sys/health" {
  capabilities = ["read"]
}

# Verify the audit chains (scripts/audit-verify): unwrap the records' MAC
# keys and read the anchored heads. Unwrapping a MAC key would also let an
# operator who can write to the bucket forge records of the instance that
# used it; the bucket allows only the functions' roles to write.
path "transit/decrypt/audit-mac" {
  capabilities = ["update"]
}

path "smtp-audit-anchors/data/*" {
  capabilities = ["read"]
}
