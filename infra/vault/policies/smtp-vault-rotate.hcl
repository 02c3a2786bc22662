# Policy of the rotate function (the rotate and rotate-overdue routes, and
# the RotateQueue worker): the four rotation steps on one tenant under its
# change lock, and finishing whatever change it finds interrupted there
# first, an endpoint move included (which writes the MailU connection).
# It finds overdue tenants in the status index, never by listing, and
# patches custom_metadata only.

path "smtp/data/+/admin" {
  capabilities = ["create", "read", "update"]
}

# Read to reach MailU; written only to finish an interrupted endpoint
# move (promoteEndpoints), which it resumes before rotating.
path "smtp/data/+/mailu" {
  capabilities = ["create", "read", "update"]
}

path "smtp/data/+/lock" {
  capabilities = ["create", "read", "update"]
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

# The status index (shared/credential/index.go): every change marks its
# tenant pending there first and rewrites the entry after; nothing secret.
path "smtp-index/data/*" {
  capabilities = ["create", "read", "update"]
}

# Its own token, the one grant of Vault's default policy a function uses
# (the role gives its token no default policy): shared/vault's
# TokenPolicies and TokenAlive.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
