package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"testing"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/runopts/runoptstest"
)

// TestRunFlagsCarryEveryOption sets every run option (runopts.Options, Job
// and Direct, filled by reflection, so a new option is included), writes
// each as its millrace run flag (the parameters as -r), runs the command,
// and reads back the input the run's workflow started with: it must be
// the input RunInput makes from the same request. millrace run takes
// every option; bindRunOptions panics on one without a flag.
func TestRunFlagsCarryEveryOption(t *testing.T) {
	w := runoptstest.NewWorld(t)
	cfg := server.Config(t)
	cfg.NotifyAllow = []string{runoptstest.NotifyHost}
	server.StartWorker(t, cfg)
	e := &env{cfg: cfg, root: w.Root, svc: server.Service(t, cfg, w.Root)}

	req := jobs.StartRequest{Path: w.Notebook}
	runoptstest.Fill(t, &req, w.Valid(true))
	args := []string{"run", w.Notebook, "--detach", "--json", "--notify-allow", runoptstest.NotifyHost}
	runopts.Each(&req, func(name string, v reflect.Value) {
		args = append(args, optionArgs(t, name, v)...)
	})
	r := e.millrace(t, args...)
	wantCode(t, r, 0)
	var started jobs.Started
	if err := json.Unmarshal([]byte(r.stdout), &started); err != nil {
		t.Fatalf("%v: %s", err, r)
	}
	got := runoptstest.StartedInput(t, e.svc, started.JobID)
	want, err := e.svc.RunInput(started.JobID, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("millrace %q\nstarted a workflow with\n got %+v\nwant %+v", args, got, want)
	}
	if _, err := e.svc.Cancel(t.Context(), started.JobID, "done"); err != nil && !jobs.IsUserError(err) {
		t.Error(err)
	}
}

// optionArgs writes one option's value as millrace run's command line
// would give it.
func optionArgs(t *testing.T, name string, v reflect.Value) []string {
	t.Helper()
	if name == parametersOption {
		var out []string
		for _, k := range mapKeys(v) {
			s, ok := v.MapIndex(reflect.ValueOf(k)).Interface().(string)
			if !ok {
				t.Fatalf("parameter %s: the test passes string values (-r)", k)
			}
			out = append(out, "-r", k+"="+s)
		}
		return out
	}
	flag := "--" + runOptionFlags[name].name
	switch v.Kind() {
	case reflect.String:
		return []string{flag, v.String()}
	case reflect.Float64:
		return []string{flag, strconv.FormatFloat(v.Float(), 'f', -1, 64)}
	case reflect.Int:
		return []string{flag, strconv.FormatInt(v.Int(), 10)}
	case reflect.Bool:
		return []string{flag + "=" + strconv.FormatBool(v.Bool())}
	case reflect.Slice:
		var out []string
		for i := range v.Len() {
			out = append(out, flag, v.Index(i).String())
		}
		return out
	case reflect.Map:
		var out []string
		for _, k := range mapKeys(v) {
			out = append(out, flag, fmt.Sprintf("%s=%v", k, v.MapIndex(reflect.ValueOf(k))))
		}
		return out
	}
	t.Fatalf("option %s: no way to write a %s on the command line", name, v.Type())
	return nil
}

// mapKeys are the keys of a map with string keys, in order.
func mapKeys(m reflect.Value) []string {
	var keys []string
	for _, k := range m.MapKeys() {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	return keys
}
