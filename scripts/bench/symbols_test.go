package main

import "testing"

func TestSymbolPackage(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"github.com/aws/aws-sdk-go-v2/service/s3.(*Client).PutObject", "github.com/aws/aws-sdk-go-v2/service/s3"},
		{"gopkg.in/yaml%2ev3.(*decoder).unmarshal", "gopkg.in/yaml.v3"},
		{"crypto/internal/entropy/v1%2e0%2e0.SHA384", "crypto/internal/entropy/v1.0.0"},
		{"slices.SortFunc[go.shape.string]", "slices"},
		{"smtp-vault/shared/api.Deps.Retrieve.func1", "smtp-vault/shared/api"},
		{"runtime.mallocgc", "runtime"},
		{"go:func.*", "go:"},
		{"type:*", "type:"},
		{"vendor/golang.org/x/net/http2/hpack.huffmanDecode", "vendor/golang.org/x/net/http2/hpack"},
	} {
		if got := symbolPackage(tt.name); got != tt.want {
			t.Errorf("symbolPackage(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestModuleOf(t *testing.T) {
	modules := []string{"github.com/aws/aws-sdk-go-v2/service/s3", "github.com/aws/aws-sdk-go-v2", "smtp-vault"}
	for _, tt := range []struct{ pkg, want string }{
		{"github.com/aws/aws-sdk-go-v2/service/s3/internal/arn", "github.com/aws/aws-sdk-go-v2/service/s3"},
		{"github.com/aws/aws-sdk-go-v2/aws", "github.com/aws/aws-sdk-go-v2"},
		{"github.com/aws/aws-sdk-go-v2-other", "std"},
		{"net/http", "std"},
		{"go:", "runtime metadata (go:)"},
	} {
		if got := moduleOf(tt.pkg, modules); got != tt.want {
			t.Errorf("moduleOf(%q) = %q, want %q", tt.pkg, got, tt.want)
		}
	}
}

// TestEveryFunctionHasALogicalID: the bench finds each function's SAM
// build target in template.yaml.
func TestEveryFunctionHasALogicalID(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	names, err := functionNames(root)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := logicalIDs(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range names {
		if ids[fn] == "" {
			t.Errorf("functions/%s/ has no logical id in template.yaml", fn)
		}
	}
	if ids["store"] != "StoreFunction" || ids["rotate-sweep"] != "RotateSweepFunction" {
		t.Errorf("logicalIDs = %v", ids)
	}
}
