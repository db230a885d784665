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

	"millrace/internal/filemode"
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
	if err := os.MkdirAll(dir, filemode.Dir); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	data, err := os.OpenFile(filepath.Join(dir, DataFile), os.O_RDWR|os.O_CREATE, filemode.File)
	if err != nil {
		return nil, fmt.Errorf("open log data: %w", err)
	}
	index, err := os.OpenFile(filepath.Join(dir, IndexFile), os.O_RDWR|os.O_CREATE, filemode.File)
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
// whatever r sends. The lines of one read from r are stored together, one
// write to each file rather than two writes a line, so a chatty notebook
// is not slowed by its log. After a write error Copy keeps draining r, so
// the executor never blocks on a full pipe, and returns the error at the
// end.
func (w *Writer) Copy(stream Stream, r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	var pending []byte
	var b batch
	var werr error
	flush := func() {
		if werr == nil {
			werr = w.writeBatch(stream, &b)
		}
		b.data, b.lens = b.data[:0], b.lens[:0]
	}
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			complete := frag[len(frag)-1] == '\n'
			if complete {
				frag = frag[:len(frag)-1]
			}
			pending = append(pending, frag...)
			switch {
			case complete && len(pending) <= MaxLineBytes:
				b.add(bytes.TrimSuffix(pending, []byte{'\r'}))
				pending = pending[:0]
			case complete:
				flush()
				if werr == nil {
					werr = w.WriteLine(stream, bytes.TrimSuffix(pending, []byte{'\r'}))
				}
				pending = pending[:0]
			case len(pending) >= MaxLineBytes:
				flush()
				if werr == nil {
					werr = w.writeContinued(stream, pending[:MaxLineBytes])
				}
				pending = append(pending[:0], pending[MaxLineBytes:]...)
			}
		}
		// Store what was read before waiting for more.
		if br.Buffered() == 0 || len(b.data) >= MaxLineBytes {
			flush()
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		flush()
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

// batch holds complete lines of one stream, none longer than MaxLineBytes,
// waiting to be stored together.
type batch struct {
	data []byte
	lens []uint32
	idx  []byte
}

func (b *batch) add(line []byte) {
	b.data = append(b.data, line...)
	b.lens = append(b.lens, uint32(len(line)))
}

// writeBatch stores b's lines: their data in one write, then their index
// records in one write, so every indexed line is complete on disk.
func (w *Writer) writeBatch(stream Stream, b *batch) error {
	if len(b.lens) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if _, err := w.data.Write(b.data); err != nil {
		w.err = fmt.Errorf("write log data: %w", err)
		return w.err
	}
	nanos := w.now().UnixNano()
	b.idx = b.idx[:0]
	offset := w.offset
	for _, n := range b.lens {
		record{offset: uint64(offset), length: n, stream: stream, nanos: nanos}.put(w.rec[:])
		b.idx = append(b.idx, w.rec[:]...)
		offset += int64(n)
	}
	if _, err := w.index.Write(b.idx); err != nil {
		w.err = fmt.Errorf("write log index: %w", err)
		return w.err
	}
	w.offset = offset
	w.lines += int64(len(b.lens))
	return nil
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
