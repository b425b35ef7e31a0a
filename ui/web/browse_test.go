package web

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/chroma/v2/styles"
)

// TestChromaCSS: static/chroma.css is the stylesheet for Highlight's
// classes (-update rewrites it after a change of style or chroma).
func TestChromaCSS(t *testing.T) {
	var buf bytes.Buffer
	if err := chromaFormatter.WriteCSS(&buf, styles.Get("github")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("static", "chroma.css")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, buf.Bytes()) {
		t.Errorf("%s is not chroma's stylesheet (run with -update): %v", path, err)
	}
}

func TestBrowsePages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	alice, bob := e.client(), e.client()
	alice.mustSignIn("alice")
	bob.mustSignIn("bob")
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/alice/secret", 200, []string{`href="/alice/secret/tree/master/cmd"`, `href="/alice/secret/blob/master/main.go"`, `href="/alice/secret/commits/master"`, `href="/alice/secret/branches"`}},
		{"/alice/secret/tree/main", 200, []string{`<a href="/alice/secret/tree/main/cmd">cmd/</a>`, `<a href="/alice/secret/blob/main/main.go">main.go</a>`, `<td class="size">29</td>`}},
		{"/alice/secret/tree/main/cmd", 200, []string{`href="/alice/secret/tree/main/cmd/tool"`}},
		{"/alice/secret/tree/feature%2Fx/cmd/tool", 200, []string{`href="/alice/secret/blob/feature%2Fx/cmd/tool/x.go"`}},
		{"/alice/secret/blob/main/main.go", 200, []string{`<span class="kn">package</span>`, `class="chroma"`}},
		{"/alice/secret/blob/main/bin/data", 200, []string{"Binary file, 8 bytes."}},
		{"/alice/secret/blob/main/-dash/file.txt", 200, []string{"dash"}},
		{"/alice/secret/commits/main", 200, []string{"Commit &lt;120&gt;", "Commit &lt;71&gt;", `href="/alice/secret/commits/main?page=2"`}},
		{"/alice/secret/commits/main?page=3", 200, []string{"Commit &lt;20&gt;", "Commit &lt;1&gt;", `href="/alice/secret/commits/main?page=2"`}},
		{"/alice/secret/branches", 200, []string{`href="/alice/secret/tree/feature%2Fx"`, `href="/alice/secret/commits/main"`}},
		{"/alice/secret/tags", 200, []string{`href="/alice/secret/tree/v1.0"`, "Release"}},
		// Bad refs and paths are 404 pages.
		{"/alice/secret/tree/nope", 404, nil},
		{"/alice/secret/tree/main/nope", 404, nil},
		{"/alice/secret/blob/main/cmd", 404, nil},
		{"/alice/secret/tree/main/../../bob/pub", 404, nil},
		{"/alice/secret/tree/main/%2e%2e/x", 404, nil},
		{"/alice/secret/tree/main/cmd/%2E%2E", 404, nil},
		{"/alice/secret/tree/main/a%2Fb", 404, nil},
		{"/alice/secret/tree/..", 404, nil},
		{"/alice/secret/tree/%2e%2e", 404, nil},
		{"/alice/secret/tree/-foo", 404, nil},
		{"/alice/secret/tree/--output=x", 404, nil},
		{"/alice/secret/commits/main%5E%7B%7D", 404, nil},
		{"/alice/secret/commits/main/x", 404, nil},
		{"/alice/secret/commits/main?page=0", 404, nil},
		{"/alice/secret/blob/main", 404, nil},
		{"/alice/secret/tree/main//main.go", 404, nil},
	} {
		r := alice.do("GET", tc.path, nil, nil)
		if r.status != tc.status {
			t.Errorf("GET %s = %d, want %d\n%s", tc.path, r.status, tc.status, r.body)
			continue
		}
		checkHeaders(t, r)
		if tc.status == 404 && !strings.Contains(r.body, "Not found") {
			t.Errorf("GET %s: not the 404 page:\n%s", tc.path, r.body)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.body, w) {
				t.Errorf("GET %s lacks %q\n%s", tc.path, w, r.body)
			}
		}
		if strings.Contains(r.body, "style=") {
			t.Errorf("GET %s has an inline style", tc.path)
		}
		// Another user who may not read the repository gets the same 404.
		if b := bob.do("GET", tc.path, nil, nil); b.status != http.StatusNotFound || !strings.Contains(b.body, "Not found") {
			t.Errorf("bob: GET %s = %d, want 404", tc.path, b.status)
		}
	}
	if r := alice.do("GET", "/-/static/chroma.css", nil, nil); r.status != 200 || !strings.Contains(r.body, ".chroma") {
		t.Errorf("chroma.css = %d", r.status)
	}
}
