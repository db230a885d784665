package codec

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A key file holds one key per line, as 64 hex digits (32 bytes); blank
// lines and lines starting with # are ignored. The first key seals new
// payloads; the others only open old ones. To rotate: add the new key as
// a second line on every binary, then move it first everywhere, and drop
// the old key once no history sealed with it is kept (the namespace's
// retention). Hex keeps the file printable and free of newline accidents;
// `openssl rand -hex 32` writes a key.

// Load reads the key file at path.
func Load(path string) (*Codec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("codec key file: %w", err)
	}
	var keys []Key
	seen := map[string]bool{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := hex.DecodeString(line)
		if err != nil || len(raw) != KeySize {
			return nil, fmt.Errorf("codec key file %s, line %d: a key is %d hex digits (%d random bytes; `openssl rand -hex 32` writes one)", path, n+1, 2*KeySize, KeySize)
		}
		k, err := NewKey(raw)
		if err != nil {
			return nil, fmt.Errorf("codec key file %s, line %d: %w", path, n+1, err)
		}
		if !seen[k.ID] {
			seen[k.ID] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("codec key file %s %w", path, ErrNoKey)
	}
	return New(path, keys...), nil
}

// Create writes a new random key to path, readable by its owner only,
// unless a file is there already (which is kept as it is). It reports
// whether it wrote one.
func Create(path string) (bool, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return false, fmt.Errorf("make codec key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("make codec key: %w", err)
	}
	// Written aside and linked into place, so no reader ever sees a
	// half-written key, and two creators cannot both win.
	f, err := os.CreateTemp(filepath.Dir(path), ".codec-key-*")
	if err != nil {
		return false, fmt.Errorf("make codec key: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = fmt.Fprintf(f, "# millrace payload codec key (AES-256-GCM); the first key encrypts, every key decrypts\n%s\n", hex.EncodeToString(raw))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), path)
	}
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("make codec key %s: %w", path, err)
	}
	return true, nil
}
