package devenv

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"smtp-vault/shared/audit"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for capturing
// logs and audit records in tests.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStack is a stack for integration tests, with what it wrote captured.
type TestStack struct {
	*Stack
	MailUHost *InProcessMailU
	AuditLog  *SyncBuffer
	Log       *SyncBuffer
}

// StartTestStack starts Vault, in-process MailU stand-ins and the gateway
// in a temporary folder, seeded with tenants, and stops them when the test
// ends. It is the one helper every integration test starts servers with.
// Without a Vault binary the test fails; it never skips.
func StartTestStack(t testing.TB, tenants int, sinks ...audit.Sink) *TestStack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := NewInProcessMailU()
	ts := &TestStack{MailUHost: m, AuditLog: &SyncBuffer{}, Log: &SyncBuffer{}}
	s, err := StartStack(ctx, StackOptions{Dir: t.TempDir(), MailU: m, Tenants: tenants, Sinks: sinks, AuditOut: ts.AuditLog, LogOut: ts.Log})
	if err != nil {
		t.Fatalf("start test stack: %v", err)
	}
	ts.Stack = s
	t.Cleanup(s.Close)
	return ts
}
