package main

import (
	"bytes"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	// RFC 6238, appendix B: the SHA-1 secret "12345678901234567890".
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	tests := []struct {
		name     string
		args     []string
		at       time.Time
		exit     int
		out, err string
	}{
		{"RFC 6238 at 59 s", []string{secret}, time.Unix(59, 0), 0, "287082\n", ""},
		{"RFC 6238 at 1111111109 s", []string{secret}, time.Unix(1111111109, 0), 0, "081804\n", ""},
		{"the next 30 s step", []string{secret}, time.Unix(1111111109+30, 0), 0, "050471\n", ""},
		{"spaces around the secret", []string{" " + secret + "\n"}, time.Unix(59, 0), 0, "287082\n", ""},
		{"not base32", []string{"not-base32!"}, time.Unix(59, 0), 1, "", "totp: the secret is not valid base32\n"},
		{"no secret", nil, time.Unix(59, 0), 2, "", "usage: go run ./scripts/totp <BASE32-SECRET>\n"},
		{"two secrets", []string{secret, secret}, time.Unix(59, 0), 2, "", "usage: go run ./scripts/totp <BASE32-SECRET>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(tt.args, tt.at, &out, &errOut); got != tt.exit || out.String() != tt.out || errOut.String() != tt.err {
				t.Errorf("run = %d, stdout %q, stderr %q; want %d, %q, %q", got, out.String(), errOut.String(), tt.exit, tt.out, tt.err)
			}
		})
	}
}
