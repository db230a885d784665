package connect

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"millrace/internal/codec"
	"millrace/internal/config"
)

// DataConverter is the data converter of every millrace client: payloads
// sealed with cfg.CodecKeyFile's keys when it is set. Without a key file it
// still recognises sealed payloads and refuses them with an error naming
// the missing key file, instead of handing ciphertext on. A job service
// decoding raw history (jobs.Service.DataConverter) must use the same one.
func DataConverter(cfg *config.Config) (converter.DataConverter, error) {
	c, err := payloadCodec(cfg)
	if err != nil {
		return nil, err
	}
	return c.DataConverter(), nil
}

// useCodec sets the client's data converter and, when payloads are sealed,
// a failure converter that seals failure messages and stack traces too: a
// cell's error message can quote what the run was given.
func useCodec(cfg *config.Config, opts *client.Options) error {
	c, err := payloadCodec(cfg)
	if err != nil {
		return err
	}
	opts.DataConverter = c.DataConverter()
	if c.Sealing() {
		opts.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: opts.DataConverter, EncodeCommonAttributes: true})
	}
	return nil
}

func payloadCodec(cfg *config.Config) (*codec.Codec, error) {
	if cfg.CodecKeyFile == "" {
		return codec.New(""), nil
	}
	return codec.Load(cfg.CodecKeyFile)
}
