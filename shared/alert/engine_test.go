package alert_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-vault/shared/alert"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/notify"
	"smtp-vault/shared/vault"
)

// memVault is KV v2 with check-and-set in memory: the semantics of the
// real mount (cas 0 creates, a stale version conflicts). Integration
// tests run the rules against the real Vault (shared/api).
type memVault struct {
	mu   sync.Mutex
	data map[string]*vault.Secret
	down bool
}

func (m *memVault) ReadKV(_ context.Context, mount, path string) (*vault.Secret, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, errors.New("vault sealed")
	}
	s, ok := m.data[mount+"/"+path]
	if !ok {
		return nil, vault.ErrNotFound
	}
	cp := map[string]string{}
	for k, v := range s.Data {
		cp[k] = v
	}
	return &vault.Secret{Data: cp, Version: s.Version}, nil
}

func (m *memVault) WriteKVCAS(_ context.Context, mount, path string, data map[string]string, cas int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return 0, errors.New("vault sealed")
	}
	if m.data == nil {
		m.data = map[string]*vault.Secret{}
	}
	cur := 0
	if s, ok := m.data[mount+"/"+path]; ok {
		cur = s.Version
	}
	if cur != cas {
		return 0, vault.ErrCASConflict
	}
	m.data[mount+"/"+path] = &vault.Secret{Data: data, Version: cur + 1}
	return cur + 1, nil
}

type failingNotifier struct {
	mu    sync.Mutex
	fail  bool
	inner notify.Memory
}

func (f *failingNotifier) Notify(ctx context.Context, m notify.Message) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("sns unreachable")
	}
	return f.inner.Notify(ctx, m)
}

func rules(msgs []notify.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Attrs["rule"])
	}
	return out
}

var noon = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

func access(user string, at time.Time) audit.Event {
	return audit.Event{ID: "e-" + at.Format(time.RFC3339Nano), Event: audit.CredentialsAccessed, TenantID: "550e8400-e29b-41d4-a716-446655440000", UserID: user, IP: "203.0.113.9", Timestamp: at}
}

func TestAccessBurstAlertsOncePerBurst(t *testing.T) {
	var n notify.Memory
	g := alert.New(alert.VaultState{Vault: &memVault{}, Mount: "m"}, &n, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	// Six accesses 10 minutes apart: the sixth is the sixth within an hour.
	for i := range 6 {
		_ = g.Write(ctx, access("alice", noon.Add(time.Duration(i)*10*time.Minute)))
	}
	if got := rules(n.Messages()); len(got) != 1 || got[0] != alert.RuleAccessBurst {
		t.Fatalf("after six accesses: %v", got)
	}
	// More in the same burst: nothing new.
	for i := range 4 {
		_ = g.Write(ctx, access("alice", noon.Add(55*time.Minute+time.Duration(i)*time.Minute)))
	}
	if len(n.Messages()) != 1 {
		t.Fatalf("the burst alerted again: %v", rules(n.Messages()))
	}
	// Accesses spread out (one every 15 minutes) never exceed five an hour.
	for i := range 12 {
		_ = g.Write(ctx, access("bob", noon.Add(time.Duration(i)*15*time.Minute)))
	}
	if len(n.Messages()) != 1 {
		t.Fatalf("spread-out accesses alerted: %v", rules(n.Messages()))
	}
	// After a quiet spell the window is back under the limit; a new burst alerts.
	later := noon.Add(3 * time.Hour)
	for i := range 6 {
		_ = g.Write(ctx, access("alice", later.Add(time.Duration(i)*time.Minute)))
	}
	if len(n.Messages()) != 2 {
		t.Fatalf("a second burst after a quiet spell: %v", rules(n.Messages()))
	}
}

func TestNightRule(t *testing.T) {
	cases := []struct {
		at    time.Time
		alert bool
	}{
		{time.Date(2026, 5, 4, 21, 59, 59, 0, time.UTC), false},
		{time.Date(2026, 5, 4, 22, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 5, 5, 3, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 5, 5, 5, 59, 59, 0, time.UTC), true},
		{time.Date(2026, 5, 5, 6, 0, 0, 0, time.UTC), false},
		// 23:30 in UTC+2 is 21:30 UTC: the rule is on UTC.
		{time.Date(2026, 5, 4, 23, 30, 0, 0, time.FixedZone("CEST", 2*3600)), false},
	}
	for _, c := range cases {
		var n notify.Memory
		g := alert.New(alert.VaultState{Vault: &memVault{}, Mount: "m"}, &n, slog.New(slog.DiscardHandler))
		_ = g.Write(context.Background(), access("alice", c.at))
		if got := len(n.Messages()) == 1 && n.Messages()[0].Attrs["rule"] == alert.RuleNightAccess; got != c.alert {
			t.Errorf("access at %v: night alert %v, want %v", c.at, got, c.alert)
		}
	}
	// One alert per user per night: 22:30 and 02:00 are the same night;
	// the next night alerts again.
	var n notify.Memory
	g := alert.New(alert.VaultState{Vault: &memVault{}, Mount: "m"}, &n, slog.New(slog.DiscardHandler))
	for _, at := range []time.Time{
		time.Date(2026, 5, 4, 22, 30, 0, 0, time.UTC),
		time.Date(2026, 5, 5, 2, 0, 0, 0, time.UTC),
		time.Date(2026, 5, 5, 23, 0, 0, 0, time.UTC),
	} {
		_ = g.Write(context.Background(), access("alice", at))
	}
	if len(n.Messages()) != 2 {
		t.Fatalf("night alerts over two nights: %v", rules(n.Messages()))
	}
}

func TestAuthFailuresAlertByUserOrIP(t *testing.T) {
	var n notify.Memory
	g := alert.New(alert.VaultState{Vault: &memVault{}, Mount: "m"}, &n, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	fail := func(user, ip string, at time.Time) {
		_ = g.Write(ctx, audit.Event{ID: "f", Event: audit.AuthenticationFailed, UserID: user, IP: ip, Timestamp: at})
	}
	for i := range 3 {
		fail("alice", "203.0.113.1", noon.Add(time.Duration(i)*time.Minute))
	}
	if len(n.Messages()) != 0 {
		t.Fatal("three failures alerted; the rule is more than three")
	}
	fail("alice", "203.0.113.1", noon.Add(4*time.Minute))
	// Failures without a user count by source IP, apart from alice's.
	for i := range 4 {
		fail("", "198.51.100.7", noon.Add(time.Duration(i)*time.Second))
	}
	// Four failures over more than five minutes do not alert.
	for i := range 4 {
		fail("bob", "203.0.113.2", noon.Add(time.Duration(i)*2*time.Minute))
	}
	msgs := n.Messages()
	if len(msgs) != 2 || msgs[0].Attrs["user_id"] != "alice" || msgs[1].Attrs["user_id"] != "ip:198.51.100.7" || msgs[0].Attrs["rule"] != alert.RuleAuthFailures {
		t.Fatalf("alerts: %+v", msgs)
	}
}

func TestResetWithoutIncidentRule(t *testing.T) {
	cases := []struct {
		name  string
		e     audit.Event
		alert bool
	}{
		{"refused for a missing incident id", audit.Event{Event: audit.RequestRejected, Details: map[string]any{"action": alert.EmergencyResetAction, "code": alert.CodeIncidentIDRequired}}, true},
		{"reset without incident id", audit.Event{Event: audit.CredentialsEmergencyReset, Details: map[string]any{"reason": "x"}}, true},
		{"compromise response with an empty incident id", audit.Event{Event: audit.CompromiseResponse, Details: map[string]any{"incident_id": ""}}, true},
		{"reset with an incident id", audit.Event{Event: audit.CredentialsEmergencyReset, Details: map[string]any{"incident_id": "INC-1"}}, false},
		{"other refusal of the reset", audit.Event{Event: audit.RequestRejected, Details: map[string]any{"action": alert.EmergencyResetAction, "code": "invalid_body"}}, false},
		{"the same code on another route", audit.Event{Event: audit.RequestRejected, Details: map[string]any{"action": "rotate", "code": alert.CodeIncidentIDRequired}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var n notify.Memory
			// The rule needs no state: a Vault that is down does not stop it.
			g := alert.New(alert.VaultState{Vault: &memVault{down: true}, Mount: "m"}, &n, slog.New(slog.DiscardHandler))
			c.e.ID, c.e.UserID, c.e.Timestamp = "r", "alice", noon
			_ = g.Write(context.Background(), c.e)
			if got := len(n.Messages()) == 1; got != c.alert {
				t.Fatalf("alert %v, want %v (%v)", got, c.alert, rules(n.Messages()))
			}
		})
	}
}

// TestUndeliveredAlertIsRetriedByTheNextEvent: a failed delivery is
// logged, does not fail the write (the event is already recorded), and
// the next matching event fires the alert again.
func TestUndeliveredAlertIsRetriedByTheNextEvent(t *testing.T) {
	var logs bytes.Buffer
	n := &failingNotifier{fail: true}
	g := alert.New(alert.VaultState{Vault: &memVault{}, Mount: "m"}, n, slog.New(slog.NewJSONHandler(&logs, nil)))
	ctx := context.Background()
	for i := range 6 {
		if err := g.Write(ctx, access("alice", noon.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatalf("Write returned %v; it must never fail the request", err)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"alert_failed"`) || !strings.Contains(logs.String(), `"stage":"deliver"`) {
		t.Fatalf("undelivered alert not logged: %s", logs.String())
	}
	n.mu.Lock()
	n.fail = false
	n.mu.Unlock()
	_ = g.Write(ctx, access("alice", noon.Add(7*time.Minute)))
	if got := n.inner.Messages(); len(got) != 1 || got[0].Attrs["rule"] != alert.RuleAccessBurst || got[0].Attrs["count"] != "6" {
		t.Fatalf("after delivery works again: %+v", got)
	}
}

// TestStateUnavailableDoesNotFailTheWrite: with Vault down the threshold
// rules cannot count; the write still succeeds and the failure is logged
// (CloudWatch alarms watch the same lines).
func TestStateUnavailableDoesNotFailTheWrite(t *testing.T) {
	var logs bytes.Buffer
	var n notify.Memory
	g := alert.New(alert.VaultState{Vault: &memVault{down: true}, Mount: "m"}, &n, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err := g.Write(context.Background(), access("alice", noon)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"stage":"evaluate"`) {
		t.Fatalf("evaluation failure not logged: %s", logs.String())
	}
}

func TestConcurrentInstancesCountEveryAccess(t *testing.T) {
	v := &memVault{}
	var n notify.Memory
	// Three instances share the state; twelve accesses in parallel.
	var gs []*alert.Engine
	for range 3 {
		gs = append(gs, alert.New(alert.VaultState{Vault: v, Mount: "m"}, &n, slog.New(slog.DiscardHandler)))
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = gs[i%3].Write(context.Background(), access("alice", noon.Add(time.Duration(i)*time.Second)))
		}()
	}
	wg.Wait()
	if got := rules(n.Messages()); len(got) != 1 {
		t.Fatalf("twelve parallel accesses gave %d burst alerts, want exactly 1", len(got))
	}
}
