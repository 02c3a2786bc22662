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
	"io"
	"os"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"
)

func main() {
	os.Exit(run(os.Args[1:], time.Now(), os.Stdout, os.Stderr))
}

// run prints the code of the secret in args at now: exit 0, 1 for a
// secret that is not base32, 2 for usage.
func run(args []string, now time.Time, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
		fmt.Fprintln(stderr, "usage: go run ./scripts/totp <BASE32-SECRET>")
		return 2
	}
	code, err := totp.GenerateCode(strings.TrimSpace(args[0]), now)
	if err != nil {
		fmt.Fprintln(stderr, "totp: the secret is not valid base32")
		return 1
	}
	fmt.Fprintln(stdout, code)
	return 0
}
