package devmode

import (
	"os"
	"path/filepath"

	"millrace/internal/codec"
	"millrace/internal/config"
)

// keyName is the dev service's payload codec key, under <data dir>/dev/.
const keyName = "codec.key"

// KeyFile is where the dev service of a data dir keeps its codec key: made
// on its first start, readable by its owner only, and used by every
// process of that data dir in dev mode, so that Temporal's history at rest
// (temporal.db and its WAL) holds no run's env values or parameters.
func KeyFile(dataDir string) string { return filepath.Join(Dir(dataDir), keyName) }

// ownKey gives the service its key: the configured one, or the data dir's,
// made now if it has none yet.
func ownKey(cfg *config.Config) error {
	if cfg.CodecKeyFile != "" {
		return nil
	}
	if _, err := codec.Create(KeyFile(cfg.DataDir)); err != nil {
		return err
	}
	cfg.CodecKeyFile = KeyFile(cfg.DataDir)
	return nil
}

// useKey points a client of the dev service at the service's key, unless
// it was given one. A data dir whose service predates codec keys has none:
// its payloads are then not encrypted until the service restarts.
func useKey(cfg *config.Config) {
	if cfg.CodecKeyFile != "" {
		return
	}
	if _, err := os.Stat(KeyFile(cfg.DataDir)); err == nil {
		cfg.CodecKeyFile = KeyFile(cfg.DataDir)
	}
}
