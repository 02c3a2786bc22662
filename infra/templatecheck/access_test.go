package templatecheck

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"smtp-vault/scripts/localgw"
	"smtp-vault/shared/reauth"
)

// TestCORSMatchesTheLocalGateway keeps the HttpApi's CorsConfiguration and
// the local gateway's emulation of it (localgw.ConsoleCORS) the same.
func TestCORSMatchesTheLocalGateway(t *testing.T) {
	tpl := loadTemplate(t)
	want := localgw.ConsoleCORS("https://console.example")
	for id, httpAPI := range tpl.resourcesOfType("AWS::Serverless::HttpApi") {
		cors := get(httpAPI, "Properties", "CorsConfiguration")
		for _, c := range []struct {
			key  string
			want []string
		}{
			{"AllowMethods", want.AllowMethods},
			{"AllowHeaders", want.AllowHeaders},
			{"ExposeHeaders", want.ExposeHeaders},
		} {
			if got := literals(get(cors, c.key)); !slices.Equal(got, c.want) {
				t.Errorf("%s: CorsConfiguration.%s = %v, the local gateway uses %v", id, c.key, got, c.want)
			}
		}
		if got := literal(get(cors, "MaxAge")); got != strconv.Itoa(want.MaxAge) {
			t.Errorf("%s: CorsConfiguration.MaxAge = %q, the local gateway uses %d", id, got, want.MaxAge)
		}
		if got := literal(get(cors, "AllowCredentials")); got != "false" {
			t.Errorf("%s: CorsConfiguration.AllowCredentials = %q, want false (tokens travel in headers, never cookies)", id, got)
		}
	}
}

// TestReauthSettings: the re-auth function's token lifetime is at most
// what every verifier accepts, and every function can name the signing
// key (they verify tokens with it).
func TestReauthSettings(t *testing.T) {
	tpl := loadTemplate(t)
	fn, ok := tpl.functions["reauth"]
	if !ok {
		t.Fatal("no resource for functions/reauth/")
	}
	env := get(fn.node, "Properties", "Environment", "Variables")
	ttl, err := time.ParseDuration(literal(get(env, "REAUTH_TTL")))
	if err != nil || ttl <= 0 || ttl > reauth.MaxTTL {
		t.Errorf("%s: REAUTH_TTL = %q, want a duration up to %v", fn.logicalID, literal(get(env, "REAUTH_TTL")), reauth.MaxTTL)
	}
	for _, k := range []string{"VAULT_USERPASS_MOUNT", "VAULT_ACCESS_MOUNT"} {
		if get(env, k) == nil {
			t.Errorf("%s: no %s", fn.logicalID, k)
		}
	}
	if get(tpl.root, "Globals", "Function", "Environment", "Variables", "VAULT_REAUTH_KEY") == nil {
		t.Error("Globals: no VAULT_REAUTH_KEY; the functions verify re-auth tokens with it")
	}
}
