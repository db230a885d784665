package jobs

import "encoding/base64"

func encodeToken(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}
