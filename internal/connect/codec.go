package connect

import (
	"go.temporal.io/sdk/converter"

	"millrace/internal/codec"
	"millrace/internal/config"
)

// DataConverter is the data converter of every millrace client: payloads
// sealed with cfg.CodecKeyFile's keys when it is set. Without a key file it
// still recognises sealed payloads and refuses them with an error naming
// the missing key file, instead of handing ciphertext on. A job service
// decoding raw history (jobs.Service.DataConverter) must use the same one.
func DataConverter(cfg *config.Config) (converter.DataConverter, error) {
	c := codec.New("")
	if cfg.CodecKeyFile != "" {
		var err error
		if c, err = codec.Load(cfg.CodecKeyFile); err != nil {
			return nil, err
		}
	}
	return c.DataConverter(), nil
}
