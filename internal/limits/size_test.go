package limits

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "1024": 1024, "512MiB": 512 << 20, "512mi": 512 << 20, "4GB": 4e9, "2g": 2 << 30,
		"1.5G": 3 << 29, " 100 MB ": 100e6, "64k": 64 << 10,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"lots", "-5M", "5XB", "1e3", "M", "1.2.3G", "99999999999999T"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{
		512 << 20: "512 MiB", 3 << 29: "1.5 GiB", 100: "100 B", 1536: "1.5 KiB", 100e6: "95.37 MiB",
	} {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
}
