package backup

import "time"

// Retention: the newest backup of each of the last KeepDays days and of
// each of the last KeepMonths months (UTC calendar days and months,
// counting today and this month).
const (
	KeepDays   = 30
	KeepMonths = 12
)

// Retain splits backups into those to keep at now and those to delete:
// the newest backup of each of the last KeepDays days and the newest of
// each of the last KeepMonths months are kept, as is anything dated after
// now (a clock ahead of ours deletes nothing). It is a pure function of
// its arguments; the order of backups does not matter.
func Retain(backups []Info, now time.Time) (keep, drop []Info) {
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	firstDay := today.AddDate(0, 0, -(KeepDays - 1))
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	firstMonth := thisMonth.AddDate(0, -(KeepMonths - 1), 0)

	newestOfDay := map[time.Time]int{}
	newestOfMonth := map[time.Time]int{}
	newer := func(m map[time.Time]int, slot time.Time, i int) {
		if j, ok := m[slot]; !ok || backups[i].Time.After(backups[j].Time) ||
			(backups[i].Time.Equal(backups[j].Time) && backups[i].Name > backups[j].Name) {
			m[slot] = i
		}
	}
	kept := make([]bool, len(backups))
	for i, b := range backups {
		t := b.Time.UTC()
		if t.After(now) {
			kept[i] = true
			continue
		}
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		month := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		if !day.Before(firstDay) {
			newer(newestOfDay, day, i)
		}
		if !month.Before(firstMonth) {
			newer(newestOfMonth, month, i)
		}
	}
	for _, i := range newestOfDay {
		kept[i] = true
	}
	for _, i := range newestOfMonth {
		kept[i] = true
	}
	for i, b := range backups {
		if kept[i] {
			keep = append(keep, b)
		} else {
			drop = append(drop, b)
		}
	}
	return keep, drop
}
