package templatecheck

import (
	"strconv"
	"testing"
)

// TestResetQueue pins the emergency-reset worker's queue (issue 20,
// defect 10): one chunk of a compromise response per invocation, failed
// jobs reported one by one so that the others are not redone, and a
// visibility timeout that outlasts the function, so that a chunk cut off
// by the timeout comes back only once the cut-off run is dead.
func TestResetQueue(t *testing.T) {
	tpl := loadTemplate(t)
	fn, ok := tpl.functions["emergency-reset"]
	if !ok {
		t.Fatal("no resource for functions/emergency-reset/")
	}
	m, ok := tpl.resourcesOfType("AWS::Lambda::EventSourceMapping")["ResetQueueMapping"]
	if !ok {
		t.Fatal("no AWS::Lambda::EventSourceMapping ResetQueueMapping")
	}
	if refTarget(get(m, "Properties", "FunctionName")) != fn.logicalID {
		t.Errorf("ResetQueueMapping invokes %s", describe(get(m, "Properties", "FunctionName")))
	}
	if got := literal(get(m, "Properties", "BatchSize")); got != "1" {
		t.Errorf("ResetQueueMapping BatchSize = %q, want 1 (a chunk per invocation)", got)
	}
	if got := literals(get(m, "Properties", "FunctionResponseTypes")); len(got) != 1 || got[0] != "ReportBatchItemFailures" {
		t.Errorf("ResetQueueMapping FunctionResponseTypes = %v", got)
	}
	queue := tpl.resourcesOfType("AWS::SQS::Queue")["ResetQueue"]
	vis, err1 := strconv.Atoi(literal(get(queue, "Properties", "VisibilityTimeout")))
	timeout, err2 := strconv.Atoi(literal(tpl.property(fn, "Timeout")))
	if err1 != nil || err2 != nil || vis < 2*timeout {
		t.Errorf("ResetQueue VisibilityTimeout %d must be at least twice the emergency-reset function's Timeout %d", vis, timeout)
	}
}
