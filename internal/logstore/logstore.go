// Package logstore keeps a run's output lines on disk in a form that can be
// paged by many readers while one writer appends.
//
// Each attempt of a run has its own directory holding two append-only files:
// log.data (the raw line bytes, both streams interleaved in arrival order) and
// log.idx (one fixed-size record per line: offset, length, stream, time). A
// reader finds line k by seeking to k*RecordSize in the index, so reading a
// page costs time proportional to the page, not to the log. The writer
// appends the data before the index record, so every indexed line is complete
// on disk; readers ignore a trailing partial record.
package logstore

import (
	"encoding/binary"
	"time"
)

// Stream says which of the executor's pipes a line came from.
type Stream uint8

// The streams. Their values are stored in index records: never renumber.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// String returns the stream's name as clients see it.
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return "unknown"
}

// Streams is a set of streams a reader wants.
type Streams uint8

// Stream sets for readers.
const (
	OnlyStdout  Streams = 1 << Stdout
	OnlyStderr  Streams = 1 << Stderr
	BothStreams Streams = OnlyStdout | OnlyStderr
)

// Has reports whether s includes stream.
func (s Streams) Has(stream Stream) bool { return s&(1<<stream) != 0 }

// ParseStreams turns a client's stream name ("stdout", "stderr", "both" or
// "") into a set.
func ParseStreams(name string) (Streams, bool) {
	switch name {
	case "", "both", "all":
		return BothStreams, true
	case "stdout":
		return OnlyStdout, true
	case "stderr":
		return OnlyStderr, true
	}
	return 0, false
}

const (
	// DataFile and IndexFile are the names of an attempt's log files.
	DataFile  = "log.data"
	IndexFile = "log.idx"

	// RecordSize is the size of one index record: offset (8), length (4),
	// stream (1), flags (1), reserved (2), unix nanoseconds (8).
	RecordSize = 24

	// MaxLineBytes bounds one stored line. A longer line (a progress bar
	// without newlines, a huge repr) is stored as several records, the
	// first ones flagged as continued, so memory stays bounded.
	MaxLineBytes = 64 << 10
)

// flagContinued marks a record whose line goes on in the next record of the
// same stream.
const flagContinued = 1

type record struct {
	offset uint64
	length uint32
	stream Stream
	flags  uint8
	nanos  int64
}

func (r record) put(b []byte) {
	binary.LittleEndian.PutUint64(b[0:8], r.offset)
	binary.LittleEndian.PutUint32(b[8:12], r.length)
	b[12] = byte(r.stream)
	b[13] = r.flags
	b[14], b[15] = 0, 0
	binary.LittleEndian.PutUint64(b[16:24], uint64(r.nanos))
}

func getRecord(b []byte) record {
	return record{
		offset: binary.LittleEndian.Uint64(b[0:8]),
		length: binary.LittleEndian.Uint32(b[8:12]),
		stream: Stream(b[12]),
		flags:  b[13],
		nanos:  int64(binary.LittleEndian.Uint64(b[16:24])),
	}
}

// Line is one stored line as readers see it.
type Line struct {
	Attempt int       `json:"attempt"`
	Seq     int64     `json:"seq"` // 1-based position within the attempt
	Stream  string    `json:"stream"`
	Time    time.Time `json:"time"`
	Text    string    `json:"text"`
	// Continued is true when the line was longer than MaxLineBytes and
	// goes on in the next line of the same stream.
	Continued bool `json:"continued,omitempty"`
	// Truncated is true when the line alone was longer than a page's byte
	// budget: Text holds its start and ends with TruncatedMarker.
	Truncated bool `json:"truncated,omitempty"`
}
