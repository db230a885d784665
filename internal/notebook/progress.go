package notebook

import (
	"fmt"
	"os"
	"strconv"
)

// Progress is how far an executing notebook has got, read from the output
// notebook the executor saves at every cell start and end. It is small on
// purpose: it rides in every activity heartbeat.
type Progress struct {
	CellsTotal    int    `json:"cells_total"`              // code cells
	CellsDone     int    `json:"cells_done"`               // code cells completed or failed
	Current       int    `json:"current"`                  // index among code cells of the running cell, -1 if none
	CurrentSource string `json:"current_source,omitempty"` // first non-empty line of the running cell
	Failed        bool   `json:"failed"`
}

// maxCurrentSource bounds CurrentSource, in runes.
const maxCurrentSource = 80

// sourcePrefix is how much of each cell's source ReadProgress decodes to
// find a first line: enough for any sensible first line, bounded so a
// cell holding megabytes of source costs nothing.
const sourcePrefix = 4 << 10

// ReadProgress reads an output notebook's progress. Callers poll it every
// second on notebooks holding megabytes of outputs, so it streams the file
// and decodes only cell types, metadata.papermill.status and the start of
// each source, skipping everything else unparsed. A notebook caught half
// written fails with an error matching io.ErrUnexpectedEOF: keep the last
// progress and poll again.
func ReadProgress(path string) (Progress, error) {
	none := Progress{Current: -1}
	f, err := os.Open(path)
	if err != nil {
		return none, fmt.Errorf("read progress: %w", err)
	}
	defer f.Close()
	p, err := readProgress(newJSONStream(f))
	if err != nil {
		return none, fmt.Errorf("read progress of %s: %w", path, err)
	}
	return p, nil
}

func readProgress(s *jsonStream) (Progress, error) {
	p := Progress{Current: -1}
	sawCells, major := false, -1
	err := s.object(func(key string) error {
		switch key {
		case "nbformat":
			lit, err := s.literal()
			if err != nil {
				return err
			}
			if major, err = strconv.Atoi(lit); err != nil {
				return notNotebook("nbformat is %s, not a number", lit)
			}
			return nil
		case "cells":
			sawCells = true
			return s.array(func(int) error { return readCellProgress(s, &p) })
		case "metadata":
			return s.object(func(key string) error {
				if key != "papermill" {
					return s.skip()
				}
				return readNotebookException(s, &p)
			})
		}
		return s.skip()
	})
	switch {
	case err != nil:
		return Progress{Current: -1}, err
	case major >= 0 && major != 4:
		return Progress{Current: -1}, &VersionError{Major: major}
	case !sawCells:
		return Progress{Current: -1}, notNotebook("no cells field")
	}
	return p, nil
}

// readNotebookException reads metadata.papermill.exception, which the
// executor sets when the run failed, even outside a cell.
func readNotebookException(s *jsonStream, p *Progress) error {
	if c, err := s.peek(); err != nil || c != '{' {
		if err != nil {
			return err
		}
		return s.skip()
	}
	return s.object(func(key string) error {
		if key != "exception" {
			return s.skip()
		}
		c, err := s.peek()
		if err != nil {
			return err
		}
		if c == '"' || c == '{' || c == '[' {
			return s.skip()
		}
		lit, err := s.literal()
		if lit == "true" {
			p.Failed = true
		}
		return err
	})
}

func readCellProgress(s *jsonStream, p *Progress) error {
	var cellType, status string
	var source []byte
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "cell_type":
			cellType, err = s.str(64)
		case "metadata":
			status, err = readCellStatus(s)
		case "source":
			source, err = readSourcePrefix(s)
		default:
			err = s.skip()
		}
		return err
	})
	if err != nil || cellType != CellCode {
		return err
	}
	switch status {
	case StatusFailed:
		p.Failed = true
		p.CellsDone++
	case StatusCompleted:
		p.CellsDone++
	case StatusRunning:
		if p.Current < 0 {
			p.Current = p.CellsTotal
			p.CurrentSource = FirstLine(string(source), maxCurrentSource)
		}
	}
	p.CellsTotal++
	return nil
}

// readCellStatus reads metadata.papermill.status from a cell's metadata.
func readCellStatus(s *jsonStream) (string, error) {
	var status string
	if c, err := s.peek(); err != nil || c != '{' {
		if err != nil {
			return "", err
		}
		return "", s.skip()
	}
	err := s.object(func(key string) error {
		if key != "papermill" {
			return s.skip()
		}
		if c, err := s.peek(); err != nil || c != '{' {
			if err != nil {
				return err
			}
			return s.skip()
		}
		return s.object(func(key string) error {
			if key != "status" {
				return s.skip()
			}
			var err error
			status, err = s.str(64)
			return err
		})
	})
	return status, err
}

// readSourcePrefix decodes the first sourcePrefix bytes of a source in
// either nbformat spelling and skips the rest.
func readSourcePrefix(s *jsonStream) ([]byte, error) {
	c, err := s.peek()
	if err != nil {
		return nil, err
	}
	if c != '[' {
		str, err := s.str(sourcePrefix)
		return []byte(str), err
	}
	var src []byte
	err = s.array(func(int) error {
		if len(src) >= sourcePrefix {
			return s.skip()
		}
		line, err := s.str(sourcePrefix - len(src))
		src = append(src, line...)
		return err
	})
	return src, err
}
