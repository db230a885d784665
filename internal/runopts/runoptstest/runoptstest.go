// Package runoptstest fills every run option with a distinct, valid,
// non-zero value, for the tests that follow each option from an entry
// point (an MCP tool, millrace run, a batch file) to the workflow's input.
// They find the options by reflection (runopts.Each), so an option added
// to runopts is filled and followed without anyone editing those tests.
package runoptstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// NotifyHost is the host of the notify_url the world uses: put it in the
// job service's (and the CLI's) notify allow-list. Nothing listens there.
const NotifyHost = "hooks.example.test"

// notebook declares one parameter, steps: int. A string for it needs
// no_type_check, and any other name needs allow_extra_parameters. Its last
// cell sleeps 3 s, so that a test cancels a run (or a batch) before it
// ends: a warm run is done in half a second.
const notebook = `{
 "cells": [
  {"cell_type": "code", "execution_count": null, "id": "p", "metadata": {"tags": ["parameters"]}, "outputs": [], "source": ["steps: int = 1"]},
  {"cell_type": "code", "execution_count": null, "id": "r", "metadata": {}, "outputs": [], "source": ["print(steps)"]},
  {"cell_type": "code", "execution_count": null, "id": "s", "metadata": {}, "outputs": [], "source": ["import time; time.sleep(3)"]}
 ],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}, "language_info": {"name": "python"}},
 "nbformat": 4,
 "nbformat_minor": 5
}
`

// World is a root folder holding a notebook, a working folder and an
// output folder that the options refer to.
type World struct {
	Root     string
	Notebook string // options.ipynb in Root
}

// NewWorld makes the world in a temporary folder.
func NewWorld(t testing.TB) World {
	t.Helper()
	root := t.TempDir()
	w := World{Root: root, Notebook: filepath.Join(root, "options.ipynb")}
	for _, dir := range []string{"work", "out"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(w.Notebook, []byte(notebook), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// Valid gives the options whose checks a made-up value would not pass
// (paths inside the root, a kernel name, a size, a priority word, an
// allowed URL, env names), by JSON name. withDirect adds a parameter the
// notebook does not declare, which only allow_extra_parameters (a Direct
// option) lets through.
func (w World) Valid(withDirect bool) map[string]any {
	params := map[string]any{"steps": "five"}
	if withDirect {
		params["undeclared"] = "extra"
	}
	return map[string]any{
		"parameters":          params,
		"output_path":         filepath.Join(w.Root, "out", "run.ipynb"),
		"kernel":              "python3",
		"cwd":                 filepath.Join(w.Root, "work"),
		"memory_limit":        "300MiB",
		"checkpoint":          "every_cell",
		"checkpoint_max_size": "3GiB",
		"priority":            "low",
		"notify_url":          "https://" + NotifyHost + "/run",
		"labels":              []string{"options-a", "options-b"},
		"env":                 map[string]string{"OPTIONS_VAR": "set"},
	}
}

// Fill sets every option of the struct v points to (see runopts.Each):
// to valid's value for its JSON name when it has one, else to a value
// made from its kind and position, different from every other option's.
// A kind Fill cannot make a value for fails the test: give it in valid.
func Fill(t testing.TB, v any, valid map[string]any) {
	t.Helper()
	i := 0
	runopts.Each(v, func(name string, f reflect.Value) {
		i++
		if val, ok := valid[name]; ok {
			f.Set(reflect.ValueOf(val))
			return
		}
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case reflect.String:
			f.SetString(fmt.Sprintf("%s-%d", name, i))
		case reflect.Slice:
			if f.Type().Elem().Kind() != reflect.String {
				t.Fatalf("runoptstest.Fill: no value for option %s (%s): give one in valid", name, f.Type())
			}
			f.Set(reflect.ValueOf([]string{name + "-1", name + "-2"}).Convert(f.Type()))
		default:
			t.Fatalf("runoptstest.Fill: no value for option %s (%s): give one in valid", name, f.Type())
		}
	})
}

// Zero sets the option named name of the struct v points to back to its
// zero value, reporting whether v has it.
func Zero(v any, name string) bool {
	found := false
	runopts.Each(v, func(n string, f reflect.Value) {
		if n == name {
			f.Set(reflect.Zero(f.Type()))
			found = true
		}
	})
	return found
}

// StartedInput waits for a job's workflow to exist (a batch node starts
// once its batch runs) and reads the input it started with from its
// history: the input as the worker receives it.
func StartedInput(t testing.TB, svc *jobs.Service, jobID string) workflows.RunInput {
	t.Helper()
	var in workflows.RunInput
	testenv.Eventually(t, time.Minute, jobID+" started", func() bool {
		var err error
		in, err = svc.StartedInput(context.Background(), jobID)
		return err == nil
	})
	return in
}
