package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// MaxSecretFileBytes bounds a secret file: a token is tens of bytes, so a
// larger file is a wrong path, not a secret.
const MaxSecretFileBytes = 64 << 10

// SecretFlag registers how a binary takes one secret: from the environment
// variable env (the default) or from a file (--NAME-file). The command
// line itself never carries it: every user of the machine can read a
// process's arguments (ps, /proc/<pid>/cmdline). --NAME is registered too,
// so that giving the secret there is refused (by RefuseSecretArgs, before
// parsing, so the error does not repeat the value) with a message saying
// what to use instead, rather than "flag provided but not defined".
func SecretFlag(fs *flag.FlagSet, dst *string, name, env, what string) {
	*dst = os.Getenv(env)
	fs.Func(name+"-file", "file holding the "+what+" (env "+env+" holds the value itself)", func(path string) error {
		s, err := ReadSecretFile(path)
		if err != nil {
			return err
		}
		*dst = s
		return nil
	})
	fs.Var(&refusedSecret{name: name, env: env}, name, "not accepted (the command line is visible to every user): use --"+name+"-file or "+env)
}

// refusedSecret is the flag.Value of a secret's --NAME: it refuses every
// value.
type refusedSecret struct{ name, env string }

func (r *refusedSecret) String() string { return "" }

func (r *refusedSecret) Set(string) error { return r.err() }

func (r *refusedSecret) err() error {
	return fmt.Errorf("--%s: a secret on the command line is visible to every user of this machine (ps): put it in a file and pass --%s-file FILE, or set %s", r.name, r.name, r.env)
}

// RefuseSecretArgs returns the error of the first flag in args that would
// give a secret on the command line, before the flag package parses it
// (whose error would repeat the value).
func RefuseSecretArgs(fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f := fs.Lookup(name); f != nil {
			if r, ok := f.Value.(*refusedSecret); ok {
				return r.err()
			}
		}
	}
	return nil
}

// ReadSecretFile reads a secret from a file, without its surrounding
// white space (a trailing newline from echo).
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, MaxSecretFileBytes+1)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if n > MaxSecretFileBytes {
		return "", fmt.Errorf("%s holds more than %d bytes: not a secret file", path, MaxSecretFileBytes)
	}
	s := strings.TrimSpace(string(b[:n]))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
