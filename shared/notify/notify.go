// Package notify delivers messages to people: the 7-days-ahead rotation
// notice and the security alerts. In AWS they go to an SNS topic; locally,
// where there is no SNS, to a JSON-lines sink that tests and operators can
// read. Messages never carry a secret.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Kinds of message. Subscribers filter on the "kind" message attribute.
const (
	KindRotationNotice = "rotation_notice" // a credential is due in 7 days
	KindSecurityAlert  = "security_alert"  // an alert rule fired
)

// Message is one notification.
type Message struct {
	Kind     string            `json:"kind"`
	Subject  string            `json:"subject"` // one line, at most 100 characters (SNS's limit)
	Body     string            `json:"body"`
	TenantID string            `json:"tenant_id,omitempty"`
	Attrs    map[string]string `json:"attributes,omitempty"` // non-secret context, e.g. rule, user_id
	Time     time.Time         `json:"time"`
}

// Notifier delivers messages.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// ErrInvalid is returned for a message that cannot be sent as it is.
var ErrInvalid = errors.New("notify: invalid message")

// secretAttr matches attribute names that could only hold a secret; as in
// the audit package, a guard against mistakes, not a scanner.
var secretAttr = regexp.MustCompile(`(?i)(password|secret|token|data_?key|private)`)

// Validate checks what every Notifier requires.
func (m Message) Validate() error {
	switch {
	case m.Kind == "":
		return fmt.Errorf("%w: no kind", ErrInvalid)
	case m.Subject == "" || len(m.Subject) > 100:
		return fmt.Errorf("%w: subject must be 1 to 100 bytes", ErrInvalid)
	}
	for k := range m.Attrs {
		if secretAttr.MatchString(k) {
			return fmt.Errorf("%w: attribute %q looks like a secret", ErrInvalid, k)
		}
	}
	return nil
}

// Lines writes each message as one JSON line to a writer: the local sink
// (a file under .local/, or stdout).
type Lines struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewLines returns a sink writing to w. now may be nil (time.Now).
func NewLines(w io.Writer, now func() time.Time) *Lines {
	if now == nil {
		now = time.Now
	}
	return &Lines{w: w, now: now}
}

// OpenFile returns a Lines sink appending to path (created 0600, with its
// folder), and the file to close.
func OpenFile(path string, now func() time.Time) (*Lines, io.Closer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	return NewLines(f, now), f, nil
}

// Notify implements Notifier.
func (l *Lines) Notify(_ context.Context, m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if m.Time.IsZero() {
		m.Time = l.now().UTC()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("notify: encode: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("notify: write: %w", err)
	}
	return nil
}

// Memory keeps messages in memory, for tests.
type Memory struct {
	mu   sync.Mutex
	msgs []Message
	// Err, when set, is returned by Notify (a delivery fault).
	Err error
}

// Notify implements Notifier.
func (m *Memory) Notify(_ context.Context, msg Message) error {
	if err := msg.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	m.msgs = append(m.msgs, msg)
	return nil
}

// Messages returns what was delivered, oldest first.
func (m *Memory) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgs)
}

// ReadLines parses a Lines sink's output, for tests and tools.
func ReadLines(r io.Reader) ([]Message, error) {
	var out []Message
	dec := json.NewDecoder(r)
	for {
		var m Message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("notify: read: %w", err)
		}
		out = append(out, m)
	}
}
