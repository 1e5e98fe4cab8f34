package chdbtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bind replaces each positional ? of query with its argument written as a
// SQL literal, the way clickhouse-go v2 binds arguments client-side
// (bind.go, bindPositional and formatValue) for a server whose time zone is
// tz: strings quoted with \ ' and NUL escaped, integers and booleans (1, 0)
// as numbers, times as toDateTime(...). A ? inside a string literal, a
// quoted identifier or after a backslash is not a placeholder.
//
// It knows only the types the code under test binds (strings, integers,
// booleans, times, nil) and returns an error for any other, and for a count
// of arguments that does not match the placeholders.
func Bind(tz *time.Location, query string, args ...any) (string, error) {
	if len(args) == 0 {
		return query, nil
	}
	var b strings.Builder
	next := 0
	var quote byte // the quote character of the literal or identifier the scan is in
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(query) {
				b.WriteByte(c)
				i++
				c = query[i]
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '\\' && i+1 < len(query) && query[i+1] == '?':
			b.WriteByte('?') // an escaped ? is a literal ?, without the backslash
			i++
			continue
		case c == '?':
			if next == len(args) {
				return "", fmt.Errorf("bind: more placeholders than the %d arguments in %q", len(args), query)
			}
			lit, err := Literal(tz, args[next])
			if err != nil {
				return "", fmt.Errorf("bind argument %d: %w", next+1, err)
			}
			b.WriteString(lit)
			next++
			continue
		}
		b.WriteByte(c)
	}
	if next != len(args) {
		return "", fmt.Errorf("bind: %d arguments for %d placeholders in %q", len(args), next, query)
	}
	return b.String(), nil
}

// stringEscaper escapes a string literal's contents as clickhouse-go does:
// backslash first, then the quote, and NUL as \0.
var stringEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`)

// Literal writes v as the SQL literal clickhouse-go binds for it on a
// server whose time zone is tz.
func Literal(tz *time.Location, v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		return "'" + stringEscaper.Replace(v) + "'", nil
	case []byte:
		return "'" + stringEscaper.Replace(string(v)) + "'", nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case int:
		return strconv.FormatInt(int64(v), 10), nil
	case int8:
		return strconv.FormatInt(int64(v), 10), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case time.Time:
		return timeLiteral(tz, v), nil
	}
	return "", fmt.Errorf("chdbtest cannot bind %T: add it to Literal, following clickhouse-go's bind.go", v)
}

// timeLiteral is clickhouse-go's formatTime at second precision: a time in
// the process's Local zone as epoch seconds, one in the server's zone as
// its wall clock, any other as its wall clock and zone.
func timeLiteral(tz *time.Location, t time.Time) string {
	switch loc := t.Location().String(); loc {
	case "Local", "":
		if t.Unix() == 0 {
			return "toDateTime(0)"
		}
		return fmt.Sprintf("toDateTime('%d')", t.Unix())
	case tz.String():
		return t.Format("toDateTime('2006-01-02 15:04:05')")
	default:
		return fmt.Sprintf("toDateTime('%s', '%s')", t.Format("2006-01-02 15:04:05"), stringEscaper.Replace(loc))
	}
}
