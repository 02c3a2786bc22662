package dovecot

import (
	"bytes"
	"fmt"
	"text/template"
	"time"
)

// confTemplate is the whole Dovecot configuration of one front: nothing
// is read from /etc. It sets up submission the way MailU 2024.06's front
// container does (core/nginx/dovecot/proxy.conf): a STARTTLS listener (the
// 587 role) and an implicit-TLS one (465), TLS required before any AUTH,
// PLAIN and LOGIN only, every login decided by a Lua passdb that asks the
// admin app, and after a successful AUTH the session proxied, without a
// second AUTH, to the SMTP server the admin app names. Like MailU it
// switches off the per-client auth penalty, so that a failed AUTH is
// delayed by auth_failure_delay only.
var confTemplate = template.Must(template.New("dovecot.conf").Parse(`# Written by smtp-vault (scripts/devenv/dovecot) for one local stack;
# rewritten at every start.
base_dir = {{.RunDir}}
state_dir = {{.RunDir}}/state
instance_name = {{.Instance}}
log_path = {{.LogPath}}
protocols = submission
listen = 127.0.0.1
hostname = {{.Hostname}}
{{- if .LoginUser}}
default_login_user = {{.LoginUser}}
default_internal_user = {{.InternalUser}}
default_internal_group = {{.InternalGroup}}
{{- end}}

ssl = required
ssl_cert = <{{.CertFile}}
ssl_key = <{{.KeyFile}}
ssl_min_protocol = TLSv1.2
ssl_prefer_server_ciphers = no

auth_mechanisms = plain login
# Any character may appear in a user name; the admin app judges it.
auth_username_chars =
{{- if .FailureDelay}}
auth_failure_delay = {{.FailureDelay}}
{{- end}}

# Only the submission-login proxy runs; the relay settings are what the
# submission service would use, pointed at the same backend.
submission_relay_host = {{.RelayHost}}
submission_relay_port = {{.RelayPort}}
submission_relay_trusted = yes
submission_relay_ssl = no

passdb {
  driver = lua
  args = file={{.LuaFile}} blocking=yes
}

service auth-worker {
  user = {{.WorkerUser}}
}

service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

service submission-login {
  inet_listener submission {
    address = {{.SubmissionHost}}
    port = {{.SubmissionPort}}
  }
  inet_listener submissions {
    address = {{.SubmissionsHost}}
    port = {{.SubmissionsPort}}
    ssl = yes
  }
  # One long-lived login process serves many clients, as in MailU.
  service_count = 0
  client_limit = 1000
  process_min_avail = 1
  vsz_limit = 256M
{{- if not .Root}}
  chroot =
{{- end}}
}
`))

// luaTemplate is the passdb, written for this project. It asks the admin
// app's internal endpoint about every AUTH with the headers MailU 2024.06's
// front sends (core/nginx/dovecot/login.lua, read by
// core/admin/mailu/internal/views/auth.py and internal/nginx.py), values
// percent-encoded because the admin app URL-decodes them. The answer maps
// as MailU maps it: "Auth-Status: OK" logs in and proxies the session to
// Auth-Server:Auth-Port; any other 200 answer, a rate limit included, is a
// password mismatch (Dovecot: "535 5.7.8 Authentication failed."); an
// admin app that cannot be asked or answers another status is an internal
// failure (a temporary 4xx).
var luaTemplate = template.Must(template.New("passdb.lua").Parse(`-- Written by smtp-vault (scripts/devenv/dovecot); rewritten at every start.
local admin = dovecot.http.client {
  timeout = {{.TimeoutMillis}};
  max_attempts = {{.Attempts}};
}

local function pct(s)
  return (string.gsub(tostring(s), "[^A-Za-z0-9%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function script_init()
  return 0
end

function script_deinit()
end

function auth_passdb_lookup(req)
  local ask = admin:request { url = "{{.AuthURL}}"; method = "GET"; }
  ask:add_header("Auth-Method", tostring(req.mechanism))
  ask:add_header("Auth-Protocol", tostring(req.service))
  ask:add_header("Auth-User", pct(req.user))
  ask:add_header("Auth-Pass", pct(req.password or ""))
  ask:add_header("Auth-Port", tostring(req.local_port))
  ask:add_header("Auth-SSL", tostring(req.secured or "no"))
  ask:add_header("Client-Ip", pct(req.remote_ip))
  ask:add_header("Client-Port", tostring(req.remote_port))
  local answer = ask:submit()
  if answer:status() ~= 200 then
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "admin app answered " .. tostring(answer:status())
  end
  if answer:header("Auth-Status") ~= "OK" then
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, ""
  end
  local host = answer:header("Auth-Server")
  local port = answer:header("Auth-Port")
  return dovecot.auth.PASSDB_RESULT_OK, "proxy=y host=" .. host .. " port=" .. port .. " nopassword=y proxy_noauth=y"
end
`))

type confValues struct {
	RunDir, Instance, LogPath, Hostname    string
	Root                                   bool
	LoginUser, InternalUser, InternalGroup string
	WorkerUser                             string
	CertFile, KeyFile, LuaFile             string
	FailureDelay                           string
	RelayHost, RelayPort                   string
	SubmissionHost, SubmissionPort         string
	SubmissionsHost, SubmissionsPort       string
	AuthURL                                string
	TimeoutMillis, Attempts                int
}

func render(t *template.Template, v any) ([]byte, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("render %s: %w", t.Name(), err)
	}
	return b.Bytes(), nil
}

// dovecotSecs writes a delay in Dovecot's time syntax (whole seconds:
// auth_failure_delay has no finer unit).
func dovecotSecs(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("%d secs", s)
}
