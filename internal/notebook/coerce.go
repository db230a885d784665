package notebook

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// CoercePapermillValue types a `-p name value` string the way papermill's
// CLI does (_resolve_type), so `millrace run -p n 5` injects what
// `papermill -p n 5` would: "True"/"False" become bool, "None" nil,
// anything Python's int() accepts an int64 (a json.Number when it does
// not fit), anything float() accepts a float64, and everything else stays
// the string. float() accepts "nan" and "inf": those come back as float64
// NaN/±Inf, which JSON cannot carry, so CheckValueSizes reports them.
func CoercePapermillValue(s string) any {
	switch s {
	case "True":
		return true
	case "False":
		return false
	case "None":
		return nil
	}
	if digits, ok := pythonIntDigits(s); ok {
		if n, err := strconv.ParseInt(digits, 10, 64); err == nil {
			return n
		}
		if n, ok := new(big.Int).SetString(digits, 10); ok {
			return json.Number(n.String())
		}
	}
	if f, ok := pythonFloat(s); ok {
		return f
	}
	return s
}

// pythonNumber normalises what int() and float() both do first: strip
// Unicode whitespace, map any Unicode decimal digit to ASCII, and check
// that underscores only sit between digits (PEP 515).
func pythonNumber(s string) (string, bool) {
	s = strings.TrimFunc(s, unicode.IsSpace)
	var b strings.Builder
	prevDigit := false
	for i, r := range s {
		switch {
		case r == '_':
			next := []rune(s[i+1:])
			if !prevDigit || len(next) == 0 || !unicode.IsDigit(next[0]) {
				return "", false
			}
			prevDigit = false
			continue
		case unicode.IsDigit(r):
			b.WriteByte(byte('0' + digitValue(r)))
			prevDigit = true
			continue
		}
		prevDigit = false
		b.WriteRune(r)
	}
	return b.String(), s != ""
}

// digitValue finds a Unicode decimal digit's value: Unicode lays each
// script's digits out as runs of ten starting at zero, so the offset from
// the start of the run of digits, modulo 10, is the value.
func digitValue(r rune) int {
	start := r
	for unicode.IsDigit(start - 1) {
		start--
	}
	return int(r-start) % 10
}

// pythonIntDigits reports whether int(s) succeeds, returning the signed
// ASCII digits.
func pythonIntDigits(s string) (string, bool) {
	n, ok := pythonNumber(s)
	if !ok {
		return "", false
	}
	body := strings.TrimLeft(n, "+-")
	if len(n)-len(body) > 1 || body == "" || strings.Trim(body, "0123456789") != "" {
		return "", false
	}
	return strings.TrimPrefix(n, "+"), true
}

// pythonFloat reports whether float(s) succeeds, with its value.
func pythonFloat(s string) (float64, bool) {
	n, ok := pythonNumber(s)
	if !ok {
		return 0, false
	}
	body := strings.TrimLeft(n, "+-")
	if len(n)-len(body) > 1 {
		return 0, false
	}
	neg := strings.HasPrefix(n, "-")
	switch strings.ToLower(body) {
	case "inf", "infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	// Go's parser takes more spellings than Python's float() (hex floats
	// such as "0x1p3"): keep to decimal digits, '.', and an exponent.
	if strings.Trim(strings.ToLower(body), "0123456789.e+-") != "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true // float("1e400") is inf in Python too
		}
		return 0, false
	}
	return f, true
}
