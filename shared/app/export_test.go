package app

// Test hooks: the HTTP clients the wiring gives Vault and MailU.
var (
	VaultHTTPClient = vaultHTTPClient
	MailUHTTPClient = mailuHTTPClient
)
