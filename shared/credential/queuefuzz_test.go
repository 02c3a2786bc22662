package credential

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// FuzzQueueMessages feeds the bodies of both queues' messages (the
// emergency-reset worker's ResetJob, the rotate worker's Job) arbitrary
// bytes: the parsers never panic, refuse with ErrInvalidInput, and what
// they accept builds every Vault path of the job without a path
// constructor refusing it (pathseg.Must would panic) and survives a round
// trip through JSON unchanged. The seed corpus (testdata/fuzz) holds
// forged jobs of issue 20: traversal in response_id, a tenant or actor in
// a reset job.
func FuzzQueueMessages(f *testing.F) {
	for _, seed := range []string{
		`{"incident_id":"INC-T1","response_id":"0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d","chunk":3}`,
		`{"incident_id":"INC-T1","response_id":"0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d","chunk":0,"plan":true}`,
		`{"incident_id":"INC-T1","response_id":"../../../3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c","chunk":0}`,
		`{"incident_id":"INC-T1","tenant_id":"3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c","response_id":"x","requested_by":"mallory"}`,
		`{"tenant_id":"3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c","reason":"scheduled"}`,
		`{"tenant_id":"3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c","reason":"bulk","requested_by":"alice","note":"overdue"}`,
		`{"tenant_id":"../3f1c2a9e","reason":"resume"}`, `{"chunk":-1}`, `{"chunk":1e9}`, `{} {}`, `null`, `[`, "\x00",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if j, err := ParseResetJob(body); err == nil {
			runPath(j.IncidentID, j.ResponseID)
			latestPath(j.IncidentID)
			chunkPath(j.IncidentID, j.ResponseID, j.Chunk)
			resultPath(j.IncidentID, j.ResponseID, j.Chunk)
			donePath(j.IncidentID, j.ResponseID, j.Chunk)
			again, err := ParseResetJob(mustJSON(t, j))
			if err != nil || again != j {
				t.Fatalf("reset job %+v does not survive a round trip: %+v, %v", j, again, err)
			}
		} else if !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("reset job refused without ErrInvalidInput: %v", err)
		}
		if j, err := ParseJob(body); err == nil {
			AdminPath(j.TenantID)
			LockPath(j.TenantID)
			MailUPath(j.TenantID)
			again, err := ParseJob(mustJSON(t, j))
			if err != nil || again != j {
				t.Fatalf("rotate job %+v does not survive a round trip: %+v, %v", j, again, err)
			}
		} else if !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("rotate job refused without ErrInvalidInput: %v", err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseResetJob: the forged jobs of issue 20 are refused before
// anything reads Vault with them.
func TestParseResetJob(t *testing.T) {
	for _, body := range []string{
		`{"incident_id":"INC-T1","response_id":"../../../3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c","chunk":0}`,
		`{"incident_id":"INC-T1","tenant_id":"3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c","response_id":"0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d","requested_by":"mallory"}`,
		`{"incident_id":"../x","response_id":"0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d","chunk":0}`,
		`{"incident_id":"INC-T1","response_id":"0B9E7C52-1D2A-4F3B-8C4D-5E6F7A8B9C0D","chunk":0}`,
		`{"incident_id":"INC-T1","response_id":"0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d","chunk":-1}`,
		`{"incident_id":"INC-T1","response_id":"0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d","chunk":2,"plan":true}`,
	} {
		if _, err := ParseResetJob([]byte(body)); !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrIncidentRequired) {
			t.Errorf("%s: accepted (%v)", body, err)
		}
	}
	if _, err := ParseResetJob([]byte(`{"incident_id":"INC-T1","response_id":"0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d","chunk":7}`)); err != nil {
		t.Errorf("a well-formed job refused: %v", err)
	}
}

// TestSampleQueueEventsParse: every message of the sample SQS events
// (events/rotate.json, events/emergency-reset-chunk.json) is a job its
// worker accepts, so the samples show the bodies the queues carry.
func TestSampleQueueEventsParse(t *testing.T) {
	for file, parse := range map[string]func([]byte) error{
		"../../events/rotate.json":                func(b []byte) error { _, err := ParseJob(b); return err },
		"../../events/emergency-reset-chunk.json": func(b []byte) error { _, err := ParseResetJob(b); return err },
	} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct{ Records []struct{ Body string } }
		if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) == 0 {
			t.Fatalf("%s: %d records, %v", file, len(ev.Records), err)
		}
		for i, r := range ev.Records {
			if err := parse([]byte(r.Body)); err != nil {
				t.Errorf("%s: record %d: %v", file, i, err)
			}
		}
	}
}
