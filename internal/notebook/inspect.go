package notebook

import (
	"fmt"
	"strings"
)

// Inspection is what a caller needs to know before running a notebook:
// which kernel it wants, what parameters it takes, and what will surprise
// them (no parameters cell, no kernelspec...).
type Inspection struct {
	KernelName     string      `json:"kernel_name"`
	Language       string      `json:"language"`
	Cells          int         `json:"cells"`
	CodeCells      int         `json:"code_cells"`
	ParametersCell int         `json:"parameters_cell"` // cell index, -1 if none
	Parameters     []Parameter `json:"parameters"`
	Warnings       []string    `json:"warnings"`
}

// Inspect loads the notebook at path and inspects it. A notebook with no
// code cells is an error (ErrNoCodeCells): there is nothing to run.
func Inspect(path string) (*Inspection, error) {
	nb, err := Load(path)
	if err != nil {
		return nil, err
	}
	return nb.Inspect(), nil
}

// Inspect describes the notebook. Parameters and Warnings are never nil,
// so they encode as [] rather than null.
func (nb *Notebook) Inspect() *Inspection {
	in := &Inspection{
		KernelName:     nb.KernelName(),
		Language:       nb.Language(),
		Cells:          len(nb.Cells),
		CodeCells:      nb.CodeCells(),
		ParametersCell: nb.parametersCell(),
		Parameters:     []Parameter{},
		Warnings:       []string{},
	}
	warn := func(format string, args ...any) {
		in.Warnings = append(in.Warnings, fmt.Sprintf(format, args...))
	}

	if in.KernelName == "" {
		warn("the notebook's metadata names no kernel (no kernelspec): the run uses the default Python kernel unless a kernel is given")
	}
	switch tagged := nb.TaggedCells(TagParameters); {
	case in.ParametersCell < 0 && len(tagged) > 0:
		warn("cell %d is tagged %q but is not a code cell: the notebook has no parameters cell, so injected parameters go first", tagged[0], TagParameters)
	case in.ParametersCell < 0:
		warn("no cell is tagged %q: injected parameters go in a new cell before the first one", TagParameters)
	case len(tagged) > 1:
		warn("cells %s are tagged %q: the first code cell, %d, is the parameters cell", joinInts(tagged), TagParameters, in.ParametersCell)
	}
	if injected := nb.TaggedCells(TagInjectedParameters); len(injected) > 0 {
		warn("cell %d holds parameters injected by an earlier run (tag %q); a new run replaces it", injected[0], TagInjectedParameters)
	}
	if in.ParametersCell >= 0 {
		if nb.IsPython() {
			params, problems := parseParameters(nb.Cells[in.ParametersCell].Source)
			in.Parameters = append(in.Parameters, params...)
			in.Warnings = append(in.Warnings, problems...)
		} else {
			warn("parameters are only inspected in Python notebooks; this one is %s (kernel %q)", orUnknown(in.Language), in.KernelName)
		}
	}
	return in
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "of an unknown language"
	}
	return s
}
