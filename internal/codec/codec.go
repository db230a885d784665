// Package codec encrypts what millrace stores in Temporal's workflow
// history: a run's input (its env values, parameters), results, heartbeat
// details and memos. Temporal keeps every payload on the server, in its
// database and write-ahead log; a payload codec on the client side (every
// millrace binary) means the server only ever holds ciphertext.
//
// Payloads are sealed with AES-256-GCM under a key read from a key file.
// Each sealed payload names its key by id in its metadata, so keys can be
// rotated: the first key of the file seals, every key of the file opens.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// Metadata of a sealed payload. Encoding marks it as sealed; KeyIDKey
// names the key that sealed it; CipherKey names the cipher, so that
// another cipher can be added without guessing.
const (
	Encoding  = "binary/encrypted"
	KeyIDKey  = "encryption-key-id"
	CipherKey = "encryption-cipher"
	Cipher    = "AES-256-GCM"
)

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

// Key is one AES-256 key and its id.
type Key struct {
	ID   string // KeyID of the key: what sealed payloads carry, never the key
	aead cipher.AEAD
}

// KeyID names a key in payload metadata: the first 8 bytes of its SHA-256,
// in hex. It identifies the key without revealing it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// NewKey makes a Key from KeySize raw bytes.
func NewKey(raw []byte) (Key, error) {
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("a key is %d bytes, not %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return Key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, err
	}
	return Key{ID: KeyID(raw), aead: aead}, nil
}

// Codec seals and opens payloads; it is a converter.PayloadCodec. A Codec
// with no key seals nothing and refuses to open a sealed payload with an
// error that says what to configure, so a binary without the key never
// hands ciphertext on as if it were data.
type Codec struct {
	keys   []Key // keys[0] seals
	source string
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec sealing with keys[0] and opening with any of keys.
// source names where the keys came from, for error messages.
func New(source string, keys ...Key) *Codec {
	return &Codec{keys: keys, source: source}
}

// Sealing reports whether the codec encrypts what it encodes.
func (c *Codec) Sealing() bool { return len(c.keys) > 0 }

// Encode seals every payload with the first key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if len(c.keys) == 0 {
		return payloads, nil
	}
	k := c.keys[0]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := p.Marshal()
		if err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				KeyIDKey:                   []byte(k.ID),
				CipherKey:                  []byte(Cipher),
			},
			Data: k.aead.Seal(nonce, nonce, plain, []byte(k.ID)),
		}
	}
	return out, nil
}

// Decode opens sealed payloads and passes the others through: history
// written before the codec was configured stays readable.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		plain, err := c.open(p)
		if err != nil {
			return nil, err
		}
		out[i] = plain
	}
	return out, nil
}

func (c *Codec) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[KeyIDKey])
	if ciph := string(p.GetMetadata()[CipherKey]); ciph != Cipher {
		return nil, fmt.Errorf("a payload is encrypted with cipher %q, which this millrace does not know (it knows %s)", ciph, Cipher)
	}
	if len(c.keys) == 0 {
		return nil, fmt.Errorf("a payload is encrypted with key %s, and this process has no codec key: give it the key file the other millrace processes use (--codec-key-file or MILLRACE_CODEC_KEY_FILE)", id)
	}
	for _, k := range c.keys {
		if k.ID != id {
			continue
		}
		n := k.aead.NonceSize()
		if len(p.Data) < n {
			return nil, fmt.Errorf("a payload encrypted with key %s is truncated", id)
		}
		plain, err := k.aead.Open(nil, p.Data[:n], p.Data[n:], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("a payload encrypted with key %s does not decrypt (altered or corrupt): %w", id, err)
		}
		out := &commonpb.Payload{}
		if err := out.Unmarshal(plain); err != nil {
			return nil, fmt.Errorf("a payload encrypted with key %s decrypts to no payload: %w", id, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a payload is encrypted with key %s, which is not among the keys of %s (%s): add that key to the file (keys after the first only decrypt)", id, c.source, strings.Join(c.ids(), ", "))
}

func (c *Codec) ids() []string {
	ids := make([]string, len(c.keys))
	for i, k := range c.keys {
		ids[i] = k.ID
	}
	return ids
}

// DataConverter is Temporal's default data converter with c applied to
// every payload.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// ErrNoKey is returned when a key file holds no key.
var ErrNoKey = errors.New("holds no key")
