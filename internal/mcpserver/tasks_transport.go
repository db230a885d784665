package mcpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// taskLayers finds the task layer of a server made by New: New returns
// mcp-go's server type, which the transports take as it is.
var taskLayers sync.Map // *server.MCPServer -> *taskLayer

func layerOf(srv *server.MCPServer) *taskLayer {
	l, _ := taskLayers.Load(srv)
	tl, _ := l.(*taskLayer)
	return tl
}

// ServeStdio serves srv over stdio until stdin ends or ctx is done, with
// the task methods answered in front of mcp-go's stdio transport.
// configure sets the transport's options.
func ServeStdio(ctx context.Context, srv *server.MCPServer, stdin io.Reader, stdout io.Writer, configure func(*server.StdioServer)) error {
	stdio := server.NewStdioServer(srv)
	if configure != nil {
		configure(stdio)
	}
	l := layerOf(srv)
	if l == nil {
		return stdio.Listen(ctx, stdin, stdout)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &lineWriter{w: stdout}
	in, feed := io.Pipe()
	go l.filterStdio(ctx, stdin, feed, out)
	err := stdio.Listen(ctx, in, out)
	_ = in.Close()
	return err
}

// lineWriter serialises whole messages: mcp-go writes each message with
// one Write, and so does the task layer.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (w *lineWriter) message(b []byte) error {
	_, err := w.Write(append(b, '\n'))
	return err
}

// filterStdio reads stdin's messages, answers the task layer's own and
// passes every other line to mcp-go unchanged and in order. It remembers
// the version the session negotiates: stdio has one session.
func (l *taskLayer) filterStdio(ctx context.Context, stdin io.Reader, feed *io.PipeWriter, out *lineWriter) {
	r := bufio.NewReader(stdin)
	var version string
	notify := func(method string, params any) error {
		b, err := json.Marshal(map[string]any{"jsonrpc": mcp.JSONRPC_VERSION, "method": method, "params": params})
		if err != nil {
			return err
		}
		return out.message(b)
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if v, ok := initializeVersion(line); ok {
				version = v
			}
			if answer, ok := l.route(line, version, notify); ok {
				go func() { _ = out.message(answer(ctx)) }()
			} else if _, werr := feed.Write(line); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = feed.CloseWithError(err)
				return
			}
			_ = feed.Close()
			return
		}
	}
}

// initializeVersion is the protocol version an initialize request asks
// for. mcp-go agrees to it when it knows it, which is the case for every
// version that has tasks.
func initializeVersion(msg []byte) (string, bool) {
	var m struct {
		Method string `json:"method"`
		Params struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Method != string(mcp.MethodInitialize) {
		return "", false
	}
	return m.Params.ProtocolVersion, true
}

// maxPeekBytes bounds the body read to see whether a POST is a task
// method: the task layer must not let a client make it buffer without end.
const maxPeekBytes = 16 << 20

// withTasks puts srv's task layer in front of its streamable HTTP handler.
// A POSTed task method is answered with one JSON response; everything else
// goes to mcp-go with its body intact. A 2025-11-25 session is known by the
// MCP-Protocol-Version header its client sends on every request.
func withTasks(srv *server.MCPServer, next http.Handler) http.Handler {
	l := layerOf(srv)
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPeekBytes))
		if err != nil {
			http.Error(w, fmt.Sprintf("read body: %v (a message may have at most %d bytes)", err, maxPeekBytes), http.StatusRequestEntityTooLarge)
			return
		}
		session := r.Header.Get(server.HeaderKeySessionID)
		notify := func(method string, params any) error {
			m, _ := params.(map[string]any)
			return srv.SendNotificationToSpecificClient(session, method, m)
		}
		if session == "" {
			notify = nil
		}
		answer, ok := l.route(body, r.Header.Get(mcp.HeaderProtocolVersion), notify)
		if !ok {
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if session != "" {
			w.Header().Set(server.HeaderKeySessionID, session)
		}
		_, _ = w.Write(answer(r.Context()))
	})
}
