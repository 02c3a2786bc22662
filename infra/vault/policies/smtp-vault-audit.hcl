# Policy of the audit function (query and verify of the audit trail): the
# trail lives in the Object Lock bucket, so it needs nothing in Vault
# beyond the alert rules' state. No credential, no data key.

path "smtp-alerts/data/*" {
  capabilities = ["create", "read", "update"]
}
