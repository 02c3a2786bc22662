package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// runtimeAPI is a minimal Lambda Runtime API (2018-06-01) that hands out
// one invocation and records when and how the function answered it.
type runtimeAPI struct {
	event     []byte
	requestID string
	arn       string
	timeout   time.Duration // the invocation's deadline, from when it is handed out

	mu       sync.Mutex
	started  time.Time // set just before exec
	handed   bool
	readyAt  time.Duration // exec → first GET .../invocation/next
	done     chan answer   // the first response, error or init error
	doneOnce sync.Once
	stop     chan struct{} // closed to release /next calls waiting for a second invocation
	stopOnce sync.Once
}

// answer is how the function ended its first invocation (or its init).
type answer struct {
	at    time.Duration // exec → the POST arriving
	kind  string        // response, error or init error
	body  []byte
	ready time.Duration // exec → first /next, zero for an init error
}

func newRuntimeAPI(fn string, event []byte, timeout time.Duration) *runtimeAPI {
	return &runtimeAPI{
		event:     event,
		requestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
		arn:       "arn:aws:lambda:eu-central-1:123456789012:function:smtp-vault-" + fn,
		timeout:   timeout,
		done:      make(chan answer, 1),
		stop:      make(chan struct{}),
	}
}

// begin marks the exec of the function process.
func (r *runtimeAPI) begin() {
	r.mu.Lock()
	r.started = time.Now()
	r.mu.Unlock()
}

// since is the time from exec to now.
func (r *runtimeAPI) since() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.started)
}

// release unblocks /next calls waiting for a second invocation.
func (r *runtimeAPI) release() {
	r.stopOnce.Do(func() { close(r.stop) })
}

func (r *runtimeAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", r.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, "response")
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, "error")
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, "init error")
	})
	return mux
}

func (r *runtimeAPI) next(w http.ResponseWriter, req *http.Request) {
	at := r.since()
	r.mu.Lock()
	first := !r.handed
	if first {
		r.handed, r.readyAt = true, at
	}
	r.mu.Unlock()
	if !first {
		// The function finished its one invocation and waits for the next,
		// as it would in Lambda between invocations; it is killed here.
		select {
		case <-r.stop:
		case <-req.Context().Done():
		}
		http.Error(w, `{"errorMessage":"the bench is over","errorType":"Bench.Stopped"}`, http.StatusGone)
		return
	}
	deadline := time.Now().Add(r.timeout)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", r.requestID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", r.arn)
	h.Set("Lambda-Runtime-Trace-Id", fmt.Sprintf("Root=1-%08x-%024x;Parent=%016x;Sampled=1", time.Now().Unix(), time.Now().UnixNano(), 1))
	_, _ = w.Write(r.event)
}

func (r *runtimeAPI) finish(w http.ResponseWriter, req *http.Request, kind string) {
	at := r.since() // before reading the body: the answer has arrived
	if id := req.PathValue("id"); kind != "init error" && id != r.requestID {
		http.Error(w, `{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(req.Body, 6<<20)) // Lambda's response limit
	r.mu.Lock()
	ready := r.readyAt
	r.mu.Unlock()
	r.doneOnce.Do(func() { r.done <- answer{at: at, kind: kind, body: body, ready: ready} })
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

// describe summarises an answer for the report: for a response, the HTTP
// status if it is an API Gateway response; for an error, its type and
// message.
func (a answer) describe() string {
	switch a.kind {
	case "response":
		var resp struct {
			StatusCode int `json:"statusCode"`
		}
		if json.Unmarshal(a.body, &resp) == nil && resp.StatusCode != 0 {
			return fmt.Sprintf("response, HTTP %d", resp.StatusCode)
		}
		return "response"
	default:
		var e struct {
			Type    string `json:"errorType"`
			Message string `json:"errorMessage"`
		}
		if json.Unmarshal(a.body, &e) != nil || e.Type == "" {
			return a.kind
		}
		msg := e.Message
		if len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		return fmt.Sprintf("%s (%s): %s", a.kind, e.Type, msg)
	}
}
