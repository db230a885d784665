package notebook

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

func TestCoercePapermillValue(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"True", true},
		{"False", false},
		{"None", nil},
		{"true", "true"}, // papermill only knows Python's spelling
		{"null", "null"},
		{"5", int64(5)},
		{"-5", int64(-5)},
		{"+5", int64(5)},
		{" 42\n", int64(42)},
		{"007", int64(7)},
		{"1_000", int64(1000)},
		{"١٢", int64(12)}, // Arabic-Indic digits: int() accepts them
		{"99999999999999999999", json.Number("99999999999999999999")},
		{"2.5", 2.5},
		{"-0.5", -0.5},
		{".5", 0.5},
		{"5.", 5.0},
		{"1e3", 1000.0},
		{"1E-2", 0.01},
		{"1_0.5", 10.5},
		{"1e400", math.Inf(1)},
		{"-inf", math.Inf(-1)},
		{"Infinity", math.Inf(1)},
		{"1__0", "1__0"},
		{"_1", "_1"},
		{"1_", "1_"},
		{"0x10", "0x10"}, // int("0x10") fails in Python: base 10
		{"0x1p3", "0x1p3"},
		{"1e", "1e"},
		{"--1", "--1"},
		{"", ""},
		{" ", " "},
		{"Hello", "Hello"},
		{`"Hello"`, `"Hello"`},
		{`do\ not\ crash`, `do\ not\ crash`},
		{"a; import os", "a; import os"},
	}
	for _, tt := range tests {
		got := CoercePapermillValue(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("CoercePapermillValue(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
	if got, ok := CoercePapermillValue("nan").(float64); !ok || !math.IsNaN(got) {
		t.Errorf("CoercePapermillValue(nan) = %#v, want NaN", got)
	}
}
