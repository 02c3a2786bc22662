package vaultsetup_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/devenv"
)

// fixture is one tenant's records, written with the root token, that the
// capabilities are tried on.
type fixture struct {
	tenant  string
	wrapped string // a data key wrapped under the tenant's derived key
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	root := local.Root()
	f := fixture{tenant: uuid.NewString()}
	s, err := root.Logical().WriteWithContext(ctx, "transit/datakey/wrapped/smtp-credentials", map[string]any{"context": b64(f.tenant)})
	if err != nil {
		t.Fatal(err)
	}
	f.wrapped, _ = s.Data["ciphertext"].(string)
	for _, leaf := range []string{"admin", "mailu", "lock"} {
		if _, err := root.KVv2("smtp").Put(ctx, f.tenant+"/"+leaf, map[string]any{"data_key": f.wrapped}, vaultapi.WithCheckAndSet(0)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// capabilities maps each row of docs/access.md's table to one request
// that needs it. A request Vault refuses with 403 shows the capability is
// missing; anything else (success, a check-and-set mismatch) shows the
// policy let it through.
var capabilities = map[string]func(ctx context.Context, c *vaultapi.Client, f fixture) error{
	"read a credential": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp").Get(ctx, f.tenant+"/admin")
		return err
	},
	"write a credential": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp").Put(ctx, f.tenant+"/admin", map[string]any{"x": "y"}, vaultapi.WithCheckAndSet(99))
		return err
	},
	"read the MailU connection": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp").Get(ctx, f.tenant+"/mailu")
		return err
	},
	"write the MailU connection": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp").Put(ctx, f.tenant+"/mailu", map[string]any{"x": "y"}, vaultapi.WithCheckAndSet(99))
		return err
	},
	"take a tenant's change lock": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp").Put(ctx, f.tenant+"/lock", map[string]any{"x": "y"}, vaultapi.WithCheckAndSet(99))
		return err
	},
	"list the tenants": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().ListWithContext(ctx, "smtp/metadata/")
		return err
	},
	"read a credential's metadata": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp").GetMetadata(ctx, f.tenant+"/admin")
		return err
	},
	"patch `custom_metadata`": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		return c.KVv2("smtp").PatchMetadata(ctx, f.tenant+"/admin", vaultapi.KVMetadataPatchInput{CustomMetadata: map[string]any{"probe": "1"}})
	},
	"change `max_versions` or `delete_version_after`": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		one, day := 1, 24*time.Hour
		return either(
			c.KVv2("smtp").PatchMetadata(ctx, f.tenant+"/admin", vaultapi.KVMetadataPatchInput{MaxVersions: &one}),
			c.KVv2("smtp").PatchMetadata(ctx, f.tenant+"/admin", vaultapi.KVMetadataPatchInput{DeleteVersionAfter: &day}),
		)
	},
	"delete or destroy a version": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		return either(
			c.KVv2("smtp").DeleteVersions(ctx, f.tenant+"/admin", []int{1}),
			c.KVv2("smtp").Destroy(ctx, f.tenant+"/admin", []int{1}),
		)
	},
	"Transit `datakey`": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().WriteWithContext(ctx, "transit/datakey/plaintext/smtp-credentials", map[string]any{"context": b64(f.tenant)})
		return err
	},
	"Transit `decrypt`": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().WriteWithContext(ctx, "transit/decrypt/smtp-credentials", map[string]any{"ciphertext": f.wrapped, "context": b64(f.tenant)})
		return err
	},
	"Transit `rewrap`": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().WriteWithContext(ctx, "transit/rewrap/smtp-credentials", map[string]any{"ciphertext": f.wrapped, "context": b64(f.tenant)})
		return err
	},
	"rotate the master key": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().WriteWithContext(ctx, "transit/keys/smtp-credentials/rotate", nil)
		return err
	},
	"sign re-auth tokens": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().WriteWithContext(ctx, "transit/sign/reauth-signing", map[string]any{"input": b64("probe")})
		return err
	},
	"read the re-auth key's public half": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().ReadWithContext(ctx, "transit/keys/reauth-signing")
		return err
	},
	"verify re-auth tokens in Transit": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().WriteWithContext(ctx, "transit/verify/reauth-signing", map[string]any{"input": b64("probe"), "signature": "vault:v1:AAAA"})
		return err
	},
	"write failed re-auth records, i.e. lockouts": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp-access").Put(ctx, "reauth/probe-"+f.tenant, map[string]any{"x": "y"}, vaultapi.WithCheckAndSet(0))
		return err
	},
	"read the status index": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp-index").Get(ctx, "probe-"+f.tenant)
		return err
	},
	"write the status index": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp-index").Put(ctx, "probe-"+f.tenant, map[string]any{"x": "y"}, vaultapi.WithCheckAndSet(0))
		return err
	},
	"alert rules' state": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.KVv2("smtp-alerts").Put(ctx, "probe-"+f.tenant, map[string]any{"x": "y"}, vaultapi.WithCheckAndSet(0))
		return err
	},
	"take a raft snapshot": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		return c.Sys().RaftSnapshotWithContext(ctx, io.Discard)
	},
	"look up its own token": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Auth().Token().LookupSelfWithContext(ctx)
		return err
	},
	"Vault's default policy, e.g. its cubbyhole": func(ctx context.Context, c *vaultapi.Client, f fixture) error {
		_, err := c.Logical().WriteWithContext(ctx, "cubbyhole/probe", map[string]any{"x": "y"})
		return err
	},
}

// either is the first refusal of two requests that need one capability,
// else the first other outcome.
func either(a, b error) error {
	if forbidden(a) {
		return a
	}
	if forbidden(b) {
		return b
	}
	return errors.Join(a, b)
}

func forbidden(err error) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

// accessTable reads docs/access.md's function × capability table: for
// each capability (the row's text before its first " (" or the whole
// cell), the functions marked yes.
func accessTable(t *testing.T) (functions []string, rows map[string]map[string]bool) {
	t.Helper()
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "docs", "access.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows = map[string]map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "|") {
			if functions != nil {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case cells[0] == "Vault capability":
			functions = cells[1:]
		case functions == nil || strings.HasPrefix(cells[0], "---"):
		default:
			name, _, _ := strings.Cut(cells[0], " (")
			rows[name] = map[string]bool{}
			for i, fn := range functions {
				rows[name][fn] = cells[i+1] == "yes"
			}
		}
	}
	if functions == nil {
		t.Fatal("docs/access.md has no | Vault capability | ... | table")
	}
	return functions, rows
}

// TestEachFunctionHasOnlyItsDocumentedCapabilities tries every
// capability of docs/access.md's table with every function's own token
// (its AppRole, as the local stack logs it in) against the real Vault:
// each cell must be what Vault answers.
func TestEachFunctionHasOnlyItsDocumentedCapabilities(t *testing.T) {
	ctx := context.Background()
	functions, rows := accessTable(t)
	if strings.Join(functions, " ") != strings.Join(policies.Functions, " ") {
		t.Fatalf("table columns %v, want every function in order %v", functions, policies.Functions)
	}
	for name := range capabilities {
		if rows[name] == nil {
			t.Errorf("docs/access.md has no row for %q", name)
		}
	}
	for name := range rows {
		if capabilities[name] == nil {
			t.Errorf("docs/access.md row %q is not tested: add it to capabilities", name)
		}
	}
	for _, fn := range functions {
		c := loginAs(t, fn)
		f := newFixture(t)
		for name, try := range capabilities {
			err := try(ctx, c, f)
			if got, want := !forbidden(err), rows[name][fn]; got != want {
				t.Errorf("%s / %s: docs say %v, Vault allows %v (%v)", fn, name, want, got, err)
			}
		}
	}
}

// TestMetadataPatchIsCustomMetadataOnly: a function allowed to patch a
// credential's metadata can set custom_metadata (the sweep's state, the
// compromise marks) but cannot shorten the history Vault keeps.
func TestMetadataPatchIsCustomMetadataOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, fn := range []string{"store", "rotate", "rotate-sweep", "emergency-reset", "recover"} {
		kv := loginAs(t, fn).KVv2("smtp")
		one, zero, day, off := 1, 0, 24*time.Hour, false
		for what, in := range map[string]vaultapi.KVMetadataPatchInput{
			"lower max_versions":          {MaxVersions: &one},
			"unlimited max_versions":      {MaxVersions: &zero},
			"set delete_version_after":    {DeleteVersionAfter: &day},
			"turn off cas_required":       {CASRequired: &off},
			"custom_metadata and a limit": {CustomMetadata: map[string]any{"a": "b"}, MaxVersions: &one},
		} {
			if err := kv.PatchMetadata(ctx, f.tenant+"/admin", in); !forbidden(err) {
				t.Errorf("%s could %s: %v", fn, what, err)
			}
		}
		if err := kv.PatchMetadata(ctx, f.tenant+"/admin", vaultapi.KVMetadataPatchInput{CustomMetadata: map[string]any{"compromised_by": fn}}); err != nil {
			t.Errorf("%s: patch custom_metadata: %v", fn, err)
		}
	}
	md, err := local.Root().KVv2("smtp").GetMetadata(ctx, f.tenant+"/admin")
	if err != nil {
		t.Fatal(err)
	}
	if md.MaxVersions != 0 || md.DeleteVersionAfter != 0 || md.CustomMetadata["compromised_by"] != "recover" {
		t.Fatalf("metadata after the attempts: max_versions %d, delete_version_after %v, custom %v", md.MaxVersions, md.DeleteVersionAfter, md.CustomMetadata)
	}
}
