package mailustandin

import (
	"encoding/json"
	"fmt"
	"time"
)

// Faults are what an instance gets wrong on purpose, for tests. The zero
// value is a healthy MailU.
type Faults struct {
	// Down stops the instance's listeners: API connections are refused,
	// as when the tenant's VPS is off, and the internal auth endpoint cuts
	// the front's requests for the domain, so that the front answers
	// AUTH with a temporary failure (454). The ports are kept and reopened
	// when Down is cleared.
	Down bool
	// Delay holds every API request and every answer of the internal auth
	// endpoint this long first (the front waits at most 2 s per try).
	Delay time.Duration
	// RejectAPI makes every authenticated write (POST, PATCH, DELETE)
	// answer 500 without changing anything, as MailU does when its
	// database fails.
	RejectAPI bool
	// RejectSMTP makes the internal auth endpoint refuse every login
	// (the front answers 535), without counting it in the rate limits.
	RejectSMTP bool
	// RateLimitSMTP makes the internal auth endpoint answer every login as
	// rate limited, as MailU does once a client network or the user is
	// over its limit (the front answers 535 all the same).
	RateLimitSMTP bool
	// RequireTokens is MailU's AUTH_REQUIRE_TOKENS=true: a right password
	// is refused over SMTP (535), only app tokens log in.
	RequireTokens bool
	// FailNextWrites makes the next N authenticated writes answer 500
	// without changing anything; it counts down to zero.
	FailNextWrites int
	// DropNextWriteResponses applies the next N authenticated writes and
	// then closes the connection instead of answering: the client cannot
	// tell whether the change happened, which is what crash tests need.
	DropNextWriteResponses int
}

// faultsJSON is the wire form: Delay as a Go duration string ("250ms").
type faultsJSON struct {
	Down                   bool            `json:"down"`
	Delay                  json.RawMessage `json:"delay,omitempty"`
	RejectAPI              bool            `json:"reject_api"`
	RejectSMTP             bool            `json:"reject_smtp"`
	RateLimitSMTP          bool            `json:"rate_limit_smtp"`
	RequireTokens          bool            `json:"require_tokens"`
	FailNextWrites         int             `json:"fail_next_writes"`
	DropNextWriteResponses int             `json:"drop_next_write_responses"`
}

// MarshalJSON writes Delay as a duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	d, _ := json.Marshal(f.Delay.String())
	return json.Marshal(faultsJSON{
		Down: f.Down, Delay: d, RejectAPI: f.RejectAPI, RejectSMTP: f.RejectSMTP,
		RateLimitSMTP: f.RateLimitSMTP, RequireTokens: f.RequireTokens,
		FailNextWrites: f.FailNextWrites, DropNextWriteResponses: f.DropNextWriteResponses,
	})
}

// UnmarshalJSON reads Delay as a duration string, or as a number of
// nanoseconds (how encoding/json writes a bare time.Duration).
func (f *Faults) UnmarshalJSON(b []byte) error {
	var w faultsJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var d time.Duration
	if len(w.Delay) > 0 && string(w.Delay) != "null" {
		var s string
		if err := json.Unmarshal(w.Delay, &s); err == nil {
			var perr error
			if d, perr = time.ParseDuration(s); perr != nil {
				return fmt.Errorf("faults: delay: %w", perr)
			}
		} else if err := json.Unmarshal(w.Delay, &d); err != nil {
			return fmt.Errorf("faults: delay must be a duration like \"250ms\": %w", err)
		}
	}
	if d < 0 || w.FailNextWrites < 0 || w.DropNextWriteResponses < 0 {
		return fmt.Errorf("faults: delay and counters must not be negative")
	}
	*f = Faults{
		Down: w.Down, Delay: d, RejectAPI: w.RejectAPI, RejectSMTP: w.RejectSMTP,
		RateLimitSMTP: w.RateLimitSMTP, RequireTokens: w.RequireTokens,
		FailNextWrites: w.FailNextWrites, DropNextWriteResponses: w.DropNextWriteResponses,
	}
	return nil
}
