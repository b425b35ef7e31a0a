package wire

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"gitserver/store"
)

// The maps below are how the API built its objects before these structs
// (ui/api.go and ui/builds.go, issue 9), kept as the reference: every
// struct must write the same bytes.

func oldTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func oldUser(u store.Account, tok *store.Token) map[string]any {
	out := map[string]any{"id": u.ID, "name": u.Name, "admin": u.IsAdmin, "disabled": u.Disabled, "created_at": oldTS(u.CreatedAt)}
	if tok != nil {
		out["token_scopes"] = tok.Scopes
	}
	return out
}

func oldToken(tok store.Token, secret string) map[string]any {
	return map[string]any{"id": tok.ID, "name": tok.Name, "scopes": tok.Scopes, "token": secret, "created_at": oldTS(tok.CreatedAt)}
}

func oldKey(k store.Key) map[string]any {
	out := map[string]any{"id": k.ID, "title": k.Title, "key": k.PublicKey, "fingerprint": k.Fingerprint, "created_at": oldTS(k.CreatedAt)}
	if k.RepoID != 0 {
		out["read_only"] = k.ReadOnly
	}
	return out
}

func oldOrg(org store.Account) map[string]any {
	return map[string]any{"id": org.ID, "name": org.Name, "created_at": oldTS(org.CreatedAt)}
}

func oldMembership(org, user, role string) map[string]any {
	return map[string]any{"org": org, "user": user, "role": role}
}

func oldRepo(rp store.Repo, baseURL, sshURL string) map[string]any {
	out := map[string]any{
		"id": rp.ID, "owner": rp.Owner, "name": rp.Name, "full_name": rp.FullName(),
		"visibility": rp.Visibility, "default_branch": rp.DefaultBranch,
		"clone_url_http": strings.TrimRight(baseURL, "/") + "/git/" + rp.FullName() + ".git", "clone_url_ssh": "", "created_at": oldTS(rp.CreatedAt),
	}
	if sshURL != "" {
		out["clone_url_ssh"] = sshURL + "/" + rp.FullName() + ".git"
	}
	return out
}

func oldBuild(b store.Build, baseURL string, withLease bool) map[string]any {
	out := map[string]any{
		"id": b.ID, "repo": b.Repo, "clone_url": strings.TrimRight(baseURL, "/") + "/git/" + b.Repo + ".git",
		"branch": b.Branch, "commit": b.Commit, "previous_commit": b.PreviousCommit, "commit_count": b.CommitCount,
		"status": b.Status, "attempt": b.Attempt, "pushed_by": b.PushedBy,
		"queued_at": oldTS(b.QueuedAt), "started_at": oldTS(b.StartedAt), "finished_at": oldTS(b.FinishedAt),
		"worker": b.Worker, "message": b.Message, "log_url": b.LogURL,
	}
	if b.Status == store.BuildRunning {
		out["lease_expires_at"] = oldTS(b.LeaseExpiresAt)
	}
	if withLease {
		out["lease_token"] = b.LeaseToken
		out["clone_token"] = b.CloneToken
	}
	return out
}

func oldVersion(v store.Version) map[string]any {
	return map[string]any{
		"version": v.String(), "commit": v.Commit, "build_id": v.BuildID, "release_notes": v.ReleaseNotes,
		"published_by": v.PublishedBy, "published_at": oldTS(v.PublishedAt),
	}
}

// Sample values. at is not in UTC and has nanoseconds: both are written
// as the API always wrote them.
var (
	at      = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 5400))
	later   = at.Add(90 * time.Second)
	base    = "https://git.example.com/"
	sshBase = "ssh://git@git.example.com:2222"
	alice   = store.Account{ID: 2, Name: "alice", Kind: store.KindUser, CreatedAt: at}
	root    = store.Account{ID: 1, Name: "root", Kind: store.KindUser, IsAdmin: true, CreatedAt: at}
	tok     = store.Token{ID: 9, UserID: 2, Name: "ci", Scopes: []store.Scope{store.ScopeRepoRead, store.ScopeBuilds}, CreatedAt: at}
	org     = store.Account{ID: 3, Name: "algos", Kind: store.KindOrg, CreatedAt: at}
	repo    = store.Repo{ID: 5, OwnerID: 3, Owner: "algos", OwnerKind: store.KindOrg, Name: "sort",
		Visibility: store.Restricted, DefaultBranch: "main", CreatedAt: at}
	userKey   = store.Key{ID: 4, UserID: 2, Title: "laptop", Fingerprint: "SHA256:abc", PublicKey: "ssh-ed25519 AAAA", CreatedAt: at}
	deployKey = store.Key{ID: 6, RepoID: 5, Title: "ci", Fingerprint: "SHA256:def", PublicKey: "ssh-ed25519 BBBB", CreatedAt: at}
	rwKey     = store.Key{ID: 7, RepoID: 5, Title: "rw", Fingerprint: "SHA256:ghi", PublicKey: "ssh-ed25519 CCCC", ReadOnly: false, CreatedAt: at}
	queued    = store.Build{ID: 42, RepoID: 5, Repo: "algos/sort", Branch: "main", Commit: strings.Repeat("c", 40),
		PreviousCommit: strings.Repeat("b", 40), CommitCount: 3, Status: store.BuildQueued, Attempt: 1, PushedBy: "alice", QueuedAt: at}
	running = func() store.Build {
		b := queued
		b.Status, b.StartedAt, b.Worker, b.LeaseToken, b.LeaseExpiresAt, b.CloneToken = store.BuildRunning, later, "w1", "lease", later.Add(time.Minute), "gsc_secret"
		return b
	}()
	done = func() store.Build {
		b := running
		b.Status, b.FinishedAt, b.Message, b.LogURL, b.LeaseToken, b.CloneToken = store.BuildSucceeded, later.Add(time.Second), "built", "https://ci/1", "", ""
		return b
	}()
	version = store.Version{ID: 1, RepoID: 5, Major: 1, Minor: 2, Patch: 3, Commit: strings.Repeat("c", 40), BuildID: 42,
		ReleaseNotes: "first", PublishedBy: "alice", PublishedAt: later}
)

// pairs is every object the API writes, as a wire struct and as the old map.
func pairs() []struct {
	name     string
	wire     any
	old      map[string]any
	sameKeys bool // the struct's key order is the map's (sorted)
} {
	type pair = struct {
		name     string
		wire     any
		old      map[string]any
		sameKeys bool
	}
	return []pair{
		{"user with a password", NewUser(alice, nil), oldUser(alice, nil), true},
		{"user with a token", NewUser(root, &tok), oldUser(root, &tok), true},
		{"user of zero time", NewUser(store.Account{ID: 8, Name: "z"}, nil), oldUser(store.Account{ID: 8, Name: "z"}, nil), true},
		{"new token", NewToken(tok, "gst_secret"), oldToken(tok, "gst_secret"), true},
		{"user key", NewKey(userKey), oldKey(userKey), true},
		{"read-only deploy key", NewKey(deployKey), oldKey(deployKey), true},
		{"read-write deploy key", NewKey(rwKey), oldKey(rwKey), true},
		{"org", NewOrg(org), oldOrg(org), true},
		{"membership", NewMembership("algos", "bob", store.RoleMember), oldMembership("algos", "bob", "member"), true},
		{"repo with SSH", NewRepo(repo, HTTPCloneURL(base, repo.FullName()), SSHCloneURL(sshBase, repo.FullName())), oldRepo(repo, base, sshBase), true},
		{"repo without SSH", NewRepo(repo, HTTPCloneURL(base, repo.FullName()), SSHCloneURL("", repo.FullName())), oldRepo(repo, base, ""), true},
		{"queued build", NewBuild(queued, HTTPCloneURL(base, queued.Repo)), oldBuild(queued, base, false), true},
		{"running build", NewBuild(running, HTTPCloneURL(base, running.Repo)), oldBuild(running, base, false), true},
		{"finished build", NewBuild(done, HTTPCloneURL(base, done.Repo)), oldBuild(done, base, false), true},
		// A claim writes the two secrets after the build's keys.
		{"claim", NewClaim(running, HTTPCloneURL(base, running.Repo)), oldBuild(running, base, true), false},
		{"version", NewVersion(version), oldVersion(version), true},
	}
}

// TestSameAsTheOldMaps: every wire struct writes what the API's maps wrote:
// the same keys, values and JSON types, and (but for a claim, whose two
// secrets come last) the same bytes, as the API indents them.
func TestSameAsTheOldMaps(t *testing.T) {
	for _, p := range pairs() {
		got, err := json.MarshalIndent(p.wire, "", "  ")
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		want, _ := json.MarshalIndent(p.old, "", "  ")
		if p.sameKeys && string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", p.name, got, want)
		}
		var g, w map[string]any
		json.Unmarshal(got, &g)
		json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: decoded\n got %v\nwant %v", p.name, g, w)
		}
	}
	// Lists are never null.
	if b, _ := json.Marshal(NewKeys(nil)); string(b) != "[]" {
		t.Errorf("NewKeys(nil) = %s", b)
	}
}

// TestBuildHoldsNoSecret: only a Claim carries the lease and clone tokens;
// a Build (the API's reads, the outbound notice) cannot.
func TestBuildHoldsNoSecret(t *testing.T) {
	b, _ := json.Marshal(NewBuild(running, "u"))
	keys := jsonKeys(t, NewBuild(running, "u"))
	if slices.Contains(keys, "lease_token") || slices.Contains(keys, "clone_token") || strings.Contains(string(b), running.CloneToken) {
		t.Errorf("a build object carries a secret: %s", b)
	}
	c, _ := json.Marshal(NewClaim(running, "u"))
	var m map[string]any
	json.Unmarshal(c, &m)
	if m["lease_token"] != running.LeaseToken || m["clone_token"] != running.CloneToken || m["id"] != float64(running.ID) {
		t.Errorf("claim %s", c)
	}
}

// TestTimeRoundTrip: Time reads what it writes, null included.
func TestTimeRoundTrip(t *testing.T) {
	for _, v := range []time.Time{{}, at, later.UTC()} {
		b, err := json.Marshal(Time{v})
		if err != nil {
			t.Fatal(err)
		}
		var back Time
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(v) {
			t.Errorf("%v -> %s -> %v, %v", v, b, back, err)
		}
	}
	var bad Time
	if err := json.Unmarshal([]byte(`"yesterday"`), &bad); err == nil {
		t.Error("a bad timestamp was read")
	}
}

// schema is an object schema of docs/openapi.yaml, as far as the key check
// needs it.
type schema struct {
	Required   []string         `yaml:"required"`
	Properties map[string]any   `yaml:"properties"`
	AllOf      []map[string]any `yaml:"allOf"`
	Ref        string           `yaml:"$ref"`
	Extra      map[string]any   `yaml:",inline"`
}

// objectKeys resolves s (its $ref and allOf) into its properties and
// required keys.
func objectKeys(t *testing.T, schemas map[string]schema, s schema) (props, required []string) {
	t.Helper()
	if s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		if !ok {
			t.Fatalf("unexpected $ref %s", s.Ref)
		}
		return objectKeys(t, schemas, schemas[name])
	}
	for k := range s.Properties {
		props = append(props, k)
	}
	required = append(required, s.Required...)
	for _, part := range s.AllOf {
		raw, _ := yaml.Marshal(part)
		var ps schema
		if err := yaml.Unmarshal(raw, &ps); err != nil {
			t.Fatal(err)
		}
		p, r := objectKeys(t, schemas, ps)
		props, required = append(props, p...), append(required, r...)
	}
	slices.Sort(props)
	slices.Sort(required)
	return slices.Compact(props), slices.Compact(required)
}

// TestKeysMatchOpenAPI: each wire struct writes exactly the properties of
// its schema in docs/openapi.yaml when every optional field is present, and
// at least the required ones when none is.
func TestKeysMatchOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Schemas map[string]schema `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// The membership has no component of its own: it is the answer of
	// PUT /api/v1/orgs/{org}/members/{user}.
	var put struct {
		Responses map[string]struct {
			Content map[string]struct {
				Schema schema `yaml:"schema"`
			} `yaml:"content"`
		} `yaml:"responses"`
	}
	node := doc.Paths["/api/v1/orgs/{org}/members/{user}"]["put"]
	if err := node.Decode(&put); err != nil {
		t.Fatal(err)
	}
	membership := put.Responses["200"].Content["application/json"].Schema

	withToken := NewUser(root, &tok)
	for _, tc := range []struct {
		schema string
		s      *schema
		full   any // every optional field present
		bare   any // none present
	}{
		{schema: "User", full: withToken, bare: NewUser(alice, nil)},
		{schema: "NewToken", full: NewToken(tok, "gst_x"), bare: NewToken(tok, "gst_x")},
		{schema: "Key", full: NewKey(deployKey), bare: NewKey(userKey)},
		{schema: "Org", full: NewOrg(org), bare: NewOrg(org)},
		{schema: "membership", s: &membership, full: NewMembership("a", "b", store.RoleOwner), bare: NewMembership("a", "b", store.RoleOwner)},
		{schema: "Repo", full: func() Repo {
			r := NewRepo(repo, "h", "s")
			r.Mirror = NewMirror(store.Mirror{Interval: time.Minute}, "h")
			r.Remote = NewRemote(store.Mirror{SCMConfigID: 1, Remote: store.MirrorRemote{ID: "7"}})
			return r
		}(), bare: NewRepo(repo, "h", "")},
		{schema: "Remote", full: NewRemote(store.Mirror{SCMConfigID: 1, Remote: store.MirrorRemote{ID: "7"}}), bare: NewRemote(store.Mirror{SCMConfigID: 1, Remote: store.MirrorRemote{ID: "7"}})},
		{schema: "Repair", full: Repair{}, bare: Repair{}},
		{schema: "Mirror", full: NewMirror(store.Mirror{LastErrorCode: "x"}, "h"), bare: NewMirror(store.Mirror{}, "h")},
		{schema: "Build", full: NewBuild(running, "u"), bare: NewBuild(queued, "u")},
		{schema: "ClaimedBuild", full: NewClaim(running, "u"), bare: NewClaim(running, "u")},
		{schema: "Version", full: NewVersion(version), bare: NewVersion(version)},
		{schema: "SCMConfig", full: NewSCMConfig(store.SCMConfig{ClientSecret: "x"}), bare: NewSCMConfig(store.SCMConfig{})},
		{schema: "SCMConfigSummary", full: SCMConfigSummary{}, bare: SCMConfigSummary{}},
		{schema: "SCMConnection", full: NewSCMConnection(store.SCMConnection{}), bare: NewSCMConnection(store.SCMConnection{})},
		{schema: "SCMOwner", full: SCMOwner{}, bare: SCMOwner{}},
	} {
		s, ok := doc.Components.Schemas[tc.schema]
		if tc.s != nil {
			s, ok = *tc.s, true
		}
		if !ok {
			t.Errorf("docs/openapi.yaml has no schema %s", tc.schema)
			continue
		}
		props, required := objectKeys(t, doc.Components.Schemas, s)
		if len(props) == 0 {
			t.Errorf("%s: no properties found", tc.schema)
			continue
		}
		if got := jsonKeys(t, tc.full); !slices.Equal(got, props) {
			t.Errorf("%s: writes keys %q, the schema's properties are %q", tc.schema, got, props)
		}
		bare := jsonKeys(t, tc.bare)
		for _, k := range required {
			if !slices.Contains(bare, k) {
				t.Errorf("%s: required key %q missing from %q", tc.schema, k, bare)
			}
		}
		for _, k := range bare {
			if !slices.Contains(props, k) {
				t.Errorf("%s: writes %q, not a property of the schema", tc.schema, k)
			}
		}
	}
}

func jsonKeys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
