package audit

import (
	"testing"

	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/pathseg/pathsegtest"
)

// TestPathConstructors: every S3 key built from a chain name refuses a
// tenant id that pathseg refuses; the platform chain is the one other
// name.
func TestPathConstructors(t *testing.T) {
	pathsegtest.Refuses(t, "ChainPrefix", pathseg.TenantID, ChainPrefix)
	pathsegtest.Refuses(t, "ChainKey", pathseg.TenantID, func(v string) string { return ChainKey(v, 1) })
	if ChainPrefix(PlatformChain) != "platform/" {
		t.Fatal("the platform chain's prefix changed")
	}
}
