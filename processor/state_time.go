package processor

import "time"

// The state holds two times and the processor encodes and decodes both
// for every event it folds. They are UTC times the fold took from
// RFC 3339 text or a record timestamp, so appendTime and parseStateTime
// write and read that one form digit by digit; any other time or text
// takes the time package's path, whose output and results the fast paths
// match exactly (TestAppendTimeMatchesAppendFormat,
// FuzzParseStateTime).

// timeLayout is how the state writes a time: as time.Time.MarshalJSON
// does, quoted RFC 3339 with nanoseconds.
const timeLayout = `"` + time.RFC3339Nano + `"`

// maxFastUnix is the first second of year 10000: the fast paths cover
// 1970-01-01 up to it, where RFC 3339's four-digit years end.
const maxFastUnix = 253402300800

// appendTime appends t as time.Time.MarshalJSON does. Years outside
// 0..9999, which MarshalJSON refuses, cannot occur: every time comes from
// RFC 3339 text or a record timestamp.
func appendTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	if t.Location() != time.UTC || sec < 0 || sec >= maxFastUnix {
		return t.AppendFormat(b, timeLayout)
	}
	year, month, day := civilFromDays(sec / 86400)
	clock := sec % 86400
	b = append(b, '"')
	b = appendTimeDigits(b, year, 4)
	b = append(b, '-')
	b = appendTimeDigits(b, month, 2)
	b = append(b, '-')
	b = appendTimeDigits(b, day, 2)
	b = append(b, 'T')
	b = appendTimeDigits(b, int(clock/3600), 2)
	b = append(b, ':')
	b = appendTimeDigits(b, int(clock/60%60), 2)
	b = append(b, ':')
	b = appendTimeDigits(b, int(clock%60), 2)
	if ns := t.Nanosecond(); ns != 0 {
		// RFC3339Nano's ".999999999": nine digits, trailing zeros cut.
		b = append(b, '.')
		start := len(b)
		b = appendTimeDigits(b, ns, 9)
		end := len(b)
		for b[end-1] == '0' {
			end--
		}
		b = b[:max(end, start)]
	}
	return append(b, `Z"`...)
}

// appendTimeDigits appends v, which is not negative, in exactly width
// decimal digits (v < 10^width).
func appendTimeDigits(b []byte, v, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

// parseStateTime reads the text between the quotes of a time appendTime
// wrote, with the result time.Parse(time.RFC3339Nano, ...) gives: the
// UTC form "2006-01-02T15:04:05[.fraction]Z"; ok is false for anything
// else. It is the event time's reader (parseTimeZ) without the lower-case
// t and z that RFC 3339 allows and time.Parse refuses.
func parseStateTime(b []byte) (t time.Time, ok bool) {
	if len(b) < len("2006-01-02T15:04:05Z") || b[10] != 'T' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	return parseTimeZ(b)
}

func daysInMonth(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// civilFromDays converts days since 1970-01-01 (not negative) to the
// proleptic Gregorian date, as in Howard Hinnant's "chrono-Compatible
// Low-Level Date Algorithms", with eras of 400 years counted from
// 0000-03-01.
func civilFromDays(days int64) (year, month, day int) {
	z := days + 719468
	era := z / 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365], from March 1
	mp := (5*doy + 2) / 153                                // [0, 11], March = 0
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if mp >= 10 {
		month = int(mp - 9)
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day
}
