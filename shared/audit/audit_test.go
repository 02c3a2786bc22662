package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"smtp-vault/shared/audit"
)

// memSink records the events it is given under its name in a shared log,
// so a test can see the order in which sinks were written.
type memSink struct {
	name string
	log  *[]string
	got  []audit.Event
	err  error
}

func (s *memSink) Write(_ context.Context, e audit.Event) error {
	*s.log = append(*s.log, s.name)
	if s.err != nil {
		return s.err
	}
	s.got = append(s.got, e)
	return nil
}

func fixedClock() (time.Time, func() time.Time) {
	// A clock in a non-UTC zone: the recorder must store UTC.
	t := time.Date(2025, 3, 14, 15, 9, 26, 535000000, time.FixedZone("CEST", 2*60*60))
	return t, func() time.Time { return t }
}

func TestRecordFillsIDTimestampAndSeverity(t *testing.T) {
	now, clock := fixedClock()
	var order []string
	sink := &memSink{name: "a", log: &order}
	r := audit.NewRecorder(clock, sink)

	for i := 0; i < 2; i++ {
		if err := r.Record(context.Background(), audit.Event{Event: audit.CredentialsAccessed, TenantID: "t"}); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	if len(sink.got) != 2 {
		t.Fatalf("sink got %d events, want 2", len(sink.got))
	}
	for _, e := range sink.got {
		id, err := uuid.Parse(e.ID)
		if err != nil || id.Version() != 4 || e.ID != strings.ToLower(e.ID) {
			t.Errorf("id %q is not a lowercase UUID v4 (%v)", e.ID, err)
		}
		if !e.Timestamp.Equal(now) || e.Timestamp.Location() != time.UTC {
			t.Errorf("timestamp %v, want %v in UTC", e.Timestamp, now.UTC())
		}
		if e.Severity != audit.Info {
			t.Errorf("severity %q, want default %q", e.Severity, audit.Info)
		}
	}
	if sink.got[0].ID == sink.got[1].ID {
		t.Error("two events share one id")
	}
}

func TestRecordKeepsWhatTheCallerSet(t *testing.T) {
	_, clock := fixedClock()
	var order []string
	sink := &memSink{name: "a", log: &order}
	given := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	e := audit.Event{ID: "fixed-id", Event: audit.CredentialsEmergencyReset, Timestamp: given, Severity: audit.Critical}
	if err := audit.NewRecorder(clock, sink).Record(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	got := sink.got[0]
	if got.ID != "fixed-id" || !got.Timestamp.Equal(given) || got.Severity != audit.Critical {
		t.Fatalf("recorder overwrote caller's fields: %+v", got)
	}
}

func TestRecordWritesEverySinkInOrder(t *testing.T) {
	_, clock := fixedClock()
	var order []string
	sinks := []*memSink{{name: "stdout", log: &order}, {name: "s3", log: &order}, {name: "third", log: &order}}
	r := audit.NewRecorder(clock, sinks[0], sinks[1], sinks[2])
	if err := r.Record(context.Background(), audit.Event{Event: audit.CredentialsStored}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"stdout", "s3", "third"}; !slices.Equal(order, want) {
		t.Fatalf("sinks written in order %v, want %v", order, want)
	}
	for _, s := range sinks[1:] {
		if s.got[0].ID != sinks[0].got[0].ID {
			t.Fatal("sinks were given different events")
		}
	}
}

func TestRecordFailsClosed(t *testing.T) {
	errS3 := errors.New("s3 unreachable")
	errLater := errors.New("later sink down")
	cases := []struct {
		name      string
		failing   map[string]error
		wantOrder []string
		wantErr   error
	}{
		{"first fails", map[string]error{"a": errS3}, []string{"a"}, errS3},
		{"middle fails", map[string]error{"b": errS3}, []string{"a", "b"}, errS3},
		{"last fails", map[string]error{"c": errS3}, []string{"a", "b", "c"}, errS3},
		{"first failure wins", map[string]error{"b": errS3, "c": errLater}, []string{"a", "b"}, errS3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, clock := fixedClock()
			var order []string
			var sinks []audit.Sink
			for _, n := range []string{"a", "b", "c"} {
				sinks = append(sinks, &memSink{name: n, log: &order, err: c.failing[n]})
			}
			err := audit.NewRecorder(clock, sinks...).Record(context.Background(), audit.Event{Event: audit.CredentialsAccessed})
			if !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, c.wantErr) {
				t.Fatalf("Record error %v, want ErrNotRecorded wrapping %v", err, c.wantErr)
			}
			if errors.Is(err, errLater) && c.wantErr != errLater {
				t.Fatal("error mentions a sink after the first failure")
			}
			if !slices.Equal(order, c.wantOrder) {
				t.Fatalf("sinks written %v, want %v (nothing after the first failure)", order, c.wantOrder)
			}
		})
	}
}

func TestRecordRefusesSecretDetails(t *testing.T) {
	cases := []struct {
		key    string
		refuse bool
	}{
		{"password", true},
		{"Password", true},
		{"pending_password", true},
		{"api_token", true},
		{"mailu_api_token", true},
		{"data_key", true},
		{"datakey", true},
		{"secret", true},
		{"client_secret", true},
		{"private_key", true},
		{"action", false},
		{"kv_version", false},
		{"status", false},
		{"resumed", false},
		{"incident_id", false},
		{"reason", false},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			_, clock := fixedClock()
			var order []string
			sink := &memSink{name: "a", log: &order}
			err := audit.NewRecorder(clock, sink).Record(context.Background(), audit.Event{
				Event:   audit.CredentialsRotated,
				Details: map[string]any{"action": "replaced", c.key: "value"},
			})
			if c.refuse {
				if !errors.Is(err, audit.ErrNotRecorded) {
					t.Fatalf("detail %q accepted, want refused with ErrNotRecorded (got %v)", c.key, err)
				}
				if strings.Contains(err.Error(), "value") {
					t.Fatal("the refusal echoes the detail's value")
				}
				if len(order) != 0 {
					t.Fatal("a refused event reached a sink")
				}
				return
			}
			if err != nil || len(sink.got) != 1 || sink.got[0].Details[c.key] != "value" {
				t.Fatalf("harmless detail %q: err %v, got %+v", c.key, err, sink.got)
			}
		})
	}
}

func TestRecordRefusesMissingEventName(t *testing.T) {
	var order []string
	sink := &memSink{name: "a", log: &order}
	err := audit.NewRecorder(nil, sink).Record(context.Background(), audit.Event{TenantID: "t", UserID: "u"})
	if !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("event without a name: %v, want ErrNotRecorded", err)
	}
	if len(order) != 0 {
		t.Fatal("an event without a name reached a sink")
	}
}

func TestStreamSinkWritesOneJSONLinePerEvent(t *testing.T) {
	now, clock := fixedClock()
	var buf bytes.Buffer
	r := audit.NewRecorder(clock, audit.NewStreamSink(&buf))
	full := audit.Event{
		Event:     audit.CredentialsAccessed,
		TenantID:  "550e8400-e29b-41d4-a716-446655440000",
		UserID:    "alice",
		IP:        "203.0.113.7",
		UserAgent: "test-agent",
		Severity:  audit.Warning,
		Details:   map[string]any{"kv_version": 3},
	}
	if err := r.Record(context.Background(), full); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(context.Background(), audit.Event{Event: audit.CredentialsViewed}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(buf.String(), "\n") {
		t.Fatalf("want 2 newline-terminated lines, got %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("line is not JSON: %v", err)
	}
	want := map[string]any{
		"log_type":   "audit",
		"event":      audit.CredentialsAccessed,
		"tenant_id":  full.TenantID,
		"user_id":    "alice",
		"ip":         "203.0.113.7",
		"user_agent": "test-agent",
		"severity":   "warning",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("field %s = %v, want %v", k, m[k], v)
		}
	}
	if _, err := uuid.Parse(m["id"].(string)); err != nil {
		t.Errorf("id %v: %v", m["id"], err)
	}
	ts, err := time.Parse(time.RFC3339Nano, m["timestamp"].(string))
	if err != nil || !ts.Equal(now) || !strings.HasSuffix(m["timestamp"].(string), "Z") {
		t.Errorf("timestamp %v, want %v in UTC", m["timestamp"], now.UTC())
	}
	if d, _ := m["details"].(map[string]any); d["kv_version"] != float64(3) {
		t.Errorf("details %v", m["details"])
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"details", "event", "id", "ip", "log_type", "severity", "tenant_id", "timestamp", "user_agent", "user_id"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("fields %v, want exactly %v", keys, wantKeys)
	}
	var m2 map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m2); err != nil || m2["log_type"] != "audit" || m2["event"] != audit.CredentialsViewed {
		t.Errorf("second line %q (%v)", lines[1], err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

func TestStreamSinkWriteFailureFailsClosed(t *testing.T) {
	err := audit.NewRecorder(nil, audit.NewStreamSink(failingWriter{})).Record(context.Background(), audit.Event{Event: audit.CredentialsAccessed})
	if !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("stream write failure: %v, want ErrNotRecorded", err)
	}
}

// TestStreamSinkConcurrentWriters writes through a plain bytes.Buffer, which
// is not safe for concurrent use: only the sink's own locking keeps lines
// whole (and the race detector quiet).
func TestStreamSinkConcurrentWriters(t *testing.T) {
	var buf bytes.Buffer
	r := audit.NewRecorder(nil, audit.NewStreamSink(&buf))
	const writers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- r.Record(context.Background(), audit.Event{
					Event:   audit.CredentialsAccessed,
					UserID:  strings.Repeat("u", 200), // long lines make interleaving visible
					Details: map[string]any{"writer": w, "n": i},
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("interleaved or broken line %q: %v", sc.Text(), err)
		}
		if m["log_type"] != "audit" {
			t.Fatalf("line without log_type audit: %q", sc.Text())
		}
		ids[m["id"].(string)] = true
	}
	if len(ids) != writers*each {
		t.Fatalf("%d distinct events in the stream, want %d", len(ids), writers*each)
	}
}

// gateSink blocks its write until the observer has started, so a recorder
// that ran observers after the sinks would never finish the write.
type gateSink struct {
	started <-chan struct{}
	err     error
}

func (s gateSink) Write(ctx context.Context, _ audit.Event) error {
	select {
	case <-s.started:
		return s.err
	case <-time.After(10 * time.Second): // a deadlock guard, not a speed check
		return errors.New("the observer never started while the sink was writing")
	}
}

type chanObserver struct {
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	seen    []audit.Event
}

func (o *chanObserver) Observe(_ context.Context, e audit.Event) {
	close(o.started)
	<-o.release
	o.mu.Lock()
	o.seen = append(o.seen, e)
	o.mu.Unlock()
}

// TestObserversRunBesideTheSinks: an observer sees the event (with its id
// and timestamp) while the sinks write it, also when the write fails, and
// Record returns only once the observer is done.
func TestObserversRunBesideTheSinks(t *testing.T) {
	for _, sinkErr := range []error{nil, errors.New("bucket down")} {
		o := &chanObserver{started: make(chan struct{}), release: make(chan struct{})}
		r := audit.NewRecorder(nil, gateSink{started: o.started, err: sinkErr})
		r.AddObservers(o)
		done := make(chan error)
		go func() {
			done <- r.Record(context.Background(), audit.Event{Event: audit.CredentialsAccessed, UserID: "sam"})
		}()
		<-o.started
		select {
		case err := <-done:
			t.Fatalf("Record returned (%v) before its observer was done", err)
		default:
		}
		close(o.release)
		err := <-done
		if (sinkErr == nil) != (err == nil) || (err != nil && !errors.Is(err, audit.ErrNotRecorded)) {
			t.Fatalf("sink error %v: Record returned %v", sinkErr, err)
		}
		if len(o.seen) != 1 || o.seen[0].ID == "" || o.seen[0].Timestamp.IsZero() || o.seen[0].UserID != "sam" {
			t.Fatalf("observer saw %+v", o.seen)
		}
	}
	// An event refused before any sink (a detail that names a secret) is
	// shown to no observer.
	o := &chanObserver{started: make(chan struct{}), release: make(chan struct{})}
	close(o.release)
	r := audit.NewRecorder(nil)
	r.AddObservers(o)
	if err := r.Record(context.Background(), audit.Event{Event: audit.CredentialsAccessed, Details: map[string]any{"password": "x"}}); err == nil {
		t.Fatal("a secret detail was accepted")
	}
	if len(o.seen) != 0 {
		t.Fatal("an observer saw a refused event")
	}
}
