package logstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Writer appends lines to one attempt's log. It is safe for concurrent use:
// the stdout and stderr pumps share one Writer so lines keep arrival order.
type Writer struct {
	mu     sync.Mutex
	data   *os.File
	index  *os.File
	offset int64
	lines  int64
	rec    [RecordSize]byte
	now    func() time.Time
	err    error // first write error; later writes return it
}

// Create opens the log of the attempt directory dir for appending, creating
// the directory and files as needed. Opening an existing log continues it
// after its last complete record.
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	data, err := os.OpenFile(filepath.Join(dir, DataFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log data: %w", err)
	}
	index, err := os.OpenFile(filepath.Join(dir, IndexFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		data.Close()
		return nil, fmt.Errorf("open log index: %w", err)
	}
	w := &Writer{data: data, index: index, now: time.Now}
	if err := w.recover(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// recover positions the writer after the last complete record, dropping a
// torn record or unindexed data left by a crash mid-write.
func (w *Writer) recover() error {
	st, err := w.index.Stat()
	if err != nil {
		return fmt.Errorf("stat log index: %w", err)
	}
	n := st.Size() / RecordSize
	var end int64
	if n > 0 {
		var b [RecordSize]byte
		if _, err := w.index.ReadAt(b[:], (n-1)*RecordSize); err != nil {
			return fmt.Errorf("read log index: %w", err)
		}
		r := getRecord(b[:])
		end = int64(r.offset) + int64(r.length)
	}
	if err := w.index.Truncate(n * RecordSize); err != nil {
		return fmt.Errorf("truncate log index: %w", err)
	}
	if err := w.data.Truncate(end); err != nil {
		return fmt.Errorf("truncate log data: %w", err)
	}
	if _, err := w.index.Seek(n*RecordSize, io.SeekStart); err != nil {
		return err
	}
	if _, err := w.data.Seek(end, io.SeekStart); err != nil {
		return err
	}
	w.offset, w.lines = end, n
	return nil
}

// WriteLine stores one line (without its newline). A line longer than
// MaxLineBytes is split into continued records.
func (w *Writer) WriteLine(stream Stream, line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	t := w.now().UnixNano()
	for {
		chunk, flags := line, uint8(0)
		if len(chunk) > MaxLineBytes {
			chunk, flags = chunk[:MaxLineBytes], flagContinued
		}
		if err := w.append(stream, chunk, flags, t); err != nil {
			w.err = err
			return err
		}
		line = line[len(chunk):]
		if len(line) == 0 {
			return nil
		}
	}
}

// writeContinued stores chunk as the first part of a line that goes on.
func (w *Writer) writeContinued(stream Stream, chunk []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.append(stream, chunk, flagContinued, w.now().UnixNano()); err != nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) append(stream Stream, chunk []byte, flags uint8, nanos int64) error {
	if _, err := w.data.Write(chunk); err != nil {
		return fmt.Errorf("write log data: %w", err)
	}
	record{offset: uint64(w.offset), length: uint32(len(chunk)), stream: stream, flags: flags, nanos: nanos}.put(w.rec[:])
	if _, err := w.index.Write(w.rec[:]); err != nil {
		return fmt.Errorf("write log index: %w", err)
	}
	w.offset += int64(len(chunk))
	w.lines++
	return nil
}

// Stats reports how many records and data bytes the log holds.
func (w *Writer) Stats() (lines, bytes int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lines, w.offset
}

// Err returns the first write error, if any (a full disk, say).
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Copy reads r to its end and stores each line under stream. A final line
// without a newline is stored too. Memory stays bounded by MaxLineBytes
// whatever r sends. After a write error Copy keeps draining r, so the
// executor never blocks on a full pipe, and returns the error at the end.
func (w *Writer) Copy(stream Stream, r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	var pending []byte
	var werr error
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			complete := frag[len(frag)-1] == '\n'
			if complete {
				frag = frag[:len(frag)-1]
			}
			pending = append(pending, frag...)
			switch {
			case complete:
				if werr == nil {
					werr = w.WriteLine(stream, bytes.TrimSuffix(pending, []byte{'\r'}))
				}
				pending = pending[:0]
			case len(pending) >= MaxLineBytes:
				if werr == nil {
					werr = w.writeContinued(stream, pending[:MaxLineBytes])
				}
				pending = append(pending[:0], pending[MaxLineBytes:]...)
			}
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(pending) > 0 && werr == nil {
			werr = w.WriteLine(stream, pending)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
			return werr
		}
		if werr != nil {
			return werr
		}
		return fmt.Errorf("read %s: %w", stream, err)
	}
}

// Sync flushes both files to stable storage.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return errors.Join(w.data.Sync(), w.index.Sync())
}

// Close closes both files, running every step and returning the first error.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first error
	for _, f := range []*os.File{w.data, w.index} {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	w.data, w.index = nil, nil
	if w.err == nil {
		w.err = os.ErrClosed
	}
	return first
}
