package codec_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"

	"millrace/internal/codec"
)

func writeKeys(t *testing.T, keys ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "codec.key")
	if err := os.WriteFile(p, []byte("# test keys\n\n"+strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func key(b byte) string { return hex.EncodeToString(bytes.Repeat([]byte{b}, codec.KeySize)) }

func load(t *testing.T, path string) *codec.Codec {
	t.Helper()
	c, err := codec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSealedPayloadHoldsNoPlaintextAndRoundTrips(t *testing.T) {
	dc := load(t, writeKeys(t, key(1))).DataConverter()
	p, err := dc.ToPayload(map[string]string{"SECRET": "hunter2-plaintext"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Data, []byte("hunter2")) {
		t.Fatalf("sealed payload holds the plaintext: %q", p.Data)
	}
	if got := string(p.Metadata[converter.MetadataEncoding]); got != codec.Encoding {
		t.Fatalf("encoding %q, want %q", got, codec.Encoding)
	}
	if got, want := string(p.Metadata[codec.KeyIDKey]), codec.KeyID(bytes.Repeat([]byte{1}, 32)); got != want {
		t.Fatalf("key id %q, want %q", got, want)
	}
	var back map[string]string
	if err := dc.FromPayload(p, &back); err != nil || back["SECRET"] != "hunter2-plaintext" {
		t.Fatalf("round trip: %v %v", back, err)
	}
}

func TestRotationOpensOldKeysAndSealsWithTheFirst(t *testing.T) {
	old := load(t, writeKeys(t, key(1))).DataConverter()
	rotated := load(t, writeKeys(t, key(2), key(1))).DataConverter()
	p, err := old.ToPayload("sealed with the old key")
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := rotated.FromPayload(p, &s); err != nil || s != "sealed with the old key" {
		t.Fatalf("rotated codec cannot open an old payload: %q %v", s, err)
	}
	q, _ := rotated.ToPayload("new")
	if got, want := string(q.Metadata[codec.KeyIDKey]), codec.KeyID(bytes.Repeat([]byte{2}, 32)); got != want {
		t.Fatalf("rotated codec sealed with %s, want the first key %s", got, want)
	}
	// The old binary, not yet given the new key, says which key it lacks.
	err = old.FromPayload(q, &s)
	if err == nil || !strings.Contains(err.Error(), keyIDOf(q)) || !strings.Contains(err.Error(), "not among the keys") {
		t.Fatalf("old codec opening a new payload: %v", err)
	}
}

func keyIDOf(p interface{ GetMetadata() map[string][]byte }) string {
	return string(p.GetMetadata()[codec.KeyIDKey])
}

func TestNoKeyRefusesSealedPayloadsAndPassesPlainOnes(t *testing.T) {
	sealed, _ := load(t, writeKeys(t, key(1))).DataConverter().ToPayload("secret")
	none := codec.New("").DataConverter()
	var s string
	err := none.FromPayload(sealed, &s)
	if err == nil || !strings.Contains(err.Error(), "MILLRACE_CODEC_KEY_FILE") || s != "" {
		t.Fatalf("a process without a key decoded %q, err %v; want a clear error", s, err)
	}
	plain, _ := converter.GetDefaultDataConverter().ToPayload("written before the codec")
	if err := load(t, writeKeys(t, key(1))).DataConverter().FromPayload(plain, &s); err != nil || s != "written before the codec" {
		t.Fatalf("plain payload through the codec: %q %v", s, err)
	}
}

func TestTamperedPayloadIsAnErrorNotGarbage(t *testing.T) {
	dc := load(t, writeKeys(t, key(1))).DataConverter()
	p, _ := dc.ToPayload("value")
	p.Data[len(p.Data)-1] ^= 1
	var s string
	if err := dc.FromPayload(p, &s); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Fatalf("tampered payload: %q %v", s, err)
	}
}

func TestBadKeyFilesAreRefused(t *testing.T) {
	for name, content := range map[string]string{
		"short":   strings.Repeat("ab", 16),
		"not hex": strings.Repeat("zz", 32),
		"empty":   "# nothing",
	} {
		p := writeKeys(t, content)
		if _, err := codec.Load(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s key file: err %v, want one naming the file", name, err)
		}
	}
	if _, err := codec.Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing key file loaded")
	}
}

func TestCreateWritesAnOwnerOnlyKeyOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev", "codec.key")
	made, err := codec.Create(p)
	if err != nil || !made {
		t.Fatalf("create: %v %v", made, err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	first, _ := os.ReadFile(p)
	if made, err := codec.Create(p); err != nil || made {
		t.Fatalf("second create: %v %v", made, err)
	}
	again, _ := os.ReadFile(p)
	if !bytes.Equal(first, again) {
		t.Fatal("a second Create replaced the key")
	}
	if c := load(t, p); !c.Sealing() {
		t.Fatal("created key does not seal")
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("left %d files beside the key", len(entries))
	}
}
