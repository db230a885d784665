package notebook

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// MaxParameterBytes is the default limit on one parameter value's JSON
// encoding. Values travel in Temporal payloads (which fail at 2 MB) and
// into the injected cell, so the job service caps them; the limit is its
// policy, not ValidateValues', which accepts any size.
const MaxParameterBytes = 1 << 20

var (
	// ErrInvalidValues is matched (errors.Is) by the *ValuesError that
	// ValidateValues returns.
	ErrInvalidValues = errors.New("invalid parameter values")
	// ErrParameterTooLarge is matched by CheckValueSizes' error.
	ErrParameterTooLarge = errors.New("parameter value too large")
)

// ValuesError lists every problem with a set of parameter values, so the
// caller (often a model calling an MCP tool) fixes them all in one round
// instead of discovering them one by one.
type ValuesError struct {
	Problems []string
}

func (e *ValuesError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems with the parameters: %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

// Is makes errors.Is(err, ErrInvalidValues) true.
func (e *ValuesError) Is(target error) bool { return target == ErrInvalidValues }

// ValuesPolicy says how strictly CheckValues holds values to the
// parameters cell.
type ValuesPolicy struct {
	// AllowExtra accepts names the notebook does not declare (papermill
	// itself injects unknown names, with a warning).
	AllowExtra bool
	// NoTypeCheck turns every type problem into a warning: the caller
	// knows better than the parameters cell (a default that is a
	// placeholder, a notebook that converts its input itself). Names are
	// checked all the same.
	NoTypeCheck bool
}

// ValidateValues is CheckValues with type checks on: every problem is an
// error.
func ValidateValues(params []Parameter, values map[string]any, allowExtra bool) error {
	_, err := CheckValues(params, values, ValuesPolicy{AllowExtra: allowExtra})
	return err
}

// CheckValues checks caller-supplied values (decoded from JSON, or built
// in Go) against the notebook's parameters before a run starts, so a typo
// or a wrong type fails in a second with a clear message instead of
// minutes into the run. It returns a *ValuesError listing every problem:
//
//   - a name that is not a Python identifier or is a keyword, always, even
//     with AllowExtra or NoTypeCheck: the name is written into code, so
//     this is where injection would happen (a value is always written as a
//     literal);
//   - a name the notebook does not declare, unless AllowExtra;
//   - a value that would certainly be wrong for the parameter, unless
//     NoTypeCheck, which reports it as a warning instead.
//
// The rule lets through every value papermill would run correctly:
//
//   - an annotation (x: int = 0) is a contract: the value must fit it, and
//     None only fits Optional[...], a union with None, or a None default;
//   - without one, the type comes from the default's literal, which only
//     shows how the notebook is usually run: None also fits (no limit, no
//     seed), and an int fits a float (the job service injects it as a
//     float, see WantsFloat);
//   - a None default or an annotation or expression it cannot read accepts
//     anything;
//   - a float with an integral value fits an int (JSON has one number
//     type); a bool does not fit an int, although Python allows it,
//     because it is almost always a mistake; a string never fits a number.
func CheckValues(params []Parameter, values map[string]any, policy ValuesPolicy) (warnings []string, err error) {
	declared := make(map[string]Parameter, len(params))
	for _, p := range params {
		declared[p.Name] = p
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)

	var problems []string
	for _, name := range names {
		switch {
		case pythonKeywords[name]:
			problems = append(problems, fmt.Sprintf("%q is a Python keyword and cannot be a parameter name", name))
			continue
		case !isIdentifier(name):
			problems = append(problems, fmt.Sprintf("%q is not a valid parameter name: it must be a Python identifier (letters, digits and _, not starting with a digit)", abbreviate(name, 60)))
			continue
		}
		p, ok := declared[name]
		if !ok {
			if !policy.AllowExtra {
				problems = append(problems, unknownParameter(name, params))
			}
			continue
		}
		problem, typed := checkValue(p, values[name])
		switch {
		case problem == "":
		case typed && policy.NoTypeCheck:
			warnings = append(warnings, problem+"; passed unchecked (type checks are off)")
		default:
			problems = append(problems, problem)
		}
	}
	if len(problems) > 0 {
		return warnings, &ValuesError{Problems: problems}
	}
	return warnings, nil
}

// WantsFloat reports whether a whole number given for p is injected as a
// float (1.0, not 1): p is annotated float (or Optional[float]), or has
// no annotation and a float literal default. papermill would inject the
// int; a notebook that computes lr * 0.5 gets the same answer either way,
// but one that checks isinstance(lr, float) or prints it does not.
func (p Parameter) WantsFloat() bool {
	want, _ := expectedKinds(p)
	return want&^kNone == kFloat
}

func unknownParameter(name string, params []Parameter) string {
	if len(params) == 0 {
		return fmt.Sprintf("unknown parameter %q; the notebook declares no parameters", name)
	}
	known := make([]string, len(params))
	for i, p := range params {
		known[i] = p.Name
	}
	sort.Strings(known)
	return fmt.Sprintf("unknown parameter %q; the notebook's parameters are: %s", name, strings.Join(known, ", "))
}

// checkValue returns the problem with v for p, if any, and whether it is
// a type problem (which NoTypeCheck lets through) rather than a value no
// notebook can take.
func checkValue(p Parameter, v any) (problem string, typed bool) {
	want, because := expectedKinds(p)
	got, err := valueKinds(v)
	if err != nil {
		return fmt.Sprintf("parameter %q: %v", p.Name, err), false
	}
	if want&got != 0 {
		return "", false
	}
	return fmt.Sprintf("parameter %q expects %s (%s), got %s", p.Name, want, because, describeValue(v, got)), true
}

// CheckValueSizes reports every value whose JSON encoding is longer than
// limit bytes (MaxParameterBytes when limit <= 0), and values that cannot
// be encoded at all (NaN, ±Inf), since values travel as JSON to the
// executor.
func CheckValueSizes(values map[string]any, limit int) error {
	if limit <= 0 {
		limit = MaxParameterBytes
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		enc, err := json.Marshal(values[name])
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%w: parameter %q cannot be encoded as JSON: %v", ErrInvalidValues, abbreviate(name, 60), err))
		case len(enc) > limit:
			errs = append(errs, fmt.Errorf("%w: parameter %q is %d bytes as JSON; the limit is %d", ErrParameterTooLarge, abbreviate(name, 60), len(enc), limit))
		}
	}
	return errors.Join(errs...)
}
