package scm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// New returns the adapter of cfg.Kind. It validates what can be validated
// without the network (kind, mode, URLs, Bitbucket Server's project key);
// Provider.Check asks the provider. hc nil is a client with a 30 s timeout.
func New(cfg Config, hc *http.Client) (Provider, error) {
	if !cfg.Kind.Valid() {
		return nil, fmt.Errorf("scm: unknown kind %q (want github, gitlab, bitbucket-cloud, bitbucket-server or gitea)", cfg.Kind)
	}
	switch cfg.Mode {
	case "", ModeWebhook:
		cfg.Mode = ModeWebhook
	case ModeAPI:
		if cfg.Kind != BitbucketServer {
			return nil, fmt.Errorf("scm: mode %q is only for bitbucket-server; %s is always %q", ModeAPI, cfg.Kind, ModeWebhook)
		}
	default:
		return nil, fmt.Errorf("scm: unknown mode %q (want %q or %q)", cfg.Mode, ModeWebhook, ModeAPI)
	}
	web, err := checkURL("website_url", cfg.WebsiteURL)
	if err != nil {
		return nil, err
	}
	if cfg.APIURL == "" {
		cfg.APIURL = defaultAPIURL(cfg.Kind, web)
	}
	apiURL, err := checkURL("api_url", cfg.APIURL)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	b := base{cfg: cfg, web: web, api: apiURL, hc: hc}
	switch cfg.Kind {
	case GitHub:
		return &github{b}, nil
	case GitLab:
		return &gitlab{b}, nil
	case BitbucketCloud:
		return &bitbucketCloud{b}, nil
	case BitbucketServer:
		if !projectKeyRE.MatchString(cfg.ProjectKey) {
			return nil, fmt.Errorf("scm: bitbucket-server needs project_key, a Bitbucket project key (letters, digits, _ and -, starting with a letter), not %q", cfg.ProjectKey)
		}
		// The REST roots are below the server's base; accept an api_url
		// that already names one.
		for _, suffix := range []string{"/rest/api/1.0", "/rest/api/latest"} {
			b.api = strings.TrimSuffix(b.api, suffix)
		}
		return &bitbucketServer{b}, nil
	default:
		return &gitea{b}, nil
	}
}

var projectKeyRE = regexp.MustCompile(`^[A-Za-z~][A-Za-z0-9_-]*$`)

// checkURL accepts an absolute http(s) URL without userinfo, query or
// fragment and returns it without a trailing slash.
func checkURL(field, s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("scm: %s is required", field)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("scm: %s %q is not a URL: %v", field, s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("scm: %s must be an http or https URL, not %q", field, u.Scheme+":")
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("scm: %s %q has no host", field, s)
	case u.User != nil:
		return "", fmt.Errorf("scm: %s must not carry credentials (user:password@); store secrets in their own fields", field)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("scm: %s %q must not have a query or fragment", field, u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func defaultAPIURL(k Kind, web string) string {
	switch k {
	case GitHub:
		if web == "https://github.com" {
			return "https://api.github.com"
		}
		return web + "/api/v3"
	case GitLab:
		return web + "/api/v4"
	case BitbucketCloud:
		if web == "https://bitbucket.org" {
			return "https://api.bitbucket.org/2.0"
		}
		return web + "/2.0"
	case BitbucketServer:
		return web
	}
	return web + "/api/v1"
}

// base is what every adapter shares: the configuration and the HTTP client.
type base struct {
	cfg Config
	web string // WebsiteURL, no trailing slash
	api string // APIURL, no trailing slash
	hc  *http.Client
}

func (b *base) Kind() Kind { return b.cfg.Kind }

// call is one request to a provider's API.
type call struct {
	method string
	path   string     // below the API URL, path parameters already escaped (use p)
	query  url.Values // nil for none
	abs    string     // an absolute URL (a next page) in place of path and query
	in     any        // JSON body, or nil
	out    any        // JSON answer is decoded into it, or nil
}

// client sends authenticated requests for one adapter.
type client struct {
	b      *base
	auth   string            // the Authorization header value ("" for none)
	header map[string]string // provider-specific headers
}

// maxPages bounds every listing (a provider that keeps answering "next"
// must not hold a request forever).
const maxPages = 200

// p escapes one path segment.
func p(s string) string { return url.PathEscape(s) }

// do sends c and maps the answer to the sentinels; it returns the response
// headers of a 2xx answer.
func (cl *client) do(ctx context.Context, c call) (http.Header, error) {
	target := c.abs
	if target == "" {
		target = cl.b.api + c.path
		if len(c.query) > 0 {
			target += "?" + c.query.Encode()
		}
	} else if err := sameOrigin(cl.b.api, target); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", cl.b.cfg.Kind, ErrInvalid, err)
	}
	var body io.Reader
	if c.in != nil {
		j, err := json.Marshal(c.in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", cl.b.cfg.Kind, ErrInvalid, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "gitserver")
	if c.in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range cl.header {
		req.Header.Set(k, v)
	}
	if cl.auth != "" {
		req.Header.Set("Authorization", cl.auth)
	}
	resp, err := cl.b.hc.Do(req)
	if err != nil {
		// *url.Error names the method and URL only: no header, no token.
		return nil, fmt.Errorf("%s: %w: %w", cl.b.cfg.Kind, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: reading the answer to %s %s: %v", cl.b.cfg.Kind, ErrUnavailable, c.method, req.URL.Path, err)
	}
	if resp.StatusCode/100 == 2 {
		if c.out != nil && resp.StatusCode != http.StatusNoContent {
			if err := json.Unmarshal(raw, c.out); err != nil {
				return nil, fmt.Errorf("%s: %w: %s %s answered %d with %s that is not the expected JSON: %v",
					cl.b.cfg.Kind, ErrUnavailable, c.method, req.URL.Path, resp.StatusCode, contentType(resp), err)
			}
		}
		return resp.Header, nil
	}
	return nil, cl.b.apiError(c.method, req.URL.Path, resp, raw)
}

// apiError maps a non-2xx answer to the sentinels, quoting the provider.
func (b *base) apiError(method, path string, resp *http.Response, raw []byte) error {
	msg := providerMessage(raw)
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	what := fmt.Sprintf("%s: %s %s: %d %s", b.cfg.Kind, method, path, resp.StatusCode, msg)
	if rl := rateLimit(resp); rl != nil {
		return fmt.Errorf("%s: %w", what, rl)
	}
	var sentinel error
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized:
		sentinel = ErrUnauthorized
	case s == http.StatusForbidden:
		sentinel = ErrForbidden
	case s == http.StatusNotFound:
		sentinel = ErrNotFound
	case s == http.StatusConflict:
		sentinel = ErrExists
	case (s == http.StatusBadRequest || s == http.StatusUnprocessableEntity) && existsRE.MatchString(msg):
		sentinel = ErrExists
	case s >= 500:
		sentinel = ErrUnavailable
	default:
		sentinel = ErrInvalid
	}
	return fmt.Errorf("%w (%s)", sentinel, what)
}

// existsRE is how providers say "taken" in a validation answer: GitHub
// "name already exists on this account", "key is already in use"; GitLab
// "has already been taken"; Gitea "already been added", "already exists";
// Bitbucket "already exists".
var existsRE = regexp.MustCompile(`(?i)already (exists|been taken|in use|been added|added)|already_exists|is already taken`)

// rateLimit is the provider's rate limit from a 429, or a 403 that carries
// Retry-After (GitHub's secondary limits) or an exhausted
// X-RateLimit-Remaining (GitHub's primary limit); nil otherwise.
func rateLimit(resp *http.Response) *RateLimitError {
	h := resp.Header
	after, hasAfter := retryAfter(h.Get("Retry-After"))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
	case resp.StatusCode == http.StatusForbidden && hasAfter:
	case resp.StatusCode == http.StatusForbidden && h.Get("X-RateLimit-Remaining") == "0":
	default:
		return nil
	}
	if !hasAfter {
		if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			after = max(time.Until(time.Unix(reset, 0)).Round(time.Second), 0)
		} else {
			after = time.Minute // GitHub's advice when nothing says how long
		}
	}
	return &RateLimitError{RetryAfter: after}
}

// retryAfter parses Retry-After: delay-seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t).Round(time.Second), 0), true
	}
	return 0, false
}

// providerMessage extracts the human message of an error answer: GitHub
// and Gitea {"message","errors":[{"message"|"code"}]}, GitLab {"message":
// string or {field: [..]}} or {"error","error_description"}, Bitbucket
// Cloud {"error":{"message","detail"}}, Bitbucket Server {"errors":
// [{"message"}]}. It is cut to 300 bytes; a non-JSON body gives "".
func providerMessage(raw []byte) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	var parts []string
	collectMessages(&parts, "", v, 0)
	s := strings.Join(dedupe(parts), "; ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func collectMessages(parts *[]string, prefix string, v any, depth int) {
	if depth > 5 || len(*parts) >= 8 {
		return
	}
	switch x := v.(type) {
	case string:
		if x != "" {
			*parts = append(*parts, prefix+x)
		}
	case []any:
		for _, e := range x {
			collectMessages(parts, prefix, e, depth+1)
		}
	case map[string]any:
		if m, ok := x["message"].(map[string]any); ok { // GitLab: {"message": {"name": ["has already been taken"]}}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				collectMessages(parts, k+" ", m[k], depth+1)
			}
		}
		keys := []string{"message", "error", "error_description", "detail", "errors"}
		if x["message"] == nil {
			keys = append(keys, "code") // GitHub's {"code": "already_exists", "field": "key"}
		}
		for _, k := range keys {
			if e, ok := x[k]; ok {
				if _, isMap := e.(map[string]any); isMap && k == "message" {
					continue
				}
				collectMessages(parts, prefix, e, depth+1)
			}
		}
	}
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func contentType(resp *http.Response) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		return ct
	}
	return "no content type"
}

// sameOrigin refuses a next-page URL on another scheme or host than the
// API: the token is only ever sent to the configured API.
func sameOrigin(api, next string) error {
	a, err := url.Parse(api)
	if err != nil {
		return err
	}
	n, err := url.Parse(next)
	if err != nil {
		return fmt.Errorf("next page %q: %v", next, err)
	}
	if n.Scheme != a.Scheme || n.Host != a.Host {
		return fmt.Errorf("the next page is on %s://%s, not the API's %s://%s", n.Scheme, n.Host, a.Scheme, a.Host)
	}
	return nil
}

// linkNext is the rel="next" target of a Link header, or "".
func linkNext(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			seg := strings.Split(part, ";")
			if len(seg) < 2 {
				continue
			}
			target := strings.Trim(strings.TrimSpace(seg[0]), "<>")
			for _, param := range seg[1:] {
				param = strings.ReplaceAll(strings.TrimSpace(param), " ", "")
				if param == `rel="next"` || param == "rel=next" {
					return target
				}
			}
		}
	}
	return ""
}

// listLinked GETs every page of a listing paginated by Link headers
// (GitHub, Gitea, GitLab), calling each with one page's decoded items.
func listLinked[T any](ctx context.Context, cl *client, path string, q url.Values, each func([]T)) error {
	c := call{method: http.MethodGet, path: path, query: q}
	for range maxPages {
		var page []T
		c.out = &page
		h, err := cl.do(ctx, c)
		if err != nil {
			return err
		}
		each(page)
		next := linkNext(h)
		if next == "" {
			if np := h.Get("X-Next-Page"); np != "" && c.abs == "" { // GitLab without Link
				q2 := url.Values{}
				for k, v := range c.query {
					q2[k] = v
				}
				q2.Set("page", np)
				c.query = q2
				continue
			}
			return nil
		}
		c = call{method: http.MethodGet, abs: next}
	}
	return fmt.Errorf("%s: %w: %s has more than %d pages", cl.b.cfg.Kind, ErrInvalid, path, maxPages)
}

// oauthProbe asks the token endpoint to exchange a code that cannot be
// valid: a provider that refuses the client itself (invalid_client,
// GitHub's incorrect_client_credentials, Gitea's "invalid client secret")
// rejects the configuration; any other refusal (invalid_grant,
// bad_verification_code) means it accepted the client.
func (b *base) oauthProbe(ctx context.Context, tokenURL string, basic bool) error {
	if b.cfg.ClientID == "" || b.cfg.ClientSecret == "" {
		return fmt.Errorf("%s: %w: client_id and client_secret (the OAuth application) are required", b.cfg.Kind, ErrInvalid)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"gitserver-configuration-check"},
		"redirect_uri": {b.web + "/"}}
	if !basic {
		form.Set("client_id", b.cfg.ClientID)
		form.Set("client_secret", b.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(url.QueryEscape(b.cfg.ClientID), url.QueryEscape(b.cfg.ClientSecret))
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w: the OAuth token endpoint: %w", b.cfg.Kind, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ans struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(raw, &ans) != nil || ans.Error == "" {
		if resp.StatusCode >= 500 {
			return fmt.Errorf("%s: %w: the OAuth token endpoint answered %d", b.cfg.Kind, ErrUnavailable, resp.StatusCode)
		}
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%s: %w: no OAuth token endpoint at %s (is website_url right?)", b.cfg.Kind, ErrNotFound, tokenURL)
		}
		return nil // not an OAuth error answer: nothing to conclude
	}
	refused := ans.Error == "invalid_client" || ans.Error == "incorrect_client_credentials" ||
		ans.Error == "unauthorized_client" && strings.Contains(strings.ToLower(ans.Description), "secret")
	if refused {
		d := ans.Error
		if ans.Description != "" {
			d += ": " + ans.Description
		}
		return fmt.Errorf("%w (%s: the OAuth application (client_id %s) was refused: %s)", ErrUnauthorized, b.cfg.Kind, b.cfg.ClientID, d)
	}
	return nil
}

// pingAPI GETs path without credentials: any JSON answer below 500 but
// 404 shows the API is there (GitLab and Bitbucket answer 401 to anyone).
func (b *base) pingAPI(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.api+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", b.cfg.Kind, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 500:
		return b.apiError("GET", req.URL.Path, resp, raw)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w (%s: GET %s: 404: no %s API at %s; is api_url right?)", ErrNotFound, b.cfg.Kind, req.URL.Path, b.cfg.Kind, b.api)
	case !json.Valid(raw):
		return fmt.Errorf("%w (%s: GET %s answered %d with %s, not JSON: is api_url the API?)", ErrInvalid, b.cfg.Kind, req.URL.Path, resp.StatusCode, contentType(resp))
	case resp.StatusCode == http.StatusTooManyRequests:
		return b.apiError("GET", req.URL.Path, resp, raw)
	}
	return nil
}

// itoa formats a provider's numeric id.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// splitFull splits "owner/name" at its last slash.
func splitFull(full string) (string, string) {
	i := strings.LastIndex(full, "/")
	if i < 0 {
		return "", full
	}
	return full[:i], full[i+1:]
}

// keyText is an authorized_keys line without its comment.
func keyText(k string) string {
	f := strings.Fields(k)
	if len(f) >= 2 {
		return f[0] + " " + f[1]
	}
	return strings.TrimSpace(k)
}

// gone makes a delete idempotent: what is already gone is deleted (Gitea
// itself answers 204 to deleting a deploy key twice).
func gone(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// basicAuth is an HTTP Basic Authorization header value.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// revokeRFC7009 POSTs one token to an RFC 7009 revocation endpoint with
// the application's credentials in the form body (client_secret_post).
// The token is only ever in the body, and never in an error.
func (b *base) revokeRFC7009(ctx context.Context, endpoint, token, hint string) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint},
		"client_id": {b.cfg.ClientID}, "client_secret": {b.cfg.ClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%s: %w: %v", b.cfg.Kind, ErrInvalid, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "gitserver")
	resp, err := b.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w: revoking the %s: %w", b.cfg.Kind, ErrUnavailable, hint, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return fmt.Errorf("revoking the %s: %w", hint, b.apiError(http.MethodPost, req.URL.Path, resp, raw))
}
