package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/devissuer"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/mailu"
)

// TestRestartAfterSIGKILLMidChange kills `gateway run` (as `make run`
// runs it) and its whole process group with SIGKILL while emergency resets
// of every demo tenant are in flight, starts it again on the same .local
// folder, and requires it to come up at once and serve every tenant a
// password that logs in over SMTP AUTH to its MailU (Dovecot before the
// stand-in).
func TestRestartAfterSIGKILLMidChange(t *testing.T) {
	bin := t.TempDir()
	for _, cmd := range []string{"gateway", "mailu-standin"} {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "../"+cmd)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", cmd, err, out)
		}
	}
	local := t.TempDir()
	var ports []string
	for range 6 {
		addr, err := devenv.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, addr[strings.LastIndex(addr, ":")+1:])
	}
	apiURL := "http://127.0.0.1:" + ports[0]
	start := func() (*exec.Cmd, *bytes.Buffer) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "gateway"), "run", "-port", ports[0], "-vault-port", ports[1], "-s3-port", ports[2], "-mailu-control-port", ports[3],
			"-smtp-port", ports[4], "-smtps-port", ports[5])
		cmd.Env = append(os.Environ(), "SMTP_VAULT_LOCAL="+local)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out := &bytes.Buffer{}
		var mu sync.Mutex
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(pr)
			once := sync.Once{}
			for sc.Scan() {
				mu.Lock()
				out.WriteString(sc.Text() + "\n")
				mu.Unlock()
				if strings.Contains(sc.Text(), "smtp-vault is running") {
					once.Do(func() { close(ready) })
				}
			}
		}()
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		select {
		case <-ready:
			t.Logf("up in %v", time.Since(began).Round(time.Millisecond))
		case <-time.After(3 * time.Minute):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the stack did not come up:\n%s", out.String())
		}
		return cmd, out
	}

	first, _ := start()
	st := readDemo(t, local)
	iss, err := devissuer.LoadOrCreateDevIssuer(filepath.Join(local, "jwt-issuer.jwk"), apiURL, devenv.Audience)
	if err != nil {
		t.Fatal(err)
	}
	admin := st.user(t, auth.RolePlatformAdmin)
	bearer, err := iss.Sign(admin.Name, admin.Roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	step := time.Now().Unix() / 30
	rt := reauth(t, apiURL, bearer, admin, step)

	// Resets of every tenant, killed mid-flight.
	var wg sync.WaitGroup
	for _, tn := range st.Tenants {
		wg.Go(func() {
			body := `{"incident_id":"INC-CRASH-1","reason":"crash drill"}`
			req, _ := http.NewRequest("POST", apiURL+"/api/v1/platform-admin/tenants/"+tn.TenantID+"/smtp-credentials/emergency-reset", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+bearer)
			req.Header.Set("X-Reauth-Token", rt)
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	time.Sleep(40 * time.Millisecond)
	if err := syscall.Kill(-first.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	wg.Wait()

	_, out := start()
	rt = reauth(t, apiURL, bearer, admin, step+1)
	ctx := context.Background()
	for _, tn := range st.Tenants {
		req, _ := http.NewRequest("GET", apiURL+"/api/v1/platform-admin/tenants/"+tn.TenantID+"/smtp-credentials", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("X-Reauth-Token", rt)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Username, Password string
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || json.Unmarshal(raw, &v) != nil {
			t.Fatalf("retrieve %s after the restart: %d %s\n%s", tn.TenantID, resp.StatusCode, raw, out.String())
		}
		addr := smtpAddr(t, out.String(), tn.TenantID)
		if err := mailu.VerifyLogin(ctx, addr, v.Username, v.Password, nil); err != nil {
			t.Fatalf("tenant %s: the served password does not log in after the restart: %v", tn.TenantID, err)
		}
	}
}

type demo struct {
	Tenants []devenv.DemoTenant `json:"tenants"`
	Users   []devenv.DemoUser   `json:"users"`
}

func readDemo(t *testing.T, dir string) demo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d demo
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d demo) user(t *testing.T, role auth.Role) devenv.DemoUser {
	for _, u := range d.Users {
		for _, r := range u.Roles {
			if r == role {
				return u
			}
		}
	}
	t.Fatalf("no demo user with role %s", role)
	return devenv.DemoUser{}
}

// reauth proves the admin's password and the TOTP code of time step
// step (each code is accepted once).
func reauth(t *testing.T, apiURL, bearer string, u devenv.DemoUser, step int64) string {
	t.Helper()
	code, err := totp.GenerateCode(u.TOTPSecret, time.Unix(step*30, 0))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"password": u.Password, "totp_code": code})
	req, _ := http.NewRequest("POST", apiURL+"/api/v1/platform-admin/reauth", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ReauthToken string `json:"reauth_token"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("re-auth: %d %s", resp.StatusCode, raw)
	}
	return out.ReauthToken
}

// smtpAddr reads a tenant's SMTP address from the banner.
func smtpAddr(t *testing.T, banner, tenantID string) string {
	t.Helper()
	for _, line := range strings.Split(banner, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == tenantID && f[2] == "smtp" {
			return f[3]
		}
	}
	t.Fatalf("no SMTP address of %s in the banner:\n%s", tenantID, banner)
	return ""
}
