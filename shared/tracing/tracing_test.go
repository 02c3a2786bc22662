package tracing

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

func TestOffByDefault(t *testing.T) {
	t.Setenv("TRACING", "")
	if Enabled() {
		t.Fatal("tracing on without TRACING=xray")
	}
	c := &http.Client{}
	if HTTPClient(c) != c || c.Transport != nil {
		t.Fatal("HTTPClient changed the client while tracing is off")
	}
	want := errors.New("x")
	if err := Capture(context.Background(), "op", func(context.Context) error { return want }); err != want {
		t.Fatalf("Capture: got %v", err)
	}
}

func TestXRayWrapsHTTPClients(t *testing.T) {
	t.Setenv("TRACING", "xray")
	c := &http.Client{}
	got := HTTPClient(c)
	if got == c || got.Transport == nil {
		t.Fatal("HTTPClient did not instrument the client with TRACING=xray")
	}
}
