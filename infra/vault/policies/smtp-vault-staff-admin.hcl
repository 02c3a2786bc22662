# Policy of the staff command (scripts/staff): add, list, disable and
# remove members of staff and (re-)enrol their TOTP. It can set a staff
# user's password and one-minute token lifetimes, but give no policy to a
# staff login: the parameters it may send are listed. Its holder can,
# however, attach a userpass login to any entity, so keep policies off
# entities (put them on roles and tokens) and give this policy to the
# people trusted to onboard staff.

# Lifting the daily hold of failed re-authentications (staff unlock):
# the records the reauth function writes.
path "smtp-access/data/reauth/*" {
  capabilities = ["read", "update"]
}

path "sys/auth" {
  capabilities = ["read"]
}

path "auth/userpass/users/" {
  capabilities = ["list"]
}

path "auth/userpass/users/*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "password"      = []
    "token_ttl"     = ["1m"]
    "token_max_ttl" = ["1m"]
  }
}

path "identity/entity/name/staff-*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "metadata" = []
    "disabled" = []
  }
}

path "identity/entity-alias" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "name"           = []
    "canonical_id"   = []
    "mount_accessor" = []
  }
}

path "identity/lookup/entity" {
  capabilities = ["update"]
}

path "identity/mfa/method/totp/" {
  capabilities = ["list"]
}

path "identity/mfa/method/totp/admin-generate" {
  capabilities = ["update"]
}

path "identity/mfa/method/totp/admin-destroy" {
  capabilities = ["update"]
}

# Its actions are audited like the functions': the audit chains' MAC key.
path "transit/datakey/plaintext/audit-mac" {
  capabilities = ["update"]
}

path "transit/decrypt/audit-mac" {
  capabilities = ["update"]
}
