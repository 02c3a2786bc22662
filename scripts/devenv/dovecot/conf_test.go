package dovecot

import (
	"context"
	"strings"
	"testing"
)

// TestConfig: the configuration is MailU's submission front, and without
// root every process runs as the caller, unchrooted.
func TestConfig(t *testing.T) {
	base := confValues{RunDir: "/tmp/r", Instance: "i", LogPath: "/tmp/l", Hostname: "mail.localhost", WorkerUser: "dovenull",
		CertFile: "/c", KeyFile: "/k", LuaFile: "/p.lua", RelayHost: "127.0.0.1", RelayPort: "2525",
		SubmissionHost: "127.0.0.1", SubmissionPort: "1587", SubmissionsHost: "127.0.0.1", SubmissionsPort: "1465"}
	cases := []struct {
		name    string
		adjust  func(*confValues)
		want    []string
		wantNot []string
	}{
		{name: "as root", adjust: func(v *confValues) { v.Root = true },
			want: []string{"ssl = required", "auth_mechanisms = plain login", "driver = lua", "args = file=/p.lua blocking=yes",
				"port = 1587", "port = 1465\n    ssl = yes", "anvil-auth-penalty {\n    mode = 0", "protocols = submission", "user = dovenull"},
			wantNot: []string{"auth_failure_delay", "default_login_user", "chroot =", "!include"}},
		{name: "as a developer", adjust: func(v *confValues) {
			v.LoginUser, v.InternalUser, v.InternalGroup, v.WorkerUser = "dev", "dev", "devs", "dev"
		}, want: []string{"default_login_user = dev", "default_internal_user = dev", "default_internal_group = devs", "chroot =", "user = dev"}},
		{name: "a shorter failure delay", adjust: func(v *confValues) { v.Root, v.FailureDelay = true, "1 secs" },
			want: []string{"auth_failure_delay = 1 secs"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := base
			c.adjust(&v)
			b, err := render(confTemplate, v)
			if err != nil {
				t.Fatal(err)
			}
			conf := string(b)
			for _, w := range c.want {
				if !strings.Contains(conf, w) {
					t.Errorf("missing %q in\n%s", w, conf)
				}
			}
			for _, w := range c.wantNot {
				if strings.Contains(conf, w) {
					t.Errorf("unexpected %q in\n%s", w, conf)
				}
			}
		})
	}
}

// TestPassdbMapsAnswers: the Lua passdb logs in only on Auth-Status OK,
// maps every other answer to a mismatch and a failed request to an
// internal failure.
func TestPassdbMapsAnswers(t *testing.T) {
	b, err := render(luaTemplate, confValues{AuthURL: "http://127.0.0.1:1/internal/auth/email", TimeoutMillis: 2000, Attempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	lua := string(b)
	for _, w := range []string{`url = "http://127.0.0.1:1/internal/auth/email"`, "timeout = 2000", "max_attempts = 3",
		`if answer:status() ~= 200 then
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE`,
		`if answer:header("Auth-Status") ~= "OK" then
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH`,
		"proxy=y host=", "proxy_noauth=y"} {
		if !strings.Contains(lua, w) {
			t.Errorf("passdb lacks %q", w)
		}
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("DOVECOT", "/nonexistent/dovecot")
	_, err := Start(context.Background(), Config{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make dovecot") {
		t.Fatalf("Start without Dovecot: %v, want how to install it", err)
	}
}
