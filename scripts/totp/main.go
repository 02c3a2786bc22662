// Command totp prints the current TOTP code for a base32 secret, as an
// authenticator app would show it, for the demo admins of the local stack
// (ADMIN_TOTP_SECRET and SUPPORT_TOTP_SECRET in .local/dev.env):
//
//	go run ./scripts/totp <SECRET>
//
// Only this development tool generates codes; the server side checks them
// in Vault (login MFA), never in this project's code.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"
)

func main() {
	if len(os.Args) != 2 || strings.TrimSpace(os.Args[1]) == "" {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/totp <BASE32-SECRET>")
		os.Exit(2)
	}
	code, err := totp.GenerateCode(strings.TrimSpace(os.Args[1]), time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "totp: the secret is not valid base32")
		os.Exit(1)
	}
	fmt.Println(code)
}
