package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info, or "dev".
var version = ""

func versionCommand() command {
	return command{
		name:    "version",
		args:    "[flags]",
		summary: "print millrace's version",
		run:     runVersion,
	}
}

// versionInfo is what version --json prints.
type versionInfo struct {
	Version     string `json:"version"`
	Go          string `json:"go"`
	TemporalSDK string `json:"temporal_sdk"`
}

func runVersion(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	asJSON := f.withJSON()
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	v := versionInfo{Version: version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "go.temporal.io/sdk" {
				v.TemporalSDK = d.Version
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if *asJSON {
		return c.printJSON(v)
	}
	fmt.Fprintf(c.stdout, "millrace %s (%s", v.Version, v.Go)
	if v.TemporalSDK != "" {
		fmt.Fprintf(c.stdout, ", Temporal Go SDK %s", v.TemporalSDK)
	}
	fmt.Fprintln(c.stdout, ")")
	return nil
}
