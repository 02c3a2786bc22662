package mailu

import "testing"

func TestIsLoopback(t *testing.T) {
	cases := map[string]bool{
		"localhost": true, "LOCALHOST:25": true, "127.0.0.1": true, "127.0.0.1:2525": true, "127.9.9.9": true,
		"::1": true, "[::1]:587": true, "[::1]": true,
		"": false, "mail.example.com": false, "mail.example.com:587": false, "10.0.0.1:25": false,
		"localhost.example.com": false, "0.0.0.0:25": false, "[::]:25": false, "127.0.0.1.nip.io": false,
	}
	for host, want := range cases {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
