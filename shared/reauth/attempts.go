package reauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/vault"
)

// The lockout rule: more than MaxFailures failed attempts within
// FailureWindow lock the user's re-authentication for LockDuration.
//
// The daily cap: the lockout alone lets a patient guesser make about 860
// guesses a day, 3 every 5 minutes. More than DailyMaxFailures failures
// within DailyWindow (rolling, and not forgiven by a success) hold the
// user's re-authentication until a platform-admin lifts the hold with
// `scripts/staff unlock` (Lift).
const (
	MaxFailures      = 3
	FailureWindow    = 5 * time.Minute
	LockDuration     = 15 * time.Minute
	DailyMaxFailures = 10
	DailyWindow      = 24 * time.Hour
)

// casRetries bounds the read-modify-write rounds when other instances
// write the same record at the same time.
const casRetries = 8

// pendingTimeout is how long an attempt may stay unfinished before it
// counts as failed (its instance crashed); above any function's timeout.
const pendingTimeout = time.Minute

// attempts counts a user's failed re-authentications in a KV v2 record,
// <mount>/reauth/<user>, written with check-and-set, so that every
// function instance sees the same count and two instances never overwrite
// each other's attempts.
//
// An attempt is recorded as pending before Vault is asked (begin), and
// then becomes a failure (fail) or is removed (succeed, or release when
// Vault could not judge it). A new attempt is let through only while the
// failures plus the attempts in flight are within the limit, so firing
// many attempts in parallel buys no more guesses than firing them one by
// one; only real failures lock.
type attempts struct {
	vault KV
	mount string
}

// KV is the part of Vault the attempt records need; *vault.Client
// implements it.
type KV interface {
	ReadKV(ctx context.Context, mount, path string) (*vault.Secret, error)
	WriteKVCAS(ctx context.Context, mount, path string, data map[string]string, cas int) (int, error)
}

// attemptRecord is the content of one record.
type attemptRecord struct {
	failures    []time.Time // failed attempts in FailureWindow, oldest first
	daily       []time.Time // failed attempts in DailyWindow, oldest first
	pending     []time.Time // attempts in flight
	lockedUntil time.Time
	heldSince   time.Time // set by the daily cap; only Lift clears it
	version     int       // KV version read; 0 when there is no record yet
}

func (r *attemptRecord) held() bool { return !r.heldSince.IsZero() }

// addFailure counts a failed attempt in both windows, once.
func (r *attemptRecord) addFailure(t time.Time) {
	for _, list := range []*[]time.Time{&r.failures, &r.daily} {
		if !slices.ContainsFunc(*list, t.Equal) {
			*list = append(*list, t)
			slices.SortFunc(*list, func(x, y time.Time) int { return x.Compare(y) })
		}
	}
}

// prune forgets failures older than their window and counts attempts
// pending for longer than pendingTimeout as failed.
func (r *attemptRecord) prune(now time.Time) {
	r.pending = slices.DeleteFunc(r.pending, func(t time.Time) bool {
		if now.Sub(t) > pendingTimeout {
			r.addFailure(t)
			return true
		}
		return false
	})
	r.failures = slices.DeleteFunc(r.failures, func(t time.Time) bool { return !t.After(now.Add(-FailureWindow)) })
	r.daily = slices.DeleteFunc(r.daily, func(t time.Time) bool { return !t.After(now.Add(-DailyWindow)) })
}

// hold sets the hold when the daily failures exceed the cap; it reports
// whether this call set it.
func (r *attemptRecord) hold(now time.Time) bool {
	if r.held() || len(r.daily) <= DailyMaxFailures {
		return false
	}
	r.heldSince = now
	return true
}

func stamps(field string) []time.Time {
	var out []time.Time
	for _, f := range strings.Fields(field) {
		if t, err := time.Parse(time.RFC3339Nano, f); err == nil {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(x, y time.Time) int { return x.Compare(y) })
	return out
}

func join(ts []time.Time) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.UTC().Format(time.RFC3339Nano)
	}
	return strings.Join(out, " ")
}

func (a *attempts) path(user string) string { return "reauth/" + pathseg.Must(pathseg.StaffName, user) }

func (a *attempts) read(ctx context.Context, user string) (attemptRecord, error) {
	s, err := a.vault.ReadKV(ctx, a.mount, a.path(user))
	if errors.Is(err, vault.ErrNotFound) {
		return attemptRecord{}, nil
	}
	if err != nil {
		return attemptRecord{}, err
	}
	r := attemptRecord{version: s.Version, failures: stamps(s.Data["failures"]), daily: stamps(s.Data["daily_failures"]), pending: stamps(s.Data["pending"])}
	if v := s.Data["locked_until"]; v != "" {
		r.lockedUntil, _ = time.Parse(time.RFC3339Nano, v)
	}
	if v := s.Data["held_since"]; v != "" {
		// A hold that does not parse is still a hold: fail closed.
		if r.heldSince, err = time.Parse(time.RFC3339Nano, v); err != nil {
			r.heldSince = time.Unix(0, 0).UTC()
		}
	}
	return r, nil
}

func (a *attempts) write(ctx context.Context, user string, r attemptRecord, now time.Time) error {
	locked := ""
	if now.Before(r.lockedUntil) {
		locked = r.lockedUntil.UTC().Format(time.RFC3339Nano)
	}
	held := ""
	if r.held() {
		held = r.heldSince.UTC().Format(time.RFC3339Nano)
	}
	_, err := a.vault.WriteKVCAS(ctx, a.mount, a.path(user), map[string]string{
		"failures":       join(r.failures),
		"daily_failures": join(r.daily),
		"pending":        join(r.pending),
		"locked_until":   locked,
		"held_since":     held,
		"updated_at":     now.UTC().Format(time.RFC3339Nano),
	}, r.version)
	return err
}

// update reads the record, lets change edit it, and writes it back with
// check-and-set when change asks to; a lost race starts over. change may
// run more than once and returns its own result as the error.
func (a *attempts) update(ctx context.Context, user string, now time.Time, change func(r *attemptRecord) (write bool, result error)) error {
	for range casRetries {
		r, err := a.read(ctx, user)
		if err != nil {
			return err
		}
		write, result := change(&r)
		if write {
			err := a.write(ctx, user, r, now)
			if errors.Is(err, vault.ErrCASConflict) {
				continue
			}
			if err != nil {
				return err
			}
		}
		return result
	}
	return fmt.Errorf("attempts record of %s: %w: still changing after %d tries", user, vault.ErrCASConflict, casRetries)
}

// begin records an attempt starting at now and returns its stamp. A locked
// user gets an *Error of kind ErrLocked; lockedNow says that this call set
// the lock (attempts that never finished made the failures exceed the
// limit). While failures plus attempts in flight already reach the limit,
// the attempt is refused the same way, without a lock, until those finish.
func (a *attempts) begin(ctx context.Context, user string, now time.Time) (stamp time.Time, lockedNow bool, err error) {
	err = a.update(ctx, user, now, func(r *attemptRecord) (bool, error) {
		lockedNow = false
		if r.held() {
			return false, heldErr(len(r.daily))
		}
		if now.Before(r.lockedUntil) {
			return false, locked(r.lockedUntil.Sub(now))
		}
		r.prune(now)
		if r.hold(now) {
			lockedNow = true
			return true, heldErr(len(r.daily))
		}
		if len(r.failures) > MaxFailures {
			r.lockedUntil = now.Add(LockDuration)
			lockedNow = true
			e := locked(LockDuration)
			e.Failures = len(r.failures)
			return true, e
		}
		if len(r.failures)+len(r.pending) > MaxFailures {
			e := locked(min(5*time.Second, max(time.Second, pendingTimeout-now.Sub(r.pending[0]))))
			e.Reason = "attempts_in_flight"
			return false, e
		}
		stamp = now
		// Stamps name attempts: keep them unique.
		for slices.ContainsFunc(r.pending, stamp.Equal) || slices.ContainsFunc(r.failures, stamp.Equal) {
			stamp = stamp.Add(time.Nanosecond)
		}
		r.pending = append(r.pending, stamp)
		return true, nil
	})
	return stamp, lockedNow, err
}

// fail keeps the attempt as a failure and locks the user when the failures
// in the window exceed MaxFailures. It returns the failures counted and,
// when the user is locked, for how long (lockedNow: by this call).
// held is set when the failure set the daily hold (heldNow: this call).
func (a *attempts) fail(ctx context.Context, user string, stamp, now time.Time) (failures int, lockedFor time.Duration, lockedNow, held bool, err error) {
	err = a.update(ctx, user, now, func(r *attemptRecord) (bool, error) {
		lockedFor, lockedNow, held = 0, false, false
		n := len(r.pending)
		r.pending = slices.DeleteFunc(r.pending, stamp.Equal)
		write := len(r.pending) != n
		r.prune(now)
		if !slices.ContainsFunc(r.daily, stamp.Equal) && stamp.After(now.Add(-FailureWindow)) {
			r.addFailure(stamp)
			write = true
		}
		failures = len(r.failures)
		held = r.held()
		switch {
		case r.hold(now):
			held, lockedNow, write = true, true, true
			failures = len(r.daily)
		case held:
			failures = len(r.daily)
		case now.Before(r.lockedUntil):
			lockedFor = r.lockedUntil.Sub(now)
		case len(r.failures) > MaxFailures:
			r.lockedUntil = now.Add(LockDuration)
			lockedFor, lockedNow, write = LockDuration, true, true
		}
		return write, nil
	})
	return failures, lockedFor, lockedNow, held, err
}

// succeed ends the attempt and clears the user's failures of the lockout
// window: the user has just proved who they are. The daily failures stay
// (a guesser must not be forgiven by the user's own sign-ins), and so
// does a lock or hold set meanwhile.
func (a *attempts) succeed(ctx context.Context, user string, stamp, now time.Time) error {
	return a.update(ctx, user, now, func(r *attemptRecord) (bool, error) {
		n := len(r.pending)
		r.pending = slices.DeleteFunc(r.pending, stamp.Equal)
		if len(r.failures) == 0 && len(r.pending) == n {
			return false, nil
		}
		r.failures = nil
		return true, nil
	})
}

// release forgets an attempt that Vault could not judge (Vault down).
func (a *attempts) release(ctx context.Context, user string, stamp, now time.Time) error {
	return a.update(ctx, user, now, func(r *attemptRecord) (bool, error) {
		n := len(r.pending)
		r.pending = slices.DeleteFunc(r.pending, stamp.Equal)
		return len(r.pending) != n, nil
	})
}

// lift clears a user's hold and their daily failures (Lift).
func (a *attempts) lift(ctx context.Context, user string, now time.Time) (wasHeld bool, err error) {
	err = a.update(ctx, user, now, func(r *attemptRecord) (bool, error) {
		wasHeld = r.held()
		if !wasHeld && len(r.daily) == 0 {
			return false, nil
		}
		r.heldSince, r.daily, r.failures, r.lockedUntil = time.Time{}, nil, nil, time.Time{}
		return true, nil
	})
	return wasHeld, err
}
