package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"millrace/internal/devmode"
)

func uiCommand() command {
	return command{
		name:    "ui",
		args:    "[flags]",
		summary: "open the dev service's Temporal Web UI in the browser (starting the service if needed), or print its address",
		help: `Opens the Temporal Web UI of the dev service in your browser: runs are
workflows whose id is the job id, with the notebook, a parameter summary,
labels and batch in the memo, and a batch's runs as its children. The address
carries the service's token, which the browser exchanges for a cookie on the
first visit: keep it to yourself as you keep the token file. Where no
browser can be opened (no display, no xdg-open or open), or with --print,
the address is printed instead. A cluster has a UI of its own: this command
serves dev mode only.`,
		run: runUI,
	}
}

func runUI(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	printOnly := f.Bool("print", false, "print the address instead of opening a browser")
	cfg := f.withConfig()
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if err := validate(cmd, cfg); err != nil {
		return err
	}
	if !cfg.DevMode() {
		return usagef(cmd, "the Temporal address is set (%s): millrace ui serves the dev service's UI; open your cluster's own", cfg.Address)
	}
	st, err := devmode.Ensure(ctx, cfg)
	if err != nil {
		return err
	}
	url, err := devmode.UIURL(st)
	if err != nil {
		return err
	}
	if url == "" {
		return errors.New("the dev service runs without its UI (started with --ui=false or MILLRACE_UI=0, or its server is a temporal CLI, whose UI cannot require the token): stop it (millrace dev stop) and run millrace ui again")
	}
	if !*printOnly {
		if err := openBrowser(ctx, url); err == nil {
			fmt.Fprintf(c.stderr, "opened the Temporal UI (%s) in your browser\n", st.UI)
			return nil
		} else {
			fmt.Fprintf(c.stderr, "cannot open a browser (%v); open this address:\n", err)
		}
	}
	fmt.Fprintln(c.stdout, url)
	return nil
}

// openBrowser hands url to the desktop's opener. On Linux without a display
// there is no browser to open: xdg-open would start a text browser in this
// terminal, or fail.
func openBrowser(ctx context.Context, url string) error {
	var name string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no display")
		}
		name = "xdg-open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("no %s", name)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The URL is an argument, never a shell word.
	if out, err := exec.CommandContext(ctx, path, url).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v %s", name, err, out)
	}
	return nil
}
