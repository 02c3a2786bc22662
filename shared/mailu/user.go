package mailu

import (
	"fmt"
	"log/slog"
)

// User is a MailU user as GET /user/{email} describes it, with MailU's JSON
// names (the MailU stand-in serves the same type). MailU also returns the password hash; it is deliberately not
// decoded, so no value of this type ever holds password material.
type User struct {
	Email              string   `json:"email"`
	Comment            string   `json:"comment"`
	DisplayedName      string   `json:"displayed_name"`
	QuotaBytes         int64    `json:"quota_bytes"`
	QuotaBytesUsed     int64    `json:"quota_bytes_used"`
	GlobalAdmin        bool     `json:"global_admin"`
	Enabled            bool     `json:"enabled"`
	ChangePwNextLogin  bool     `json:"change_pw_next_login"`
	EnableIMAP         bool     `json:"enable_imap"`
	EnablePOP          bool     `json:"enable_pop"`
	AllowSpoofing      bool     `json:"allow_spoofing"`
	ForwardEnabled     bool     `json:"forward_enabled"`
	ForwardDestination []string `json:"forward_destination"`
	ForwardKeep        bool     `json:"forward_keep"`
	ReplyEnabled       bool     `json:"reply_enabled"`
	ReplySubject       *string  `json:"reply_subject"` // null until set
	ReplyBody          *string  `json:"reply_body"`
	ReplyStartDate     string   `json:"reply_startdate"` // YYYY-MM-DD
	ReplyEndDate       string   `json:"reply_enddate"`   // YYYY-MM-DD
	SpamEnabled        bool     `json:"spam_enabled"`
	SpamMarkAsRead     bool     `json:"spam_mark_as_read"`
	SpamThreshold      int64    `json:"spam_threshold"`
}

// UserCreate is the body of POST /user. GlobalAdmin and Enabled are always
// sent, so the zero value creates a disabled, non-admin user: say what you
// mean rather than rely on MailU's defaults.
type UserCreate struct {
	Email             string `json:"email"`
	RawPassword       string `json:"raw_password"`
	Comment           string `json:"comment,omitempty"`
	DisplayedName     string `json:"displayed_name,omitempty"`
	QuotaBytes        int64  `json:"quota_bytes,omitempty"` // 0: MailU's default quota
	GlobalAdmin       bool   `json:"global_admin"`
	Enabled           bool   `json:"enabled"`
	ChangePwNextLogin bool   `json:"change_pw_next_login,omitempty"`
}

// String keeps the password out of %v, %s and %+v.
func (u UserCreate) String() string {
	return fmt.Sprintf("UserCreate{Email:%s RawPassword:[redacted] GlobalAdmin:%t Enabled:%t}", u.Email, u.GlobalAdmin, u.Enabled)
}

// GoString keeps the password out of %#v.
func (u UserCreate) GoString() string { return u.String() }

// LogValue keeps the password out of slog records.
func (u UserCreate) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("email", u.Email),
		slog.Bool("global_admin", u.GlobalAdmin),
		slog.Bool("enabled", u.Enabled),
	)
}

// UserUpdate is the body of PATCH /user/{email}: nil fields are left as
// they are. The password is changed only through SetPassword, so this type
// never holds a secret.
type UserUpdate struct {
	Comment           *string `json:"comment,omitempty"`
	DisplayedName     *string `json:"displayed_name,omitempty"`
	QuotaBytes        *int64  `json:"quota_bytes,omitempty"`
	GlobalAdmin       *bool   `json:"global_admin,omitempty"`
	Enabled           *bool   `json:"enabled,omitempty"`
	ChangePwNextLogin *bool   `json:"change_pw_next_login,omitempty"`
}
