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

// ValidateValues checks caller-supplied values (decoded from JSON, or
// built in Go) against the notebook's parameters before a run starts, so a
// typo or a wrong type fails in a second with a clear message instead of
// minutes into the run. It returns a *ValuesError listing every problem:
//
//   - a name that is not a Python identifier or is a keyword, always, even
//     with allowExtra: the name is written into code, so this is where
//     injection would happen (a value is always written as a literal);
//   - a name the notebook does not declare, unless allowExtra (papermill
//     itself injects unknown names, with a warning);
//   - a value that cannot fit the parameter's annotation or, without one,
//     its literal default: "3" for an int, 2 for a str, a list for a float.
//     A None default or an unknown type accepts anything; an int fits a
//     float; a float with an integral value fits an int (JSON has one
//     number type); a bool does not fit an int, although Python allows it,
//     because it is almost always a mistake.
func ValidateValues(params []Parameter, values map[string]any, allowExtra bool) error {
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
			if !allowExtra {
				problems = append(problems, unknownParameter(name, params))
			}
			continue
		}
		if problem := checkValue(p, values[name]); problem != "" {
			problems = append(problems, problem)
		}
	}
	if len(problems) > 0 {
		return &ValuesError{Problems: problems}
	}
	return nil
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

func checkValue(p Parameter, v any) string {
	want, because := expectedKinds(p)
	got, err := valueKinds(v)
	if err != nil {
		return fmt.Sprintf("parameter %q: %v", p.Name, err)
	}
	if want&got != 0 {
		return ""
	}
	return fmt.Sprintf("parameter %q expects %s (%s), got %s", p.Name, want, because, describeValue(v, got))
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
