package mailustandin

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"smtp-vault/shared/mailu"
)

// userRecord is a stored user: what GET shows plus the password hash.
type userRecord struct {
	mailu.User
	PasswordHash string `json:"password_hash"`
}

// newUser has MailU's column defaults.
func newUser(email string) *userRecord {
	return &userRecord{User: mailu.User{
		Email:              email,
		QuotaBytes:         1_000_000_000,
		Enabled:            true,
		EnableIMAP:         true,
		EnablePOP:          true,
		ForwardDestination: []string{},
		ForwardKeep:        true,
		ReplyStartDate:     "1900-01-01",
		ReplyEndDate:       "2999-12-31",
		SpamEnabled:        true,
		SpamMarkAsRead:     true,
		SpamThreshold:      80,
	}}
}

// apply sets the fields present in p; dates were checked by the caller.
func (u *userRecord) apply(p payload, hash string) {
	if p.has("raw_password") {
		u.PasswordHash = hash
	}
	for k := range p {
		switch k {
		case "comment":
			u.Comment = p.str(k)
		case "quota_bytes":
			u.QuotaBytes = p.num(k)
		case "global_admin":
			u.GlobalAdmin = p.flag(k)
		case "enabled":
			u.Enabled = p.flag(k)
		case "change_pw_next_login":
			u.ChangePwNextLogin = p.flag(k)
		case "enable_imap":
			u.EnableIMAP = p.flag(k)
		case "enable_pop":
			u.EnablePOP = p.flag(k)
		case "allow_spoofing":
			u.AllowSpoofing = p.flag(k)
		case "forward_enabled":
			u.ForwardEnabled = p.flag(k)
		case "forward_destination":
			// MailU stores a sorted set and ignores an empty list.
			if d := p.list(k); len(d) > 0 {
				slices.Sort(d)
				u.ForwardDestination = slices.Compact(d)
			}
		case "forward_keep":
			u.ForwardKeep = p.flag(k)
		case "reply_enabled":
			u.ReplyEnabled = p.flag(k)
		case "reply_subject":
			s := p.str(k)
			u.ReplySubject = &s
		case "reply_body":
			s := p.str(k)
			u.ReplyBody = &s
		case "reply_startdate":
			u.ReplyStartDate = parseReplyDate(p.str(k))
		case "reply_enddate":
			u.ReplyEndDate = parseReplyDate(p.str(k))
		case "displayed_name":
			u.DisplayedName = p.str(k)
		case "spam_enabled":
			u.SpamEnabled = p.flag(k)
		case "spam_mark_as_read":
			u.SpamMarkAsRead = p.flag(k)
		case "spam_threshold":
			u.SpamThreshold = p.num(k)
		}
	}
}

// apiView is the user as GET /user and GET /user/{email} show it: MailU
// 2024.06's UserGet model (api/v1/user.py) includes the password hash.
type apiView struct {
	mailu.User
	Password string `json:"password"`
}

func (u *userRecord) apiView() apiView { return apiView{User: u.view(), Password: u.PasswordHash} }

func (u *userRecord) view() mailu.User {
	v := u.User
	v.ForwardDestination = slices.Clone(u.ForwardDestination)
	return v
}

// domainRecord is a MailU domain.
type domainRecord struct {
	Name          string   `json:"name"`
	Comment       string   `json:"comment"`
	MaxUsers      int64    `json:"max_users"`
	MaxAliases    int64    `json:"max_aliases"`
	MaxQuotaBytes int64    `json:"max_quota_bytes"`
	SignupEnabled bool     `json:"signup_enabled"`
	Alternatives  []string `json:"alternatives"`
}

func newDomain(name string) *domainRecord {
	return &domainRecord{Name: name, MaxUsers: -1, MaxAliases: -1, Alternatives: []string{}}
}

// domainView adds what GET /domain shows beyond the stored fields.
type domainView struct {
	domainRecord
	Managers []string `json:"managers"`
}

// hashPassword is how MailU 2024.06 stores a password (passlib.go).
func hashPassword(password string, cost int) (string, error) {
	h, err := HashBcryptSHA256(password, cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// checkPassword reports whether password matches hash, and whether the
// hash is of an older scheme that a successful login replaces, as
// passlib's verify_and_update does for MailU (models.py check_password).
// MailU never accepts an empty password, whatever is stored.
func checkPassword(hash, password string) (ok, outdated bool) {
	if password == "" || hash == "" {
		return false, false
	}
	if strings.HasPrefix(hash, "$bcrypt-sha256$") {
		return CheckBcryptSHA256(hash, password), false
	}
	// Before it modelled passlib, the stand-in kept bcrypt of the
	// password's SHA-256 in base64; state files may still hold such hashes.
	sum := sha256.Sum256([]byte(password))
	ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(base64.StdEncoding.EncodeToString(sum[:]))) == nil
	return ok, ok
}
