package alert

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/notify"
)

// Alert is one firing of a rule.
type Alert struct {
	Rule     string
	UserID   string // the user (or "ip:<address>") the rule counted
	TenantID string
	Count    int // matching events in the window, for threshold rules
	Event    audit.Event
}

// Engine evaluates the rules. It is an audit.Observer: it sees every
// event offered to the recorder, while the durable sinks write it (so an
// attempt refused because it could not be recorded still counts), and it
// never fails, so an alert that cannot be evaluated or delivered neither
// loses the event nor refuses the request (see Write).
type Engine struct {
	state    State
	notifier notify.Notifier
	log      *slog.Logger
	timeout  time.Duration

	// seen caches the last version of each state record this instance
	// read or wrote. A write names that version (check-and-set), so a
	// stale entry costs one conflict and a fresh read, never a lost
	// update; while one instance is busy with a user, it saves a read.
	mu   sync.Mutex
	seen map[string]cached
}

type cached struct {
	data    map[string]string
	version string
}

// casRetries bounds the read-modify-write rounds on one state record.
const casRetries = 8

// New returns an engine keeping its counters in state.
func New(state State, n notify.Notifier, log *slog.Logger) *Engine {
	return &Engine{state: state, notifier: n, log: log, timeout: 5 * time.Second, seen: map[string]cached{}}
}

// Observe implements audit.Observer with Write.
func (g *Engine) Observe(ctx context.Context, e audit.Event) { _ = g.Write(ctx, e) }

// Write implements audit.Sink. It evaluates the rules on e and delivers
// what fires, within a few seconds at most. Failures are logged at error
// level (alert_failed) and the state is set back so that the next
// matching event tries again; the CloudWatch alarms in template.yaml
// watch the same audit lines independently.
func (g *Engine) Write(ctx context.Context, e audit.Event) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	alerts, err := g.Evaluate(ctx, e)
	if err != nil {
		g.log.ErrorContext(ctx, "alert_failed", "stage", "evaluate", "event", e.Event, "event_id", e.ID, "error", err)
	}
	for _, a := range alerts {
		if err := g.notifier.Notify(ctx, a.Message()); err != nil {
			g.log.ErrorContext(ctx, "alert_failed", "stage", "deliver", "rule", a.Rule, "event_id", e.ID, "error", err)
			if err := g.rearm(ctx, a); err != nil {
				g.log.ErrorContext(ctx, "alert_failed", "stage", "rearm", "rule", a.Rule, "event_id", e.ID, "error", err)
			}
			continue
		}
		g.log.InfoContext(ctx, "alert sent", "rule", a.Rule, "event_id", e.ID, "tenant_id", a.TenantID)
	}
	return nil
}

// Evaluate applies every rule to e, updating the state, and returns the
// alerts that fire now.
func (g *Engine) Evaluate(ctx context.Context, e audit.Event) ([]Alert, error) {
	var out []Alert
	var errs []error
	for _, th := range thresholds {
		if !th.match(e) {
			continue
		}
		n, fire, err := g.count(ctx, th, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", th.rule, err))
			continue
		}
		if fire {
			out = append(out, Alert{Rule: th.rule, UserID: subject(e), TenantID: e.TenantID, Count: n, Event: e})
		}
	}
	if isAccess(e) {
		if night, ok := atNight(e.Timestamp); ok {
			fire, err := g.firstThisNight(ctx, e, night)
			if err != nil {
				errs = append(errs, fmt.Errorf("rule %s: %w", RuleNightAccess, err))
			} else if fire {
				out = append(out, Alert{Rule: RuleNightAccess, UserID: subject(e), TenantID: e.TenantID, Count: 1, Event: e})
			}
		}
	}
	if resetWithoutIncident(e) {
		out = append(out, Alert{Rule: RuleResetWithoutIncident, UserID: subject(e), TenantID: e.TenantID, Count: 1, Event: e})
	}
	return out, errors.Join(errs...)
}

// subject is whom a rule counts: the user, or the source IP when the
// request carried no valid identity.
func subject(e audit.Event) string {
	switch {
	case e.UserID != "":
		return e.UserID
	case e.IP != "":
		return "ip:" + e.IP
	}
	return "unknown"
}

func statePath(rule, who string) string {
	return rule + "/" + base64.RawURLEncoding.EncodeToString([]byte(who))
}

// count adds e to its key's window and reports the events in the window
// and whether this event starts a burst: the count passes the limit and
// the previous event of the key had not. A burst ends when an event finds
// the window back within the limit, so one burst alerts once.
func (g *Engine) count(ctx context.Context, th threshold, e audit.Event) (n int, fire bool, err error) {
	at := e.Timestamp.UTC()
	err = g.update(ctx, statePath(th.rule, subject(e)), func(d map[string]string) bool {
		var stamps []time.Time
		for _, f := range strings.Fields(d["stamps"]) {
			if t, err := time.Parse(time.RFC3339Nano, f); err == nil && t.After(at.Add(-th.window)) {
				stamps = append(stamps, t)
			}
		}
		stamps = append(stamps, at)
		slices.SortFunc(stamps, time.Time.Compare)
		if len(stamps) > th.limit+1 {
			stamps = stamps[len(stamps)-th.limit-1:]
		}
		n = len(stamps)
		inBurst := d["in_burst"] == "true"
		fire = n > th.limit && !inBurst
		strs := make([]string, len(stamps))
		for i, t := range stamps {
			strs[i] = t.Format(time.RFC3339Nano)
		}
		d["stamps"] = strings.Join(strs, " ")
		d["in_burst"] = strconv.FormatBool(n > th.limit)
		return true
	})
	return n, fire, err
}

// firstThisNight reports whether e is the user's first access of the
// night, so a night of work alerts once per user.
func (g *Engine) firstThisNight(ctx context.Context, e audit.Event, night string) (fire bool, err error) {
	err = g.update(ctx, statePath(RuleNightAccess, subject(e)), func(d map[string]string) bool {
		fire = d["night"] != night
		d["night"] = night
		return fire
	})
	return fire, err
}

// rearm undoes the state change of an alert that could not be delivered,
// so that the next matching event fires it again.
func (g *Engine) rearm(ctx context.Context, a Alert) error {
	return g.update(ctx, statePath(a.Rule, a.UserID), func(d map[string]string) bool {
		switch a.Rule {
		case RuleNightAccess:
			d["night"] = ""
		case RuleAccessBurst, RuleAuthFailures:
			d["in_burst"] = "false"
		default:
			return false
		}
		return true
	})
}

// update reads a state record, lets change edit it and writes it back
// with check-and-set; a lost race starts over.
func (g *Engine) update(ctx context.Context, path string, change func(map[string]string) (write bool)) error {
	for attempt := range casRetries {
		data, version := map[string]string{}, ""
		g.mu.Lock()
		c, ok := g.seen[path]
		g.mu.Unlock()
		if ok && attempt == 0 {
			maps.Copy(data, c.data)
			version = c.version
		} else {
			read, v, err := g.state.Read(ctx, path)
			if err != nil {
				return err
			}
			maps.Copy(data, read)
			version = v
		}
		if !change(data) {
			return nil
		}
		v, err := g.state.Write(ctx, path, data, version)
		if errors.Is(err, ErrConflict) {
			// Another instance counted the same user meanwhile; a short
			// random pause keeps several from colliding again and again.
			pause(ctx, time.Duration(rand.IntN(5*(attempt+1)))*time.Millisecond)
			continue
		}
		g.mu.Lock()
		if err == nil {
			g.seen[path] = cached{data, v}
		} else {
			delete(g.seen, path)
		}
		g.mu.Unlock()
		return err
	}
	return fmt.Errorf("alert state %s: %w: still changing after %d tries", path, ErrConflict, casRetries)
}

// Message renders the alert for people. It carries no secret: names,
// counts and the event's id, which finds the full record in the trail.
func (a Alert) Message() notify.Message {
	var body string
	switch a.Rule {
	case RuleAccessBurst:
		body = fmt.Sprintf("%s accessed SMTP credentials %d times within %v (limit %d).", a.UserID, a.Count, AccessWindow, AccessLimit)
	case RuleAuthFailures:
		body = fmt.Sprintf("%d failed authentications by %s within %v (limit %d).", a.Count, a.UserID, AuthFailureWindow, AuthFailureLimit)
	case RuleNightAccess:
		body = fmt.Sprintf("%s accessed SMTP credentials at %s, between %02d:00 and %02d:00 UTC.", a.UserID, a.Event.Timestamp.UTC().Format(time.RFC3339), NightStartHour, NightEndHour)
	case RuleResetWithoutIncident:
		body = fmt.Sprintf("%s asked for an emergency reset without an incident id (%s).", a.UserID, a.Event.Event)
	}
	if a.TenantID != "" {
		body += " Tenant " + a.TenantID + "."
	}
	body += " Audit event " + a.Event.ID + " (" + a.Event.Event + ")."
	subject := "smtp-vault security alert: " + a.Rule
	if len(subject) > 100 {
		subject = subject[:100]
	}
	return notify.Message{
		Kind:     notify.KindSecurityAlert,
		Subject:  subject,
		Body:     body,
		TenantID: a.TenantID,
		Attrs: map[string]string{
			"rule":     a.Rule,
			"user_id":  a.UserID,
			"event":    a.Event.Event,
			"event_id": a.Event.ID,
			"count":    strconv.Itoa(a.Count),
		},
		Time: a.Event.Timestamp,
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
