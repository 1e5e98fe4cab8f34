package chdbtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// scanValue stores v, a value of ClickHouse type chType as chdb's JSON
// output has it, into dest. Like clickhouse-go, it accepts only the Go type
// the driver scans that ClickHouse type into (an Int64 into *int64, a
// UInt64 into *uint64, a DateTime into *time.Time in the column's or else
// the server's zone), so a query whose result types changed between server
// versions fails here as it would with the driver.
func scanValue(v any, chType string, dest any, tz *time.Location) error {
	t := chType
	if inner, ok := strings.CutPrefix(t, "LowCardinality("); ok {
		t = strings.TrimSuffix(inner, ")")
	}
	mismatch := func() error {
		return fmt.Errorf("clickhouse-go does not scan %s into %T", chType, dest)
	}
	switch {
	case t == "String" || strings.HasPrefix(t, "FixedString("):
		p, ok := dest.(*string)
		s, isString := v.(string)
		if !ok {
			return mismatch()
		}
		if !isString {
			return fmt.Errorf("%s value %v is not a JSON string", chType, v)
		}
		*p = s
		return nil
	case t == "DateTime" || strings.HasPrefix(t, "DateTime('"):
		p, ok := dest.(*time.Time)
		if !ok {
			return mismatch()
		}
		loc := tz
		if zone, ok := strings.CutPrefix(t, "DateTime('"); ok {
			var err error
			if loc, err = time.LoadLocation(strings.TrimSuffix(zone, "')")); err != nil {
				return err
			}
		}
		s, _ := v.(string)
		at, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
		if err != nil {
			return fmt.Errorf("%s value %v: %w", chType, v, err)
		}
		*p = at
		return nil
	}
	var num string
	switch n := v.(type) {
	case json.Number:
		num = n.String()
	case string: // 64-bit integers when output_format_json_quote_64bit_integers is on
		num = n
	default:
		return fmt.Errorf("chdbtest cannot scan %s (value %v of %T): add it to scanValue", chType, v, v)
	}
	done, err := scanNumber(t, num, dest)
	if errors.Is(err, errUnknownType) {
		return fmt.Errorf("chdbtest cannot scan %s: add it to scanValue", chType)
	}
	if err != nil {
		return fmt.Errorf("%s value %v: %w", chType, v, err)
	}
	if !done {
		return mismatch()
	}
	return nil
}

var errUnknownType = errors.New("unknown type")

// scanNumber sets dest from a number of ClickHouse type t; done is false
// when dest is of another type than the driver scans t into.
func scanNumber(t, num string, dest any) (done bool, err error) {
	switch t {
	case "Int8":
		return setInt[int8](dest, num, 8)
	case "Int16":
		return setInt[int16](dest, num, 16)
	case "Int32":
		return setInt[int32](dest, num, 32)
	case "Int64":
		return setInt[int64](dest, num, 64)
	case "UInt8":
		if p, ok := dest.(*bool); ok { // the driver scans UInt8 into bool too
			*p = num != "0"
			return true, nil
		}
		return setUint[uint8](dest, num, 8)
	case "UInt16":
		return setUint[uint16](dest, num, 16)
	case "UInt32":
		return setUint[uint32](dest, num, 32)
	case "UInt64":
		return setUint[uint64](dest, num, 64)
	case "Float64":
		if p, ok := dest.(*float64); ok {
			*p, err = strconv.ParseFloat(num, 64)
			return true, err
		}
		return false, nil
	}
	return false, errUnknownType
}

func setInt[T int8 | int16 | int32 | int64](dest any, s string, bits int) (bool, error) {
	p, ok := dest.(*T)
	if !ok {
		return false, nil
	}
	n, err := strconv.ParseInt(s, 10, bits)
	*p = T(n)
	return true, err
}

func setUint[T uint8 | uint16 | uint32 | uint64](dest any, s string, bits int) (bool, error) {
	p, ok := dest.(*T)
	if !ok {
		return false, nil
	}
	n, err := strconv.ParseUint(s, 10, bits)
	*p = T(n)
	return true, err
}
