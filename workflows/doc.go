// Package workflows holds millrace's deterministic workflow code and the
// names and types shared by everything that talks to those workflows. It
// must not do I/O, read the clock or start goroutines except through the
// workflow API.
//
// # Changing workflow code
//
// A workflow that is running when its worker is upgraded resumes on the
// new code by replaying its history: the new code must make the same
// decisions (activities, children, timers, search attribute upserts, in
// the same order, with the same ids and types) at every point the history
// records. A run lasts hours and a webhook delivery up to NotifyWindow, so
// there are always workflows in flight. The rules:
//
// Determinism. Workflow code reads time through workflow.Now, sleeps
// through workflow.Sleep or timers, runs concurrently through workflow.Go
// and selectors, gets randomness or ids through workflow.SideEffect, and
// does every I/O in an activity. It never ranges over a map to decide an
// order of commands.
//
// Names and types are history. The registered names (names.go) and the
// JSON of inputs, results and details are recorded: never rename one. Add
// a field (its zero value must mean the old behaviour); do not remove or
// retype one while a workflow that carries it can run.
//
// A change of decisions goes behind workflow.GetVersion, so histories made
// before it take the old path and new workflows the new one. To start a
// job's webhook before recording its status, say:
//
//	v := workflow.GetVersion(ctx, "notify-before-status", workflow.DefaultVersion, 1)
//	if v == workflow.DefaultVersion {
//		upsertStatus(uctx, result) // the order every recorded history has
//		startNotify(uctx, id, input)
//	} else {
//		startNotify(uctx, id, input)
//		upsertStatus(uctx, result)
//	}
//
// Use a new change id for each change and keep every branch: recorded
// histories are never removed, so they replay through the old branch for
// as long as the code exists.
//
// Record a history of the new behaviour. The tests that run workflows on
// the real server call testenv's Server.ReplayHistory, which replays each
// finished workflow against the code; with MILLRACE_RECORD_HISTORY=1 it
// also adds the history to testdata/histories under a new file name and
// lists its sha256 in testdata/histories/SHA256SUMS. Run the tests of the
// changed behaviour that way and commit the new files and manifest lines.
//
// Never edit or remove a recorded history. The replay test
// (replay_test.go) replays every one against today's code and fails when a
// file differs from its manifest line, is missing, or is not listed. An
// old history that fails replay has found a change that would break
// running workflows: fix the code (with GetVersion), not the file.
package workflows
