package mailu

import (
	"net"
	"strings"
)

// IsLoopback reports whether host (a name or an IP, with or without a
// port, brackets allowed) names this machine. It is the one rule for
// where clear text is allowed: the local MailU stand-in listens only on
// loopback and speaks plain HTTP and SMTP; every other host gets TLS.
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
