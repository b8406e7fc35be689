package processor

import (
	"strings"
	"time"
)

// parseEventTime parses an event's time attribute as RFC 3339, in UTC.
// The common form, 2006-01-02T15:04:05[.fraction]Z with either case of T
// and Z, is read here into exactly the time time.Parse returns; any other
// (an offset, a day past the month's end, a comma before the fraction)
// goes to time.Parse, which decides and words the error. RFC 3339 allows
// a lower-case t and z; Go's parser does not, hence the upper-casing.
func parseEventTime(s string) (time.Time, error) {
	if t, ok := parseTimeZ(s); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// parseTimeZ reads 2006-01-02T15:04:05[.fraction]Z with the ranges
// time.Parse checks, for an event's time and (upper case only) the
// state's; like time.Parse, it reads at most 9 digits of the
// fraction and ignores the rest. It reads the bytes of an event too, so
// that the common time costs no string.
func parseTimeZ[text string | []byte](s text) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || s[10] != 'T' && s[10] != 't' ||
		s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' && s[len(s)-1] != 'z' {
		return time.Time{}, false
	}
	ok := true
	num := func(from, to, lo, hi int) int {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				ok = false
				return 0
			}
			n = n*10 + int(c-'0')
		}
		if n < lo || n > hi {
			ok = false
		}
		return n
	}
	year, month := num(0, 4, 0, 9999), num(5, 7, 1, 12)
	day, hour, minute, sec := num(8, 10, 1, 31), num(11, 13, 0, 23), num(14, 16, 0, 59), num(17, 19, 0, 59)
	if !ok || day > daysInMonth(month, year) {
		return time.Time{}, false
	}
	nsec := 0
	if frac := s[19 : len(s)-1]; len(frac) != 0 {
		if len(frac) < 2 || frac[0] != '.' {
			return time.Time{}, false
		}
		scale := 100_000_000
		for i := 1; i < len(frac); i++ {
			c := frac[i]
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			if scale > 0 {
				nsec += int(c-'0') * scale
				scale /= 10
			}
		}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}
