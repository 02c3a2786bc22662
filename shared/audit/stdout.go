package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// StreamSink writes each event as one JSON line to a stream; on Lambda that
// stream is stdout and CloudWatch Logs keeps it. The line carries
// "log_type":"audit" so metric filters can tell audit records from logs.
type StreamSink struct {
	mu sync.Mutex
	w  io.Writer
}

// NewStreamSink returns a sink writing to w.
func NewStreamSink(w io.Writer) *StreamSink { return &StreamSink{w: w} }

type streamLine struct {
	LogType string `json:"log_type"`
	Event
}

// Write implements Sink.
func (s *StreamSink) Write(_ context.Context, e Event) error {
	b, err := json.Marshal(streamLine{LogType: "audit", Event: e})
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("write audit event to stream: %w", err)
	}
	return nil
}
