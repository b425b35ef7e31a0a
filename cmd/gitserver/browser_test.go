package main

// The one place that knows chromedp (pinned in go.mod; its API changed
// often): a small browser for page tests that acts as a person does, by
// visible labels and button texts. It drives the system's headless
// Chromium (Debian's chromium-headless-shell, or chromium), never a
// downloaded one. Without a browser the test skips, except in CI
// (CI=true), where it fails. On failure a screenshot of the page each
// browser of the test was on is saved in the test's artifact directory
// (go test -artifacts), with the page's URL in the test log; every test
// that drives a page through NewBrowser gets it, without code of its own.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browserPaths are where Debian installs Chromium.
var browserPaths = []string{
	"/usr/lib/chromium/chromium-headless-shell", "/usr/bin/chromium-headless-shell",
	"/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser",
}

func findBrowser() string {
	if p := os.Getenv("GITSERVER_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range browserPaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// Browser is one headless Chromium tab.
type Browser struct {
	t   *testing.T
	ctx context.Context
}

// shotSeq numbers screenshots across browsers (one test may run several,
// and their failure screenshots share its artifact directory).
var shotSeq atomic.Int64

// NewBrowser starts a browser for t, closed at t's cleanup.
func NewBrowser(t *testing.T) *Browser {
	t.Helper()
	path := findBrowser()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found (apt-get install chromium-headless-shell); browser tests must run in CI")
		}
		t.Skip("no Chromium found; install chromium-headless-shell to run the browser tests")
	}
	// The profile is not a t.TempDir: Chromium's helper processes may
	// still write into it for a moment after the browser is gone, and
	// TempDir's cleanup fails the test on "directory not empty" (seen in
	// CI). It is removed below, after the browser, with retries.
	profile, err := os.MkdirTemp("", "gitserver-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		if t.Failed() {
			var url string
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			if chromedp.Run(ctx, chromedp.Location(&url)) == nil {
				t.Logf("browser was on %s", url)
			}
			cancel()
			b.Screenshot("failure")
		}
		cancelTab()
		cancelAlloc()
		removeProfile(t, profile)
	})
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", path, err)
	}
	return b
}

// removeProfile removes a browser's profile directory, retrying while
// processes the browser left behind still write into it; what cannot be
// removed within 10 s is logged, not failed (it is a temporary directory).
func removeProfile(t *testing.T, dir string) {
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err = os.RemoveAll(dir); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Logf("browser profile not removed: %v", err)
	}
}

// run runs actions with a timeout, failing the test on error.
func (b *Browser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// xpathString quotes s for XPath.
func xpathString(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `concat('` + strings.ReplaceAll(s, "'", `', "'", '`) + `')`
}

// Open loads url and waits for its body.
func (b *Browser) Open(url string) {
	b.t.Helper()
	b.run("open "+url, chromedp.Navigate(url), chromedp.WaitReady("body", chromedp.ByQuery))
}

// Fill types value into the field (an input or a textarea) whose visible
// <label> says label.
func (b *Browser) Fill(label, value string) {
	b.t.Helper()
	sel := `//*[(self::input or self::textarea) and @id=//label[normalize-space(.)=` + xpathString(label) + `]/@for]`
	b.run("fill "+label, chromedp.WaitVisible(sel, chromedp.BySearch), chromedp.SendKeys(sel, value, chromedp.BySearch))
}

// Click clicks the button whose text is text.
func (b *Browser) Click(text string) {
	b.t.Helper()
	b.click("button", text)
}

// Follow clicks the link whose text is text.
func (b *Browser) Follow(text string) {
	b.t.Helper()
	b.click("a", text)
}

func (b *Browser) click(element, text string) {
	b.t.Helper()
	sel := `//` + element + `[normalize-space(.)=` + xpathString(text) + `]`
	b.run("click "+text, chromedp.WaitVisible(sel, chromedp.BySearch), chromedp.Click(sel, chromedp.BySearch),
		chromedp.Sleep(100*time.Millisecond), chromedp.WaitReady("body", chromedp.ByQuery))
}

// WaitText waits until the page shows text (in the body's visible text).
func (b *Browser) WaitText(text string) {
	b.t.Helper()
	sel := `//body[contains(normalize-space(.), ` + xpathString(text) + `)]`
	b.run("wait for "+text, chromedp.WaitVisible(sel, chromedp.BySearch))
}

// Text is the visible text of the first element matching the CSS selector.
func (b *Browser) Text(css string) string {
	b.t.Helper()
	var s string
	b.run("text of "+css, chromedp.Text(css, &s, chromedp.ByQuery, chromedp.NodeVisible))
	return s
}

// Location is the current page's URL.
func (b *Browser) Location() string {
	b.t.Helper()
	var s string
	b.run("location", chromedp.Location(&s))
	return s
}

// Title is document.title.
func (b *Browser) Title() string {
	b.t.Helper()
	var s string
	b.run("title", chromedp.Title(&s))
	return s
}

// Eval evaluates a JavaScript expression into out (awaiting it when it is
// a promise).
func (b *Browser) Eval(expr string, out any) {
	b.t.Helper()
	b.run("eval", chromedp.Evaluate(expr, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
}

// Screenshot saves the page as a PNG in the test's artifact directory.
func (b *Browser) Screenshot(name string) string {
	var png []byte
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.t.ArtifactDir(), fmt.Sprintf("%02d-%s.png", shotSeq.Add(1), name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// signInBrowser signs name in through the /login form and waits for the
// home page.
func signInBrowser(b *Browser, s *TestServer, name, password string) {
	b.t.Helper()
	b.Open(s.URL + "/login")
	b.Fill("Username", name)
	b.Fill("Password", password)
	b.Click("Sign in")
	b.WaitText("Your repositories")
}

// Capture saves what the viewport shows, width x height CSS pixels, as a
// PNG at path (the README's screenshots; Screenshot is the whole page).
func (b *Browser) Capture(path string, width, height int64) {
	b.t.Helper()
	var png []byte
	b.run("capture "+path, chromedp.EmulateViewport(width, height), chromedp.CaptureScreenshot(&png))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// DismissDialogs closes the page's JavaScript dialogs as they open (and
// logs them): the test harness's Gitea has no built assets, and its pages
// alert() that their scripts failed to load, which would block the tab.
func (b *Browser) DismissDialogs() {
	chromedp.ListenTarget(b.ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.t.Logf("dismissed a dialog: %s", d.Message)
			go chromedp.Run(b.ctx, page.HandleJavaScriptDialog(true))
		}
	})
}
