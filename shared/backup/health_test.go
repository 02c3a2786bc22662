package backup_test

import (
	"testing"
	"time"

	"smtp-vault/shared/backup"
)

func TestColour(t *testing.T) {
	cases := []struct {
		age  time.Duration
		ok   bool
		want string
	}{
		{0, false, backup.ColourNone},
		{0, true, backup.ColourGreen},
		{23*time.Hour + 59*time.Minute, true, backup.ColourGreen},
		{24 * time.Hour, true, backup.ColourAmber},
		{47 * time.Hour, true, backup.ColourAmber},
		{48 * time.Hour, true, backup.ColourRed},
		{400 * time.Hour, true, backup.ColourRed},
	}
	for _, c := range cases {
		if got := backup.Colour(c.age, c.ok); got != c.want {
			t.Errorf("Colour(%v, %v) = %s, want %s", c.age, c.ok, got, c.want)
		}
	}
}
